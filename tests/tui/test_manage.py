"""Run management from the Runs tab (pilot): `ecs-tui DIR`, refresh, resume, export, delete,
compare; and Stop saying how to resume. Runs are copies of the fixed run directory."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable
from typer.testing import CliRunner

from ecs_tui.app import EcsApp
from ecs_tui.screens.compare import CompareScreen
from ecs_tui.screens.confirm import ConfirmScreen
from ecs_tui.widgets.runs import RunsView
from tests.tui.pilot_helpers import notes, wait_for


def names(app: EcsApp) -> list[str]:
    return [Path(i.path).name for i in app.query_one(RunsView).infos]


async def to_row(pilot: Pilot, name: str) -> None:
    """Put the Runs tab's cursor on run `name`."""
    view = pilot.app.query_one(RunsView)
    await wait_for(pilot, lambda: name in names(pilot.app))
    view.query_one(DataTable).move_cursor(row=names(pilot.app).index(name))
    await pilot.pause()


@pytest.fixture
def folder(runs_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the four-run folder (these tests change it)."""
    return Path(shutil.copytree(runs_folder, tmp_path / "runs"))


def test_ecs_tui_on_a_folder_and_on_nothing(tmp_path: Path, monkeypatch) -> None:
    """`ecs-tui DIR` on a folder of runs opens the app on it; a missing path is one line, 2."""
    from ecs_tui import cli

    seen = {}
    monkeypatch.setattr(cli, "_launch_tui", lambda r, w, runs=None: seen.update(runs=runs))
    (tmp_path / "sweep").mkdir()
    assert CliRunner().invoke(cli.tui, [str(tmp_path / "sweep")]).exit_code == 0
    assert seen["runs"] == tmp_path / "sweep"
    out = CliRunner().invoke(cli.tui, [str(tmp_path / "nope")])
    assert out.exit_code == 2 and "does not exist" in out.output


@pytest.mark.asyncio
async def test_a_sweep_whose_cells_have_not_started_lists_them_waiting(
    finished_run: Path, tmp_path: Path, tui: SimpleNamespace
) -> None:
    """`ecs-tui SWEEP` on a sweep with a plan and one cell started: the Runs tab lists every
    planned cell, the ones with no directory yet as waiting; enter on one says it has not
    started and opens nothing, d asks nothing; a run started from the form does not go among
    the sweep's cells (the runs folder stays the form's)."""
    from ecs_core.sweepplan import write_plan

    sweep = tmp_path / "sweep"
    cells = ["vgg16-digits-ecs-d0.05-s0", "vgg16-digits-snip-d0.05-s0", "vgg16-digits-ecs-d0.05-s1"]
    write_plan(sweep, cells)
    tui.copy_run(finished_run, sweep / cells[0])
    app = EcsApp(runs=sweep, config=tui.CONFIG)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        view = app.query_one(RunsView)
        table = view.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        assert app.visible_view() == "runs" and app.focused is table
        rows = [table.get_row_at(i) for i in range(3)]
        assert [(r[1], r[-1]) for r in rows] == [
            ("done", cells[0]), ("waiting", cells[1]), ("waiting", cells[2])
        ]  # fmt: skip
        assert "1 done · 0 running · 2 waiting · 0 died" in str(
            view.query_one(".view-note").render()
        )
        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert any(f"{cells[1]} has not started yet" in n for n in notes(app)), notes(app)
        assert app.run_path is None
        await pilot.press("d")
        await pilot.pause()
        assert view.highlighted is None and not isinstance(app.screen, ConfirmScreen)
        assert app.base_config.runs_dir == tui.CONFIG.runs_dir


@pytest.mark.asyncio
async def test_an_empty_folder_opens_on_the_form_and_runs_go_there(
    tmp_path: Path, tui: SimpleNamespace
) -> None:
    """`ecs-tui DIR` on a folder with no runs yet: the form, as a bare `ecs-tui`, and the run
    started goes in DIR, so the Runs tab (which lists DIR) shows it."""
    empty = tmp_path / "new"
    empty.mkdir()
    runner = tui.CannedRunner(tui.canned_events())
    app = EcsApp(runs=empty, config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.visible_view() == "overview" and app.screen.has_class("show-config")
        await pilot.press("s")
        await wait_for(pilot, lambda: app.state.snapshot().status == "finished")
        assert runner.config is not None and runner.config.runs_dir == str(empty)
        assert app.runs_root == empty


@pytest.mark.asyncio
async def test_folder_opens_on_the_runs_tab_focused_and_refreshes(
    folder: Path, tui: SimpleNamespace
) -> None:
    """The Runs tab lists DIR with the table focused (enter opens); a run made meanwhile by
    another process appears without a key press, and one that is deleted goes."""
    app = EcsApp(runs=folder, config=tui.CONFIG)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(names(app)) == 4)
        assert app.visible_view() == "runs"
        assert isinstance(app.focused, DataTable)
        tui.copy_run(folder / tui.RUN_NAME, folder / "20250101-040000-vgg16-digits-ecs-d0.05-s3")
        await wait_for(pilot, lambda: len(names(app)) == 5)
        await to_row(pilot, tui.RUN_NAME)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.state.snapshot().status == "finished")
        assert app.run_path == folder / tui.RUN_NAME


@pytest.mark.asyncio
async def test_number_keys_leave_the_runs_tab(folder: Path, tui: SimpleNamespace) -> None:
    """The focused Runs table does not hold the tab: 1 shows the Overview, 7 the Runs tab with
    its table focused again, 2 the Curves (it once took the tab back at every key)."""
    app = EcsApp(runs=folder, config=tui.CONFIG)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: len(names(app)) == 4)
        for key, view in [("1", "overview"), ("7", "runs"), ("2", "curves"), ("7", "runs")]:
            await pilot.press(key)
            await pilot.pause(0.2)
            assert app.visible_view() == view, (key, app.visible_view())
        assert isinstance(app.focused, DataTable)


@pytest.mark.asyncio
async def test_the_runs_tab_of_an_opened_run_lists_its_folder(
    folder: Path, tui: SimpleNamespace
) -> None:
    """`ecs-tui RUN`: the Runs tab lists the folder RUN is in, not the form's ./runs."""
    app = EcsApp(run_dir=folder / tui.RUN_NAME, config=tui.CONFIG)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        await wait_for(pilot, lambda: len(names(app)) == 4)
        assert app.runs_root == folder


