"""RigL and SET: kill -9 between two mask updates in the middle of an epoch, then --resume:
the same metrics, the same number of updates and connections moved, and the same final mask."""

from __future__ import annotations

import signal

import pytest
from safetensors.torch import load_file

KEYS = ("test_acc", "test_loss", "train_loss", "density", "epochs_done", "mask_updates",
        "mask_moved")  # fmt: skip
DST = ["--dst-interval", "2", "--density", "0.1"]  # 12 steps: updates after 2, 4, 6, 8


@pytest.mark.parametrize("method", ["rigl", "set"])
def test_kill_between_mask_updates_then_resume_is_exact(proc, tmp_path, method):
    args = [*proc.TINY, *DST, "--method", method]
    ref = proc.finish([*args, "--runs-dir", str(tmp_path / "ref")])
    assert ref.returncode == 0, ref.stderr
    (ref_dir,) = (tmp_path / "ref").iterdir()
    p, run_dir, seen = proc.run_until(
        [*args, "--runs-dir", str(tmp_path / "cut")],
        lambda e: e["event"] == "mask_updated" and e["step"] == 6,  # epoch 2, batch 2 of 4
    )
    assert p.returncode == -signal.SIGKILL
    assert [e["step"] for e in seen if e["event"] == "mask_updated"] == [2, 4, 6]
    resumed = proc.finish(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    got, want = proc.summary(run_dir), proc.summary(ref_dir)
    assert got["status"] == "finished" and want["mask_updates"] == 4
    for k in KEYS:
        assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-9), k
    a, b = load_file(run_dir / "masks.safetensors"), load_file(ref_dir / "masks.safetensors")
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
