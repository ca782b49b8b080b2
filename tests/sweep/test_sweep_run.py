"""Running sweeps: killed and re-run, a failing cell, and the worker-process (GPU) path on CPU."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ecs_core.config import RunConfig
from ecs_core.sweep import Grid, cell_status, make_cells, run_sweep
from ecs_tui.cli import app

pytestmark = pytest.mark.slow
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _sweep_argv(runs: Path, grid: list[str], tiny: list[str]) -> list[str]:
    return [sys.executable, "-m", "ecs_tui.cli", "sweep", *grid, *tiny,
            "--runs-dir", str(runs), "--name", "t"]  # fmt: skip


def _kill_during_third_cell(argv: list[str]) -> list[str]:
    """Start the sweep, SIGKILL it once the third cell has pruned; return what it printed."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=ENV)  # fmt: skip
    lines = []
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("[3/8]") and "pruned" in line:
                proc.kill()
                break
    finally:
        proc.kill()
        proc.wait()
    return lines


def test_killed_sweep_reruns_skipping_finished_cells(
    tmp_path: Path, grid_2x2x2: list[str], tiny: list[str]
) -> None:
    """2 methods x 2 densities x 2 seeds: SIGKILL during the third cell, run again. Finished
    cells are skipped untouched, the killed one resumes, the rest start; the final table has all
    eight cells finished, and no cell was run into a second directory."""
    runs = tmp_path / "runs"
    argv = _sweep_argv(runs, grid_2x2x2, tiny)
    first = _kill_during_third_cell(argv)
    assert any(line.startswith("[3/8]") for line in first), "".join(first)
    root = runs / "t"
    cells = sorted(p.name for p in root.iterdir() if p.is_dir())  # the plan, cells.json, too
    before = {name: cell_status(root / name) for name in cells}
    finished = {n for n, s in before.items() if s == "finished"}
    assert len(finished) == 2, before  # the first two cells
    assert before["vgg16-digits-snip-d0.1-s0"] in ("died", "finished")
    sizes = {n: (root / n / "events.jsonl").stat().st_size for n in finished}

    second = subprocess.run(argv, capture_output=True, text=True, env=ENV)
    out = second.stdout
    assert second.returncode == 0, out + second.stderr
    all_cells = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert len(all_cells) == 8
    for name in all_cells:
        state = {"finished": "finished earlier, skipped", "died": "resumed"}.get(
            before.get(name, "new"), "started"
        )
        assert f"] {name}  {state}\n" in out, (name, out)
    for name in finished:  # skipped means not even an event appended
        assert (root / name / "events.jsonl").stat().st_size == sizes[name]
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("cell "))
    rows = [line.split() for line in lines[header + 1 : header + 9]]
    assert sorted(row[0] for row in rows) == all_cells
    assert all(row[1] == "finished" for row in rows)
    assert all(cell_status(root / n) == "finished" for n in all_cells)


