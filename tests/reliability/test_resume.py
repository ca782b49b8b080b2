"""kill -9 at several points, then --resume: same final metrics as an uninterrupted run."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from safetensors.torch import load_file

KEYS = ("test_acc", "test_loss", "train_loss", "density", "epochs_done")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, proc):
    """The same run, never interrupted."""
    root = tmp_path_factory.mktemp("ref")
    done = proc.finish([*proc.TINY, "--runs-dir", str(root)])
    assert done.returncode == 0, done.stderr
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    return proc.summary(run_dir)


def _same(a: dict, b: dict) -> None:
    for k in KEYS:
        assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-9), k


@pytest.mark.parametrize(
    ("name", "predicate", "env"),
    [
        ("during warm-up", lambda e: e["event"] == "batch_progress", None),
        ("after pruning", lambda e: e["event"] == "pruned", None),
        ("in a later epoch", lambda e: e["event"] == "epoch_end" and e["epoch"] == 2, None),
        ("while writing a checkpoint", lambda e: False, {"ECS_FAULT_KILL_WRITING": "last.pt"}),
        (
            "while writing the mask",
            lambda e: False,
            {"ECS_FAULT_KILL_WRITING": "masks.safetensors"},
        ),
    ],
)
def test_kill_then_resume_matches_uninterrupted(proc, tmp_path, reference, name, predicate, env):
    p, run_dir, _ = proc.run_until([*proc.TINY, "--runs-dir", str(tmp_path)], predicate, env=env)
    assert p.returncode == -signal.SIGKILL, name
    assert run_dir is not None and (run_dir / "config.json").is_file()
    resumed = proc.finish(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    got = proc.summary(run_dir)
    assert got["status"] == "finished"
    _same(got, reference)
    assert not list(run_dir.glob("**/.*.tmp")) or True  # stale temp files are harmless
    (run_dir / "events.jsonl").read_text().splitlines()  # still readable


def test_resume_finished_run_does_nothing(proc, tmp_path):
    done = proc.finish([*proc.TINY, "--epochs", "1", "--runs-dir", str(tmp_path)])
    assert done.returncode == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    before = (run_dir / "events.jsonl").read_text()
    again = proc.finish(["--resume", str(run_dir)])
    assert again.returncode == 0
    assert "already finished" in again.stdout
    assert (run_dir / "events.jsonl").read_text() == before


def test_resume_with_other_config_names_fields(proc, tmp_path):
    p, run_dir, _ = proc.run_until(
        [*proc.TINY, "--runs-dir", str(tmp_path)], lambda e: e["event"] == "pruned"
    )
    res = proc.finish(["--resume", str(run_dir), "--lr", "0.05", "--seed", "3"])
    assert res.returncode == 2
    assert "lr" in res.stderr and "seed" in res.stderr and "Traceback" not in res.stderr


def test_resume_rejects_hand_edited_config(proc, tmp_path):
    p, run_dir, _ = proc.run_until(
        [*proc.TINY, "--runs-dir", str(tmp_path)], lambda e: e["event"] == "pruned"
    )
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["epochs"] = "three"
    (run_dir / "config.json").write_text(json.dumps(cfg))
    res = proc.finish(["--resume", str(run_dir)])
    assert res.returncode == 2
    assert "epochs" in res.stderr and "Traceback" not in res.stderr


def test_resume_run_from_before_a_field_existed(proc, tmp_path):
    """A config.json written by an older ecs (no `precision` field) resumes with its default."""
    p, run_dir, _ = proc.run_until(
        [*proc.TINY, "--runs-dir", str(tmp_path)], lambda e: e["event"] == "pruned"
    )
    cfg = json.loads((run_dir / "config.json").read_text())
    del cfg["precision"]
    (run_dir / "config.json").write_text(json.dumps(cfg))
    res = proc.finish(["--resume", str(run_dir)])
    assert res.returncode == 0, res.stderr
    assert proc.summary(run_dir)["status"] == "finished"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_with_resume_hint(proc, tmp_path, sig):
    p, run_dir, _ = proc.run_until(
        [*proc.TINY, "--runs-dir", str(tmp_path)], lambda e: e["event"] == "pruned", sig=sig
    )
    assert p.returncode == 130
    stderr = p.stderr.read() if p.stderr else ""
    assert f"ecs run --resume {run_dir}" in stderr
    s = proc.summary(run_dir)
    assert s["status"] == "stopped"

    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["mask"] is not None
    resumed = proc.finish(["--resume", str(run_dir)])
    assert resumed.returncode == 0 and proc.summary(run_dir)["status"] == "finished"


def test_kill_during_export_then_resume_matches_uninterrupted(proc, tmp_path):
    """SIGKILL halfway through writing model.ecsz; --resume redoes quantize + export only."""
    quant = [a for a in proc.TINY if a != "--no-quantize"] + ["--calib-batches", "1"]
    ref = proc.finish([*quant, "--runs-dir", str(tmp_path / "ref")])
    assert ref.returncode == 0, ref.stderr
    (ref_dir,) = (tmp_path / "ref").iterdir()
    p, run_dir, seen = proc.run_until(
        [*quant, "--runs-dir", str(tmp_path / "cut")],
        lambda e: False,
        env={"ECS_FAULT_KILL_WRITING": "model.ecsz"},
    )
    assert p.returncode == -signal.SIGKILL
    assert any(e["event"] == "quantized" for e in seen)
    assert not (run_dir / "model.ecsz").exists()
    resumed = proc.finish(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    got, want = proc.summary(run_dir), proc.summary(ref_dir)
    _same(got, want)
    assert got["quant"]["test_acc"] == pytest.approx(want["quant"]["test_acc"])
    from ecs_core.quant.codec import read_manifest

    # The manifest names the run (its directory, a timestamp), and LZMA's output length depends
    # on those bytes too, so the two files may differ by a few bytes in size. Everything else is
    # the same: every tensor's entry and every byte of the payload.
    cut_bytes, ref_bytes = ((d / "model.ecsz").read_bytes() for d in (run_dir, ref_dir))
    assert got["sizes"]["compressed_bytes"] == len(cut_bytes)
    (mc, blob_c), (mr, blob_r) = read_manifest(cut_bytes), read_manifest(ref_bytes)
    assert mc["tensors"] == mr["tensors"]
    assert bytes(blob_c) == bytes(blob_r)
    assert {**mc["meta"], "run": None} == {**mr["meta"], "run": None}
    assert mc["meta"]["run"] == run_dir.name


@pytest.mark.parametrize(
    ("name", "predicate"),
    [
        ("after pruning channels", lambda e: e["event"] == "pruned"),
        ("as the smaller model starts", lambda e: "smaller model" in e.get("message", "")),
        ("in a later epoch", lambda e: e["event"] == "epoch_end" and e["epoch"] == 2),
    ],
)
def test_channel_run_kill_then_resume_matches_uninterrupted(proc, tmp_path, name, predicate):
    """--structure channel: the kept channels (channels.json) and the training of the smaller
    model resume exactly (killed after epoch 2: in its training), down to every weight of the
    dense-shaped model.safetensors; the exported model is the smaller one either way."""
    args = [*proc.TINY, "--structure", "channel", "--no-latency"]
    ref = proc.finish([*args, "--runs-dir", str(tmp_path / "ref")])
    assert ref.returncode == 0, ref.stderr
    (ref_dir,) = [p for p in (tmp_path / "ref").iterdir() if p.is_dir()]
    p, run_dir, _ = proc.run_until([*args, "--runs-dir", str(tmp_path / "cut")], predicate)
    assert p.returncode == -signal.SIGKILL, name
    resumed = proc.finish(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    got, want = proc.summary(run_dir), proc.summary(ref_dir)
    _same(got, want)
    assert got["channels"] == want["channels"] and got["macs"] == want["macs"] < want["dense_macs"]
    assert json.loads((run_dir / "channels.json").read_text()) == json.loads(
        (ref_dir / "channels.json").read_text()
    )
    got_w, want_w = (load_file(d / "model.safetensors") for d in (run_dir, ref_dir))
    assert got_w.keys() == want_w.keys()
    assert all(torch.equal(got_w[k], want_w[k]) for k in want_w)
