"""The `?` help screen, built from the bindings themselves: every key the app and its views
bind, with the help its `Binding` carries (`tooltip`, also the footer's hover text), so a key
cannot be bound without being documented here, nor documented without being bound.

A row is one help text and the keys of every binding that carries it (l b, r e d); a run of
digit keys reads as a range (1-8).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {
    "question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]",
    "escape": "esc", "comma": ",", "full_stop": ".",
}  # fmt: skip
"""How a key is written in the help (Textual's own names otherwise)."""

OTHER_KEYS = (
    ("enter", "Runs tab: open the selected run"),  # the Runs table's own (DataTable) binding
    (App.COMMAND_PALETTE_BINDING, "command palette: every action and view"),
)
"""Keys that Textual binds for us, said after the app's."""

NOTES = (
    "Headless: `ecs run ...` writes a run directory; `ecs-tui --watch DIR`\n"
    "follows it live; `ecs-tui DIR` opens it (a folder of runs or a sweep:\n"
    "the Runs tab lists it). NO_COLOR=1 turns colour off\n"
    "(the marks ✓ ✗ ▸ still carry the meaning)."
)


def key_names(binding: Binding) -> str:
    """`question_mark,f1` -> `? f1`."""
    return " ".join(KEY_NAMES.get(k, k) for k in binding.key.split(","))


def help_rows(groups: Iterable[Iterable[BindingType]]) -> list[tuple[str, str]]:
    """(keys, what) for every binding with a tooltip, grouped by that text, in binding order;
    then `OTHER_KEYS`."""
    rows: dict[str, list[str]] = {}
    for group in groups:
        for binding in group:
            if isinstance(binding, Binding) and binding.tooltip:
                rows.setdefault(binding.tooltip, []).append(key_names(binding))
    return [(_keys(keys), what) for what, keys in rows.items()] + list(OTHER_KEYS)


def _keys(keys: Sequence[str]) -> str:
    if len(keys) > 2 and all(k.isdigit() for k in keys):
        return f"{keys[0]}-{keys[-1]}"
    return " ".join(keys)


def help_table(rows: Sequence[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, what in rows:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """Keys and notes; Esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, rows: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("ecs-tui keys  (esc closes)", style="bold"), id="help-title")
            yield Static(help_table(self.rows))
            yield Static(Text(NOTES, style="dim"), id="help-notes")
