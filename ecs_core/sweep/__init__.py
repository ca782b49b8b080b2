"""Sweeps: one run per cell of a grid (models x datasets x methods x densities x seeds).

Every cell has a fixed directory, `<runs_dir>/<sweep>/<model>-<dataset>-<method>-d<density>-s<seed>`
(`cell_name`), so running the same sweep again finds its cells: finished ones are skipped,
interrupted ones resume from their last checkpoint, the rest start. Cells run one after another
in this process, or in worker processes (`parallel.py`, imported only when needed: it is also
the worker's `__main__`): one per GPU, or `jobs` of them on the
CPU, each with its share of the cores.
Example (notebook)::

    from ecs_core.config import RunConfig
    from ecs_core.sweep import Grid, make_cells, run_sweep
    grid = Grid(methods=("snip", "ecs"), densities=(0.1, 0.05), seeds=(0, 1))
    cells = make_cells(grid, RunConfig(width=0.25, epochs=5, quantize=False), "runs", "demo")
    for result in run_sweep(cells):
        print(result.cell.name, result.status, result.summary.get("test_acc"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecs_core import events as ev
from ecs_core.config import SWEEP_AXIS_TYPES as AXIS_TYPES
from ecs_core.runfiles import FINISHED, NEW, RUNNING
from ecs_core.runlock import running_pid
from ecs_core.store import RunInUse, StoreError
from ecs_core.sweep.cells import (
    Cell,
    CellResult,
    CellUpdate,
    Report,
    SweepError,
    busy,
    cell_status,
    check_run_dir,
    collect,
    open_run_dir,
    run_cell,
)
from ecs_core.sweep.grid import (
    AXES,
    Block,
    Grid,
    GridFile,
    cell_name,
    make_cells,
    read_grid_file,
)
from ecs_core.sweepplan import write_plan

__all__ = [
    "AXES", "AXIS_TYPES", "Block", "Cell", "CellResult", "CellUpdate", "Grid", "GridFile",
    "SweepError", "cell_name", "cell_status", "check_run_dir", "collect", "make_cells",
    "open_run_dir", "read_grid_file", "run_cell", "run_sweep",
]  # fmt: skip


def run_sweep(
    cells: list[Cell],
    stop: Any = None,
    gpus: list[str] | None = None,
    report: Report | None = None,
    jobs: int = 1,
) -> list[CellResult]:
    """Run every unfinished cell; return every cell's final status (skipped ones included).

    `gpus`: a list of CUDA device ids runs one worker process per id. Otherwise `jobs` > 1
    runs that many worker processes, each with `parallel.worker_threads(jobs)` torch threads;
    `jobs` 1 runs the cells one after another in this process. `stop` (anything with
    `is_set()`): the running cells stop at a batch boundary and save; the waiting ones stay for
    the next run of the sweep. Before the first cell starts, each sweep folder's plan
    (`sweepplan.PLAN`) lists its cells, so a listing can count the cells still to come.
    """
    for cell in cells:
        check_run_dir(cell.path, cell.config)  # fail before running anything
    folders: dict[Path, list[str]] = {}
    for cell in cells:
        folders.setdefault(cell.path.parent, []).append(cell.name)
    for folder, names in folders.items():
        try:
            write_plan(folder, names)
        except StoreError as exc:
            raise SweepError(f"{exc}; check the folder's permissions and space") from exc
    report = report or (lambda update: None)
    if gpus or jobs > 1:
        from ecs_core.sweep.parallel import cpu_slots, gpu_slots, run_parallel

        slots = gpu_slots(gpus) if gpus else cpu_slots(jobs)
        run_parallel(cells, slots, stop, report)
    else:
        _run_sequential(cells, stop, report)
    return [collect(cell) for cell in cells]


def _run_sequential(cells: list[Cell], stop: Any, report: Report) -> None:
    total = len(cells)
    for index, cell in enumerate(cells, start=1):
        status = cell_status(cell.path)
        if status == FINISHED.word:
            report(CellUpdate(index, total, cell, "skipped", status=status))
            continue
        if stop is not None and stop.is_set():
            return
        if status == RUNNING.word:  # another sweep (or `ecs run`) is on it: leave it to that one
            error = busy(running_pid(cell.path))
            report(CellUpdate(index, total, cell, "done", status="busy", error=error))
            continue
        report(CellUpdate(index, total, cell, "started" if status == NEW.word else "resumed"))
        final, error = None, None
        try:
            for event in run_cell(cell, stop):
                report(CellUpdate(index, total, cell, "event", event))
                if isinstance(event, ev.RunFinished):
                    final = event.status
            final = final or cell_status(cell.path)  # no events: finished by another process
        except RunInUse as exc:  # taken by another process since we looked
            final, error = "busy", busy(exc.pid)
        except Exception as exc:  # one failed cell must not end the sweep
            final, error = "failed", f"{type(exc).__name__}: {exc}"
        report(CellUpdate(index, total, cell, "done", status=final, error=error))
