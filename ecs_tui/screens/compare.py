"""Compare runs: one table (accuracy, P+Q, size), the curves overlaid, per-layer density side
by side, and the research table of `ecs_core.stats.compare` over the chosen runs.

Numbers come from the readers every other view uses (`run_info`, `RunView.curves`,
`RunView.sparsity`, `RunView.sizes`, `compare_infos`), computed in a thread worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from ecs_tui.fmt import pct
from ecs_tui.fmt import size as fmt_size

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MARKERS = ("braille", "•", "x", "+", "o", "*", "#", "%")
"""One glyph per run, so the overlaid curves stay apart without colour (NO_COLOR, a paste)."""


@dataclass(frozen=True)
class Compared:
    """One run's numbers for the compare screen."""

    letter: str
    info: Any
    curves: Any
    sparsity: Any
    sizes: Any
    error: str | None


def load_compared(paths: list[Path]) -> tuple[list[Compared], Any]:
    """Every run's numbers (a part that cannot be read is None, with the reason), and the
    research table over them. Call from a worker thread: it imports torch."""
    from ecs_core.stats import StatsError, compare_infos, load_run, run_info

    out = []
    for letter, path in zip(LETTERS, paths, strict=False):
        info, parts, error = run_info(path), {}, None
        try:
            view = load_run(path)
            parts["curves"], parts["sizes"] = view.curves(), view.sizes()
            parts["sparsity"] = view.sparsity()
        except StatsError as exc:
            error = str(exc)
        out.append(Compared(letter, info, parts.get("curves"), parts.get("sparsity"),
                            parts.get("sizes"), error))  # fmt: skip
    return out, compare_infos([c.info for c in out])


def runs_table(runs: list[Compared], name_width: int) -> Table:
    """One row per run: what it is, what it kept, how well it does, how big its file is."""
    from ecs_tui.widgets.runs import short_name

    t = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    for col in ("", "method", "kept", "test", "P+Q", "file", "run"):
        t.add_column(col, justify="right" if col in ("kept", "test", "P+Q", "file") else "left",
                     no_wrap=True, overflow="ellipsis",
                     max_width=name_width if col == "run" else None)  # fmt: skip
    for c in runs:
        i = c.info
        kept = "-" if i.density is None else f"{i.density:.2%}"
        size = c.sizes.compressed_bytes if c.sizes else None
        t.add_row(c.letter, i.method, kept, pct(i.test_acc), pct(i.pq_acc), fmt_size(size),
                  short_name(i.name))  # fmt: skip
    return t


def layers_table(runs: list[Compared]) -> Table | Text:
    """Density of each layer, one column per run: where each method put its weights."""
    from ecs_tui.plots import abbreviate, short

    have = [c for c in runs if c.sparsity is not None]
    if not have:
        return Text("no per-layer densities (no masks, weights or summary yet)", style="dim")
    names: list[str] = []
    for c in have:
        names += [r.name for r in c.sparsity.layers if r.name not in names]
    t = Table(box=None, header_style="bold", title="density per layer", title_justify="left")
    t.add_column("layer", no_wrap=True)
    t.add_column("params", justify="right")
    for c in have:
        t.add_column(c.letter, justify="right")
    rows = [{r.name: r for r in c.sparsity.layers} for c in have]
    for name in names:
        params = next((r[name].params for r in rows if name in r), None)
        cells = [_density(r.get(name)) for r in rows]
        t.add_row(abbreviate(short(name)), f"{params:,}" if params else "-", *cells)
    t.add_row("all", "", *(f"{c.sparsity.density:.2%}" for c in have), style="bold")
    return t


def _density(row: Any) -> str:
    from ecs_tui.plots import density_text

    return "-" if row is None else density_text(row.kept, row.density)


def draw_overlay(plt: Any, runs: list[Compared], metric: str, title: str) -> None:
    """One line per run (its letter as the label), each with its own marker; the legend gets
    headroom when a curve runs under it (`plots.legend_headroom`)."""
    from ecs_tui.plots import legend_headroom

    drawn: list[tuple[float, float]] = []
    for c, marker in zip(runs, MARKERS * 4, strict=False):
        if c.curves is None:
            continue
        pts = [(x, y) for x, y in zip(c.curves.epoch, getattr(c.curves, metric), strict=True)
               if y is not None]  # fmt: skip
        if pts:
            plt.plot([p[0] for p in pts], [p[1] for p in pts], label=c.letter, marker=marker)
            drawn += pts
    if drawn:
        lo, hi = min(y for _, y in drawn), max(y for _, y in drawn)
        top = legend_headroom(drawn, lo, hi, log=False) if len(runs) > 1 else None
        if top is not None:
            plt.ylim(lo, top)
    plt.title(title)
    plt.xlabel("epoch")


class CompareScreen(Screen[None]):
    """Esc goes back to the Runs tab."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = paths
        self.data: tuple[list[Compared], Any] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="compare-body"):
            yield Static(Text("loading…", style="dim"), id="compare-runs")
            yield PlotextPlot(id="compare-curves")
            yield Static(id="compare-layers")
            yield Static(id="compare-groups")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare-body").focus()
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def _load(self) -> None:
        try:
            data = load_compared(self.paths)
        except Exception as exc:  # a screen that cannot load says why
            self.app.call_from_thread(self._fail, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._draw, data)

    def _fail(self, message: str) -> None:
        self.query_one("#compare-runs", Static).update(Text(message, style="red"))

    def _draw(self, data: tuple[list[Compared], Any]) -> None:
        from ecs_tui.widgets.runs import compare_renderable

        self.data = data
        runs, table = data
        head = Text(f"comparing {len(runs)} runs · esc back\n", style="dim")
        errors = [Text(f"{c.letter}: {c.error}", style="yellow") for c in runs if c.error]
        body = Table.grid()
        for part in (head, runs_table(runs, max(12, self.size.width - 50)), *errors):
            body.add_row(part)
        self.query_one("#compare-runs", Static).update(body)
        plot = self.query_one("#compare-curves", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        plt.subplots(1, 2)
        draw_overlay(plt.subplot(1, 1), runs, "test_acc", "test accuracy %")
        draw_overlay(plt.subplot(1, 2), runs, "train_loss", "train loss")
        plt.main()
        plot.refresh()
        self.query_one("#compare-layers", Static).update(layers_table(runs))
        self.query_one("#compare-groups", Static).update(compare_renderable(table))
