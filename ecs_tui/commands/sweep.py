"""`ecs sweep`: one run per cell of a grid, resumable (cells run in `sweep_run.py`).

The sweep declares its own options: the grid axes (`SWEEP_AXES`: --models, --datasets,
--methods, --distributions, --structures, --densities, --ablations, --seeds, each also as `ecs
run` spells it: --model, ...), the grid
file and how to run the cells. Every other option typed after `ecs sweep` is parsed by `ecs
run`'s own command (`_run_options`), whose options are made from the `RunConfig` fields, so a
run option is declared once, on its field; the ones that name one run (--resume, --run-dir,
--json, --nproc, --compression) are refused. A TOML file (--grid) can hold the axes and the
run options; options typed on the command line win over the file.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_core.config import SWEEP_AXES as AXES
from ecs_core.config import SWEEP_AXIS_TYPES as AXIS_TYPES
from ecs_core.config import ConfigError, RunConfig
from ecs_tui.commands import slurm as sl
from ecs_tui.commands.argv import config_to_args
from ecs_tui.commands.exits import fail
from ecs_tui.commands.run import build_config, check_tensorboard
from ecs_tui.commands.run import explicit as _explicit
from ecs_tui.commands.sweep_run import run_sweep_cells

Opt = typer.Option
ONE_RUN = {*AXES.values(), "compression", "resume", "json_out", "nproc", "run_dir"}
"""`ecs run` options that name one run: the axes' single forms, and per-run choices."""

_D = RunConfig()


def _axis(name: str, text: str) -> Any:
    """An axis option, also under `ecs run`'s name for it: --seed 1 is a one-value axis."""
    return Opt(f"--{name}", f"--{AXES[name]}", help=text, show_default=False)


