"""The grid of a sweep: axes from options or a TOML file, and the cells they make.

A grid file holds one `[grid]` (the Cartesian product of its axes), or several `[[grid]]`
blocks, each a product of its own, optionally with `run` options of its own (an ECS block
with `run = {budget = "union"}`, an IMP block with its rewind epoch). The sweep is the union of
the blocks' cells.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecs_core.config import SWEEP_AXES as AXES
from ecs_core.config import ConfigError, RunConfig
from ecs_core.sweep.cells import Cell, SweepError

_D = RunConfig()


@dataclass(frozen=True)
class Grid:
    """The values each axis takes; the sweep is their Cartesian product."""

    models: tuple[str, ...] = (_D.model,)
    datasets: tuple[str, ...] = (_D.dataset,)
    methods: tuple[str, ...] = (_D.method,)
    distributions: tuple[str, ...] = (_D.distribution,)
    structures: tuple[str, ...] = (_D.structure,)
    densities: tuple[float, ...] = (_D.density,)
    ablations: tuple[str, ...] = (_D.ablate,)
    seeds: tuple[int, ...] = (_D.seed,)

    @property
    def size(self) -> int:
        """Combinations before cells that name the same run are merged."""
        n = 1
        for axis in AXES:
            n *= len(getattr(self, axis))
        return n


@dataclass(frozen=True)
class Block:
    """One product of the sweep: a grid, and `run` options (RunConfig fields) for its cells only."""

    grid: Grid = field(default_factory=Grid)
    run: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GridFile:
    """What a grid file says: the sweep's name, its blocks, options for every cell, and how
    many cells to run at a time (`jobs`)."""

    name: str | None
    blocks: tuple[Block, ...]
    run: dict[str, Any]
    jobs: int | None = None


def cell_name(config: RunConfig) -> str:
    """Directory name of a cell, e.g. `vgg16-digits-snip-d0.05-s0`: the method carries the
    settings that change what it keeps (`snip-shuffle` if ablated, `ecs-union`, `snip-layer`)."""
    c = config
    return f"{c.model_tag}-{c.dataset}-{c.method_tag}-d{c.density:g}-s{c.seed}"


def make_cells(
    grid: Grid | Sequence[Block],
    base: RunConfig,
    runs_dir: str | Path,
    sweep: str,
    keep: Iterable[str] = (),
) -> list[Cell]:
    """Every combination of the grid (or of each block) over `base`, validated, in a stable order.

    A block's `run` options replace `base`'s, except the fields named in `keep` (options typed
    on the command line, which win over the file). Cells that name the same run (method `none`
    forces density 1) appear once; two different runs that would share a directory are refused.
    """
    if not sweep or sweep in (".", "..") or "/" in sweep or "\\" in sweep:
        raise SweepError(f"sweep name {sweep!r} must be a plain folder name, like 'table1'")
    blocks = [Block(grid)] if isinstance(grid, Grid) else list(grid)
    root = Path(runs_dir) / sweep
    keep = set(keep)
    out: dict[str, Cell] = {}
    for block in blocks:
        try:
            typed = RunConfig.from_dict(block.run)
        except ConfigError as exc:
            raise SweepError(f"a [[grid]] block's run options: {exc}") from exc
        fixed = {k: getattr(typed, k) for k in block.run if k not in keep}
        block_base = dataclasses.replace(base, **fixed)
        for values in itertools.product(*(getattr(block.grid, axis) for axis in AXES)):
            fields = dict(zip(AXES.values(), values, strict=True))
            config = dataclasses.replace(block_base, runs_dir=str(root), **fields).validate()
            name = cell_name(config)
            if base.tensorboard:  # one sub-folder per cell, so TensorBoard compares them
                config = dataclasses.replace(config, tensorboard=str(Path(base.tensorboard) / name))
            seen = out.get(name)
            if seen is None:
                out[name] = Cell(name, config, root / name)
            elif seen.config != config:
                diff = ", ".join(seen.config.differences(config))
                raise SweepError(
                    f"two cells of the grid would share the directory {name} but differ in "
                    f"{diff}; put them in sweeps of their own (or vary a setting the name shows)"
                )
    return list(out.values())


# --- grid files (TOML)


def read_grid_file(path: str | Path) -> GridFile:
    """A grid file laid out as::

    name = "table1"                 # optional: the sweep's folder under --runs-dir
    jobs = 2                        # optional: cells at a time (default: one, or one per GPU)
    [grid]                          # any of: models, datasets, methods, distributions,
                                    # structures, densities, ablations, seeds
    methods = ["snip", "ecs"]
    densities = [0.2, 0.1, 0.05]
    seeds = [0, 1, 2]
    [run]                           # any `ecs run` option (RunConfig field), for every cell
    width = 0.25
    epochs = 70

    or with several blocks, each a product of its own and with options of its own::

    [[grid]]
    methods = ["snip", "ecs"]
    [[grid]]
    methods = ["ecs"]
    run = {budget = "union"}
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"cannot read grid file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path} is not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - {"name", "jobs", "grid", "run"})
    if unknown:
        raise SweepError(
            f"{path}: unknown key(s) {', '.join(unknown)}; use name, jobs, [grid], [run]"
        )
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise SweepError(f"{path}: name must be a string, got {name!r}")
    jobs = data.get("jobs")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise SweepError(f"{path}: jobs must be a whole number >= 1, got {jobs!r}")
    run = _read_run(path, "[run]", data.get("run", {}))
    tables = data.get("grid", {})
    tables = tables if isinstance(tables, list) else [tables]
    if not tables:
        raise SweepError(f"{path}: [[grid]] has no blocks")
    blocks = []
    for i, table in enumerate(tables, start=1):
        where = "[grid]" if len(tables) == 1 else f"[[grid]] block {i}"
        if not isinstance(table, dict):
            raise SweepError(f"{path}: {where} must be a table")
        table = dict(table)
        own = _read_run(path, f"{where} run", table.pop("run", {}))
        blocks.append(Block(Grid(**_read_axes(path, where, table)), own))
    return GridFile(name, tuple(blocks), run, jobs)


def _read_run(path: Path, where: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise SweepError(f"{path}: {where} must be a table of `ecs run` options")
    run = {k.replace("-", "_"): v for k, v in table.items()}
    misplaced = sorted(set(run) & set(AXES.values()))
    if misplaced:
        raise SweepError(f"{path}: {', '.join(misplaced)} belong in [grid] (as lists), not {where}")
    try:
        RunConfig.from_dict(run)  # unknown fields and wrong types, named
    except ConfigError as exc:
        raise SweepError(f"{path} {where}: {exc}") from exc
    return run


def _read_axes(path: Path, where: str, table: dict[str, Any]) -> dict[str, tuple]:
    unknown = sorted(set(table) - set(AXES))
    if unknown:
        raise SweepError(
            f"{path} {where}: unknown axis {', '.join(unknown)}; use {', '.join(AXES)} (or run)"
        )
    axes = {}
    for axis, values in table.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise SweepError(f"{path} {where}: {axis} is empty")
        axes[axis] = tuple(values)
    return axes
