"""Fixtures every test folder may use."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner


@contextlib.contextmanager
def _held_elsewhere(run_dir: Path) -> Iterator[subprocess.Popen]:
    """A second process holds `run_dir`'s lock (as another sweep or `ecs run` would) until the
    block ends; then it is killed, which frees the lock."""
    code = (f"from ecs_core import runlock; runlock.acquire({str(run_dir)!r}); "
            "print(1, flush=True); input()")  # fmt: skip
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "1"
        yield other
    finally:
        other.kill()
        other.wait()


@pytest.fixture
def lock_held_elsewhere() -> Callable[[Path], contextlib.AbstractContextManager]:
    """`with lock_held_elsewhere(run_dir) as proc:` (importlib mode: conftests are not imported)."""
    return _held_elsewhere


@pytest.fixture
def runner() -> CliRunner:
    """Typer's runner for `ecs` commands in this process."""
    return CliRunner()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running single-node Slurm cluster (`bench.slurm_cluster.Cluster`), its SLURM_CONF in
    this process's environment while the session lasts; a test that asks for it is skipped,
    with the reason, where it cannot start (not root, slurm-wlm or munge not installed)."""
    from bench.slurm_cluster import Cluster, Unavailable

    try:
        started = Cluster(tmp_path_factory.mktemp("slurm")).start()
    except Unavailable as exc:
        pytest.skip(f"no Slurm cluster: {exc}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(started.conf)
    yield started
    started.stop()
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
