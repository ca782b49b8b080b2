"""Every read of a run's files is bounded: a file that is a link to /dev/zero or a FIFO is
refused in one line, JSON has a size cap, events.jsonl is read from its tail (the views say
so). Each command runs as a user would, in a subprocess whose memory is capped
(`proc.run_bounded`: a limit above what importing torch and the CLI mapped)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

READERS = {  # each run file, and the commands that read it
    "config.json": [["runs", "{parent}"], ["report", "{run}"], ["export", "{run}", "-o", "{out}"]],
    "summary.json": [["runs", "{parent}"], ["report", "{run}"], ["show", "{run}", "sparsity"]],
    "events.jsonl": [["runs", "{parent}"], ["report", "{run}"], ["show", "{run}", "curves"]],
    "model.safetensors": [["show", "{run}", "clusters"], ["export", "{run}", "-o", "{out}"]],
    "masks.safetensors": [["show", "{run}", "sparsity"], ["export", "{run}", "-o", "{out}"]],
    "quantized.safetensors": [["report", "{run}"], ["export", "{run}", "-o", "{out}"]],
    "checkpoints/last.pt": [["run", "--resume", "{run}"]],
    "model.ecsz": [["eval", "{run}/model.ecsz"]],
}


def _args(template: list[str], run: Path, tmp: Path) -> list[str]:
    values = {"run": str(run), "parent": str(run.parent), "out": str(tmp / "out.ecsz")}
    return [a.format(**values) for a in template]


def _one_line_or_fine(res: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in res.stderr and "MemoryError" not in res.stderr, res.stderr[-2000:]
    assert res.returncode in (0, 2), res.stderr[-2000:]
    if res.returncode == 2:
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def _resumable(run: Path) -> None:
    (run / "summary.json").unlink()  # as if killed: `run --resume` reads the checkpoint


@pytest.mark.parametrize("name", list(READERS))
def test_a_file_linked_to_dev_zero_is_refused_in_one_line(proc, run_copy, tmp_path, name):
    if name == "checkpoints/last.pt":
        _resumable(run_copy)
    (run_copy / name).unlink()
    (run_copy / name).symlink_to("/dev/zero")
    for template in READERS[name]:
        res = proc.run_bounded(_args(template, run_copy, tmp_path), 512 << 20)
        _one_line_or_fine(res)
        if res.returncode == 2:
            assert name.split("/")[-1] in res.stderr, res.stderr


@pytest.mark.parametrize("name", ["summary.json", "events.jsonl", "model.safetensors"])
def test_a_fifo_is_refused_not_waited_on(proc, run_copy, tmp_path, name):
    (run_copy / name).unlink()
    os.mkfifo(run_copy / name)
    for template in READERS[name]:  # reading a FIFO would block until run_bounded's timeout
        _one_line_or_fine(proc.run_bounded(_args(template, run_copy, tmp_path), 512 << 20))


def test_ten_million_event_lines_are_read_as_a_tail(proc, run_copy):
    """main: 1.1 GB and 112 s for `ecs show curves`; now its last lines, and a note saying so."""
    real = (run_copy / "events.jsonl").read_bytes()
    with open(run_copy / "events.jsonl", "wb") as f:
        f.write(b"{}\n" * 10_000_000)
        f.write(real)
    for view in (["show", str(run_copy), "curves"], ["report", str(run_copy)]):
        res = proc.run_bounded(view, 512 << 20)
        assert res.returncode == 0, res.stderr[-2000:]
        assert "only its last 400,000 lines" in res.stderr, res.stderr


def test_one_200_mb_line_is_skipped(proc, run_copy):
    real = (run_copy / "events.jsonl").read_bytes()
    with open(run_copy / "events.jsonl", "wb") as f:
        f.write(real)
        f.write(b'{"event": "' + b"x" * (200 << 20) + b'"}\n')
    _one_line_or_fine(proc.run_bounded(["show", str(run_copy), "curves"], 512 << 20))


def test_a_json_file_larger_than_the_cap_is_refused(proc, run_copy):
    from ecs_core import safeio

    with open(run_copy / "config.json", "wb") as f:
        f.truncate(safeio.MAX_JSON + 1)  # sparse: no disk used
    res = proc.run_bounded(["report", str(run_copy)], 512 << 20)
    assert res.returncode == 2 and "config.json" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
