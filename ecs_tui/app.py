"""`ecs-tui`: configure a run, launch it in a worker thread, watch it live, inspect what happened.

Data flows one way (DESIGN.md): the form builds a `RunConfig`, `pipeline.run` yields events in a
thread worker, `RunState` folds them into a snapshot, and a 4 Hz timer redraws the visible view
from it inside `batch_update()`. `--watch` feeds the same state from a tailed events.jsonl.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Button, Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from ecs_core.config import RunConfig
from ecs_core.runfiles import STOPPED
from ecs_core.sweepplan import planned_cells
from ecs_core.views import VIEWS
from ecs_tui.follow import WIDE
from ecs_tui.manage import RunActions
from ecs_tui.runthread import Runner, drive, load_plots, loading_line, pipeline_runner
from ecs_tui.screens.confirm import ConfirmScreen
from ecs_tui.screens.help import HelpScreen, help_rows
from ecs_tui.screens.palette import palette_commands
from ecs_tui.widgets.configure import ConfigurePane, command_line
from ecs_tui.widgets.footer import KeysFooter
from ecs_tui.widgets.machine import MachineLine, run_pid
from ecs_tui.widgets.runs import RunsView, short_name
from ecs_tui.widgets.statsview import RunSource, StatsView
from ecs_tui.widgets.status import LiveStatus, gpu_line
from ecs_tui.widgets.views import WIDGETS

REFRESH_S = 0.25
"""UI pull period: 4 Hz is calm over SSH and still feels live."""
CURVES_KEYS = "Curves: loss on a log scale; the other chart where one fits"
PAGE_KEYS = "previous / next page of kernel or activation maps"
LAYER_KEYS = "Quant, Kernels, Activations: previous / next layer"
VIEW_KEYS = " ".join(v.title for v in VIEWS)


class EcsApp(RunActions):
    """The workbench. `runner` defaults to `ecs_core.pipeline.run`; tests pass canned ones."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "ecs-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    MACHINE = True
    """Show the machine line (the snapshot tests turn it off: it reads the real clock)."""
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", key_display="?", tooltip="this help"),
        Binding("s", "start", "Start",
                tooltip="start the configured run (refused, with the reason, if invalid)"),
        Binding("x", "stop", "Stop",
                tooltip="stop the run at the next batch boundary (asks first)"),
        Binding("r", "resume", "Resume", show=False,
                tooltip="resume the stopped or died run on screen (asks first)"),
        Binding("c", "toggle_configure", "Configure", tooltip="show / hide the configure pane"),
        Binding("y", "copy_command", "Copy cmd",
                tooltip="copy the equivalent `ecs run ...` line (OSC 52 clipboard)"),
        Binding("escape", "back", "Back", show=False,
                tooltip="back: close a dialog, leave a field, hide the pane"),
        Binding("l", "view_key('log_scale')", "Log loss", show=False, tooltip=CURVES_KEYS),
        Binding("b", "view_key('swap')", "Other chart", show=False, tooltip=CURVES_KEYS),
        Binding("m", "view_key('mode')", "Mean/weights", show=False,
                tooltip="Kernels: mean over input channels / every weight (zeros marked)"),
        Binding("left_square_bracket", "page(-1)", "Prev page", show=False, tooltip=PAGE_KEYS),
        Binding("right_square_bracket", "page(1)", "Next page", show=False, tooltip=PAGE_KEYS),
        Binding("comma", "layer(-1)", "Prev layer", show=False, tooltip=LAYER_KEYS),
        Binding("full_stop", "layer(1)", "Next layer", show=False, tooltip=LAYER_KEYS),
        Binding("q", "quit", "Quit", tooltip="quit (asks first while a run is active)"),
        *(
            Binding(v.key, f"show_view('{v.name}')", v.title, show=False, tooltip=VIEW_KEYS)
            for v in VIEWS
        ),
    ]  # fmt: skip

    def __init__(
        self,
        run_dir: Path | None = None,
        watch: Path | None = None,
        config: RunConfig | None = None,
        runner: Runner | None = None,
        runs: Path | None = None,
    ) -> None:
        super().__init__()
        self._runs_root = runs
        """`ecs-tui DIR` on a folder of runs (or a sweep): the Runs tab lists that folder."""
        self.base_config = config or RunConfig()
        self._runs_first = runs is not None and _holds_runs(runs)
        """The app opens on the Runs tab (the folder has runs, or a sweep plan); on an empty
        folder, on the form, as a bare `ecs-tui` (a run started goes in the folder)."""
        if runs is not None and planned_cells(runs) is None:  # a sweep's folder holds its cells
            self.base_config = dataclasses.replace(self.base_config, runs_dir=str(runs))
        self.runner: Runner = runner or pipeline_runner
        self.stop_event = threading.Event()
        self.source: RunSource | None = None
        self._initial = (run_dir, watch)
        self._drawn = -1
        self._run_worker: Worker | None = None
        self._quit_when_done = False
        self.machine = MachineLine()

    # --- layout
    def compose(self) -> ComposeResult:
        yield Header(icon="▣")
        with Horizontal(id="body"):
            yield ConfigurePane(self.base_config, id="configure")
            with Vertical(id="main"):
                yield LiveStatus(id="status")
                with TabbedContent(id="views"):
                    for v in VIEWS:
                        with TabPane(f"{v.key} {v.title}", id=f"tab-{v.name}"):
                            yield WIDGETS[v.name](id=f"view-{v.name}")
        yield KeysFooter()

    def on_mount(self) -> None:
        run_dir, watch = self._initial
        self.screen.add_class("show-config")
        self.query_one(ConfigurePane).set_running(False)
        if run_dir is not None:
            self.open_run(run_dir)
        elif watch is not None:
            self.watch_run(watch)
        elif self._runs_first:
            self.call_after_refresh(self.action_show_view, "runs")
        self.set_interval(REFRESH_S, self.pull)
        self.pull()
        self._preload()

    @work(thread=True, group="preload")
    def _preload(self) -> None:
        """Import torch and the plot module off the UI thread, then draw what waited for them."""
        load_plots()
        self.call_from_thread(self.pull, True)

    # --- the pull loop: snapshot -> visible view, only when something changed
    @property
    def running(self) -> bool:
        return self._run_worker is not None and self._run_worker.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )

    def pull(self, force: bool = False) -> None:
        """Redraw the status strip and the visible view if the state moved since the last draw."""
        snap = self.state.snapshot()
        if snap.version == self._drawn and not force:
            return
        try:
            status = self.query_one(LiveStatus)
        except NoMatches:  # the main screen is not up (starting, or torn down at exit)
            return  # `_drawn` unchanged: the next pull draws this state
        self._drawn = snap.version
        self._sync_source(snap)
        self.query_one(RunsView).runs_dir = self.runs_root
        name = self.visible_view()
        with self.batch_update():
            status.show(snap, self._machine(snap))
            self.query_one(f"#view-{name}").show(snap, self.source)  # type: ignore[attr-defined]
            self.sub_title = _subtitle(snap, self._tail is not None, self.size.width < WIDE)

    def _machine(self, snap: Any) -> str | None:
        """CPU, memory, GPU and wall time of the run's process, while it runs."""
        if not snap.active:
            return None
        cuda = (snap.device or "").startswith("cuda")
        line = self.machine.line(run_pid(self), snap.started_at, cuda) if self.MACHINE else None
        gpu = gpu_line(snap) if self.running and not (line and "GPU" in line) else None
        return " · ".join(p for p in (line, gpu) if p) or None

    def visible_view(self) -> str:
        active = self.query_one(TabbedContent).active or "tab-overview"
        return active.removeprefix("tab-")

    def _sync_source(self, snap: Any) -> None:
        """Point the stats views at the current run directory; refresh them as it grows."""
        path = self.run_path or (Path(snap.run_dir) if snap.run_dir else None)
        if path is None:
            self.source = None
            return
        key = (snap.status, snap.epoch, len(snap.stages_done))
        if self.source is None or self.source.path != path:
            self.source = RunSource(path, key)
        else:
            self.source.touch(key)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        self.pull(force=True)
        if self.visible_view() == "runs":  # enter then opens the highlighted run
            self.query_one(RunsView).focus_table()

    @property
    def runs_root(self) -> Path:
        """The folder the Runs tab lists: `ecs-tui DIR`'s; else the one holding the run on
        screen (opened, watched, or started here); else the form's runs folder."""
        if self._runs_root is not None:
            return self._runs_root
        shown = self.run_path or self.state.snapshot().run_dir
        return Path(shown).parent if shown else Path(self.base_config.runs_dir)

    def refresh_runs(self) -> None:
        self.query_one(RunsView).refresh_now()

    # --- what the Runs tab asks for
    @on(RunsView.Open)
    def _open_asked(self, message: RunsView.Open) -> None:
        self.open_run(message.path)

    @on(RunsView.Compare)
    def _compare_asked(self, message: RunsView.Compare) -> None:
        self.compare_runs(message.paths)

    @on(RunsView.Resume)
    def _resume_asked(self, message: RunsView.Resume) -> None:
        self.resume_run(message.info)

    @on(RunsView.Export)
    def _export_asked(self, message: RunsView.Export) -> None:
        self.export_run(message.info)

    @on(RunsView.Delete)
    def _delete_asked(self, message: RunsView.Delete) -> None:
        self.delete_run(message.info)

    # --- the run worker
    def action_start(self) -> None:
        """Start the configured run, or say why not."""
        pane = self.query_one(ConfigurePane)
        if self.running:
            starting = self.state.snapshot().starting
            why = f"a run is starting ({starting})" if starting else "a run is already active"
            self.notify(f"{why}; stop it first (x)", severity="warning")
            return
        if pane.config is None:
            self.notify(f"cannot start: {pane.error}", severity="error", title="invalid setting")
            self.screen.add_class("show-config")
            self.call_after_refresh(pane.focus_bad_field)  # once the pane is shown
            return
        self.show_run(None)
        self.begin_run(pane.config)

    def begin_run(self, config: RunConfig | None, resume: Path | None = None) -> None:
        """Start the run worker: a new run of `config`, or `resume` (its own saved config)."""
        self.stop_event = threading.Event()
        self.query_one(ConfigurePane).set_running(True)
        self._collapse_config()
        self.state.start(loading_line(config, resume))  # on screen at once: loading takes seconds
        self.pull(force=True)
        self._run_worker = self._run(config, resume)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _run(self, config: RunConfig | None, resume: Path | None) -> None:
        worker = get_current_worker()
        runner = self.runner if resume is None else partial(self.runner, resume=resume)
        drive(runner, config, self.state, self.stop_event, lambda: worker.is_cancelled)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._run_worker:
            return
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            assert err is not None
            line = f"{type(err).__name__}: {err}"
            self.state.fail(line)
            self.state.log("".join(traceback.format_exception(err)).rstrip())
            self.notify(line, title="run failed", severity="error", timeout=10)
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            if self.state.snapshot().starting:  # it ended before its first event
                self.state.start(None)
            self.query_one(ConfigurePane).set_running(False)
            if self._quit_when_done:
                self.exit()
            self.pull(force=True)
            self._say_how_to_resume()

    def _say_how_to_resume(self) -> None:
        """After a stop: the stopping toast goes; one says how to continue, and offers r."""
        snap = self.state.snapshot()
        if not self.stop_event.is_set() or snap.status != STOPPED.word or self._quit_when_done:
            return
        from ecs_core.runfiles import resume_command

        self.clear_notifications()
        where = self.run_path or snap.run_dir or "RUN_DIR"
        self.notify(f"continue with: {resume_command(where)}\npress r to resume it here",
                    title="stopped", timeout=12)  # fmt: skip
        self.state.log(f"stopped; continue with: {resume_command(where)} (r resumes it here)")

    def action_stop(self) -> None:
        if not self.running:
            watched = self._tail is not None and self.state.snapshot().active
            why = "the watched run belongs to its `ecs run`: stop it there (Ctrl-C)"
            self.notify(why if watched else "no run is active", severity="warning")
            return
        self._confirm_stop("Stop the run at the next batch boundary?", "Stop", quit_after=False)

    async def action_quit(self) -> None:
        if not self.running:
            self.exit()
            return
        self._confirm_stop("A run is active. Stop it and quit?", "Stop and quit", quit_after=True)

    def _confirm_stop(self, question: str, yes: str, quit_after: bool) -> None:
        """Ask first; on yes the pipeline stops at its next batch boundary (and may then quit)."""

        def answer(ok: bool | None) -> None:
            if ok:
                self._quit_when_done = quit_after
                self.stop_event.set()
                self.notify(
                    "stopping at the next batch boundary" + (", then quitting" * quit_after),
                    timeout=60,  # cleared once the run has stopped
                )

        self.push_screen(ConfirmScreen(question, yes), answer)

    def on_unmount(self) -> None:
        # The worker thread must end for the process to exit: stop it at a batch boundary.
        self.stop_event.set()

    # --- small actions
    def action_copy_command(self) -> None:
        pane = self.query_one(ConfigurePane)
        if pane.config is None:
            self.notify(f"cannot copy: {pane.error}", severity="error")
            return
        line = command_line(pane.config)
        self.copy_to_clipboard(line)
        self.notify(line, title="copied to the clipboard", timeout=6)

    def action_toggle_configure(self) -> None:
        self.screen.toggle_class("show-config")
        if self.screen.has_class("show-config"):
            self.query_one("#cfg-model").focus()

    def action_show_view(self, name: str) -> None:
        # Focus left in another tab's pane would bring that tab back (TabbedContent shows the
        # pane of a focused widget): the Runs table kept 1-6 from leaving the Runs tab.
        around = self.focused.ancestors_with_self if self.focused is not None else []
        pane = next((w for w in around if isinstance(w, TabPane)), None)
        if pane is not None and pane.id != f"tab-{name}":
            self.set_focus(None)
        self.query_one(TabbedContent).active = f"tab-{name}"
        if self.screen.has_class("-narrow"):
            self.screen.remove_class("show-config")
        if name == "runs":
            self.query_one(RunsView).focus_table()

    def action_page(self, delta: int) -> None:
        """[ and ]: page through the maps of the Kernels and Activations views."""
        view = self.query_one(f"#view-{self.visible_view()}")
        if hasattr(view, "change_page"):
            view.change_page(delta)

    def action_layer(self, delta: int) -> None:
        """, and .: the previous / next layer of the visible view's layer picker."""
        view = self.query_one(f"#view-{self.visible_view()}")
        if isinstance(view, StatsView):
            view.step_layer(delta)

    def action_view_key(self, action: str) -> None:
        """A key that belongs to one view (l, b on Curves): passed to the visible view."""
        view = self.query_one(f"#view-{self.visible_view()}")
        if hasattr(view, f"action_{action}"):
            getattr(view, f"action_{action}")()

    def action_help(self) -> None:
        views = (getattr(WIDGETS[v.name], "BINDINGS", []) for v in VIEWS)
        self.push_screen(HelpScreen(help_rows([self.BINDINGS, *views])))

    def action_back(self) -> None:
        """Esc: leave the form, then close the configure pane in the narrow layout."""
        if self.focused is not None and self.query_one(ConfigurePane) in self.focused.ancestors:
            self.query_one("#views Tabs").focus()
        if self.screen.has_class("-narrow") and self.screen.has_class("show-config"):
            self.screen.remove_class("show-config")

    @on(Button.Pressed, "#cfg-buttons Button")
    def _button(self, event: Button.Pressed) -> None:
        actions = {"start": self.action_start, "stop": self.action_stop,
                   "copy": self.action_copy_command}  # fmt: skip
        actions[event.button.id or ""]()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self, VIEWS)


def _holds_runs(folder: Path) -> bool:
    """`folder` has a run directory in it, or a sweep plan (`sweepplan`) whose cells wait."""
    from ecs_core.stats.errors import StatsError
    from ecs_core.stats.runs import find_runs

    if planned_cells(folder) is not None:
        return True
    try:
        return bool(find_runs([folder]))
    except StatsError:  # not there (yet): nothing to list
        return False


def _subtitle(snap: Any, watching: bool, narrow: bool = False) -> str:
    """`run-name · status`; narrow, the name without its time stamp (what `short_name` puts
    before the space), so that the status still fits beside the title at 80 columns (the
    Overview's run row has the whole name)."""
    if snap.run_name is None:
        if snap.starting:
            return "starting…"
        return "watching: waiting for events" if watching else "no run"
    name = short_name(snap.run_name).rpartition(" ")[2] if narrow else snap.run_name
    return f"{'watching ' if watching else ''}{name} · {snap.status}"


def run_app(
    run_dir: Path | None = None, watch: Path | None = None, runs: Path | None = None
) -> None:
    """Entry point used by `ecs-tui` and bare `ecs`."""
    EcsApp(run_dir=run_dir, watch=watch, runs=runs).run()
