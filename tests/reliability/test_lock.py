"""One process per run directory: a second one is refused with a clear message; kill -9 frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ecs_core import runlock
from ecs_core.stats.runs import run_status
from ecs_core.store import RunInUse, RunStore


def test_lock_is_exclusive_names_holder_and_is_released(tmp_path):
    a, b = RunStore(tmp_path), RunStore(tmp_path)
    assert runlock.running_pid(tmp_path) is None
    a.lock()
    assert runlock.running_pid(tmp_path) == os.getpid()
    with pytest.raises(RunInUse, match=f"pid {os.getpid()}"):
        b.lock()
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
        assert run_status(run_dir, {}) == "running"
    finally:
        p.kill()
        p.wait()
    resumed = proc.finish(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    assert proc.summary(run_dir)["status"] == "finished"
