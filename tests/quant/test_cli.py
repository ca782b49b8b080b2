"""`ecs export` and `ecs eval` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecs_tui.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_export_check_then_eval(quant_run: tuple[Path, list], tmp_path: Path) -> None:
    run_dir, _ = quant_run
    out = tmp_path / "again.ecsz"
    r = runner.invoke(app, ["export", str(run_dir), "--output", str(out), "--check"])
    assert r.exit_code == 0, r.output
    assert "quantized.safetensors" in r.output and "bit-identical" in r.output
    assert out.read_bytes() == (run_dir / "model.ecsz").read_bytes()  # deterministic
    r = runner.invoke(app, ["eval", str(out), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert result["dataset"] == "digits" and result["images"] == 360
    assert result["test_acc"] == summary["quant"]["test_acc"]


@pytest.mark.slow
def test_export_with_other_bits(quant_run: tuple[Path, list], tmp_path: Path) -> None:
    """--bits re-shares the trained fp32 weights (model.safetensors) with 2**bits clusters."""
    run_dir, _ = quant_run
    out = tmp_path / "b2.ecsz"
    r = runner.invoke(app, ["export", str(run_dir), "-o", str(out), "--bits", "2", "--check"])
    assert r.exit_code == 0, r.output
    assert "weight sharing (2 bits)" in r.output
    r = runner.invoke(app, ["eval", str(out)])
    assert r.exit_code == 0 and "test accuracy" in r.output


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "junk.ecsz"
    garbage.write_bytes(b"not a model at all" * 10)
    cases = [
        ["export", str(tmp_path)],
        ["export", str(tmp_path / "nope")],
        ["eval", str(garbage)],
        ["eval", str(tmp_path / "missing.ecsz")],
    ]
    for args in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert r.output.strip().startswith("error:") and len(r.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_eval_unknown_dataset(quant_run: tuple[Path, list]) -> None:
    run_dir, _ = quant_run
    r = runner.invoke(app, ["eval", str(run_dir / "model.ecsz"), "--dataset", "imagenet"])
    assert r.exit_code == 2 and "unknown dataset" in r.output


@pytest.mark.slow
def test_export_bad_bits(quant_run: tuple[Path, list]) -> None:
    r = runner.invoke(app, ["export", str(quant_run[0]), "--bits", "12"])
    assert r.exit_code == 2 and "--bits" in r.output
