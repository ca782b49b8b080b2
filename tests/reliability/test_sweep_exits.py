"""`ecs sweep --gpus` names GPUs that exist; a sweep that left cells to another process says so
with its own exit code (3), not the 130 of an interrupted one."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from ecs_core.config import RunConfig
from ecs_core.sweep import Grid, make_cells, open_run_dir
from ecs_tui.cli import app
from ecs_tui.commands.exits import EXIT_BUSY
from tests.tiny import tiny_args

TINY = tiny_args()


@pytest.mark.parametrize("spec, visible", [("7", 2), ("foo", 2), ("0", 0), ("1,1", 2)])
def test_gpus_that_are_not_visible_are_refused(tmp_path, monkeypatch, spec, visible):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    res = CliRunner().invoke(app, ["sweep", *TINY, "--runs-dir", str(tmp_path), "--gpus", spec])
    assert res.exit_code == 2, (res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert ("visible GPUs are 0,1" if visible else "no GPU is visible") in lines[0], lines[0]
    assert not list(tmp_path.rglob("config.json"))


def test_sweep_that_left_a_cell_to_another_process_exits_3(tmp_path, lock_held_elsewhere):
    base = RunConfig(width=0.125, epochs=1, max_batches=1, batch_size=32, quantize=False)
    cells = make_cells(Grid(methods=("snip",), seeds=(0, 1)), base, tmp_path, "b")
    open_run_dir(cells[0].path, cells[0].config)
    with lock_held_elsewhere(cells[0].path):
        res = CliRunner().invoke(app, ["sweep", *TINY, "--methods", "snip", "--seeds", "0,1",
                                       "--runs-dir", str(tmp_path), "--name", "b",
                                       "--gpus", "none"])  # fmt: skip
    assert res.exit_code == EXIT_BUSY == 3, (res.output, res.exception)
    assert "left to another process" in res.stderr and "Traceback" not in res.output
