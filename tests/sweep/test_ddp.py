"""Data-parallel training: 2 gloo processes on CPU under torchrun, against one process.

The torchrun job (ddp_worker.py) runs once for the module: SNIP trained to the end, the same
run stopped by rank 1 alone and resumed, and ECS (mask after a data-parallel warm-up); a second
job runs SET and RigL, whose masks move during training.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ecs_core import distributed, pipeline
from ecs_core.config import ConfigError, RunConfig
from ecs_core.data import load_dataset, make_batches
from ecs_core.store import RunStore

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("ddp_worker.py")
# Global batch 32 (16 per rank), 2 epochs of 3 batches: 6 optimizer steps.
BASE = RunConfig(width=0.125, method="snip", density=0.1, epochs=2, max_batches=3, batch_size=32,
                 quantize=False, device="cpu")  # fmt: skip
TOLERANCE = 0.25
"""Largest ||w_ddp - w_single|| / ||w_single - w_init|| accepted. Batch-norm statistics are per
rank under DDP (half batches), so the runs are close, not equal (measured: 0.086); a single
process that sees only half the batch, with nothing averaged, lands at 0.59."""


def torchrun(out: Path, config: RunConfig, *extra: str):
    """ddp_worker.py on 2 processes; returns load(tag, rank): what that rank saved."""
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            str(WORKER), str(out), json.dumps(config.to_dict()), *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]

    def load(tag: str, rank: int) -> dict:
        return torch.load(out / f"{tag}-rank{rank}.pt")

    return load


@pytest.fixture(scope="module")
def ddp(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ddp")
    runs = out / "runs"
    load = torchrun(out, RunConfig(**{**BASE.to_dict(), "runs_dir": str(runs)}))
    stopped_dir = json.loads((out / "done-rank0.json").read_text())["stopped_run"]
    return {"load": load, "runs": runs, "stopped_dir": Path(stopped_dir)}


@pytest.fixture(scope="module")
def dst(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """SET and RigL under DDP, an update after each of the first 3 of 6 optimizer steps (the
    schedule ends at 0.75 of the steps), every rank's mask recorded after each update."""
    out = tmp_path_factory.mktemp("ddp-dst")
    load = torchrun(out, dataclasses.replace(BASE, dst_interval=1), "dst")
    return {"load": load, "runs": out / "dst-runs"}


def _params(state: dict) -> dict:
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("tag", ["a", "b", "ecs"])
def test_ranks_hold_identical_masks_and_weights(ddp: dict, tag: str) -> None:
    r0, r1 = ddp["load"](tag, 0), ddp["load"](tag, 1)
    assert r0["mask"] and _equal(r0["mask"], r1["mask"])
    assert _equal(r0["model"], r1["model"])  # parameters and batch-norm buffers
    assert abs(r0["summary"]["density"] - 0.1) < 1e-4


def test_channel_run_ranks_keep_the_same_channels(ddp: dict) -> None:
    """--structure channel under DDP: one mask on every rank (removed channels whole), the
    same weights, and rank 0's kept channels in the run directory."""
    r0, r1 = ddp["load"]("channel", 0), ddp["load"]("channel", 1)
    assert r0["mask"] and _equal(r0["mask"], r1["mask"]) and _equal(r0["model"], r1["model"])
    s = r0["summary"]
    assert s["structure"] == "channel" and s["density"] >= 0.1 and s["macs"] < s["dense_macs"]
    (run_dir,) = [d for d in ddp["runs"].iterdir() if "-snip-layer-channel-" in d.name]
    kept = json.loads((run_dir / "channels.json").read_text())
    assert {group: len(indices) for group, indices in kept.items()} == s["channels"]


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_dynamic_sparse_ranks_hold_the_same_mask_after_every_update(dst: dict, method) -> None:
    """SET regrows at random, RigL where the (all-reduced) dense gradient is largest: after
    every update both ranks hold the same mask, which moved; the run ends with it on both ranks,
    in rank 0's masks.safetensors, with the same weights."""
    r0, r1 = dst["load"](method, 0), dst["load"](method, 1)
    steps = [u["step"] for u in r0["updates"]]
    assert steps == [1, 2, 3] and [u["step"] for u in r1["updates"]] == steps
    before = None
    for u0, u1 in zip(r0["updates"], r1["updates"], strict=True):
        assert u0["moved"] > 0 and u0["moved"] == u1["moved"]
        assert _equal(u0["mask"], u1["mask"]), f"{method}: ranks differ after step {u0['step']}"
        assert before is None or not _equal(u0["mask"], before)
        before = u0["mask"]
    assert _equal(r0["mask"], before) and _equal(r1["mask"], before)
    assert _equal(r0["model"], r1["model"])
    (run_dir,) = [d for d in dst["runs"].iterdir() if f"-{method}-" in d.name]
    on_disk = RunStore(run_dir).load_tensors("masks.safetensors")
    assert _equal(on_disk, {k: v.to(torch.uint8) for k, v in before.items()})
    moved = [e.moved for e in RunStore(run_dir).read_events() if e.kind == "mask_updated"]
    assert moved == [u["moved"] for u in r0["updates"]]


