"""One process per run directory: a second one is refused with a clear message; kill -9 frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ecs_core import runlock
from ecs_core.runfiles import run_state
from ecs_core.store import RunInUse, RunStore


def test_lock_is_exclusive_names_holder_and_is_released(tmp_path):
    a, b = RunStore(tmp_path), RunStore(tmp_path)
    assert runlock.running_pid(tmp_path) is None
    a.lock()
    assert runlock.running_pid(tmp_path) == os.getpid()
    with pytest.raises(RunInUse, match="already open in this process") as refused:
        b.lock()  # a second store in this process (a notebook re-running a cell, say)
    assert refused.value.pid == os.getpid()
    a.close()
    assert runlock.running_pid(tmp_path) is None
    b.lock()  # free again
    b.close()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = (f"from ecs_core import runlock; runlock.acquire({str(tmp_path)!r}); "
            "print(1, flush=True); input()")  # fmt: skip
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout is not None and p.stdout.readline().strip() == "1"
    assert runlock.running_pid(tmp_path) == p.pid
    p.kill()
    p.wait()
    assert runlock.running_pid(tmp_path) is None
    runlock.release(runlock.acquire(tmp_path))


def test_resume_of_a_run_still_going_is_refused_then_works_after_kill(proc, tmp_path):
    """A run frozen mid-training (SIGSTOP) holds its directory: `ecs run --resume` exits 2 with
    one line naming the pid; `ecs runs` says running (its summary does not say so yet); after
    kill -9 the same resume finishes the run."""
    p, run_dir, _ = proc.run_until(
        [*proc.TINY, "--runs-dir", str(tmp_path)], lambda e: e["event"] == "pruned",
        sig=signal.SIGSTOP, wait=False,
    )  # fmt: skip
    try:
        before = (run_dir / "events.jsonl").read_text()
        refused = proc.finish(["--resume", str(run_dir)])
        assert refused.returncode == 2
        assert f"in use by another process (pid {p.pid})" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert (run_dir / "events.jsonl").read_text() == before
        assert run_state(run_dir, {}) == "running"
    finally:
        p.kill()
        p.wait()
    resumed = proc.finish(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    assert proc.summary(run_dir)["status"] == "finished"


def test_a_look_at_the_lock_does_not_refuse_a_run(tmp_path):
    """`running_pid` holds a shared lock for an instant; a run starting then waits it out."""
    import fcntl
    import threading

    (tmp_path / runlock.LOCK_NAME).touch()
    fd = os.open(tmp_path / runlock.LOCK_NAME, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    threading.Timer(0.05, os.close, [fd]).start()  # well inside PATIENCE_S (0.5 s)
    held = runlock.acquire(tmp_path)
    runlock.release(held)
    assert (tmp_path / runlock.LOCK_NAME).read_text() == ""  # no stale pid for the next message


def test_a_run_finished_meanwhile_is_not_run_again(tmp_path):
    """Two processes look at a cell before either locks it (two sweeps): the one that gets the
    lock second finds it finished and does nothing, whether it meant to resume or start it."""
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import run
    from ecs_core.sweep import open_run_dir

    cfg = RunConfig(width=0.125, epochs=1, max_batches=1, batch_size=32, quantize=False,
                    device="cpu", runs_dir=str(tmp_path))  # fmt: skip
    path = tmp_path / "cell"
    first, second = open_run_dir(path, cfg), open_run_dir(path, cfg)
    assert first is not None and second is not None
    assert (first[1], second[1]) == (False, True)
    events = list(run(cfg, store=first[0], resume=first[1]))
    assert events[-1].kind == "run_finished"
    before = (path / "events.jsonl").read_text()
    assert list(run(cfg, store=second[0], resume=second[1])) == []
    assert list(run(cfg, store=RunStore(path), resume=False)) == []
    assert (path / "events.jsonl").read_text() == before
    assert runlock.running_pid(path) is None


def test_a_run_killed_without_a_word_is_reported_died_with_the_resume_command(proc, tmp_path):
    """SIGKILL (as the OOM killer or a native crash leaves it): no summary status, lock free.
    `ecs runs` says died at once, with the last event seen and the `--resume` command."""
    from ecs_core.stats.runs import run_info

    p, run_dir, _ = proc.run_until(
        [*proc.TINY, "--runs-dir", str(tmp_path)], lambda e: e["event"] == "epoch_end",
        sig=signal.SIGKILL,
    )  # fmt: skip
    assert p.returncode == -signal.SIGKILL
    info = run_info(run_dir)
    assert info.status == "died"
    assert "last event: epoch_end (epoch 1/" in info.error
    assert info.error.endswith(f"continue with: ecs run --resume {run_dir}")
    listed = subprocess.run(
        [sys.executable, "-m", "ecs_tui.cli", "runs", str(tmp_path)], capture_output=True,
        text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "died" in listed.stdout and f"ecs run --resume {run_dir}" in listed.stdout
    resumed = proc.finish(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    assert run_info(run_dir).status == "finished"
