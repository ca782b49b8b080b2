"""Open a run directory, or follow one that another process is writing (`ecs-tui --watch`).

Mixed into `EcsApp`: a finished, stopped or failed run is read once into the app's `RunState`;
a run still being written (by a headless `ecs run`, or a sweep) is tailed every `WATCH_POLL_S`
through the same fold, and said to have died when its writer is gone without a last event.
"""

from __future__ import annotations

from pathlib import Path

from ecs_tui.widgets.configure import ConfigurePane
from ecs_tui.worker import EventTail

WATCH_POLL_S = 0.5
WIDE = 120
"""Columns from which the configure pane sits beside the views instead of replacing them."""


class RunFollowing:
    """Opening and watching run directories; `EcsApp` provides state, pull and the widgets."""

    def open_run(self, path: Path) -> None:
        """Show a finished (or stopped, or failed) run directory."""
        self._tail = None
        self.run_path = Path(path)
        self.state.reset()
        self.state.ingest(EventTail(path).poll())
        snap = self.state.snapshot()
        if snap.run_dir is None:
            self.state.log(f"{path.name}: no events recorded (the run failed before starting?)")
        elif snap.status == "running" and self._ended_unsaid(Path(path)):
            return  # another process is writing it: followed as with --watch
        self._load_form(path)
        self._collapse_config()
        self.pull(force=True)

    def _ended_unsaid(self, path: Path) -> bool:
        """A run whose events stop without a final one: still going elsewhere (watch it, True),
        or died (its process gone: say so, with the resume command)."""
        from ecs_core.runfiles import died_reason
        from ecs_core.stats.runs import run_info

        status = run_info(path).status
        if status == "running":
            self.watch_run(path)
            return True
        self.state.fail(died_reason(path), status="died" if status == "died" else "incomplete")
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
        self.state.reset()
        self.run_path = Path(path)
        self._tail = EventTail(path)
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
        elif self.state.snapshot().status == "running" and tail.writer_gone():
            if self.state.ingest(tail.poll()):  # it wrote its last events, then exited
                self.pull()
                return
            from ecs_core.runfiles import died_reason

            self.state.fail(died_reason(tail.run_dir), status="died")
            self.pull()
