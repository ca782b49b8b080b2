"""Curves tab: loss and accuracy per epoch (`plots.draw_curves`) and the live per-batch loss.

The epoch plot redraws when an epoch ends; the batch plot at most once a second (with a
trailing redraw, so the last point always shows). plotext builds on the UI thread, so a plot
that redrew on every event would make the keys feel slow while training.
"""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ecs_tui.runmodel import Snapshot
from ecs_tui.runthread import PLOTS_READY

BATCH_PLOT_EVERY_S = 1.0
TALL = 32
"""Rows from which both charts fit with a readable height; below, one at a time (b swaps)."""


def curves_of(snap: Snapshot) -> Any:
    """The snapshot's epochs as `ecs_core.stats.Curves` (a resumed run's repeats: latest wins)."""
    from ecs_core.stats.summary import Curves

    by_epoch = {p.epoch: p for p in snap.epoch_points}
    pts = [by_epoch[k] for k in sorted(by_epoch)]
    return Curves(
        epoch=[p.epoch for p in pts], stage=[p.stage for p in pts],
        train_loss=[p.train_loss for p in pts], test_loss=[p.test_loss for p in pts],
        train_acc=[p.train_acc for p in pts], test_acc=[p.test_acc for p in pts],
        lr=[p.lr for p in pts], density=[p.density for p in pts], points=len(pts),
    )  # fmt: skip


class CurvesView(Vertical):
    """Epoch curves on top; the per-batch running loss below (l: loss on a log scale; b: the
    other chart where only one fits). The app's l and b keys call these actions."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._epochs_key: tuple | None = None
        self._batch_drawn = -1
        self._batch_at = 0.0
        self._pending: Timer | None = None
        self.snap: Snapshot | None = None
        self.log_loss = False
        self.swapped = False
        """b: the other chart (short terminals show one: epochs, or batches before the first)."""

    def action_swap(self) -> None:
        self.swapped = not self.swapped
        if self.snap is not None:
            self.show(self.snap)

    def action_log_scale(self) -> None:
        self.log_loss = not self.log_loss
        self._epochs_key = self._batch_drawn = None  # type: ignore[assignment]
        self._batch_at = 0.0
        if self.snap is not None:
            self.show(self.snap)

    def compose(self) -> ComposeResult:
        yield Static(classes="view-note")
        yield PlotextPlot(id="curves-epochs")
        yield PlotextPlot(id="curves-batches")

    def show(self, snap: Snapshot, source: object = None) -> None:
        self.snap = snap
        note = self.query_one(".view-note", Static)
        waiting = "No run loaded." if snap.status == "idle" else None
        if not PLOTS_READY.is_set():
            waiting = "loading the plot module…"
            self._epochs_key = None
        note.update(waiting or "")
        note.display = waiting is not None
        if not PLOTS_READY.is_set():
            return
        key = (snap.run_dir, len(snap.epoch_points), snap.status)
        if key != self._epochs_key:
            self._epochs_key = key
            self._draw_epochs(snap)
        epochs, batches = self.query(PlotextPlot)
        both = self.app.size.height >= TALL
        batch_first = bool(snap.batch_losses) and (self.swapped != (not snap.epoch_points))
        batches.display = bool(snap.batch_losses) and (both or batch_first)
        epochs.display = both or not batch_first
        self._maybe_draw_batches()

    def _draw_epochs(self, snap: Snapshot) -> None:
        from ecs_tui.plots import draw_curves

        plot = self.query_one("#curves-epochs", PlotextPlot)
        draw_curves(plot.plt, curves_of(snap), "all", self.log_loss)
        plot.refresh()

    def _maybe_draw_batches(self) -> None:
        snap = self.snap
        if snap is None or len(snap.batch_losses) == self._batch_drawn:
            return
        wait = BATCH_PLOT_EVERY_S - (time.monotonic() - self._batch_at)
        if wait > 0:
            if self._pending is None:
                self._pending = self.set_timer(wait, self._trailing)
            return
        self._batch_at = time.monotonic()
        self._batch_drawn = len(snap.batch_losses)
        plot = self.query_one("#curves-batches", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        xs = [x for x, _ in snap.batch_losses]
        plt.plot(xs, [y for _, y in snap.batch_losses], marker="braille", label="train")
        if self.log_loss and min(y for _, y in snap.batch_losses) > 0:
            plt.yscale("log")
        plt.title("train loss per batch (running mean)" + (" (log)" if self.log_loss else ""))
        plt.xlabel("epoch")
        plot.refresh()

    def _trailing(self) -> None:
        self._pending = None
        self._maybe_draw_batches()