def sweep_command(
    ctx: typer.Context,
    models: Annotated[
        str | None, _axis("models", f"Comma-separated models [default: {_D.model}].")
    ] = None,
    datasets: Annotated[
        str | None, _axis("datasets", f"Comma-separated datasets [default: {_D.dataset}].")
    ] = None,
    methods: Annotated[
        str | None, _axis("methods", f"Methods, e.g. snip,ecs [default: {_D.method}].")
    ] = None,
    distributions: Annotated[
        str | None,
        _axis(
            "distributions",
            f"Per-layer budgets, e.g. global,erk [default: {_D.distribution}].",
        ),
    ] = None,
    structures: Annotated[
        str | None,
        _axis("structures", f"weight,channel [default: {_D.structure}]."),
    ] = None,
    densities: Annotated[
        str | None,
        _axis("densities", f"Comma-separated, e.g. 0.2,0.1,0.05 [default: {_D.density}]."),
    ] = None,
    ablations: Annotated[
        str | None,
        _axis("ablations", f"Sanity checks, e.g. none,shuffle,reinit [default: {_D.ablate}]."),
    ] = None,
    seeds: Annotated[
        str | None, _axis("seeds", f"Comma-separated seeds, e.g. 0,1,2 [default: {_D.seed}].")
    ] = None,
    grid: Annotated[
        Path | None,
        Opt(
            help="TOML file: name = ..., [grid] axes as lists (or [[grid]] blocks), [run] options.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        Opt(
            help="Folder under --runs-dir [default: grid file's name, or sweep].",
            show_default=False,
        ),
    ] = None,
    gpus: Annotated[
        str,
        Opt(
            help="auto: a worker per visible GPU when there are several; none: one cell after "
            "another in this process; or GPU ids, e.g. 0,1."
        ),
    ] = "auto",
    jobs: Annotated[
        int | None,
        Opt(
            help="Cells at a time when not on several GPUs, each in a worker process with "
            "cores/JOBS threads [default: the grid file's jobs, else 1].",
            show_default=False,
        ),
    ] = None,
    print_commands: Annotated[
        bool,
        Opt(
            "--print-commands",
            help="Only print one `ecs run` line per cell (for schedulers).",
            show_default=False,
        ),
    ] = False,
    slurm: sl.Slurm = False,
    partition: sl.Partition = None,
    time: sl.Time = None,
    gpus_per_cell: sl.GpusPerCell = None,
    cpus_per_cell: sl.CpusPerCell = 1,
    mem: sl.Mem = None,
    max_parallel: sl.MaxParallel = None,
    account: sl.Account = None,
    qos: sl.Qos = None,
    sbatch: sl.Sbatch = None,
    nproc: sl.Nproc = 1,
    status: sl.Status = False,
    cancel: sl.Cancel = False,
) -> None:
    """Run one experiment per cell of a grid; skip finished cells, resume interrupted ones.

    Cells live in RUNS_DIR/NAME/<model>-<dataset>-<method>-d<density>-s<seed>; run the same
    command again to continue a sweep. At the end, prints every cell and the compare table.

    Every other `ecs run` option applies to every cell (see `ecs run --help`), e.g.
    --width 0.25 --epochs 15 --runs-dir runs.
    """
    from ecs_core.sweep import SweepError, make_cells

    axes = dict(models=models, datasets=datasets, methods=methods, densities=densities)
    axes.update(distributions=distributions, structures=structures)
    axes.update(ablations=ablations, seeds=seeds)
    folder = sl.take_folder(ctx) if status or cancel else None
    if folder is None:
        try:
            run_kw, typed = _run_options(ctx)
            name, blocks, base, keep, jobs = _resolve(axes, grid, name, jobs, run_kw, typed)
            cells = make_cells(blocks, base, base.runs_dir, name, keep=keep)
            _trust_models(cells, models, grid)
        except (ConfigError, SweepError) as exc:
            raise fail(str(exc)) from None
        folder = cells[0].path.parent
    if status or cancel:
        raise typer.Exit(sl.cancel_tasks(folder) if cancel else sl.show_status(folder))
    if nproc != 1 and not slurm:
        raise fail("ecs sweep takes --nproc only with --slurm (a cell per node's GPUs)")
    check_tensorboard(base)
    if slurm:
        kw = dict(partition=partition, time=time, gpus_per_cell=gpus_per_cell, mem=mem)
        kw.update(cpus_per_cell=cpus_per_cell, max_parallel=max_parallel, account=account)
        raise typer.Exit(sl.submit_cells(cells, name, {**kw, "qos": qos, "sbatch": sbatch,
                                                       "nproc": nproc}))  # fmt: skip
    if print_commands:
        for cell in cells:
            typer.echo(shlex.join(["ecs", "run", *config_to_args(cell.config),
                                   "--run-dir", str(cell.path)]))  # fmt: skip
        return
    raise typer.Exit(run_sweep_cells(ctx, cells, blocks, _pick_gpus(gpus, base.device), jobs))


def _run_options(ctx: typer.Context) -> tuple[dict[str, Any], set[str]]:
    """The `ecs run` options typed after `ecs sweep` (its extra arguments), parsed by `ecs
    run`'s own command: (every option's value, default or typed; the names typed). An option
    `ecs run` does not know is click's usage error, as for `ecs run` itself."""
    run = ctx.find_root().command.get_command(ctx, "run")  # type: ignore[attr-defined]
    parsed = run.make_context("ecs sweep", list(ctx.args))
    typed = {k for k in parsed.params if _explicit(parsed, k)}  # type: ignore[arg-type]
    refused = sorted(typed & ONE_RUN)
    if refused:
        flags = ", ".join(_flag(run, k) for k in refused)
        raise ConfigError(
            f"ecs sweep does not take {flags}: the axes are "
            f"{', '.join('--' + axis for axis in AXES)}; to resume a sweep, run the same "
            "command again"
        )
    return {k: v for k, v in parsed.params.items() if k not in ONE_RUN}, typed


