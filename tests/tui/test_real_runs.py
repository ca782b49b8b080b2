"""The app driving the real pipeline on digits (tiny model, CPU): Stop, and a finished run that
matches the same run made headless by the command line the app copies."""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from textual.pilot import Pilot
from typer.testing import CliRunner

from ecs_core.config import RunConfig
from ecs_tui.app import EcsApp
from ecs_tui.widgets.configure import ConfigurePane
from tests.tiny import tiny

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

TINY = tiny(max_batches=2)
TIMING = {"seconds", "run_dir", "latency"}
"""summary.json keys that differ between two identical runs (wall time, where they ran)."""


async def wait_for(pilot: Pilot, cond: Callable[[], bool], timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out waiting for the run"
        await pilot.pause(0.1)


def set_form(app: EcsApp, values: dict) -> None:
    pane = app.query_one(ConfigurePane)
    for name, value in values.items():
        pane.set_value(name, value)


def only_run(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}


def metrics(run: Path) -> list[dict]:
    """The events that carry results, without their times."""
    out = []
    for line in (run / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] in ("epoch_end", "pruned", "run_finished"):
            drop = {"t", "seconds", "elapsed", "img_per_s", "summary"}
            out.append({k: v for k, v in e.items() if k not in drop})
    return out


async def test_stop_from_the_app_leaves_a_stopped_summary(tmp_path: Path) -> None:
    """Start -> batch events arrive -> Stop (confirmed) -> summary.json says stopped."""
    app = EcsApp(config=RunConfig(runs_dir=str(tmp_path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        # long enough that it cannot finish before Stop arrives, however fast the machine
        set_form(app, {**TINY, "method": "random", "epochs": 200, "max_batches": 20})
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: app.state.snapshot().batch >= 1)
        await pilot.press("x", "y")
        await wait_for(pilot, lambda: not app.running)
        assert app.state.snapshot().status == "stopped"
    summary = json.loads((only_run(tmp_path) / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert (only_run(tmp_path) / "model.safetensors").is_file()


async def test_real_run_from_the_app_matches_the_headless_run(tmp_path: Path) -> None:
    """Same config and seed: same files and the same numbers as the copied `ecs run` line."""
    from safetensors.torch import load_file

    from ecs_tui.commands import run as run_cmd

    app = EcsApp(config=RunConfig(runs_dir=str(tmp_path / "app")))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        set_form(app, TINY)
        await pilot.pause()
        await pilot.press("y", "s")
        await wait_for(pilot, lambda: app.state.snapshot().status == "finished")
        await wait_for(pilot, lambda: not app.running)
        line = app.clipboard
    cli = typer.Typer()
    cli.callback()(lambda: None)
    run_cmd.register(cli)
    args = shlex.split(line)[1:] + ["--runs-dir", str(tmp_path / "cli")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    ours, theirs = only_run(tmp_path / "app"), only_run(tmp_path / "cli")
    assert files(ours) == files(theirs)
    assert metrics(ours) == metrics(theirs)
    a, b = (json.loads((r / "summary.json").read_text()) for r in (ours, theirs))
    assert {k: v for k, v in a.items() if k not in TIMING} == {
        k: v for k, v in b.items() if k not in TIMING
    }
    wa, wb = (load_file(r / "model.safetensors") for r in (ours, theirs))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
