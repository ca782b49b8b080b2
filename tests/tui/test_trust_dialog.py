"""The app asks before a run's files make it run code: the Activations view of an opened run and
`e` (export) on the Runs tab show a dialog naming the module; no imports it nothing, yes imports
it (and reaches the `ecs export` child the app starts)."""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from ecs_core import trust
from ecs_core.config import RunConfig
from ecs_core.views import VIEWS
from ecs_tui.app import EcsApp
from ecs_tui.screens.confirm import ConfirmScreen
from tests.tui.pilot_helpers import notes, wait_for

ACTIVATIONS = str([v.name for v in VIEWS].index("activations") + 1)


@pytest.fixture
def hostile(finished_run: Path, tmp_path: Path, monkeypatch) -> SimpleNamespace:
    """A copy of the finished run whose config.json names `<module>:factory`, a module beside
    it that writes a marker when imported (a fresh name each time: never imported before)."""
    module = f"evil_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "MARKER"
    (tmp_path / f"{module}.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('imported')\n"
        "from ecs_core.models import vgg16 as factory\n"
    )
    run = Path(shutil.copytree(finished_run, tmp_path / "runs" / finished_run.name))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "model": f"{module}:factory"}))
    monkeypatch.syspath_prepend(str(tmp_path))  # found by this process and the export child
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.delenv(trust.ENV, raising=False)
    monkeypatch.setattr(trust, "_allowed", set())
    yield SimpleNamespace(module=module, marker=marker, run=run)
    sys.modules.pop(module, None)


def _asking(app: EcsApp, module: str) -> bool:
    screen = app.screen
    return isinstance(screen, ConfirmScreen) and module in screen.question


@pytest.mark.asyncio
@pytest.mark.parametrize("answer", ["n", "y"])
async def test_activations_view_asks_before_importing(hostile: SimpleNamespace, answer: str):
    app = EcsApp(run_dir=hostile.run, config=RunConfig(runs_dir=str(hostile.run.parent)))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press(ACTIVATIONS)
        await wait_for(pilot, lambda: _asking(app, hostile.module))
        assert not hostile.marker.exists()
        await pilot.press(answer)
        if answer == "n":
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            await app.workers.wait_for_complete()
            assert any("nothing of it ran" in n for n in notes(app)), notes(app)
            assert not hostile.marker.exists()
        else:
            await wait_for(pilot, hostile.marker.exists)
            view = app.query_one("#view-activations")
            await wait_for(pilot, lambda: view._data is not None)


@pytest.mark.asyncio
@pytest.mark.parametrize("answer", ["n", "y"])
async def test_export_asks_before_importing(hostile: SimpleNamespace, answer: str, tui):
    from tests.tui.test_manage import to_row

    app = EcsApp(runs=hostile.run.parent, config=tui.CONFIG)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await to_row(pilot, hostile.run.name)
        await pilot.press("e")
        await wait_for(pilot, lambda: _asking(app, hostile.module))
        await pilot.press(answer)
        if answer == "n":
            await app.workers.wait_for_complete()
            assert not (hostile.run / "model.ecsz").exists()
            assert not hostile.marker.exists()
        else:
            titles = ("exported", "export failed")
            await wait_for(pilot, lambda: any(n.title in titles for n in app._notifications), 120)
            assert any(n.title == "exported" for n in app._notifications), notes(app)
            assert hostile.marker.exists() and (hostile.run / "model.ecsz").is_file()
