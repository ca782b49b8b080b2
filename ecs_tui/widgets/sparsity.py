"""Sparsity tab: retained weights per layer, as bars (`plots.draw_sparsity`) and a table.

The numbers are `RunView.sparsity()`: counted from the saved mask, so they are what the model
really keeps, whichever method and budget made the mask. SET and RigL move connections during
training (the `mask_updated` events): a line above the bars follows them live, how many updates,
how many connections moved, and the last one; an update keeps every layer's count, so the bars
stay the live mask's densities.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from ecs_tui.runmodel import Snapshot
from ecs_tui.widgets.statsview import RunSource, StatsView


def _size(plot: PlotextPlot) -> tuple[int, int] | None:
    w, h = plot.size
    return (w, h) if w and h else None


class SparsityView(StatsView):
    """Bars for every prunable layer; at >= 120 columns a name/params/kept/density table too."""

    def compose(self) -> ComposeResult:
        yield Static(classes="view-note")
        yield Static(id="sparsity-moves")
        with Horizontal(classes="plot-row"):
            yield PlotextPlot(id="sparsity-plot")
            table: DataTable = DataTable(id="sparsity-table", classes="side-table")
            table.add_columns("layer", "params", "kept", "density")
            yield table

    def show(self, snap: Snapshot, source: RunSource | None) -> None:
        line = moves_line(snap) if source is not None else None
        moves = self.query_one("#sparsity-moves", Static)
        moves.update(line or "")
        moves.display = line is not None
        super().show(snap, source)

    def ready(self, snap: Snapshot) -> str | None:
        if snap.active and snap.pruned is None and (snap.config or {}).get("method") != "none":
            return "Not pruned yet: the mask is made after the warm-up epochs (ECS, magnitude)."
        return None

    def compute(self, view: Any, choice: tuple) -> Any:
        return view.sparsity()

    def draw(self, data: Any) -> None:
        from ecs_tui.plots import density_text, draw_sparsity, short

        plot = self.query_one("#sparsity-plot", PlotextPlot)
        draw_sparsity(plot.plt, data, size=_size(plot))
        plot.refresh()
        table = self.query_one("#sparsity-table", DataTable)
        table.clear()
        for r in data.layers:
            table.add_row(short(r.name), f"{r.params:,}", f"{r.kept:,}",
                          density_text(r.kept, r.density))  # fmt: skip
        table.add_row("total", f"{data.params:,}", f"{data.kept:,}", f"{data.density:.2%}")


MOST_LAYERS = 3
"""The layers the moves line names (those that moved most)."""


def moves_line(snap: Snapshot) -> str | None:
    """SET, RigL: the mask updates so far, from the events (the last one's details) or, for a
    run opened without them, the summary's totals; the layers that moved most; None for a run
    without updates."""
    from ecs_core.stats.summary import layer_moves
    from ecs_core.summary import add_counts
    from ecs_tui.plots import moves_parts

    summary = snap.summary or {}
    updates, moved = summary.get("mask_updates"), summary.get("mask_moved")
    by_layer = summary.get("mask_moved_layers") or {}
    if snap.mask_moves:
        updates, moved = len(snap.mask_moves), sum(m[2] for m in snap.mask_moves)
        by_layer = {}
        for m in snap.mask_moves:
            by_layer = add_counts(by_layer, m[4] or {})
    if not updates:
        return None
    line = f"mask: {updates:,} updates moved {moved:,} connections"
    if snap.mask_moves:
        step, epoch, last, drop, _ = snap.mask_moves[-1]
        line += f"; the last, after step {step:,} (epoch {epoch}), {last:,} at drop {drop:.3f}"
    line += " · each layer keeps its count"
    report = (snap.pruned or summary).get("layers")
    most = moves_parts(layer_moves(add_counts(None, by_layer), report), MOST_LAYERS)
    return line + (f"\nmoved most: {', '.join(most)}" if most else "")
