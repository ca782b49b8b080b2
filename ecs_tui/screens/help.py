"""The `?` help screen: every key, what each view shows, and how to run headless."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("s", "start the configured run (refused, with the reason, if invalid)"),
    ("x", "stop the run at the next batch boundary (asks first)"),
    ("r", "resume the stopped or died run on screen (asks first)"),
    ("c", "show / hide the configure pane"),
    ("y", "copy the equivalent `ecs run ...` line (OSC 52 clipboard)"),
    ("1-8", "Overview Curves Sparsity Quant Kernels Activ Runs Log"),
    ("[ ]", "previous / next page of kernel or activation maps"),
    ("enter", "Runs tab: open the selected run"),
    ("space v", "Runs tab: mark runs, compare the marked (curves, layers, table)"),
    ("r e d", "Runs tab: resume, export (ecs export), delete (asks) the selected run"),
    ("l b", "Curves: loss on a log scale; the other chart where one fits"),
    ("m", "Kernels: mean over input channels / every weight (zeros marked)"),
    ("layer", "Quant, Kernels: , and . pick the previous / next layer"),
    ("ctrl+p", "command palette: every action and view"),
    ("? f1", "this help"),
    ("esc", "back: close a dialog, leave a field, hide the pane"),
    ("q", "quit (asks first while a run is active)"),
)

NOTES = (
    "Headless: `ecs run ...` writes a run directory; `ecs-tui --watch DIR`\n"
    "follows it live; `ecs-tui DIR` opens it (a folder of runs or a sweep:\n"
    "the Runs tab lists it). NO_COLOR=1 turns colour off\n"
    "(the marks ✓ ✗ ▸ still carry the meaning)."
)


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, what in KEYS:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """Keys and notes; Esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("ecs-tui keys  (esc closes)", style="bold"), id="help-title")
            yield Static(help_table())
            yield Static(Text(NOTES, style="dim"), id="help-notes")
