"""`ecs run`: a whole experiment, headless (tmux, nohup, batch jobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecs_core.config import INSTALL_EXTRA, ConfigError, RunConfig
from ecs_core.registry import DATASETS, MODELS, PRUNERS
from ecs_tui.commands.execute import execute, launch_ddp
from ecs_tui.commands.exits import fail

_D = RunConfig()
Opt = typer.Option


def parse_prunetype(value: str) -> str:
    """The original's --prunetype: True meant layer-wise, False (default) global."""
    v = value.strip().lower()
    if v in ("true", "1", "yes", "layer", "layerwise"):
        return "layer"
    if v in ("false", "0", "no", "global"):
        return "global"
    raise ConfigError(f"--prunetype must be True (layer-wise) or False (global), got {value!r}")


def build_config(**kw: object) -> RunConfig:
    """Options -> validated RunConfig (aliases resolved); raises ConfigError."""
    compression = kw.pop("compression")
    prunetype = kw.pop("prunetype")
    if compression is not None:
        if not compression >= 1:  # type: ignore[operator]
            raise ConfigError(f"--compression must be >= 1 (20 means keep 1/20), got {compression}")
        kw["density"] = 1.0 / compression  # type: ignore[operator]
    if prunetype is not None:
        kw["scope"] = parse_prunetype(prunetype)  # type: ignore[arg-type]
    return RunConfig(**kw).validate()  # type: ignore[arg-type]


def check_tensorboard(config: RunConfig) -> None:
    """--tensorboard needs the tensorboard package: say so before anything is written."""
    import importlib.util

    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise fail(f"--tensorboard needs tensorboard: {INSTALL_EXTRA}")


def explicit(ctx: typer.Context, name: str) -> bool:
    """Was this option typed (or set by environment), rather than left at its default?"""
    source = ctx.get_parameter_source(name)  # click's ParameterSource (typer vendors click)
    return getattr(source, "name", None) in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def _typed_fields(ctx: typer.Context) -> set[str]:
    """RunConfig fields the user typed (--compression sets density, --prunetype scope)."""
    alias = {"compression": "density", "prunetype": "scope"}
    return {alias.get(name, name) for name in ctx.params if explicit(ctx, name)}