def test_a_failing_cell_does_not_end_the_sweep(
    runner: CliRunner, tmp_path: Path, tiny: list[str]
) -> None:
    """Density 1e-5 leaves whole layers empty (a PruneError); the next cell still runs, the
    table shows both, and the exit code says something failed."""
    args = ["sweep", "--methods", "snip", "--densities", "0.00001,0.2", *tiny,
            "--runs-dir", str(tmp_path), "--name", "f"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "vgg16-digits-snip-d1e-05-s0  failed: PruneError" in result.output
    assert "[2/2] vgg16-digits-snip-d0.2-s0  finished" in result.output
    assert cell_status(tmp_path / "f" / "vgg16-digits-snip-d1e-05-s0") == "failed"


def test_worker_processes_run_every_cell_once(tmp_path: Path) -> None:
    """The one-process-per-GPU path, on CPU: two workers share three cells; their events come
    back through the pipe as the same Event objects the in-process path yields."""
    base = RunConfig(width=0.125, epochs=1, max_batches=1, batch_size=32, quantize=False,
                     device="cpu")  # fmt: skip
    cells = make_cells(Grid(methods=("snip",), seeds=(0, 1, 2)), base, tmp_path, "p")
    updates = []
    results = run_sweep(cells, gpus=["0", "1"], report=updates.append)
    assert [r.status for r in results] == ["finished"] * 3
    started = [u.cell.name for u in updates if u.state == "started"]
    assert sorted(started) == sorted(c.name for c in cells)
    kinds = {u.event.kind for u in updates if u.state == "event"}
    assert {"run_started", "pruned", "epoch_end", "run_finished"} <= kinds
    assert "batch_progress" not in kinds
    again = []
    run_sweep(cells, gpus=["0", "1"], report=again.append)
    assert {u.state for u in again} == {"skipped"}


def test_a_printed_command_runs_its_cell(
    runner: CliRunner, tmp_path: Path, tiny: list[str]
) -> None:
    """`--print-commands` output is runnable: the `ecs run` line trains the cell into its fixed
    directory, and a second run of the same line finds it finished."""
    run_cmd = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    if "run_dir" not in {p.name for p in run_cmd.params}:
        pytest.skip("`ecs run --run-dir` is not in commands/run.py yet (see the sweep report)")
    args = ["sweep", "--methods", "random", *tiny, "--runs-dir", str(tmp_path), "--name", "c"]
    printed = runner.invoke(app, [*args, "--print-commands"])
    (line,) = printed.output.strip().splitlines()
    argv = shlex.split(line)[1:]
    assert runner.invoke(app, argv).exit_code == 0
    cell = tmp_path / "c" / "vgg16-digits-random-d0.05-s0"
    assert cell_status(cell) == "finished"
    again = runner.invoke(app, argv)
    assert again.exit_code == 0 and "already finished" in again.output


@pytest.mark.parametrize("gpus", [None, ["0"]], ids=["in-process", "workers"])
def test_a_cell_another_process_runs_is_left_to_it(
    tmp_path: Path, gpus: list[str] | None, lock_held_elsewhere
) -> None:
    """Two sweeps over one grid (say, one per GPU): a cell whose directory another process
    holds is reported busy and left untouched; the other cells run; run again once it is free."""
    from ecs_core.sweep import open_run_dir

    base = RunConfig(width=0.125, epochs=1, max_batches=1, batch_size=32, quantize=False,
                     device="cpu")  # fmt: skip
    cells = make_cells(Grid(methods=("snip",), seeds=(0, 1)), base, tmp_path, "b")
    open_run_dir(cells[0].path, cells[0].config)  # the other sweep made it and holds it
    with lock_held_elsewhere(cells[0].path) as other:
        assert cell_status(cells[0].path) == "running"
        updates = []
        results = run_sweep(cells, gpus=gpus, report=updates.append)
        done = {u.cell.name: u for u in updates if u.state == "done"}
        assert done[cells[0].name].status == "busy"
        assert f"pid {other.pid} is running it" in (done[cells[0].name].error or "")
        assert done[cells[1].name].status == "finished"
        assert [r.status for r in results] == ["running", "finished"]
        assert not (cells[0].path / "events.jsonl").exists()
    assert cell_status(cells[0].path) == "died"  # the other process took the lock, and is gone
    assert [r.status for r in run_sweep(cells, gpus=gpus)] == ["finished", "finished"]


def test_cpu_jobs_run_cells_side_by_side_with_a_share_of_the_cores(
    tmp_path: Path, tiny: list[str]
) -> None:
    """`ecs sweep --jobs 2` on the CPU: two worker processes, each told its share of the cores
    (OMP_NUM_THREADS); every cell finishes once; a grid file's `jobs` does the same."""
    from ecs_core.sweep.parallel import cpu_slots, worker_threads

    assert cpu_slots(2) == [{"OMP_NUM_THREADS": str(worker_threads(2)),
                             "MKL_NUM_THREADS": str(worker_threads(2))}] * 2  # fmt: skip
    assert worker_threads(10_000) == 1
    runs = tmp_path / "runs"
    grid = tmp_path / "g.toml"
    grid.write_text('name = "j"\njobs = 2\n[grid]\nmethods = ["snip", "random"]\nseeds = [0, 1]\n')
    argv = [sys.executable, "-m", "ecs_tui.cli", "sweep", "--grid", str(grid), *tiny,
            "--runs-dir", str(runs)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert ("4 cells (1 models x 1 datasets x 2 methods x 1 distributions x 1 structures x "
            "1 densities x 1 ablations x 2 seeds)"
            f", 2 at a time, {worker_threads(2)} thread(s) each") in out.stdout  # fmt: skip
    assert "Warning" not in out.stderr, out.stderr  # the worker module runs cleanly as __main__
    cells = sorted(p.name for p in (runs / "j").iterdir() if p.is_dir())
    assert len(cells) == 4 and all(cell_status(runs / "j" / c) == "finished" for c in cells)


def test_a_channel_sweep_names_its_cells_apart_from_weight_cells(
    runner: CliRunner, tmp_path: Path, tiny: list[str]
) -> None:
    """`ecs sweep --structure channel`: two cells train the smaller models (channels.json), and
    their directories are not the weight cells' of the same grid, so the two never collide;
    each cell's printed line says --structure channel."""
    grid = ["--methods", "snip,magnitude", "--densities", "0.3"]
    args = ["sweep", *grid, *tiny, "--structure", "channel", "--runs-dir", str(tmp_path),
            "--name", "ch"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    cells = sorted(p.name for p in (tmp_path / "ch").iterdir() if p.is_dir())
    assert cells == ["vgg16-digits-magnitude-layer-channel-d0.3-s0",
                     "vgg16-digits-snip-layer-channel-d0.3-s0"]  # fmt: skip
    for name in cells:
        assert cell_status(tmp_path / "ch" / name) == "finished"
        assert (tmp_path / "ch" / name / "channels.json").is_file()
    where = ["--runs-dir", str(tmp_path), "--name", "ch", "--print-commands"]
    weight = runner.invoke(app, ["sweep", *grid, *tiny, *where])
    assert weight.exit_code == 0 and "d0.3-s0" in weight.output
    assert not any(name in weight.output for name in cells)
    printed = runner.invoke(app, ["sweep", *grid, *tiny, "--structure", "channel", *where])
    assert all("--structure channel" in line for line in printed.output.strip().splitlines())


def test_the_plan_lists_every_cell_before_the_first_starts(tmp_path: Path) -> None:
    """A sweep stopped before any cell ran has written its plan (and nothing else)."""
    import threading

    from ecs_core.sweepplan import planned_cells

    cells = make_cells(Grid(methods=("snip", "ecs"), seeds=(0, 1)), RunConfig(dataset="digits"),
                       tmp_path, "t")  # fmt: skip
    stop = threading.Event()
    stop.set()
    results = run_sweep(cells, stop)
    assert [r.status for r in results] == ["new"] * 4
    assert planned_cells(tmp_path / "t") == [c.name for c in cells]
    assert not any(c.path.exists() for c in cells)