def _trust_models(cells: list, typed: str | None, grid: Path | None) -> None:
    """Models typed with --models are the user's; one only the grid file names runs if trusted
    (`ecs_core.trust`), checked before any cell starts."""
    from ecs_core import trust

    for model in (typed or "").split(","):
        trust.own(model)
    for cell in cells:
        trust.check(cell.config.model, str(grid) if grid is not None else "the sweep")


def _flag(command: Any, name: str) -> str:
    """The option's first spelling, e.g. json_out -> --json (a click command's parameter)."""
    for param in command.params:
        if param.name == name and getattr(param, "opts", None):
            return param.opts[0]
    return f"--{name.replace('_', '-')}"


def _resolve(
    axes: dict[str, str | None],
    grid: Path | None,
    name: str | None,
    jobs: int | None,
    run_kw: dict[str, Any],
    typed: set[str],
):
    """(sweep name, blocks, base RunConfig, fields typed on the command line, jobs) from the
    options and the grid file; typed options win over the file, its blocks included."""
    from ecs_core.sweep import Block, Grid, read_grid_file

    file = read_grid_file(grid) if grid is not None else None
    typed_axes = {}
    for option, cast in AXIS_TYPES.items():
        if axes[option] is not None:
            typed_axes[option] = _split(option, axes[option], cast)
    file_run = file.run if file else {}
    from_file = RunConfig.from_dict(file_run)
    for field in file_run:
        if field not in typed:
            run_kw[field] = getattr(from_file, field)
    base = build_config(**run_kw, compression=None)
    if run_kw.get("scope") == "auto" and run_kw.get("prunetype") is None:
        # auto is resolved per cell (layer for a channel cell, else global): the structure may
        # be an axis; --scope or the original's --prunetype, when given, stay as given
        base = dataclasses.replace(base, scope="auto")
    keep = set(typed) - ONE_RUN
    blocks = list(file.blocks) if file else [Block(Grid())]
    blocks = [Block(dataclasses.replace(b.grid, **typed_axes), b.run) for b in blocks]
    stem = grid.stem if grid else "sweep"
    name = name or (file.name if file else None) or stem
    jobs = jobs if jobs is not None else (file.jobs if file else None)
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    return name, blocks, base, keep, jobs or 1


def _split(option: str, text: str, cast: type) -> tuple:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ConfigError(f"--{option} needs at least one value, e.g. --{option} a,b")
    try:
        return tuple(cast(s) for s in items)
    except ValueError:
        raise ConfigError(f"--{option} must be a comma-separated list, got {text!r}") from None


def _pick_gpus(spec: str, device: str) -> list[str] | None:
    """GPU ids to run workers on, or None for one cell after another in this process."""
    spec = spec.strip().lower()
    if spec in ("none", "", "cpu"):
        return None
    ids = _visible_gpus() if spec == "auto" else _check_gpus(spec, _visible_gpus())
    if device == "cpu" or (spec == "auto" and len(ids) < 2):
        return None
    return ids


def _visible_gpus() -> list[str]:
    """The GPU ids a worker can be given (CUDA_VISIBLE_DEVICES' entries, else 0..count-1)."""
    import os

    import torch

    count = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [s.strip() for s in visible.split(",") if s.strip()] if visible else []
    return (ids or [str(i) for i in range(count)])[:count]


def _check_gpus(spec: str, visible: list[str]) -> list[str]:
    """`--gpus 0,1`: every id must be a visible GPU, else exit 2 naming the visible ones."""
    ids = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [i for i in ids if i not in visible]
    if ids and not unknown and len(set(ids)) == len(ids):
        return ids
    have = f"the visible GPUs are {','.join(visible)}" if visible else "no GPU is visible here"
    what = f"no GPU {', '.join(unknown)}" if unknown and ids else f"bad --gpus {spec!r}"
    raise fail(f"{what}: {have}; use --gpus auto, --gpus none, or visible ids, e.g. 0,1")


def register(app: typer.Typer) -> None:
    extra = {"allow_extra_args": True, "ignore_unknown_options": True}  # `ecs run`'s options
    app.command("sweep", context_settings=extra)(sweep_command)


__all__ = ["register"]