def test_only_rank_0_writes_and_files_hold_its_model(ddp: dict) -> None:
    dirs = sorted(ddp["runs"].iterdir())
    assert len(dirs) == 4  # a, stopped-then-resumed, ecs, channel: never one per rank
    on_disk = RunStore(dirs[0]).load_tensors("model.safetensors")
    assert _equal(on_disk, ddp["load"]("a", 0)["model"])
    events = [e.kind for e in RunStore(dirs[0]).read_events()]
    assert events.count("run_started") == 1 and events.count("epoch_end") == 2


def test_matches_single_process_with_same_global_batch(ddp: dict, tmp_path: Path) -> None:
    """Same mask exactly (rank 0 scores the global batches); weights within TOLERANCE; and the
    tolerance is meaningful: a half-batch single-process run falls outside it."""
    init = _params(pipeline.prepare(BASE, RunStore(tmp_path / "init")).state.model.state_dict())

    def single(batch_size: int) -> tuple[dict, dict]:
        config = RunConfig(**{**BASE.to_dict(), "batch_size": batch_size,
                              "runs_dir": str(tmp_path)})  # fmt: skip
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the DDP workers: same kernels, same rounding
        try:
            last = list(pipeline.run(config))[-1]
        finally:
            torch.set_num_threads(threads)
        store = RunStore(last.summary["run_dir"])
        return _params(store.load_tensors("model.safetensors")), store.load_tensors(
            "masks.safetensors"
        )

    def rel_err(w: dict, ref: dict) -> float:
        num = sum(((w[k] - ref[k]) ** 2).sum() for k in ref)
        den = sum(((ref[k] - init[k]) ** 2).sum() for k in ref)
        return float((num / den).sqrt())

    ref, ref_mask = single(32)
    r0 = ddp["load"]("a", 0)
    assert _equal({k: v.to(torch.uint8) for k, v in r0["mask"].items()}, ref_mask)
    assert rel_err(_params(r0["model"]), ref) < TOLERANCE
    half, _ = single(16)
    assert rel_err(half, ref) > TOLERANCE


def test_stop_on_one_rank_stops_all_and_resume_is_exact(ddp: dict) -> None:
    """Rank 1 alone asked to stop: both ranks left at the same batch (else the job would hang),
    rank 0 saved; resuming in DDP from that checkpoint gives the uninterrupted weights exactly."""
    s0, s1 = ddp["load"]("stopped", 0), ddp["load"]("stopped", 1)
    assert _equal(_params(s0["model"]), _params(s1["model"]))
    events = list(RunStore(ddp["stopped_dir"]).read_events())
    finished = [e.status for e in events if e.kind == "run_finished"]
    assert finished == ["stopped", "finished"]
    assert _equal(ddp["load"]("b", 0)["model"], ddp["load"]("a", 0)["model"])


def test_shards_are_disjoint_slices_of_the_single_process_batch() -> None:
    d = load_dataset("digits")
    full = make_batches(
        d.train_x, d.train_y, d.mean, d.std, 30, True, d.flip, torch.device("cpu"), 3
    )
    shards = [distributed.ShardedBatches(full, r, 3) for r in range(3)]
    ref = list(full.epoch(torch.Generator().manual_seed(5)))
    got = [list(s.epoch(torch.Generator().manual_seed(5))) for s in shards]
    for b, (x, y) in enumerate(ref):
        assert torch.equal(torch.cat([g[b][0] for g in got]), x)
        assert torch.equal(torch.cat([g[b][1] for g in got]), y)
        assert all(len(g[b][1]) == 10 for g in got)


def test_global_batch_must_divide_over_ranks() -> None:
    group = distributed.Group(0, 3, 0, torch.device("cpu"), False)
    with pytest.raises(ConfigError, match="multiple of 3"):
        group.shard(object(), 32)  # type: ignore[arg-type]


def test_single_process_is_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cpu = torch.device("cpu")
    rt = distributed.join(cpu)
    assert type(rt) is distributed.Runtime and rt.device == cpu and rt.is_main()
    assert rt.wrap(torch.nn.Linear(2, 2)) is None
    assert rt.on_main(lambda: 7) == 7
    batches, stop = object(), object()
    assert rt.shard(batches, 5) is batches  # type: ignore[arg-type]
    assert rt.agreed(stop) is stop and rt.reduce_step(None) is None


def test_the_pipeline_runs_on_the_runtime_it_is_given(tmp_path: Path) -> None:
    """`run(..., runtime=...)`: every DDP call goes to that object (a recording single-process
    runtime here), and the pipeline leaves a runtime it did not make open."""

    names = ("seed_rank", "shard", "wrap", "reduce_step", "sync_buffers", "agreed", "on_main",
             "create_store", "close")  # fmt: skip

    def recorded(name: str):
        def method(self, *args):
            self.calls.append(name)
            return getattr(distributed.Runtime, name)(self, *args)

        return method

    Recording = type("Recording", (distributed.Runtime,), {n: recorded(n) for n in names})
    rt = Recording(torch.device("cpu"))
    rt.calls = []
    config = RunConfig(**{**BASE.to_dict(), "epochs": 1, "max_batches": 2,
                          "runs_dir": str(tmp_path)})  # fmt: skip
    last = list(pipeline.run(config, runtime=rt))[-1]
    assert last.kind == "run_finished" and last.status == "finished"
    assert set(rt.calls) == set(names) - {"close"}
