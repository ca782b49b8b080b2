"""Run management from the app: resume, export and delete a run directory (the Runs tab posts
`RunsView.Resume`, `.Export`, `.Delete`; `EcsApp` calls these).

Resume runs in the app's own run worker (so Stop works on it), continuing the run exactly as
`ecs run --resume DIR` would (the command the app shows); export is `ecs export DIR` in a child
process, so the file is the CLI's; delete asks first, and never touches a run a process holds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work

from ecs_core.runfiles import RUNNING
from ecs_core.views import view
from ecs_tui.follow import RunFollowing
from ecs_tui.screens.confirm import ConfirmScreen
from ecs_tui.screens.trust import ask_first, child_environ


def export_argv(path: Path) -> list[str]:
    """The `ecs export RUN` command line, run with this interpreter."""
    return [sys.executable, "-m", "ecs_tui.cli", "export", str(path)]


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class RunActions(RunFollowing):
    """The actions behind the Runs tab's r / e / d and the app's r; a base of `EcsApp`, which
    runs the run worker (`running`, `begin_run`) and lists the runs (`refresh_runs`)."""

    running: bool
    """A run worker of this app is training (`EcsApp.running`)."""
    begin_run: Callable[..., None]
    """Start the run worker (`EcsApp.begin_run(config, resume=path)`)."""
    refresh_runs: Callable[[], None]
    """Read the Runs tab's folder again (`EcsApp.refresh_runs`)."""

    def _refuse_busy(self, info: Any, doing: str) -> bool:
        """True (after saying why) when `info`'s run cannot be touched now."""
        here = self.running and self.run_path is not None
        if here and Path(self.run_path).resolve() == Path(info.path).resolve():
            self.notify(f"cannot {doing} the run this app is training; stop it first (x)",
                        severity="warning")  # fmt: skip
            return True
        if info.status == RUNNING.word:
            self.notify(
                f"{info.name} is running in another process; cannot {doing} it now "
                f"(watch it: ecs-tui --watch {info.path})",
                severity="warning", timeout=6,
            )  # fmt: skip
            return True
        return False

    # --- resume
    def action_resume(self) -> None:
        """r outside the Runs tab: resume the run on screen (stopped, died or failed)."""
        snap = self.state.snapshot()
        path = self.run_path or (Path(snap.run_dir) if snap.run_dir else None)
        if path is None:
            runs = view("runs")
            self.notify(f"no run to resume: open one from the {runs.title} tab ({runs.key})",
                        severity="warning")  # fmt: skip
            return
        from ecs_core.stats.runs import run_info

        self.resume_run(run_info(path))

    def compare_runs(self, paths: list[Path]) -> None:
        """The compare screen for `paths` (the Runs tab's marked runs)."""
        from ecs_tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(paths))

    def resume_run(self, info: Any) -> None:
        from ecs_core.runfiles import resume_command, status

        if self.running:
            self.notify("a run is already active; stop it first (x)", severity="warning")
            return
        if self._refuse_busy(info, "resume"):
            return
        if not status(info.status).resumable:
            self.notify(f"{info.name} is {info.status}: nothing to resume", severity="warning")
            return
        path = Path(info.path)

        def answer(ok: bool | None) -> None:
            if ok:
                self._start_resume(path)

        question = f"Resume {info.name}\nfrom its last checkpoint, as:\n{resume_command(path)}"
        self.push_screen(ConfirmScreen(question, "Resume", danger=False), answer)

    def _start_resume(self, path: Path) -> None:
        """Show the run's history, then continue it in the run worker."""
        self.show_run(path)
        self._load_form(path)
        self.begin_run(None, resume=path)
        self.notify(f"resuming {path.name}", timeout=3)

    # --- export
    def export_run(self, info: Any) -> None:
        if self._refuse_busy(info, "export") or ask_first(
            self, Path(info.path), lambda: self.export_run(info)
        ):
            return
        self.notify(f"exporting {info.name}…", timeout=3)
        self._export(Path(info.path))

    @work(thread=True, group="manage", exit_on_error=False)
    def _export(self, path: Path) -> None:
        done = subprocess.run(
            export_argv(path), capture_output=True, text=True, env=child_environ()
        )
        if done.returncode == 0:
            line = last_line(done.stdout) or f"exported {path.name}"
            self.call_from_thread(self.notify, line, title="exported", timeout=8)
        else:
            line = last_line(done.stderr) or f"ecs export exited with {done.returncode}"
            self.call_from_thread(self.notify, line, title="export failed", severity="error",
                                  timeout=10)  # fmt: skip
        # the toast goes in seconds: the Log tab keeps what was done and what it said
        said = "exported" if done.returncode == 0 else "export failed"
        self.state.log(f"ecs export {path}: {said}: {line}")
        self.call_from_thread(self.pull)
        self.call_from_thread(self.refresh_runs)

    # --- delete
    def delete_run(self, info: Any) -> None:
        if self._refuse_busy(info, "delete"):
            return
        path = Path(info.path)

        def answer(ok: bool | None) -> None:
            if ok:
                self._delete(path)

        question = f"Delete this run and every file in it?\n{info.name}\nThis cannot be undone."
        self.push_screen(ConfirmScreen(question, "Delete"), answer)

    @work(thread=True, group="manage", exit_on_error=False)
    def _delete(self, path: Path) -> None:
        from ecs_core.runlock import running_pid

        if running_pid(path) is not None:  # it started between the question and the answer
            self.call_from_thread(self.notify, f"{path.name} started running; not deleted",
                                  severity="warning")  # fmt: skip
            return
        try:
            shutil.rmtree(path)
        except OSError as exc:
            self.call_from_thread(self.notify, f"cannot delete {path}: {exc.strerror or exc}",
                                  severity="error")  # fmt: skip
            return
        self.call_from_thread(self._deleted, path)

    def _deleted(self, path: Path) -> None:
        if self.run_path is not None and Path(self.run_path) == path and not self.running:
            self.show_run(None)
        self.notify(f"deleted {path.name}", timeout=4)
        self.refresh_runs()
