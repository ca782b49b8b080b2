"""The app's model of a run: events in (from the run thread or a tailed file), snapshots out.

The training thread never touches a widget (Textualize/toolong's rule). It feeds every event to
`RunState.ingest`, which updates plain data under a lock and bumps a version number; the UI pulls
`RunState.snapshot()` on a calm timer and redraws only when the version moved. A headless run
seen with `--watch` goes through the same path: `EventTail` reads the lines appended to
`events.jsonl` since the last poll and feeds them to the same `RunState`. The thread that runs
the pipeline is `runthread.py`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecs_core import events as ev
from ecs_core.runfiles import FAILED, FINISHED, RUNNING, status
from ecs_core.summary import Summary
from ecs_tui.printers import describe

MAX_BATCH_POINTS = 600
"""Batch-loss points kept for the curves; older ones are thinned by half (plotext draws fast)."""
MAX_LOG_LINES = 2000
IDLE = "idle"
"""The app's status while no run is on screen (a run directory's states: `runfiles.STATES`)."""


@dataclass(frozen=True)
class EpochPoint:
    """One finished epoch, as the curves and tables need it."""

    epoch: int
    stage: str
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    density: float
    seconds: float
    img_per_s: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything the views draw, copied out of `RunState` at one instant."""

    version: int = 0
    status: str = IDLE
    """idle (no run on screen) | running | finished | stopped | failed | died | incomplete"""
    run_dir: str | None = None
    config: dict[str, Any] | None = None
    device: str | None = None
    params: int | None = None
    train_size: int | None = None
    stage: str | None = None
    stages_done: tuple[str, ...] = ()
    round: int = 0
    """IMP: the round the current stage belongs to (0: the dense run)."""
    rounds: int = 0
    """IMP: prune rounds in the run (0: a one-shot method)."""
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    loss: float | None = None
    img_per_s: float | None = None
    elapsed: float = 0.0
    """Seconds into the current epoch, as the last batch_progress event said."""
    rate_from: tuple[int, float] = (0, 0.0)
    """(batch, elapsed) of the epoch's first batch_progress event: the ETA's rate is measured
    from there, since the first batches of a run also pay for warming up (allocations, the
    data pipeline, kernels), which made the first ETA about twice too long."""
    mask_moves: tuple[tuple[int, int, int, float, dict[str, int] | None], ...] = ()
    """SET, RigL: (step, epoch, connections moved, drop fraction, moved by layer or None) of
    each mask update so far."""
    epoch_points: tuple[EpochPoint, ...] = ()
    batch_losses: tuple[tuple[float, float], ...] = ()
    """(fractional epoch, running loss) pairs, thinned to at most MAX_BATCH_POINTS."""
    summary: dict[str, Any] | None = None
    """The run's summary as its events so far give it (`ecs_core.summary.Summary`, the fold
    the engine writes summary.json from); at the end, with the run's final word over it."""
    log: tuple[str, ...] = ()
    """The newest MAX_LOG_LINES lines for the Log tab."""
    log_total: int = 0
    """Lines ever logged (a view appends the last `log_total - seen` of `log`)."""
    error: str | None = None
    started_at: float | None = None
    """Wall time of the (last) run_started event: the machine line's elapsed time."""
    starting: str | None = None
    """A run asked for whose first event has not come yet: what it is loading (torch, the
    data set, the model take seconds), shown at once instead of the idle screen."""

    @property
    def active(self) -> bool:
        return self.status == RUNNING.word

    @property
    def pruned(self) -> dict[str, Any] | None:
        """The mask's report (density, kept, total, layers, ...) once the run has pruned."""
        return self.summary if self.summary and self.summary.get("kept") is not None else None

    @property
    def run_name(self) -> str | None:
        """Basename of the run directory: stable in screenshots, unlike an absolute path."""
        return Path(self.run_dir).name if self.run_dir else None

    @property
    def test_acc(self) -> float | None:
        """The run's test accuracy: once the run has said how it ended, its summary's (a
        stopped run is evaluated again at the stop); before, the last epoch's, which the strip
        shows beside that epoch (the summary's is then the pruned model's before training,
        `pruned acc`, and read 10.00% under the warm-up epoch's 12.50%). The strip and the
        Overview both show it."""
        last = self.epoch_points[-1].test_acc if self.epoch_points else None
        acc = (self.summary or {}).get("test_acc")
        if isinstance(acc, int | float) and (status(self.status).final or last is None):
            return float(acc)
        return last

    def eta(self) -> float | None:
        """Seconds left in the run, from event timings only (no wall clock: stable, testable)."""
        if not self.active or self.batch <= 0 or self.batches <= 0:
            return None
        first_batch, first_elapsed = self.rate_from
        if self.batch <= first_batch:
            return None  # one point: no rate yet
        per_batch = (self.elapsed - first_elapsed) / (self.batch - first_batch)
        left = per_batch * (self.batches - self.batch)
        # the current stage's measured rate: a dense warm-up epoch is slower than a sparse one
        done = [p.seconds for p in self.epoch_points if p.stage == self.stage][-3:]
        per_epoch = sum(done) / len(done) if done else per_batch * self.batches
        return left + per_epoch * max(0, self.epochs - self.epoch - 1)


