"""Snapshot tests at 80x24 and 120x40: start screen, invalid setting, live run, help.

Driven by canned events and a fixed run directory (see conftest.py): no training, no clocks.
Update with `pytest tests/tui --snapshot-update`, then look at every changed SVG before
committing it (a crashed app also makes a picture).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.pilot import Pilot

from ecs_core.config import RunConfig
from ecs_tui.app import EcsApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


@pytest.mark.parametrize("size", SIZES)
def test_start_screen(
    snap_compare, size: tuple[int, int], tmp_path: Path, tui: SimpleNamespace
) -> None:
    """No run yet: the configure pane (and, when wide, the empty views beside it)."""
    app = EcsApp(config=RunConfig(runs_dir=str(tmp_path / "runs")))
    assert snap_compare(app, terminal_size=size, run_before=tui.settle)


@pytest.mark.parametrize("size", SIZES)
def test_invalid_setting(
    snap_compare, size: tuple[int, int], tmp_path: Path, tui: SimpleNamespace
) -> None:
    """Density 1.5 is marked and the engine's message says what is valid."""
    app = EcsApp(config=RunConfig(runs_dir=str(tmp_path / "runs")))

    async def type_bad_density(pilot: Pilot) -> None:
        field = pilot.app.query_one("#cfg-density")
        field.focus()
        await pilot.press("ctrl+a", "ctrl+k", *"1.5")
        field.cursor_blink = False  # a blinking cursor would make the picture timing-dependent
        await tui.settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=type_bad_density)


@pytest.mark.parametrize("size", SIZES)
def test_live_run_mid_epoch(snap_compare, size: tuple[int, int], tui: SimpleNamespace) -> None:
    """A run paused by its canned runner half-way through the first training epoch."""
    events = tui.canned_events()
    runner = tui.CannedRunner(events, pause_at=tui.mid_epoch(events))
    app = EcsApp(config=tui.CONFIG, runner=runner)

    async def start(pilot: Pilot) -> None:
        await pilot.press("s")
        while not (runner.paused.is_set() and pilot.app.state.snapshot().batch == 6):
            await pilot.pause(0.05)
        pilot.app.pull(force=True)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=start)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(
    snap_compare, size: tuple[int, int], tmp_path: Path, tui: SimpleNamespace
) -> None:
    """The keys, over the start screen."""
    app = EcsApp(config=RunConfig(runs_dir=str(tmp_path / "runs")))
    assert snap_compare(app, terminal_size=size, press=["question_mark"], run_before=tui.settle)
