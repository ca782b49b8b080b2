"""A sweep's planned cells: `<sweep>/cells.json`, the cell names its last `ecs sweep` (or
`ecs sweep --slurm`) command made, written before the first cell starts.

A cell's run directory appears only when the cell starts (or, on Slurm, when it is submitted),
so the run directories alone cannot say how many cells are still to come; this list can. The
app's Runs tab counts a planned cell with no run directory as waiting. Running the sweep again
with another grid writes that command's cells. Torch-free (the app reads it), and read through
`safeio` (a sweep folder may come from anyone): anything but a list of plain names reads as no
plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ecs_core import safeio

PLAN = "cells.json"
MAX_PLAN = 4 << 20
"""A plan names each cell once (~40 bytes): this holds about 100,000 cells."""


def _plain(name: object) -> bool:
    """A folder name right under the sweep (not hidden, no path)."""
    return (
        isinstance(name, str)
        and bool(name)
        and not name.startswith(".")
        and not any(c in name for c in "/\\\0")
    )


def write_plan(sweep_dir: str | Path, names: Iterable[str]) -> None:
    """Record the cells (by directory name, in the sweep's order) as the sweep's plan; raises
    `store.StoreError` when it cannot be written."""
    from ecs_core.store import StoreError, atomic_write_json

    sweep_dir = Path(sweep_dir)
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {sweep_dir}: {exc.strerror or exc}") from exc
    atomic_write_json(sweep_dir / PLAN, {"cells": list(names)})


def planned_cells(sweep_dir: str | Path) -> list[str] | None:
    """The cell names of the sweep's plan, or None: no plan (a folder that is not a sweep, or a
    sweep from before plans), or one that is damaged or not a plan."""
    try:
        data = safeio.read_json(Path(sweep_dir) / PLAN, MAX_PLAN)
    except (OSError, ValueError, RecursionError):
        return None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list) or not all(map(_plain, cells)):
        return None
    return list(dict.fromkeys(cells))
