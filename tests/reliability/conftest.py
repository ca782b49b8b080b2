"""Helpers to run `ecs run` in a subprocess, watch its JSON events, and kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.tiny import tiny_args

TINY = tiny_args(epochs=3, max_batches=4, step_size=2)


def ecs_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecs_tui.cli", *args]


def run_until(
    args: list[str],
    predicate: Callable[[dict], bool],
    sig: int = signal.SIGKILL,
    env=None,
    wait: bool = True,
) -> tuple[subprocess.Popen, Path | None, list[dict]]:
    """Start `ecs run --json`, send `sig` when an event matches, return (proc, run_dir, events).

    `wait=False` returns without waiting for the process to exit (after SIGSTOP, say)."""
    proc = subprocess.Popen(
        ecs_cmd("run", *args, "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    run_dir, seen = None, []
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        seen.append(event)
        if event["event"] == "run_started":
            run_dir = Path(event["run_dir"])
        if predicate(event):
            proc.send_signal(sig)
            break
    if wait:
        proc.wait(timeout=120)
    return proc, run_dir, seen


def finish(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(ecs_cmd("run", *args), capture_output=True, text=True, timeout=300)


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="session")
def proc() -> SimpleNamespace:
    """The subprocess helpers above, for tests (conftest is not importable in importlib mode)."""
    return SimpleNamespace(TINY=TINY, finish=finish, run_until=run_until, summary=summary,
                           run_bounded=run_bounded)  # fmt: skip


# `ecs ARGS` in a subprocess whose address space is capped at `limit` bytes above what it had
# mapped after importing the CLI and torch (torch alone maps gigabytes it never touches).
_BOUNDED = """
import resource, sys
import torch, ecs_core.quant.codec, ecs_core.models, ecs_core.stats, ecs_tui.cli
import ecs_tui.commands.quant, ecs_tui.commands.inspect, plotext
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
limit = vm + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.argv = ["ecs", *sys.argv[2:]]
ecs_tui.cli.main()
"""


def run_bounded(args: list[str], limit: int = 1536 << 20) -> subprocess.CompletedProcess:
    """`ecs ARGS` under a memory limit (Linux: reads /proc/self/status)."""
    cmd = [sys.executable, "-c", _BOUNDED, str(limit), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, finished, quantized tiny run (ECS on digits), made once; copy it to damage it."""
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import run

    cfg = RunConfig(width=0.125, epochs=2, max_batches=2, batch_size=32, device="cpu",
                    calib_batches=1, runs_dir=str(tmp_path_factory.mktemp("runs")))  # fmt: skip
    events = list(run(cfg))
    assert events[-1].kind == "run_finished", events[-1]
    return Path(events[0].run_dir)


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    """A private copy of `finished_run` under tmp_path/runs/ (same name)."""
    import shutil

    dest = tmp_path / "runs" / finished_run.name
    shutil.copytree(finished_run, dest, ignore=shutil.ignore_patterns(".lock"))
    return dest
