"""Quantization tab: one layer's weight values before and after weight sharing, and the
unique-weight table (the original report's table: distinct values per layer, before/after).

Histograms are `RunView.clusters(layer)` (pre-binned in torch; exact values once shared), drawn
by `plots.draw_histogram`; the table is `RunView.quant_table()`. The layer shown first is the one
with the most kept weights; the picker lists every layer with its kept count.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Label, Select, Static
from textual_plotext import PlotextPlot

from ecs_tui.runmodel import Snapshot
from ecs_tui.widgets.statsview import StatsView


class QuantView(StatsView):
    """Layer picker, histograms (before | after), and the per-layer unique-weight table."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.sel_layer: str | None = None
        self._options: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(classes="view-note")
        with Horizontal(classes="controls"):
            yield Label("layer")
            yield Select([], prompt="most kept weights", compact=True, id="quant-layer")
        with Horizontal(classes="plot-row"):
            yield PlotextPlot(id="quant-plot")
            table: DataTable = DataTable(id="quant-table", classes="side-table")
            table.add_columns("layer", "unique", "shared")
            yield table

    def choice(self) -> tuple:
        return (self.sel_layer,)

    def layer_picker(self) -> tuple[Any, list[str], str | None]:
        names = [name for _, name in self._options]
        return self.query_one("#quant-layer", Select), names, self.sel_layer

    def ready(self, snap: Snapshot) -> str | None:
        if snap.active and snap.epoch < 1:
            return "No weights saved yet: the first checkpoint comes after the first epoch."
        return None

    def compute(self, view: Any, choice: tuple) -> Any:
        # by default (None) the layer with the most kept weights (RunView.clusters)
        return view.sparsity().layers, view.clusters(choice[0]), view.quant_table()

    def draw(self, data: Any) -> None:
        from ecs_tui.plots import draw_histogram, short

        layers, clusters, table = data
        select = self.query_one("#quant-layer", Select)
        options = [(f"{short(r.name)}  {r.kept:,} kept", r.name) for r in layers]
        if options != self._options:  # re-fill only when it changed (keeps the open dropdown)
            self._options = options
            select.set_options(options)
        self.sel_layer = clusters.layer
        with select.prevent(Select.Changed):
            select.value = clusters.layer
        plot = self.query_one("#quant-plot", PlotextPlot)
        w, h = plot.size
        draw_histogram(plot.plt, clusters, size=(w, h) if w and h else None)
        plot.refresh()
        self._fill_table(table)

    def _fill_table(self, table: Any) -> None:
        from ecs_tui.plots import short

        widget = self.query_one("#quant-table", DataTable)
        widget.clear()
        if table is None:
            widget.add_row("not quantized", "-", "-")
            return
        for row in table.layers:
            widget.add_row(short(row.name), f"{row.unique_before:,}", f"{row.unique_after:,}")
        widget.add_row("total", f"{table.unique_before:,}", f"{table.unique_after:,}")
        if table.test_acc is not None:
            widget.add_row("shared acc", f"{table.test_acc:.2f}%", "")
        if table.int8_test_acc is not None:
            widget.add_row("int8 acc", f"{table.int8_test_acc:.2f}%", "")

    @on(Select.Changed, "#quant-layer")
    def _layer_changed(self, event: Select.Changed) -> None:
        value = event.value if isinstance(event.value, str) else None
        if value != self.sel_layer:
            self.sel_layer = value
            self.reload()