@dataclass
class RunState:
    """Mutable run state behind a lock; `ingest` from any thread, `snapshot` from the UI."""

    _snap: Snapshot = field(default_factory=Snapshot)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _points: list[EpochPoint] = field(default_factory=list)
    _batch_losses: list[tuple[float, float]] = field(default_factory=list)
    _log: list[str] = field(default_factory=list)
    _log_total: int = 0
    _summary: Summary = field(default_factory=Summary)

    def reset(self) -> None:
        with self._lock:
            self._points, self._batch_losses, self._log = [], [], []
            self._log_total = 0
            self._summary = Summary()
            self._snap = Snapshot(version=self._snap.version + 1)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snap

    def log(self, line: str) -> None:
        """Add a line to the Log tab (tracebacks, notes from the app itself)."""
        with self._lock:
            self._add_log(line)
            self._snap = dataclasses.replace(
                self._snap,
                version=self._snap.version + 1,
                log=tuple(self._log),
                log_total=self._log_total,
            )

    def measured_again(self, latency: dict[str, Any]) -> None:
        """The run's latency timed again after it ended (`ecs latency --write` rewrites
        summary.json; the events keep the record made at the end): it replaces that record."""
        with self._lock:
            self._summary = Summary.from_dict({**self._summary.to_dict(), "latency": latency})
            self._snap = dataclasses.replace(
                self._snap, version=self._snap.version + 1, summary=self._summary.to_dict()
            )

    def start(self, loading: str | None) -> None:
        """A run was asked for (None: it ended before its first event); `loading` says what it
        loads meanwhile. The run_started event replaces it."""
        with self._lock:
            self._snap = dataclasses.replace(
                self._snap, version=self._snap.version + 1, starting=loading
            )

    def fail(self, message: str, status: str = FAILED.word) -> None:
        """Mark the run `status` (failed: the worker raised; died: a watched run's process is
        gone) unless an event already said how it ended."""
        with self._lock:
            status = self._snap.status if self._snap.status != RUNNING.word else status
            self._snap = dataclasses.replace(
                self._snap,
                version=self._snap.version + 1,
                status=status,
                error=message,
                starting=None,
            )

    def ingest(self, events: Iterable[ev.Event]) -> int:
        """Fold events into the state; one version bump per call. Returns how many were read."""
        n = 0
        with self._lock:
            changes: dict[str, Any] = {}
            for event in events:
                changes.update(self._fold(event, changes))
                self._fold_summary(event)
                line = describe(event)
                if line is not None:
                    self._add_log(line)
                n += 1
            if n:
                self._snap = dataclasses.replace(
                    self._snap,
                    **changes,
                    version=self._snap.version + 1,
                    epoch_points=tuple(self._points),
                    batch_losses=tuple(self._batch_losses),
                    log=tuple(self._log),
                    log_total=self._log_total,
                    summary=self._summary.to_dict(),
                )
        return n

    def _fold_summary(self, event: ev.Event) -> None:
        """The engine's own fold; a new run starts a new summary, a resumed one goes on from
        what its events said, and a run's final summary has the last word."""
        if isinstance(event, ev.RunStarted) and not event.resumed_from_epoch:
            self._summary = Summary()
        self._summary.apply(event)
        if isinstance(event, ev.RunFinished) and isinstance(event.summary, dict):
            self._summary = Summary.from_dict({**self._summary.to_dict(), **event.summary})

    def _add_log(self, line: str) -> None:
        self._log.append(line)
        self._log_total += 1
        if len(self._log) > MAX_LOG_LINES:
            del self._log[: len(self._log) - MAX_LOG_LINES]

    def _fold(self, event: ev.Event, changes: dict[str, Any]) -> dict[str, Any]:
        """The fields of the snapshot one event changes (earlier changes in this batch given)."""
        match event:
            case ev.RunStarted():
                return self._started(event, changes)
            case ev.StageStarted():
                if event.rounds:  # IMP's train and prune stages; quantize keeps the last round
                    return dict(stage=event.stage, round=event.round, rounds=event.rounds)
                return dict(stage=event.stage)
            case ev.StageFinished():
                done = changes.get("stages_done", self._snap.stages_done)
                return dict(stages_done=(*(s for s in done if s != event.stage), event.stage))
            case ev.BatchProgress():
                self._add_batch_loss(
                    event.epoch - 1 + event.batch / max(1, event.batches), event.loss
                )
                epoch = changes.get("epoch", self._snap.epoch)
                batch = changes.get("batch", self._snap.batch)
                first = event.epoch - 1 != epoch or not 0 < batch < event.batch  # a new epoch
                rate_from = changes.get("rate_from", self._snap.rate_from)
                return dict(
                    rate_from=(event.batch, event.elapsed) if first else rate_from,
                    stage=event.stage, epoch=event.epoch - 1, epochs=event.epochs,
                    batch=event.batch, batches=event.batches, loss=event.loss,
                    img_per_s=event.img_per_s, elapsed=event.elapsed,
                )  # fmt: skip
            case ev.EpochEnd():
                # a resumed run repeats the epochs after its checkpoint: the new ones count
                self._points = [p for p in self._points if p.epoch < event.epoch]
                self._points.append(_epoch_point(event))
                return dict(
                    epoch=event.epoch, epochs=event.epochs, batch=0, elapsed=0.0,
                    img_per_s=event.img_per_s,
                )  # fmt: skip
            case ev.MaskUpdated():  # a resumed run repeats the steps after its checkpoint
                moves = changes.get("mask_moves", self._snap.mask_moves)
                new = (event.step, event.epoch, event.moved, event.drop_fraction, event.layers)
                return dict(mask_moves=(*(m for m in moves if m[0] < event.step), new))
            case ev.RunFinished():
                batch = changes.get("batch", self._snap.batch)
                if event.status == FINISHED.word:
                    batch = changes.get("batches", self._snap.batches)
                return dict(status=event.status, stage=None, batch=batch)
            case ev.RunFailed():
                return dict(status=FAILED.word, error=f"{event.error}: {event.message}", stage=None)
        return {}

    def _started(self, event: ev.RunStarted, changes: dict[str, Any]) -> dict[str, Any]:
        """A new run starts from nothing; a resumed one keeps what happened up to its
        checkpoint (epochs, batch losses, the pruning, the stages done before it)."""
        start = dict(
            status=RUNNING.word, run_dir=event.run_dir, config=event.config, device=event.device,
            params=event.params, train_size=event.train_size,
            epochs=_total_epochs(event.config), error=None, stage=None,
            epoch=event.resumed_from_epoch,
            batch=0, batches=0, started_at=event.t, starting=None,
        )  # fmt: skip
        kept = event.resumed_from_epoch
        if not kept:
            self._points, self._batch_losses = [], []
            return {**start, "stages_done": (), "mask_moves": ()}
        self._points = [p for p in self._points if p.epoch <= kept]
        self._batch_losses = [b for b in self._batch_losses if b[0] <= kept]
        done = changes.get("stages_done", self._snap.stages_done)
        # a stage the checkpoint is past stays done: training too once every epoch is in it
        # (a resume in the quantize stage does not train again, nor says train finished)
        past = (ev.WARMUP, ev.PRUNE, *((ev.TRAIN,) if kept >= start["epochs"] > 0 else ()))
        return {**start, "stages_done": tuple(s for s in done if s in past)}

    def _add_batch_loss(self, x: float, loss: float) -> None:
        pts = self._batch_losses
        pts.append((x, loss))
        if len(pts) > MAX_BATCH_POINTS:
            # Keep every other old point and all of the newest: the curve keeps its shape.
            self._batch_losses = pts[: len(pts) // 2 : 2] + pts[len(pts) // 2 :]


def _total_epochs(config: dict[str, Any]) -> int:
    """Epochs the run will train (IMP: every round's), from its config."""
    from ecs_core.config import RunConfig

    try:
        return RunConfig.from_dict(config).total_epochs
    except (ValueError, TypeError):  # a config from another version: its own count
        return int(config.get("epochs", 0) or 0)


def _epoch_point(e: ev.EpochEnd) -> EpochPoint:
    return EpochPoint(
        e.epoch, e.stage, e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.lr, e.density,
        e.seconds, e.img_per_s,
    )  # fmt: skip


class EventTail:
    """Reads the complete lines appended to a run's events.jsonl since the last call
    (`runfiles.read_events` from the last offset: torch-free)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.offset = 0

    def writer_gone(self) -> bool:
        """The run took its directory's lock once and no process holds it now."""
        from ecs_core.runlock import LOCK_NAME, running_pid

        return (self.run_dir / LOCK_NAME).is_file() and running_pid(self.run_dir) is None

    def poll(self) -> list[ev.Event]:
        from ecs_core.runfiles import read_events

        events, self.offset = read_events(self.run_dir, self.offset)
        return events
