"""Snapshots (80x24, 120x40) of run management: the Runs tab with its keys and a delete
question, the compare view, a died run, a resumed run being watched, and a sweep's cells.

All from copies of the fixed run directory (numpy-drawn weights, canned events): no training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from ecs_tui.app import EcsApp
from ecs_tui.widgets.runs import RunsView

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
DIED = "20250101-030000-vgg16-digits-ecs-d0.05-s2"


async def rows_drawn(pilot: Pilot, n: int, tui: SimpleNamespace) -> None:
    while len(pilot.app.query_one(RunsView).infos) < n:
        await pilot.pause(0.05)
    await quiet(pilot, tui)


async def quiet(pilot: Pilot, tui: SimpleNamespace) -> None:
    """Settled, without the short-lived toasts (they would time the picture)."""
    await tui.settle(pilot)
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_runs_tab_delete_question(
    snap_compare, size: tuple[int, int], runs_folder: Path, tui: SimpleNamespace
) -> None:
    """Four runs (finished, finished SNIP, stopped, died), one marked; d asks about the died."""
    app = EcsApp(runs=runs_folder, config=tui.CONFIG)

    async def ask(pilot: Pilot) -> None:
        await rows_drawn(pilot, 4, tui)
        await pilot.press("space")
        pilot.app.query_one(RunsView).query_one(DataTable).move_cursor(row=3)
        await pilot.press("d")
        await quiet(pilot, tui)

    assert snap_compare(app, terminal_size=size, run_before=ask)


def test_resume_question_at_80x24(
    snap_compare, runs_folder: Path, tui: SimpleNamespace, monkeypatch
) -> None:
    """r on the stopped run at 80x24: its whole name and the whole command to copy (the box
    was 50 wide and cut both), and a footer that hides the keys it cannot show whole (it
    showed `s Star▏`)."""
    monkeypatch.chdir(runs_folder.parent)  # the command names runs/..., not a tmp path
    app = EcsApp(runs=Path("runs"), config=tui.CONFIG)

    async def ask(pilot: Pilot) -> None:
        await rows_drawn(pilot, 4, tui)
        pilot.app.query_one(RunsView).query_one(DataTable).move_cursor(row=2)
        await pilot.press("r")
        await quiet(pilot, tui)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ask)


@pytest.mark.parametrize("size", SIZES)
def test_compare_view(
    snap_compare, size: tuple[int, int], runs_folder: Path, tui: SimpleNamespace
) -> None:
    """ECS and SNIP marked, v: the table, the overlaid curves, the densities per layer."""
    app = EcsApp(runs=runs_folder, config=tui.CONFIG)

    async def compare(pilot: Pilot) -> None:
        await rows_drawn(pilot, 4, tui)
        await pilot.press("space", "space", "v")
        while getattr(pilot.app.screen, "data", None) is None:
            await pilot.pause(0.05)
        await quiet(pilot, tui)

    assert snap_compare(app, terminal_size=size, run_before=compare)


@pytest.mark.parametrize("size", SIZES)
def test_died_run_opened(
    snap_compare, size: tuple[int, int], runs_folder: Path, tui: SimpleNamespace, monkeypatch
) -> None:
    """A run whose process died (lock free, no final event): died, with the resume command."""
    monkeypatch.chdir(runs_folder.parent)  # the command names runs/..., not a tmp path
    app = EcsApp(run_dir=Path("runs") / DIED, config=tui.CONFIG)
    assert snap_compare(app, terminal_size=size, run_before=lambda p: quiet(p, tui))


@pytest.mark.parametrize("size", SIZES)
def test_resumed_run_watched(
    snap_compare, size: tuple[int, int], runs_folder: Path, tmp_path: Path, tui: SimpleNamespace
) -> None:
    """--watch on a run stopped after epoch 2 and resumed, half-way through epoch 3: the
    warm-up, the pruning and epochs 1-2 stay."""
    run = Path(shutil.copytree(runs_folder / "20250101-020000-vgg16-digits-ecs-d0.05-s1",
                               tmp_path / tui.RUN_NAME))  # fmt: skip
    resumed = tui.resumed_events(2)
    with open(run / "events.jsonl", "a") as f:
        for e in resumed[:4]:  # run_started, stage_started, two batches of epoch 3
            f.write(json.dumps(e.to_dict()) + "\n")
    app = EcsApp(watch=run, config=tui.CONFIG)

    async def watched(pilot: Pilot) -> None:
        while pilot.app.state.snapshot().batch != 6:
            await pilot.pause(0.05)
        await quiet(pilot, tui)

    assert snap_compare(app, terminal_size=size, run_before=watched)


@pytest.mark.parametrize("size", SIZES)
def test_sweep_view(
    snap_compare, size: tuple[int, int], finished_run: Path, tmp_path: Path, tui: SimpleNamespace
) -> None:
    """`ecs-tui SWEEP`: each cell's state (done, died, waiting) and the table filling in."""
    sweep = tmp_path / "sweep"
    tui.copy_run(finished_run, sweep / "vgg16-digits-ecs-d0.05-s0")
    tui.copy_run(finished_run, sweep / "vgg16-digits-snip-d0.05-s0", method="snip",
                 test_acc=71.3, test_shift=-6.8)  # fmt: skip
    tui.make_died(tui.copy_run(finished_run, sweep / "vgg16-digits-ecs-d0.05-s1", seed=1))
    waiting = sweep / "vgg16-digits-random-d0.05-s0"
    waiting.mkdir()
    shutil.copy(finished_run / "config.json", waiting / "config.json")
    app = EcsApp(runs=sweep, config=tui.CONFIG)
    assert snap_compare(app, terminal_size=size, run_before=lambda p: rows_drawn(p, 4, tui))


@pytest.mark.parametrize("size", SIZES)
def test_kernels_mask_view(
    snap_compare, size: tuple[int, int], finished_run: Path, tui: SimpleNamespace
) -> None:
    """Kernels, m: every weight of each filter of a pruned layer, zeros as grey dots, with the
    legend in the title (features.3: 8 input channels per filter, 42% kept)."""
    app = EcsApp(run_dir=finished_run, config=tui.CONFIG)

    async def mask(pilot: Pilot) -> None:
        await pilot.press("5")
        await tui.settle(pilot)
        view = pilot.app.query_one("#view-kernels")
        view.sel_layer = "features.3.weight"
        await pilot.press("m")
        await quiet(pilot, tui)

    assert snap_compare(app, terminal_size=size, run_before=mask)
