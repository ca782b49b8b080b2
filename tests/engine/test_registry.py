"""A new pruner or model is one file plus one registry line: register a throwaway of each at
test time and run them through `ecs run`, and see them offered in the app's form."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecs_core import registry
from ecs_core.config import ConfigError, RunConfig

PRUNER = registry.PrunerSpec("everyother", "tests.engine.throwaway:every_other", when="init")
MODEL = registry.ModelSpec("tinynet", "tests.engine.throwaway:tiny_net")


@pytest.fixture
def throwaways() -> Iterator[None]:
    registry.register(PRUNER)
    registry.register(MODEL)
    try:
        yield
    finally:
        registry.unregister(PRUNER)
        registry.unregister(MODEL)


def test_a_registered_pruner_and_model_run_end_to_end(throwaways: None, tmp_path: Path) -> None:
    from ecs_tui.cli import app

    args = ["run", "--model", "TinyNet", "--method", "everyother", "--dataset", "digits",
            "--density", "0.5", "--epochs", "1", "--max-batches", "2", "--batch-size", "32",
            "--no-quantize", "--runs-dir", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert (summary["model"], summary["method"]) == ("tinynet", "everyother")
    assert summary["density"] == pytest.approx(0.5, abs=0.01)
    assert summary["epochs_done"] == 1


def test_the_spec_decides_when_a_method_prunes(throwaways: None) -> None:
    cfg = RunConfig(method="everyother", warmup_epochs=3, epochs=5).validate()
    assert cfg.prune_epoch == 0 and cfg.prunes
    assert RunConfig(method="ecs", warmup_epochs=3, epochs=5).validate().prune_epoch == 3
    assert not RunConfig(method="none").validate().prunes


def test_unregistered_names_are_refused_listing_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="unknown method 'everyother'; choose one of: ecs"):
        RunConfig(method="everyother").validate()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.PrunerSpec("snip", None))


@pytest.mark.asyncio
async def test_the_form_offers_registered_names(throwaways: None) -> None:
    from textual.widgets import Select

    from ecs_tui.app import EcsApp

    app = EcsApp(config=RunConfig(width=0.125, epochs=1, runs_dir="runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for field, name in (("method", "everyother"), ("model", "tinynet")):
            select = app.query_one(f"#cfg-{field}", Select)
            assert name in [value for _, value in select._options], field