def run_command(
    ctx: typer.Context,
    model: Annotated[str, Opt(help=" | ".join(MODELS) + " (any case).")] = _D.model,
    dataset: Annotated[str, Opt(help=" | ".join(DATASETS) + ".")] = _D.dataset,
    width: Annotated[float, Opt(help="Channel multiplier (0.25 = quarter width).")] = _D.width,
    method: Annotated[str, Opt(help=" | ".join(PRUNERS) + ".")] = _D.method,
    density: Annotated[
        float, Opt("--density", "--retain", help="Fraction of weights kept, in (0, 1].")
    ] = _D.density,
    compression: Annotated[
        float | None, Opt(help="Compression ratio; 20 means --density 0.05.", show_default=False)
    ] = None,
    scope: Annotated[str, Opt(help="global | layer.")] = _D.scope,
    prunetype: Annotated[
        str | None, Opt(help="Original flag: True = layer scope, False = global.", hidden=True)
    ] = None,
    budget: Annotated[str, Opt(help="ECS: exact (= density) | union (x..2x).")] = _D.budget,
    warmup_epochs: Annotated[int, Opt(help="ECS/magnitude: epochs before pruning.")] = (
        _D.warmup_epochs
    ),
    score_batches: Annotated[int, Opt(help="Batches of gradients for scores.")] = _D.score_batches,
    ablate: Annotated[
        str, Opt(help="Sanity check: none | shuffle | reinit | invert (kept lowest scores).")
    ] = _D.ablate,
    prune_iterations: Annotated[
        int, Opt(help="SynFlow: pruning rounds (density**(k/n) at round k).")
    ] = _D.prune_iterations,
    prune_fraction: Annotated[
        float, Opt(help="IMP: fraction of the remaining weights removed per round.")
    ] = _D.prune_fraction,
    rewind_epoch: Annotated[
        int, Opt(help="IMP: rewind kept weights to this epoch (0 = lottery ticket).")
    ] = _D.rewind_epoch,
    allow_collapse: Annotated[bool, Opt(help="Go on if a layer loses all weights.")] = False,
    epochs: Annotated[int, Opt(help="Total epochs, warm-up included (IMP: per round).")] = (
        _D.epochs
    ),
    batch_size: Annotated[int, Opt("--batch-size", "--batchsize", help="Batch size.")] = (
        _D.batch_size
    ),
    lr: Annotated[float, Opt(help="SGD learning rate.")] = _D.lr,
    momentum: Annotated[float, Opt(help="SGD momentum.")] = _D.momentum,
    weight_decay: Annotated[
        float, Opt("--weight-decay", "--weightdecay", help="L2 weight decay.")
    ] = _D.weight_decay,
    step_size: Annotated[
        int, Opt("--step-size", "--step", help="StepLR period in epochs.")
    ] = _D.step_size,
    gamma: Annotated[float, Opt(help="StepLR factor.")] = _D.gamma,
    max_batches: Annotated[
        int | None, Opt(help="Cap batches per epoch (smoke runs).", show_default=False)
    ] = None,
    seed: Annotated[int, Opt(help="Random seed.")] = _D.seed,
    device: Annotated[str, Opt(help="auto | cpu | cuda.")] = _D.device,
    precision: Annotated[
        str, Opt(help="auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 (autocast).")
    ] = _D.precision,
    quantize: Annotated[bool, Opt(help="Weight sharing + int8 + export after pruning.")] = (
        _D.quantize
    ),
    bits: Annotated[int, Opt(help="Weight sharing: 2**bits clusters per layer.")] = _D.bits,
    quantize_bn: Annotated[bool, Opt(help="Also share batch-norm weights.")] = False,
    finetune_epochs: Annotated[int, Opt(help="Centroid fine-tuning epochs.")] = (
        _D.finetune_epochs
    ),
    calib_batches: Annotated[int, Opt(help="int8 calibration batches.")] = _D.calib_batches,
    data_dir: Annotated[str, Opt(help="Dataset folder.")] = _D.data_dir,
    download: Annotated[bool, Opt(help="Download missing datasets.")] = True,
    runs_dir: Annotated[str, Opt(help="Parent folder of run directories.")] = _D.runs_dir,
    checkpoint_every: Annotated[int, Opt(help="Checkpoint period in epochs.")] = (
        _D.checkpoint_every
    ),
    tensorboard: Annotated[
        str,
        Opt(
            help="Also write TensorBoard logs here (a sweep: one sub-folder per cell).",
            show_default=False,
        ),
    ] = _D.tensorboard,
    resume: Annotated[
        Path | None,
        Opt(help="Continue this run directory from its last checkpoint.", show_default=False),
    ] = None,
    json_out: Annotated[bool, Opt("--json", help="Print events as JSON lines on stdout.")] = False,
    run_dir: Annotated[
        Path | None,
        Opt(
            help="Exactly this run directory: start, resume, or skip if finished.",
            show_default=False,
        ),
    ] = None,
    nproc: Annotated[
        int, Opt(help="Data-parallel processes, one per GPU (launches torchrun).")
    ] = 1,
) -> None:
    """Train, prune, quantize and export one model, headless."""
    kw = dict(locals())
    kw.pop("ctx")
    resume_dir, as_json = kw.pop("resume"), kw.pop("json_out")
    run_dir, nproc = kw.pop("run_dir"), kw.pop("nproc")
    try:
        config = build_config(**kw)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    check_tensorboard(config)
    if nproc < 1:
        raise fail(f"--nproc must be >= 1, got {nproc}")
    if run_dir is not None and resume_dir is not None:
        raise fail("give --run-dir or --resume, not both")
    store = None
    if run_dir is not None:
        store = _open_run_dir(run_dir, config)
        if store is None:
            return
    elif resume_dir is not None:
        store, config = _resume_target(resume_dir, config, _typed_fields(ctx))
        if store is None:
            return
    if nproc > 1:
        resume_path = store.path if store is not None else None
        raise typer.Exit(launch_ddp(config, nproc, resume_path, as_json))
    raise typer.Exit(execute(config, store, as_json))


def _open_run_dir(path: Path, config: RunConfig):
    """The store at exactly `path` (made if new); None when that run has finished."""
    from ecs_core.store import StoreError
    from ecs_core.sweep import SweepError, open_run_dir

    try:
        opened = open_run_dir(path, config)
    except (SweepError, StoreError) as exc:
        raise fail(str(exc)) from None
    if opened is None:
        typer.echo(f"{path} has already finished; nothing to do.")
        return None
    return opened[0]


def _resume_target(path: Path, config: RunConfig, typed: set[str]):
    """(store, config) to continue; (None, _) when the run is already finished."""
    from ecs_core.store import RunStore, StoreError

    if not (path / "config.json").is_file():
        raise fail(f"{path} is not a run directory (no config.json)")
    store = RunStore(path)
    try:
        saved = store.read_config().validate()
        status = store.read_summary().get("status") if (path / "summary.json").exists() else None
    except (StoreError, ConfigError) as exc:
        raise fail(str(exc)) from None
    if status == "finished":
        typer.echo(f"{path} has already finished; nothing to do.")
        return None, config
    # Options not typed take the saved run's values; typed ones (even at their default value)
    # must match it, or the pipeline refuses the resume naming the fields that differ.
    import dataclasses

    merged = {}
    for f in dataclasses.fields(RunConfig):
        merged[f.name] = getattr(config if f.name in typed else saved, f.name)
    return store, RunConfig(**merged)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)


__all__ = ["build_config", "check_tensorboard", "execute", "register"]
