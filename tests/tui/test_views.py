"""Snapshots of every view of a finished run, at 80x24 and 120x40.

The run is the fixed directory built by conftest.py (seeded weights, canned events): no training.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.pilot import Pilot

from ecs_core.config import RunConfig
from ecs_core.views import VIEWS
from ecs_tui.app import EcsApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
NAMES = [v.name for v in VIEWS]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("view", NAMES)
def test_finished_run_view(
    snap_compare, size: tuple[int, int], view: str, finished_run: Path, tui: SimpleNamespace
) -> None:
    """Each view of the fixed finished run directory, reached by its number key."""
    app = EcsApp(run_dir=finished_run, config=RunConfig(runs_dir=str(finished_run.parent)))

    async def show(pilot: Pilot) -> None:
        await pilot.press(str(NAMES.index(view) + 1))
        await tui.settle(pilot)
        assert pilot.app.visible_view() == view
        for note in pilot.app.query_one(f"#view-{view}").query(".view-note"):
            assert "Error" not in str(note.render()), note.render()

    assert snap_compare(app, terminal_size=size, run_before=show)


@pytest.mark.asyncio
async def test_kernels_weights_without_colour_say_the_sign(
    monkeypatch: pytest.MonkeyPatch, finished_run: Path, tui: SimpleNamespace
) -> None:
    """NO_COLOR, Kernels, m: the weights' glyphs are their signs and the title says so (it
    said 'blue − red +', which means nothing without colour)."""
    from tests.tui.svg_text import screen

    monkeypatch.setenv("NO_COLOR", "1")  # read (and removed) by the App when it is made
    app = EcsApp(run_dir=finished_run, config=RunConfig(runs_dir=str(finished_run.parent)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(str(NAMES.index("kernels") + 1))
        await tui.settle(pilot)
        pilot.app.query_one("#view-kernels").sel_layer = "features.3.weight"
        await pilot.press("m")
        await tui.settle(pilot)
        rows, _ = screen(pilot.app.export_screenshot())
    text = "\n".join(rows)
    assert "· -/= neg" in text and "· +/# pos" in text and "blue" not in text, text
    glyphs = set("".join(rows))
    assert {"·", "-", "+"} <= glyphs or {"·", "=", "#"} <= glyphs, text  # both signs drawn
