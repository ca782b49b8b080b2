"""SIGTERM / Ctrl-C after training (weight sharing, --finetune-epochs, int8 calibration,
export) stops within a batch, as `stopped` (exit 130), and --resume ends exactly where an
uninterrupted run ends. A second signal quits at once and still leaves `stopped`."""

from __future__ import annotations

import json
import signal

import pytest
from safetensors.torch import load_file

from ecs_core.config import RunConfig
from ecs_core.pipeline import run
from ecs_core.store import RunStore

QUANT = ["--width", "0.125", "--epochs", "2", "--max-batches", "4", "--batch-size", "32",
         "--finetune-epochs", "2", "--calib-batches", "2"]  # fmt: skip


def _events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "stage, predicate",
    [("finetune", lambda e: e["event"] == "batch_progress" and e["stage"] == "finetune"),
     ("share", lambda e: e["event"] == "stage_started" and e["stage"] == "quantize")],
)  # fmt: skip
def test_sigterm_after_training_stops_and_resumes_exactly(proc, tmp_path, stage, predicate):
    ref = proc.finish([*QUANT, "--run-dir", str(tmp_path / "ref" / "run")])
    assert ref.returncode == 0, ref.stderr
    cut_dir = tmp_path / "cut" / "run"
    p, run_dir, _ = proc.run_until([*QUANT, "--run-dir", str(cut_dir)], predicate,
                                   sig=signal.SIGTERM)  # fmt: skip
    stderr = p.stderr.read() if p.stderr else ""
    assert p.returncode == 130, stderr
    assert proc.summary(cut_dir)["status"] == "stopped"
    assert f"continue with: ecs run --resume {cut_dir}" in stderr
    kinds = [e["event"] for e in _events(cut_dir)]
    assert "exported" not in kinds and kinds[-1] == "run_finished"
    trained = load_file(cut_dir / "model.safetensors")  # the trained weights, not shared ones
    ref_dir = tmp_path / "ref" / "run"
    assert all((trained[k] == v).all() for k, v in load_file(ref_dir / "model.safetensors").items())

    resumed = proc.finish(["--resume", str(cut_dir)])
    assert resumed.returncode == 0, resumed.stderr
    s, r = proc.summary(cut_dir), proc.summary(ref_dir)
    assert s["status"] == "finished"
    assert s["quant"] == r["quant"] and s["test_acc"] == r["test_acc"]
    assert (cut_dir / "model.ecsz").read_bytes() == (ref_dir / "model.ecsz").read_bytes()
    for name in ("model.safetensors", "quantized.safetensors"):
        assert (cut_dir / name).read_bytes() == (ref_dir / name).read_bytes(), name


class _SecondSignal:
    """A stop flag whose handler raises KeyboardInterrupt (a second Ctrl-C) at the n-th look."""

    def __init__(self, n: int) -> None:
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt
        return False


@pytest.mark.parametrize("n", [2, 12])  # during training, during fine-tuning
def test_second_signal_leaves_stopped_not_failed(tmp_path, n):
    cfg = RunConfig(width=0.125, epochs=1, max_batches=4, batch_size=32, finetune_epochs=2,
                    calib_batches=1, runs_dir=str(tmp_path))  # fmt: skip
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for e in run(cfg, stop=_SecondSignal(n)):
            seen.append(e)
    summary = RunStore(seen[0].run_dir).read_summary()
    assert summary["status"] == "stopped", summary
