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

TINY = ["--width", "0.125", "--epochs", "3", "--max-batches", "4", "--batch-size", "32",
        "--no-quantize", "--step-size", "2"]  # fmt: skip


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
    return SimpleNamespace(TINY=TINY, finish=finish, run_until=run_until, summary=summary)
