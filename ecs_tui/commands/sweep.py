"""`ecs sweep`: one run per cell of a grid, resumable; and the launcher behind `ecs run --nproc`.

The sweep takes every `ecs run` option (read from `run_command`'s own signature, so the two
never drift apart) except the five that become grid axes: --models, --datasets, --methods,
--densities, --seeds. A TOML file (--grid) can hold the axes and the run options; options
typed on the command line win over the file.
"""

from __future__ import annotations

import dataclasses
import inspect
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_core.config import SWEEP_AXES as AXES
from ecs_core.config import SWEEP_AXIS_TYPES as AXIS_TYPES
from ecs_core.config import ConfigError, RunConfig
from ecs_tui.commands.argv import config_to_args
from ecs_tui.commands.execute import install_signals
from ecs_tui.commands.exits import EXIT_BUSY, EXIT_FAILED, EXIT_STOPPED, fail
from ecs_tui.commands.run import build_config, check_tensorboard
from ecs_tui.commands.run import explicit as _explicit

Opt = typer.Option
_NOT_SHARED = {"model", "dataset", "method", "density", "ablate", "compression", "seed", "resume",
               "json_out", "nproc", "run_dir", "ctx"}  # fmt: skip
"""`ecs run` options that a sweep does not pass on to its cells (axes, and per-run choices)."""


_D = RunConfig()
_OWN_OPTIONS: list[tuple[str, Any, Any, str]] = [  # name, type, default, help
    ("models", str | None, None, f"Comma-separated models [default: {_D.model}]."),
    ("datasets", str | None, None, f"Comma-separated datasets [default: {_D.dataset}]."),
    ("methods", str | None, None, f"Methods, e.g. snip,ecs [default: {_D.method}]."),
    ("densities", str | None, None, f"Comma-separated, e.g. 0.2,0.1,0.05 [default: {_D.density}]."),
    ("ablations", str | None, None, "Sanity checks, e.g. none,shuffle,reinit "
     f"[default: {_D.ablate}]."),
    ("seeds", str | None, None, f"Comma-separated seeds, e.g. 0,1,2 [default: {_D.seed}]."),
    ("grid", Path | None, None, "TOML file: name = ..., [grid] axes as lists (or [[grid]] "
     "blocks), [run] options."),
    ("name", str | None, None, "Folder under --runs-dir [default: grid file's name, or sweep]."),
    ("gpus", str, "auto", "auto: a worker per visible GPU when there are several; none: one cell "
     "after another in this process; or GPU ids, e.g. 0,1."),
    ("jobs", int | None, None, "Cells at a time when not on several GPUs, each in a worker process "
     "with cores/JOBS threads [default: the grid file's jobs, else 1]."),
    ("print_commands", bool, False, "Only print one `ecs run` line per cell (for schedulers)."),
]  # fmt: skip


def _own_parameters() -> list[inspect.Parameter]:
    """typer.Context (to tell typed options from defaults), then the sweep's own options."""
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=typer.Context)]  # fmt: skip
    for name, kind, default, text in _OWN_OPTIONS:
        names = [f"--{name.replace('_', '-')}"]
        if name in AXES:  # also as `ecs run` spells it: --seed 1 is a one-value axis
            names.append(f"--{AXES[name]}")
        option = Opt(*names, help=text, show_default=isinstance(default, str))
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[kind, option]))  # fmt: skip
    return params


def _shared_parameters() -> list[inspect.Parameter]:
    """Every `ecs run` option that applies to all cells, exactly as `ecs run` declares it."""
    from ecs_tui.commands.run import run_command

    sig = inspect.signature(run_command, eval_str=True)
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for name, p in sig.parameters.items() if name not in _NOT_SHARED]  # fmt: skip


def sweep_command(ctx: typer.Context, **kw: Any) -> None:
    """Run one experiment per cell of a grid; skip finished cells, resume interrupted ones.

    Cells live in RUNS_DIR/NAME/<model>-<dataset>-<method>-d<density>-s<seed>; run the same
    command again to continue a sweep. At the end, prints every cell and the compare table.
    """
    from ecs_core.sweep import SweepError, make_cells

    try:
        name, blocks, base, keep, jobs = _resolve(ctx, kw)
        cells = make_cells(blocks, base, base.runs_dir, name, keep=keep)
    except (ConfigError, SweepError) as exc:
        raise fail(str(exc)) from None
    check_tensorboard(base)
    if kw["print_commands"]:
        for cell in cells:
            typer.echo(shlex.join(["ecs", "run", *config_to_args(cell.config),
                                   "--run-dir", str(cell.path)]))  # fmt: skip
        return
    gpus = _pick_gpus(kw["gpus"], base.device)
    raise typer.Exit(_run(ctx, cells, blocks, gpus, jobs))


