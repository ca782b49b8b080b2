"""`--model package.module:factory`: a model of the user's own through `ecs run`, `--resume` and
`ecs sweep`, and one line with exit 2 (nothing written) for every way the spec can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecs_tui.cli import app

SPEC = "tests.engine.custom_model:factory"
SMALL = ["--dataset", "digits", "--width", "0.25", "--max-batches", "2", "--batch-size", "32",
         "--method", "snip", "--density", "0.2"]  # fmt: skip


def _run_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir()] if root.exists() else []


def test_own_model_runs_end_to_end_and_is_recorded(runner, tmp_path):
    """One epoch on digits, pruned, quantized and exported; config.json holds the spec."""
    res = runner.invoke(app, ["run", "--model", SPEC, *SMALL, "--epochs", "1", "--json",
                              "--runs-dir", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.stdout.splitlines()]
    run_dir = Path(events[0]["run_dir"])
    assert run_dir.name.split("-", 2)[2].startswith("tests.engine.custom_model.factory-digits-snip")
    assert json.loads((run_dir / "config.json").read_text())["model"] == SPEC
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["model"] == SPEC
    assert [r["name"] for r in summary["layers"]] == ["0.weight", "4.weight", "9.weight"]
    assert abs(summary["kept"] - 0.2 * summary["total"]) <= 1
    assert (run_dir / "model.ecsz").is_file()


def test_resume_rebuilds_the_own_model(runner, tmp_path):
    """A run stopped after epoch 1 of 2 continues from its config.json alone."""
    import threading

    from ecs_core.config import RunConfig
    from ecs_core.pipeline import run

    stop = threading.Event()
    cfg = RunConfig(model=SPEC, dataset="digits", width=0.25, max_batches=2, batch_size=32,
                    method="snip", density=0.2, epochs=2, quantize=False, device="cpu",
                    runs_dir=str(tmp_path))  # fmt: skip
    for event in run(cfg, stop=stop):
        if event.kind == "epoch_end":
            stop.set()
    (run_dir,) = _run_dirs(tmp_path)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"
    res = runner.invoke(app, ["run", "--resume", str(run_dir)])
    assert res.exit_code == 0, res.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_done"] == 2


def test_own_model_in_a_sweep(runner, tmp_path):
    args = ["sweep", "--models", f"vgg16,{SPEC}", "--runs-dir", str(tmp_path), "--name", "own"]
    args += "--methods snip --densities 0.2 --epochs 1 --max-batches 1 --batch-size 32".split()
    args += "--width 0.125 --no-quantize --gpus none".split()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    cell = tmp_path / "own" / "tests.engine.custom_model.factory-digits-snip-d0.2-s0"
    assert json.loads((cell / "summary.json").read_text())["status"] == "finished"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("tests.engine.no_such_module:factory", "cannot import tests.engine.no_such_module"),
        ("tests.engine.custom_model:missing", "missing is not defined there"),
        ("tests.engine.custom_model:NOT_CALLABLE", "NOT_CALLABLE is not callable"),
        ("tests.engine.custom_model:broken", "failed (RuntimeError: this factory always fails)"),
        ("tests.engine.custom_model:nothing_to_prune", "no Conv2d or Linear layer to prune"),
        ("tests.engine.custom_model:not_a_module", "returned int, not a torch nn.Module"),
        ("tests.engine.custom_model:", "package.module:factory"),
        ("not a module:factory", "package.module:factory"),
    ],
)
def test_bad_own_model_is_one_line_exit_2_nothing_written(runner, tmp_path, spec, needle):
    res = runner.invoke(app, ["run", "--model", spec, *SMALL, "--epochs", "1",
                              "--runs-dir", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert _run_dirs(tmp_path) == []


def test_untraceable_model_with_channel_structure_is_one_line_exit_2(runner, tmp_path):
    """A model Torch-Pruning cannot follow (a detached feature map): refused before any file."""
    res = runner.invoke(app, ["run", "--model", "tests.engine.custom_model:detached", *SMALL,
                              "--structure", "channel", "--epochs", "1",
                              "--runs-dir", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "cannot trace layer conv" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert _run_dirs(tmp_path) == []
