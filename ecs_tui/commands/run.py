"""`ecs run`: a whole experiment, headless (tmux, nohup, batch jobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_core.config import INSTALL_EXTRA, ConfigError, RunConfig
from ecs_tui.commands.execute import execute, launch_ddp
from ecs_tui.commands.exits import fail
from ecs_tui.commands.options import with_field_options

Opt = typer.Option


def parse_prunetype(value: str) -> str:
    """The original's --prunetype: True meant layer-wise, False (default) global."""
    v = value.strip().lower()
    if v in ("true", "1", "yes", "layer", "layerwise"):
        return "layer"
    if v in ("false", "0", "no", "global"):
        return "global"
    raise ConfigError(f"--prunetype must be True (layer-wise) or False (global), got {value!r}")


def build_config(**kw: Any) -> RunConfig:
    """Options -> validated RunConfig (aliases resolved); raises ConfigError."""
    compression = kw.pop("compression", None)
    prunetype = kw.pop("prunetype", None)
    if compression is not None:
        if not compression >= 1:
            raise ConfigError(f"--compression must be >= 1 (20 means keep 1/20), got {compression}")
        kw["density"] = 1.0 / compression
    if prunetype is not None:
        kw["scope"] = parse_prunetype(prunetype)
    return RunConfig(**kw).validate()


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
    compression: Annotated[
        float | None, Opt(help="Compression ratio; 20 means --density 0.05.", show_default=False)
    ] = None,
    prunetype: Annotated[
        str | None, Opt(help="Original flag: True = layer scope, False = global.", hidden=True)
    ] = None,
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
    **fields: Any,
) -> None:
    """Train, prune, quantize and export one model, headless."""
    try:
        config = build_config(**fields, compression=compression, prunetype=prunetype)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    check_tensorboard(config)
    if nproc < 1:
        raise fail(f"--nproc must be >= 1, got {nproc}")
    if run_dir is not None and resume is not None:
        raise fail("give --run-dir or --resume, not both")
    store = None
    if run_dir is not None:
        store = _open_run_dir(run_dir, config)
        if store is None:
            return
    elif resume is not None:
        store, config = _resume_target(resume, config, _typed_fields(ctx))
        if store is None:
            return
    if nproc > 1:
        resume_path = store.path if store is not None else None
        raise typer.Exit(launch_ddp(config, nproc, resume_path, json_out))
    raise typer.Exit(execute(config, store, json_out))


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
    trust_model(merged["model"], "model" in typed, path / "config.json")
    return store, RunConfig(**merged)


def trust_model(model: str, typed: bool, source: Path) -> None:
    """A model typed here is the user's; one read from `source` runs only if trusted (exit 2)."""
    from ecs_core import trust

    if typed:
        trust.own(model)
    try:
        trust.check(model, str(source))
    except ConfigError as exc:
        raise fail(str(exc)) from None


with_field_options(run_command, RunConfig)  # every RunConfig option field, before the above


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)


__all__ = ["build_config", "check_tensorboard", "execute", "register"]
