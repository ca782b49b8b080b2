"""`ecs show --width/--height` are bounded: a plot is built cell by cell in memory."""

from __future__ import annotations

import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize(
    "view, opts",
    [("sparsity", ["--width", "10000000"]),
     ("clusters", ["--width", "100000", "--height", "100000"]),
     ("curves", ["--height", "0"]), ("kernels", ["--width", "-3"])],
)  # fmt: skip
def test_huge_or_silly_canvas_is_refused_with_exit_2(proc, finished_run, view, opts):
    r = proc.run_bounded(["show", str(finished_run), view, *opts])
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert opts[0] in r.stderr and " must be in " in r.stderr, r.stderr


def test_terminal_size_is_clamped_not_refused(proc, finished_run, monkeypatch):
    """A bogus COLUMNS (what the terminal says) draws at the largest size instead."""
    monkeypatch.setenv("COLUMNS", "10000000")
    monkeypatch.setenv("LINES", "3")
    r = proc.run_bounded(["show", str(finished_run), "sparsity"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert max(len(line) for line in r.stdout.splitlines()) <= 1000
