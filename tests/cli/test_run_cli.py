"""`ecs run`: JSON output, run directory contents, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecs_tui.cli import app


def _run_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir()] if root.exists() else []


def test_json_output_parses_and_run_dir_is_complete(runner, tiny, tmp_path):
    """--json prints only JSON lines; the run directory holds every promised file."""
    res = runner.invoke(app, ["run", *tiny, "--json", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert {"stage_started", "batch_progress", "epoch_end", "pruned", "stage_finished"} <= set(
        kinds
    )
    run_dir = Path(events[0]["run_dir"])
    for name in ("config.json", "events.jsonl", "summary.json", "model.safetensors",
                 "masks.safetensors", "checkpoints/last.pt"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert 0 <= summary["test_acc"] <= 100
    assert summary["density"] == pytest.approx(0.05, abs=1e-5)
    written = [json.loads(line)["event"] for line in (run_dir / "events.jsonl").open()]
    assert written == kinds


def test_plain_output_is_one_line_per_epoch(runner, tiny, tmp_path):
    res = runner.invoke(app, ["run", *tiny, "--runs-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "\r" not in res.stdout
    epoch_lines = [ln for ln in res.stdout.splitlines() if " epoch " in ln]
    assert len(epoch_lines) == 2


def test_original_flag_aliases(runner, tiny, tmp_path):
    """The original project's flags still work: --retain, --batchsize, --step, --prunetype."""
    args = ["run", *tiny, "--retain", "0.1", "--batchsize", "16", "--weightdecay", "0.001",
            "--step", "5", "--prunetype", "True", "--model", "VGG16", "--json",
            "--runs-dir", str(tmp_path)]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.stdout.splitlines()[0])["config"]
    assert (cfg["density"], cfg["batch_size"], cfg["step_size"]) == (0.1, 16, 5)
    assert (cfg["scope"], cfg["model"], cfg["weight_decay"]) == ("layer", "vgg16", 0.001)


def test_compression_is_inverse_density(runner, tiny, tmp_path):
    res = runner.invoke(app, ["run", *tiny, "--compression", "20", "--epochs", "0", "--json",
                              "--runs-dir", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[0])["config"]["density"] == pytest.approx(0.05)


def test_precision_reaches_the_training_loop(runner, tiny, tmp_path):
    """--precision bf16 trains under bf16 autocast on the CPU too: same run, other losses."""
    losses = {}
    for precision in ("fp32", "BF16"):
        res = runner.invoke(app, ["run", *tiny, "--precision", precision, "--json",
                                  "--runs-dir", str(tmp_path / precision)])  # fmt: skip
        assert res.exit_code == 0, res.output
        events = [json.loads(line) for line in res.stdout.splitlines()]
        assert events[0]["config"]["precision"] == precision.lower()
        losses[precision] = [e["train_loss"] for e in events if e["event"] == "epoch_end"]
    assert all(0 < v < 10 for v in losses["BF16"])
    assert losses["BF16"] != pytest.approx(losses["fp32"], rel=1e-6)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "alexnet"], "vgg16, vgg19, resnet18, resnet34, resnet50"),
        (["--dataset", "imagenet"], "digits, fashion-mnist, cifar10, cifar100"),
        (["--method", "obd"], "ecs, snip, grasp, synflow, random, magnitude, imp, set, rigl, none"),
        (["--method", "synflow", "--prune-iterations", "0"], "--prune-iterations must be >= 1"),
        (["--method", "none", "--ablate", "shuffle"], "--ablate shuffle needs a pruning method"),
        (["--method", "imp", "--prune-fraction", "1"], "--prune-fraction must be in (0, 1)"),
        (["--method", "imp", "--prune-fraction", "0"], "--prune-fraction must be in (0, 1)"),
        (["--method", "imp", "--rewind-epoch", "2"], "--rewind-epoch must be below --epochs (2)"),
        (["--rewind-epoch", "-1"], "--rewind-epoch must be >= 0"),
        (["--ablate", "flip"], "none, shuffle, reinit, invert"),
        (["--density", "0"], "--density"),
        (["--density", "1.5"], "--density"),
        (["--epochs", "-1"], "--epochs"),
        (["--scope", "row"], "global, layer"),
        (["--budget", "half"], "exact, union"),
        (["--bits", "0"], "--bits"),
        (["--compression", "0.5"], "--compression"),
        (["--prunetype", "maybe"], "--prunetype"),
        (["--precision", "fp8"], "auto, fp32, bf16"),
    ],
)
def test_bad_options_exit_2_with_one_line(runner, tiny, tmp_path, args, needle):
    res = runner.invoke(app, ["run", *tiny, "--runs-dir", str(tmp_path), *args])
    assert res.exit_code == 2
    assert needle in res.output
    assert "Traceback" not in res.output
    assert _run_dirs(tmp_path) == []


def test_missing_cifar_offline_names_folder_and_flag(runner, tiny, tmp_path):
    res = runner.invoke(app, ["run", *tiny, "--dataset", "CIFAR10", "--no-download",
                              "--data-dir", str(tmp_path / "data"),
                              "--runs-dir", str(tmp_path / "runs")])  # fmt: skip
    assert res.exit_code == 2
    assert "cifar-10-batches-py" in res.output and "--data-dir" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "runs").exists() or _run_dirs(tmp_path / "runs") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_runs_dir(runner, tiny, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = runner.invoke(app, ["run", *tiny, "--runs-dir", str(ro / "runs")])
    finally:
        ro.chmod(0o700)
    assert res.exit_code == 2
    assert "--runs-dir" in res.output


def test_unwritable_runs_dir_is_a_file(runner, tiny, tmp_path):
    """A runs dir that is really a file: same clear error, even as root."""
    f = tmp_path / "file"
    f.write_text("x")
    res = runner.invoke(app, ["run", *tiny, "--runs-dir", str(f / "runs")])
    assert res.exit_code == 2
    assert "--runs-dir" in res.output and "Traceback" not in res.output


def test_help_does_not_import_torch():
    code = (
        "import sys; from ecs_tui.cli import app; "
        "from typer.testing import CliRunner; CliRunner().invoke(app, ['--help']); "
        "CliRunner().invoke(app, ['run', '--help']); "
        "CliRunner().invoke(app, ['show', '--help']); CliRunner().invoke(app, ['export', '-h']); "
        "print([m for m in ('torch', 'matplotlib', 'onnx', 'tensorboard') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_engine_imports_no_ui_library():
    code = (
        "import sys, ecs_core, ecs_core.pipeline, ecs_core.prune, ecs_core.store; "
        "print(sorted(m for m in ('textual', 'rich', 'typer', 'plotext') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