def _resolve(ctx: typer.Context, kw: dict[str, Any]):
    """(sweep name, blocks, base RunConfig, fields typed on the command line, jobs) from the
    options and the grid file; typed options win over the file, its blocks included."""
    from ecs_core.sweep import Block, Grid, read_grid_file

    file = None
    if kw["grid"] is not None:
        file = read_grid_file(kw["grid"])
    typed_axes = {}
    for option, cast in AXIS_TYPES.items():
        if kw[option] is not None:
            typed_axes[option] = _split(option, kw[option], cast)
    shared = {p.name for p in _shared_parameters()}
    run_kw = {k: v for k, v in kw.items() if k in shared}
    file_run = file.run if file else {}
    typed = RunConfig.from_dict(file_run)
    for field in file_run:
        if not _explicit(ctx, field):
            run_kw[field] = getattr(typed, field)
    base = build_config(**run_kw, compression=None)
    keep = {f for f in shared if _explicit(ctx, f)}
    blocks = list(file.blocks) if file else [Block(Grid())]
    blocks = [Block(dataclasses.replace(b.grid, **typed_axes), b.run) for b in blocks]
    stem = kw["grid"].stem if kw["grid"] else "sweep"
    name = kw["name"] or (file.name if file else None) or stem
    jobs = kw["jobs"] if kw["jobs"] is not None else (file.jobs if file else None)
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


# --- running and reporting


def _run(ctx: typer.Context, cells: list, blocks: list, gpus: list[str] | None, jobs: int) -> int:
    """Run the sweep with Ctrl-C handling; print progress, every cell, and the compare table."""
    import threading

    from ecs_core.sweep import SweepError, run_sweep
    from ecs_core.sweep.parallel import worker_threads

    root = cells[0].path.parent
    if len(blocks) == 1:
        shape = " x ".join(f"{len(getattr(blocks[0].grid, axis))} {axis}" for axis in AXES)
    else:
        shape = f"{len(blocks)} blocks"
    if gpus:
        where = f"in parallel on GPUs {','.join(gpus)}"
    elif jobs > 1:
        where = f"{jobs} at a time, {worker_threads(jobs)} thread(s) each"
    else:
        where = "one after another"
    typer.echo(f"sweep {root}: {len(cells)} cells ({shape}), {where}")
    stop = threading.Event()
    restore = install_signals(stop)
    try:
        results = run_sweep(cells, stop, gpus, _progress, jobs=jobs)
    except SweepError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted at once; run the same command again to continue", err=True)
        return EXIT_STOPPED
    finally:
        restore()
    _print_cells(results)
    _compare(ctx, root)
    done = sum(r.status == "finished" for r in results)
    if done < len(results):
        msg = "run the same command again to continue (failed cells resume from a checkpoint)"
        typer.echo(f"{done} of {len(results)} cells finished; {msg}", err=True)
    if any(r.status == "failed" for r in results):
        return EXIT_FAILED
    busy = sum(r.status in ("busy", "running") for r in results)
    if stop.is_set() or done + busy < len(results):
        return EXIT_STOPPED
    if busy:
        typer.echo(
            f"{busy} cell(s) left to another process that is running them; run the "
            f"same command again once it has finished (exit {EXIT_BUSY})",
            err=True,
        )
        return EXIT_BUSY
    return 0


def _progress(update: Any) -> None:
    """One plain line per cell state change, pruning, and epoch (called from worker threads)."""
    head = f"[{update.index}/{update.total}] {update.cell.name}"
    if update.state == "skipped":
        typer.echo(f"{head}  finished earlier, skipped")
    elif update.state in ("started", "resumed"):
        typer.echo(f"{head}  {update.state}")
    elif update.state == "done":
        from ecs_core.sweep import collect

        acc = collect(update.cell).summary.get("test_acc")
        tail = f": {update.error}" if update.error else (f", test {acc:.2f}%" if acc else "")
        typer.echo(f"{head}  {update.status}{tail}")
    elif update.event is not None and update.event.kind == "pruned":
        typer.echo(f"{head}  pruned to density {update.event.density:.2%}")
    elif update.event is not None and update.event.kind == "epoch_end":
        e = update.event
        typer.echo(f"{head}  epoch {e.epoch}/{e.epochs}  loss {e.train_loss:.4f}  "
                   f"test {e.test_acc:.2f}%  {e.seconds:.1f}s")  # fmt: skip


def _print_cells(results: list) -> None:
    """Every cell: status, achieved density, accuracy (and after quantization, when done)."""

    def pct(value: Any, scale: float = 1.0) -> str:
        return f"{value * scale:.2f}%" if isinstance(value, int | float) else "-"

    rows = [("cell", "status", "density", "test acc", "quantized")]
    for r in results:
        s = r.summary
        quant = s.get("quant") if isinstance(s.get("quant"), dict) else {}
        rows.append((r.cell.name, r.status, pct(s.get("density"), 100), pct(s.get("test_acc")),
                     pct(quant.get("test_acc"))))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    typer.echo("")
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [v.rjust(w) for v, w in zip(row[2:], widths[2:], strict=True)]
        typer.echo("  ".join(cells).rstrip())


def _compare(ctx: typer.Context, root: Path) -> None:
    """`ecs compare ROOT` (means over seeds), when that command is installed."""
    compare = getattr(ctx.find_root().command, "commands", {}).get("compare")
    if compare is None:
        return
    typer.echo("")
    try:
        compare.main([str(root)], prog_name="ecs compare", standalone_mode=False)
    except Exception as exc:  # the sweep itself is done; say why, do not crash
        typer.echo(f"(ecs compare {root} failed: {exc})", err=True)


def _build() -> Any:
    params = _own_parameters() + _shared_parameters()
    sweep_command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    sweep_command.__annotations__ = {p.name: p.annotation for p in params}
    return sweep_command


def register(app: typer.Typer) -> None:
    app.command("sweep")(_build())


__all__ = ["register"]
