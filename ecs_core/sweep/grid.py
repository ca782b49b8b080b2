"""The grid of a sweep: axes from options or a TOML file, and the cells they make."""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecs_core.config import ConfigError, RunConfig
from ecs_core.sweep.cells import Cell, SweepError

_D = RunConfig()
AXES = {"models": "model", "datasets": "dataset", "methods": "method", "densities": "density",
        "seeds": "seed"}  # fmt: skip
"""Grid axis -> the RunConfig field it varies."""


@dataclass(frozen=True)
class Grid:
    """The values each axis takes; the sweep is their Cartesian product."""

    models: tuple[str, ...] = (_D.model,)
    datasets: tuple[str, ...] = (_D.dataset,)
    methods: tuple[str, ...] = (_D.method,)
    densities: tuple[float, ...] = (_D.density,)
    seeds: tuple[int, ...] = (_D.seed,)


def cell_name(config: RunConfig) -> str:
    """Directory name of a cell, e.g. `vgg16-digits-snip-d0.05-s0` (`snip-shuffle` if ablated)."""
    c = config
    return f"{c.model_tag}-{c.dataset}-{c.method_tag}-d{c.density:g}-s{c.seed}"


def make_cells(grid: Grid, base: RunConfig, runs_dir: str | Path, sweep: str) -> list[Cell]:
    """Every combination of the grid over `base`, validated, in a stable order.

    Cells that name the same run (method `none` forces density 1) appear once.
    """
    if not sweep or sweep in (".", "..") or "/" in sweep or "\\" in sweep:
        raise SweepError(f"sweep name {sweep!r} must be a plain folder name, like 'table1'")
    root = Path(runs_dir) / sweep
    out: dict[str, Cell] = {}
    for values in itertools.product(*(getattr(grid, axis) for axis in AXES)):
        fields = dict(zip(AXES.values(), values, strict=True))
        config = dataclasses.replace(base, runs_dir=str(root), **fields).validate()
        name = cell_name(config)
        if base.tensorboard:  # one sub-folder per cell, so TensorBoard compares them
            config = dataclasses.replace(config, tensorboard=str(Path(base.tensorboard) / name))
        out.setdefault(name, Cell(name, config, root / name))
    return list(out.values())


# --- grid files (TOML)


def read_grid_file(path: str | Path) -> tuple[str | None, dict[str, tuple], dict[str, Any]]:
    """(sweep name, axes, run options) from a TOML file laid out as::

    name = "table1"                 # optional: the sweep's folder under --runs-dir
    [grid]                          # any of: models, datasets, methods, densities, seeds
    methods = ["snip", "ecs"]
    densities = [0.2, 0.1, 0.05]
    seeds = [0, 1, 2]
    [run]                           # any `ecs run` option (RunConfig field), for every cell
    width = 0.25
    epochs = 70
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"cannot read grid file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path} is not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - {"name", "grid", "run"})
    if unknown:
        raise SweepError(f"{path}: unknown key(s) {', '.join(unknown)}; use name, [grid], [run]")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise SweepError(f"{path}: name must be a string, got {name!r}")
    axes = _read_axes(path, data.get("grid", {}))
    run = {k.replace("-", "_"): v for k, v in data.get("run", {}).items()}
    misplaced = sorted(set(run) & set(AXES.values()))
    if misplaced:
        raise SweepError(f"{path}: {', '.join(misplaced)} belong in [grid] (as lists), not [run]")
    try:
        RunConfig.from_dict(run)  # unknown fields and wrong types, named
    except ConfigError as exc:
        raise SweepError(f"{path} [run]: {exc}") from exc
    return name, axes, run


def _read_axes(path: Path, table: Any) -> dict[str, tuple]:
    if not isinstance(table, dict):
        raise SweepError(f"{path}: [grid] must be a table")
    unknown = sorted(set(table) - set(AXES))
    if unknown:
        raise SweepError(f"{path} [grid]: unknown axis {', '.join(unknown)}; use {', '.join(AXES)}")
    axes = {}
    for axis, values in table.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SweepError(f"{path} [grid]: {axis} is empty")
        axes[axis] = tuple(values)
    return axes
