"""Fault injection in-process: NaN loss, out of memory, disk full, bad files, bad options."""

from __future__ import annotations

import errno
import json
import os
import pickle
import threading

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ecs_core.config import RunConfig
from ecs_core.events import CheckpointSaved, EpochEnd
from ecs_core.pipeline import run
from ecs_core.store import RunStore, StoreError
from ecs_core.train import NonFiniteLoss
from ecs_tui.cli import app
from tests.tiny import tiny

TINY = tiny(epochs=3, max_batches=2, method="snip")


class Fault:
    """Arm a fault after the first epoch: the wrapped function then misbehaves."""

    def __init__(self) -> None:
        self.armed = False


def _arm_after_epoch_1(events, fault: Fault, kind: type = EpochEnd) -> list:
    seen = []
    for e in events:
        seen.append(e)
        if isinstance(e, kind) and e.epoch == 1:
            fault.armed = True
    return seen


@pytest.fixture
def fault(monkeypatch):
    return Fault()


def _ckpt_epoch(run_dir) -> int:
    return int(torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["epoch"])


def test_nan_loss_stops_with_advice_and_keeps_checkpoint(tmp_path, monkeypatch, fault):
    real = torch.nn.functional.cross_entropy

    def ce(*a, **k):
        loss = real(*a, **k)
        return loss * float("nan") if fault.armed else loss

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", ce)
    store = RunStore.create(tmp_path, RunConfig(**TINY))
    with pytest.raises(NonFiniteLoss, match=r"epoch 2, batch 1.*--lr"):
        _arm_after_epoch_1(run(RunConfig(**TINY, runs_dir=str(tmp_path)), store=store), fault)
    assert json.loads((store.path / "summary.json").read_text())["status"] == "failed"
    assert _ckpt_epoch(store.path) == 1
    kinds = [json.loads(x)["event"] for x in (store.path / "events.jsonl").open()]
    assert kinds[-1] == "run_failed"


def test_out_of_memory_names_batch_size(tmp_path, monkeypatch, fault):
    real = torch.nn.functional.cross_entropy

    def ce(*a, **k):
        if fault.armed:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*a, **k)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", ce)
    import ecs_core.pipeline as pipeline

    orig_run = pipeline.run

    def run_arming(*a, **k):
        for e in orig_run(*a, **k):
            yield e
            if isinstance(e, EpochEnd) and e.epoch == 1:
                fault.armed = True

    monkeypatch.setattr(pipeline, "run", run_arming)
    res = CliRunner().invoke(app, ["run", "--width", "0.125", "--epochs", "3", "--max-batches",
                                   "2", "--batch-size", "32", "--no-quantize", "--method", "snip",
                                   "--runs-dir", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 1
    assert "batch size 32" in res.output and "--batch-size 16" in res.output
    assert "Traceback" not in res.output
    (run_dir,) = list(tmp_path.iterdir())
    assert _ckpt_epoch(run_dir) == 1


def test_disk_full_keeps_earlier_checkpoint(tmp_path, monkeypatch, fault):
    import ecs_core.store as store_mod

    real_fsync = os.fsync

    def fsync(fd):
        if fault.armed:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    store = RunStore.create(tmp_path, RunConfig(**TINY))
    with pytest.raises(StoreError, match="No space left"):
        events = run(RunConfig(**TINY, runs_dir=str(tmp_path)), store=store)
        _arm_after_epoch_1(events, fault, CheckpointSaved)
    assert _ckpt_epoch(store.path) == 1
    assert not list((store.path / "checkpoints").glob(".*.tmp"))
    from ecs_core.errors import explain

    try:
        store_mod.atomic_write_bytes(store.path / "x", b"1")
    except StoreError as exc:
        assert "disk is full" in explain(exc)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    root = tmp_path_factory.mktemp("ck")
    cfg = RunConfig(**{**TINY, "epochs": 1}, runs_dir=str(root))
    store = RunStore.create(root, cfg)
    list(run(cfg, store=store))
    return (store.path / "checkpoints" / "last.pt").read_bytes()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_checkpoint_loads_or_says_which_file(tmp_path, checkpoint_bytes, data):
    blob = bytearray(checkpoint_bytes)
    cut = data.draw(st.integers(0, len(blob)))
    flips = data.draw(st.lists(st.integers(0, len(blob) - 1), max_size=4))
    for i in flips:
        blob[i] ^= 0xFF
    blob = blob[:cut]
    store = RunStore(tmp_path)
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    (tmp_path / "checkpoints" / "last.pt").write_bytes(bytes(blob))
    try:
        state = store.load_checkpoint()
    except StoreError as exc:
        assert "last.pt" in str(exc)
    else:
        assert isinstance(state, dict)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('ECS_EVIL_MARK', '/tmp/ecs_evil_mark')}",))


def test_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    mark = tmp_path / "pwned"
    monkeypatch.setenv("ECS_EVIL_MARK", str(mark))
    (tmp_path / "checkpoints").mkdir()
    torch.save({"epoch": 1, "x": _Evil()}, tmp_path / "checkpoints" / "last.pt")
    with pytest.raises(StoreError, match="last.pt"):
        RunStore(tmp_path).load_checkpoint()
    (tmp_path / "model.safetensors").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(StoreError, match="model.safetensors"):
        RunStore(tmp_path).load_tensors("model.safetensors")
    assert not mark.exists()


def test_two_runs_same_second_never_share_a_dir(tmp_path):
    cfg = RunConfig()
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(RunStore.create(tmp_path, cfg).path))
               for _ in range(8)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 8


def test_watch_skips_half_written_line(tmp_path):
    store = RunStore(tmp_path)
    line = json.dumps({"event": "log", "t": 0.0, "message": "hello"})
    (tmp_path / "events.jsonl").write_text(line + "\n" + line[:10])
    assert [e.message for e in store.read_events()] == ["hello"]
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write(line[10:] + "\n")
    assert [e.message for e in store.read_events()] == ["hello", "hello"]


_VALUES = st.one_of(
    st.integers(-5, 300).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "abc", "VGG16", "resnet50", "cifar10", "layer", "union", "none", "1e-3"]),
    st.text(max_size=6),
)  # fmt: skip
_OPTIONS = ["--model", "--dataset", "--method", "--density", "--scope", "--budget", "--epochs",
            "--lr", "--batch-size", "--width", "--bits", "--momentum", "--compression",
            "--warmup-epochs", "--step-size", "--gamma", "--max-batches", "--device"]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_OPTIONS), _VALUES), min_size=1, max_size=4))
def test_cli_fuzz_invalid_input_exits_2_never_traceback(monkeypatch_module, pairs):
    args = ["run"] + [x for pair in pairs for x in pair]
    res = CliRunner().invoke(app, args)
    assert res.exit_code in (0, 2), res.output
    assert "Traceback" not in res.output
    if res.exit_code == 2:
        assert res.output.strip()


@pytest.fixture(scope="module")
def monkeypatch_module():
    """Replace execution by a no-op: the fuzz test is about parsing and validation."""
    mp = pytest.MonkeyPatch()
    import ecs_tui.commands.run as run_cmd

    mp.setattr(run_cmd, "execute", lambda config, store, as_json: 0)
    yield mp
    mp.undo()
