"""`ecs sweep --slurm` (submit the cells left as one job array), `--status` and `--cancel`.

The options are declared here and listed in `ecs sweep`'s signature under a "Slurm" panel;
the work is `ecs_core.slurm`. Each task runs `python -m ecs_tui.cli run ... --run-dir
DIR` with the interpreter that submitted it (`config_to_args`: the one config -> argv).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_tui.commands.argv import config_to_args
from ecs_tui.commands.exits import fail

PANEL = "Slurm"


def _opt(text: str, *names: str) -> Any:
    return typer.Option(*names, help=text, show_default=False, rich_help_panel=PANEL)


Slurm = Annotated[bool, _opt("Submit the cells left as one Slurm job array; return at once.",
                             "--slurm")]  # fmt: skip
Partition = Annotated[str | None, _opt("Slurm partition.")]
Time = Annotated[str | None, _opt("Time limit per cell, e.g. 4:00:00 (requeued near it).")]
GpusPerCell = Annotated[
    int | None, _opt("GPUs per cell [default: --nproc when > 1, else 0; 0: DDP on CPUs].")
]
CpusPerCell = Annotated[int, _opt("CPU cores per cell (its torch threads) [default: 1].")]
Mem = Annotated[str | None, _opt("Memory per cell, e.g. 16G.")]
MaxParallel = Annotated[int | None, _opt("At most this many cells at once (the array's %K).")]
Account = Annotated[str | None, _opt("Slurm account.")]
Qos = Annotated[str | None, _opt("Slurm QOS.")]
Sbatch = Annotated[
    list[str] | None, _opt("One more #SBATCH line, e.g. --sbatch=--constraint=a100 (repeat).")
]
Nproc = Annotated[int, _opt("With --slurm: processes per cell, one GPU each (torchrun).")]
Status = Annotated[bool, _opt("Show every cell of the sweep (DIR) with its Slurm task.",
                              "--status")]  # fmt: skip
Cancel = Annotated[bool, _opt("scancel the sweep's queued and running tasks (resumable).",
                              "--cancel")]  # fmt: skip


def take_folder(ctx: typer.Context) -> Path | None:
    """`ecs sweep DIR --status`: DIR, the one word typed that is not an option (taken out of
    the arguments `ecs run` parses); None when the sweep is named by its options."""
    words = [a for a in ctx.args if not a.startswith("-")]
    if ctx.args and not ctx.args[0].startswith("-"):
        ctx.args.remove(words[0])
        return Path(words[0])
    return None


def submit_cells(cells: list, name: str, kw: dict[str, Any]) -> int:
    """Submit the sweep's cells that are left; print the job and how to watch it."""
    from ecs_core.slurm import SbatchOptions, SlurmError, submit
    from ecs_core.store import StoreError
    from ecs_core.sweep import SweepError, check_run_dir

    for key in ("cpus_per_cell", "gpus_per_cell", "max_parallel", "nproc"):
        low = 0 if key == "gpus_per_cell" else 1
        if kw[key] is not None and kw[key] < low:
            raise fail(f"--{key.replace('_', '-')} must be >= {low}, got {kw[key]}")
    extra = tuple(kw.pop("sbatch") or ())
    options = SbatchOptions(**{k: v for k, v in kw.items() if v is not None}, extra=extra)
    root = cells[0].path.parent
    head = [sys.executable, "-m", "ecs_tui.cli", "run"]
    nproc = ["--nproc", str(options.nproc)] if options.nproc > 1 else []
    commands = [[*head, *config_to_args(c.config), *nproc, "--run-dir", str(c.path.resolve())]
                for c in cells]  # fmt: skip
    try:
        for cell in cells:
            check_run_dir(cell.path, cell.config)  # fail before submitting anything
        done = submit(root, cells, commands, name, options)
    except (SweepError, SlurmError, StoreError) as exc:
        raise fail(str(exc)) from None
    if done.skipped:
        words: dict[str, int] = {}
        for why in done.skipped.values():
            word = why.split(" as ")[0]
            words[word] = words.get(word, 0) + 1
        typer.echo(f"left out {len(done.skipped)} cell(s): "
                   + ", ".join(f"{n} {w}" for w, n in words.items()))  # fmt: skip
    if done.job is None:
        typer.echo(f"sweep {root}: nothing to submit; every cell is finished, running or queued")
        return 0
    typer.echo(f"sweep {root}: submitted {len(done.cells)} cell(s) as job array {done.job} "
               f"({done.script})")  # fmt: skip
    typer.echo(f"watch it: ecs sweep {root} --status   (or: squeue -j {done.job}; "
               f"ecs-tui {root})")  # fmt: skip
    typer.echo(f"cancel it: ecs sweep {root} --cancel   (cells stop and save; submit again "
               "to resume)")  # fmt: skip
    return 0


def show_status(root: Path) -> int:
    """Every cell: its state with its Slurm task, its accuracy; then a count per state."""
    from ecs_core.slurm import SlurmError, cell_state, cell_tasks, read_jobs
    from ecs_core.stats import StatsError, find_runs, run_info

    if not root.is_dir():
        raise fail(f"{root} is not a folder; give the sweep's directory, e.g. runs/demo")
    try:
        infos = {Path(i.path).name: i for i in (run_info(p) for p in find_runs([root]))}
    except StatsError as exc:
        raise fail(str(exc)) from None
    note = None
    try:
        tasks = cell_tasks(root)
    except SlurmError as exc:
        tasks, note = {}, f"(no Slurm states: {exc})"
    try:
        records = read_jobs(root)
    except SlurmError:  # the note says why (cell_tasks read it first)
        records = []
    names = list(infos) + [c for r in records for c in r["cells"] if c not in infos]
    rows = [("cell", "state", "test acc")]
    for name in dict.fromkeys(names):
        info = infos.get(name)
        state = cell_state(info.status if info else "new", tasks.get(name))
        acc = f"{info.test_acc:.2f}%" if info and info.test_acc is not None else "-"
        rows.append((name, state, acc))
    if len(rows) == 1:
        raise fail(f"no cells under {root}; submit with ecs sweep ... --slurm")
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for r in rows:
        typer.echo(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2].rjust(8)}")
    counts: dict[str, int] = {}
    for r in rows[1:]:
        word = r[1].split(" ")[0]
        counts[word] = counts.get(word, 0) + 1
    typer.echo(f"{len(rows) - 1} cells: " + ", ".join(f"{n} {w}" for w, n in counts.items()))
    if note:
        typer.echo(note, err=True)
    return 0


def cancel_tasks(root: Path) -> int:
    from ecs_core.slurm import SlurmError, cancel

    try:
        ids = cancel(root)
    except SlurmError as exc:
        raise fail(str(exc)) from None
    if not ids:
        typer.echo(f"sweep {root}: no task queued or running")
        return 0
    typer.echo(f"cancelled {len(ids)} task(s) of {root}; running cells stop at the next batch "
               f"and save; submit the same sweep again to resume them")  # fmt: skip
    return 0


__all__ = ["cancel_tasks", "show_status", "submit_cells", "take_folder"]