@pytest.mark.asyncio
async def test_resume_a_stopped_run_keeps_its_history(folder: Path, tui: SimpleNamespace) -> None:
    """r on a stopped run asks (showing `ecs run --resume DIR`), then continues that directory
    in the app; the epochs and the pruning before the resume stay on screen."""
    stopped = "20250101-020000-vgg16-digits-ecs-d0.05-s1"
    runner = tui.CannedRunner(tui.resumed_events(2))
    app = EcsApp(runs=folder, config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await to_row(pilot, stopped)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"ecs run --resume {folder / stopped}" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: app.state.snapshot().status == "finished")
        assert runner.resumed == folder / stopped
        snap = app.state.snapshot()
        assert [p.epoch for p in snap.epoch_points] == [1, 2, 3, 4]
        assert snap.pruned is not None and {"warmup", "prune", "train"} <= set(snap.stages_done)


@pytest.mark.asyncio
async def test_resume_refuses_a_finished_run(folder: Path, tui: SimpleNamespace) -> None:
    runner = tui.CannedRunner(tui.canned_events())
    app = EcsApp(runs=folder, config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await to_row(pilot, tui.RUN_NAME)
        await pilot.press("r")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and runner.config is None
        assert any("nothing to resume" in n for n in notes(app)), notes(app)


@pytest.mark.asyncio
async def test_delete_asks_and_no_keeps_the_run(folder: Path, tui: SimpleNamespace) -> None:
    """d asks; n keeps the directory; d then y removes it and its row."""
    died = "20250101-030000-vgg16-digits-ecs-d0.05-s2"
    app = EcsApp(runs=folder, config=tui.CONFIG)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await to_row(pilot, died)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
        assert (folder / died).is_dir()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: died not in names(app))
        assert not (folder / died).exists() and len(names(app)) == 3


@pytest.mark.asyncio
async def test_delete_refuses_a_run_another_process_holds(
    folder: Path, tui: SimpleNamespace
) -> None:
    import fcntl

    run = folder / tui.RUN_NAME
    with open(run / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a live `ecs run` holds it
        app = EcsApp(runs=folder, config=tui.CONFIG)
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await to_row(pilot, tui.RUN_NAME)
            await pilot.press("d")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            assert any("running in another process" in n for n in notes(app)), notes(app)
    assert (run / "model.safetensors").is_file()


@pytest.mark.asyncio
async def test_export_writes_the_cli_file(folder: Path, tui: SimpleNamespace) -> None:
    """e runs `ecs export DIR`: the run gets its model.ecsz, the toast says so and the Log tab
    keeps it."""
    run = folder / tui.RUN_NAME
    app = EcsApp(runs=folder, config=tui.CONFIG)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await to_row(pilot, tui.RUN_NAME)
        await pilot.press("e")
        await wait_for(pilot, lambda: any(n.title in ("exported", "export failed")
                                          for n in app._notifications), timeout=120)  # fmt: skip
        assert any(n.title == "exported" and "wrote" in str(n.message)
                   for n in app._notifications), notes(app)  # fmt: skip
        # the toast goes; the Log tab keeps a record (issue 30, item 17)
        logged = [line for line in app.state.snapshot().log if line.startswith("ecs export")]
        assert logged and f"{run}: exported: wrote" in logged[-1], logged
    assert (run / "model.ecsz").stat().st_size > 0


@pytest.mark.asyncio
async def test_compare_needs_two_marks_then_shows_them(folder: Path, tui: SimpleNamespace) -> None:
    app = EcsApp(runs=folder, config=tui.CONFIG)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await to_row(pilot, tui.RUN_NAME)
        await pilot.press("space", "v")
        assert not isinstance(app.screen, CompareScreen)
        assert any("mark two or more" in n for n in notes(app))
        await pilot.press("space", "v")  # the cursor moved down to the SNIP run
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await wait_for(pilot, lambda: app.screen.data is not None)
        runs, _ = app.screen.data
        assert [c.info.method for c in runs] == ["ecs", "snip"]
        assert runs[1].curves.test_acc[-1] == pytest.approx(78.1 - 6.8)
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen)


