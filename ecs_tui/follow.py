"""The run on screen: open a run directory, or follow one that another process is writing
(`ecs-tui --watch`).

`RunFollowing` is the base of `EcsApp` that owns the run on screen: its directory (`run_path`),
its model (`state`, a `RunState`) and, while another process writes it, the tail that feeds it.
`show_run` is the one place that sets or clears them. A finished, stopped or failed run is read
once into the state; a run still being written (by a headless `ecs run`, or a sweep) is tailed
every `WATCH_POLL_S` through the same fold, and said to have died when its writer is gone
without a last event.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App
from textual.worker import get_current_worker

from ecs_core.runfiles import DIED, INCOMPLETE, RUNNING, read_events
from ecs_tui.runmodel import EventTail, RunState
from ecs_tui.widgets.configure import ConfigurePane

WATCH_POLL_S = 0.5
INGEST_SLICE = 2000
"""Events folded at a time while an opened run is read (the state's lock is free between)."""
WIDE = 120
"""Columns from which the configure pane sits beside the views instead of replacing them."""


class RunFollowing(App[None]):
    """Opening and watching run directories; `EcsApp` draws the state (`pull`)."""

    pull: Callable[..., None]
    """Redraw the views from `state` (`EcsApp.pull`; `force` draws an unchanged state too)."""

    def __init__(self) -> None:
        super().__init__()
        self.state = RunState()
        self.run_path: Path | None = None
        """The run directory on this machine (events may name it relative to another cwd)."""
        self._tail: EventTail | None = None
        """The tail of a watched run's events.jsonl (None: not watching)."""

    def show_run(self, path: Path | None, follow: bool = False, read: bool = True) -> None:
        """Put `path` on screen (None: no run): its events so far, or with `follow` none yet
        (the watch timer reads them), or with `read=False` none yet (`open_run` reads them in a
        thread). The one place that sets or clears the run on screen."""
        self.run_path = None if path is None else Path(path)
        self._tail = EventTail(path) if follow and path is not None else None
        self.state.reset()
        if path is not None and not follow and read:
            self.state.ingest(EventTail(path).poll())

    def open_run(self, path: Path) -> None:
        """Show a finished (or stopped, or failed) run directory. Its events are read and
        folded in a thread, a slice at a time: a long events.jsonl never holds up the app, and
        `q` answers while it is read (the reader stops at its next look)."""
        self.show_run(Path(path), read=False)
        self._read_run(Path(path))

    @work(thread=True, exclusive=True, group="open-run", exit_on_error=False)
    def _read_run(self, path: Path) -> None:
        worker = get_current_worker()
        events, _ = read_events(path, 0, stop=lambda: worker.is_cancelled)
        for start in range(0, len(events), INGEST_SLICE):  # the UI draws between slices
            if worker.is_cancelled or self.run_path != path:
                return
            self.state.ingest(events[start : start + INGEST_SLICE])
        if not worker.is_cancelled:
            self.call_from_thread(self._opened, path)

    def _opened(self, path: Path) -> None:
        """The opened run's events are in `state`: say how it ended, fill the form, draw."""
        if self.run_path != path:
            return  # another run was put on screen while this one was read
        snap = self.state.snapshot()
        if snap.run_dir is None:
            self.state.log(f"{path.name}: no events recorded (the run failed before starting?)")
        elif snap.status == RUNNING.word and self._ended_unsaid(Path(path)):
            return  # another process is writing it: followed as with --watch
        self._latency_measured_again(Path(path))
        self._load_form(path)
        self._collapse_config()
        self.pull(force=True)

    def _latency_measured_again(self, path: Path) -> None:
        """A run timed again after it ended (`ecs latency RUN --write`): its summary.json holds
        that record, which the Overview shows as `ecs report` and `ecs compare` do."""
        from ecs_core import safeio

        try:
            summary = safeio.read_json(path / "summary.json")
        except (OSError, ValueError, RecursionError):
            return
        latency = summary.get("latency") if isinstance(summary, dict) else None
        if isinstance(latency, dict) and latency.get("measured_again"):
            self.state.measured_again(latency)

    def _ended_unsaid(self, path: Path) -> bool:
        """A run whose events stop without a final one: still going elsewhere (watch it, True),
        or died (its process gone: say so, with the resume command)."""
        from ecs_core.runfiles import died_reason
        from ecs_core.stats.runs import run_info

        status = run_info(path).status
        if status == RUNNING.word:
            self.watch_run(path)
            return True
        word = DIED.word if status == DIED.word else INCOMPLETE.word
        self.state.fail(died_reason(path), status=word)
        return False

    def _load_form(self, path: Path) -> None:
        """Put the run's own settings in the form, so `y` and `s` reproduce it."""
        error = self.query_one(ConfigurePane).load_from(path / "config.json")
        if error:
            self.state.log(error)

    def _collapse_config(self) -> None:
        """Narrow terminals: the views replace the configure pane once there is a run."""
        if self.size.width < WIDE:
            self.screen.remove_class("show-config")

    def watch_run(self, path: Path) -> None:
        """Follow a run that a headless `ecs run` is writing."""
        self.show_run(path, follow=True)
        self.set_interval(WATCH_POLL_S, self._poll_tail)
        self._load_form(path)
        self._collapse_config()
        self.notify(f"watching {path.name}", timeout=3)

    def _poll_tail(self) -> None:
        tail = self._tail
        if tail is None:
            return
        if self.state.ingest(tail.poll()):
            self.pull()
        elif self.state.snapshot().status == RUNNING.word and tail.writer_gone():
            if self.state.ingest(tail.poll()):  # it wrote its last events, then exited
                self.pull()
                return
            from ecs_core.runfiles import died_reason

            self.state.fail(died_reason(tail.run_dir), status=DIED.word)
            self.pull()
