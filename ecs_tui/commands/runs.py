"""`ecs runs`: every run directory under a folder, one row each (a table on a terminal)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_core.runfiles import DIED, UNREADABLE
from ecs_tui.commands.exits import fail
from ecs_tui.commands.inspect import Arg, Opt
from ecs_tui.fmt import hms, pct


def runs_command(
    folder: Annotated[Path, Arg(help="Folder holding run directories.")] = Path("runs"),
    as_json: Annotated[
        bool, Opt("--json", help="One JSON object per run on stdout, for scripts.")
    ] = False,
) -> None:
    """List run directories: status, model, dataset, method, density, accuracy, time, path.

    On a terminal, a table; piped, one line per run (never wrapped). The path is the run's
    directory relative to FOLDER (--json gives the full path)."""
    from ecs_core.stats import StatsError, find_runs, run_info

    try:
        infos = [run_info(p) for p in find_runs([folder])]
    except StatsError as exc:
        raise fail(str(exc)) from None
    from ecs_core.slurm import slurm_words

    slurm, note = slurm_words([(i.path, i.status) for i in infos])  # a sweep on Slurm
    if note:
        typer.echo(f"note: {note}", err=True)
    if as_json:
        for i in infos:
            extra = {"slurm": slurm[i.path]} if i.path in slurm else {}
            typer.echo(json.dumps({**asdict(i), "pq_acc": i.pq_acc, **extra}))
        return
    if not infos:
        typer.echo(f"no run directories under {folder}")
        return
    header = ("status", "model", "dataset", "method", "density", "acc %", "P+Q %", "time", "path")
    rows = [_run_row(replace(i, status=slurm.get(i.path, i.status)), folder) for i in infos]
    title = f"{len(infos)} run{'s' if len(infos) != 1 else ''} under {folder}"
    if sys.stdout.isatty():
        _runs_table(title, header, rows)
    else:
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header) - 1)]
        typer.echo(title)
        for r in [header, *rows]:
            typer.echo(
                "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1]
            )
    for i in infos:
        if i.status == DIED.word and i.error:
            typer.echo(f"{_rel(i.path, folder)}: {i.error}")
        if i.status == UNREADABLE.word:
            typer.echo(f"note: {_rel(i.path, folder)} is unreadable: {i.error}", err=True)


def _run_row(i: Any, folder: Path) -> tuple[str, ...]:
    model = f"{i.model} x{i.width:g}" if i.width else i.model
    acc, pq = (pct(v, none="", sign="") for v in (i.test_acc, i.pq_acc))
    took = hms(i.seconds) if i.seconds is not None else ""  # wall time, once it ended
    return (i.status, model, i.dataset, i.method_tag, _density(i), acc, pq, took,
            _rel(i.path, folder))  # fmt: skip


def _runs_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=title, title_justify="left",
        box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
    )  # fmt: skip
    for col in header:
        right = col in ("density", "acc %", "P+Q %", "time")
        fold = "fold" if col == "path" else "ellipsis"  # a path folds: it tells runs apart
        t.add_column(col, justify="right" if right else "left", overflow=fold, ratio=col == "path")
    for r in rows:
        t.add_row(*r)
    Console(highlight=False).print(t)


def _density(i: Any) -> str:
    if i.density is None:
        return "" if i.target_density is None else f"({i.target_density:.2%})"
    return f"{i.density:.2%}"


def _rel(path: str, folder: Path) -> str:
    try:
        return str(Path(path).relative_to(folder)) or "."
    except ValueError:
        return path


def tensorboard_command(
    path: Annotated[Path, Arg(help="A run directory, or a folder of them.", show_default=False)],
    out: Annotated[Path, Opt("--out", "-o", help="TensorBoard log folder to write.")],
) -> None:
    """Write TensorBoard logs from existing run directories (one sub-folder per run)."""
    from ecs_core.stats import StatsError, find_runs
    from ecs_core.tboard import TensorBoardError, write_run

    try:
        runs = find_runs([path])
    except StatsError as exc:
        raise fail(str(exc)) from None
    if not runs:
        raise fail(f"no run directories under {path}")
    single = runs == [path]
    for run in runs:
        where = out if single else out / run.relative_to(path)
        try:
            epochs = write_run(run, where)
        except (TensorBoardError, OSError, ValueError) as exc:
            raise fail(f"{run}: {exc}") from None
        typer.echo(f"wrote {where}: {epochs} epoch(s) of scalars from {run}")
    typer.echo(f"view with: tensorboard --logdir {out}")


def register(app: typer.Typer) -> None:
    app.command("runs")(runs_command)
    app.command("tensorboard")(tensorboard_command)