@pytest.mark.asyncio
async def test_stop_says_how_to_resume(tui: SimpleNamespace) -> None:
    """After x and y: the stopping toast goes, and one gives `ecs run --resume DIR` and r."""
    events = tui.canned_events()
    runner = tui.CannedRunner(events, pause_at=tui.mid_epoch(events))
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("s")
        await wait_for(pilot, runner.paused.is_set)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.state.snapshot().status == "stopped" and not app.running)
        await pilot.pause()
        assert not any("stopping at the next batch" in n for n in notes(app)), notes(app)
        assert any("ecs run --resume runs/" in n and "press r" in n for n in notes(app))


@pytest.mark.asyncio
async def test_refused_start_focuses_the_bad_field_and_tab_moves_on(tui: SimpleNamespace) -> None:
    """80 columns, pane hidden: s with density 1.5 shows the pane with the density field
    focused; Tab then reaches the next visible field, not a hidden widget."""
    runner = tui.CannedRunner(tui.canned_events())
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        app.query_one("#cfg-density").value = "1.5"
        await pilot.press("escape")  # narrow: the pane goes, the views show
        await pilot.pause()
        assert not app.screen.has_class("show-config")
        await pilot.press("s")
        await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "cfg-density")
        assert runner.config is None
        await pilot.press("tab")
        await pilot.pause()
        focused = app.focused
        assert focused is not None and focused.id == "cfg-epochs"
        assert focused.region.width > 0 and focused.visible


@pytest.mark.asyncio
async def test_machine_line_while_a_run_trains(tui: SimpleNamespace, monkeypatch) -> None:
    """While training: the elapsed time, this process's CPU share and memory (from /proc)."""
    import re

    monkeypatch.setattr(EcsApp, "MACHINE", True)
    events = tui.canned_events()
    runner = tui.CannedRunner(events, pause_at=tui.mid_epoch(events))
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, runner.paused.is_set)

        def shown() -> str:
            return app._machine(app.state.snapshot()) or ""  # what the status strip shows

        await wait_for(pilot, lambda: "cpu " in shown(), timeout=10)  # needs two samples
        # the wall time first: the strip cuts its end at 80 columns (issue 30, item 14)
        assert re.search(r"^[\d:]+ · cpu \d+% · \d+\.\d GiB$", shown()), shown()
        await pilot.press("x", "y")
        await wait_for(pilot, lambda: not app.running)
        assert "cpu" not in shown()


def test_listing_and_comparing_runs_never_imports_torch(runs_folder: Path) -> None:
    """What the Runs tab does on every poll (find, describe, group) works without torch."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ecs_core.stats.compare import compare_infos\n"
        "from ecs_core.stats.runs import find_runs, run_info\n"
        "from ecs_tui.widgets.runs import signature\n"
        f"paths = find_runs([{str(runs_folder)!r}])\n"
        "signature(paths)\n"
        "infos = [run_info(p) for p in paths]\n"
        "assert compare_infos(infos).cells and len(infos) == 4\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.asyncio
async def test_a_mark_shows_at_once_and_status_words_are_never_cut(
    folder: Path, tui: SimpleNamespace
) -> None:
    """space marks the run with ● on screen at once (its column was 0 wide until a resize),
    and a row drawn before the table's next idle moment shows its whole status word (issue
    30, item 5)."""
    from ecs_tui.widgets.runs import MARK, short_name
    from tests.tui.svg_text import screen

    app = EcsApp(runs=folder, config=tui.CONFIG)
    async with app.run_test(size=(120, 40)) as pilot:
        await to_row(pilot, tui.RUN_NAME)
        await pilot.press("space")
        await pilot.pause()
        rows, _ = screen(app.export_screenshot())
        assert any(MARK in row and short_name(tui.RUN_NAME) in row for row in rows), rows
        view = app.query_one(RunsView)
        table = view.query_one(DataTable)
        running = [dataclasses.replace(view.infos[0], status="running"), *view.infos[1:]]
        view._draw(running, None, None, None)  # no idle in between: widths as first drawn
        status = table.ordered_columns[1]
        assert str(status.label) == "status"
        assert status.get_render_width(table) - 2 * table.cell_padding >= len("incomplete")
