"""`ecs sweep`'s running and reporting: the cells run with Ctrl-C handling, one line per cell
state change, the table of every cell, then `ecs compare` over the sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ecs_core.config import SWEEP_AXES as AXES
from ecs_core.runfiles import FAILED, FINISHED, RUNNING
from ecs_tui.commands.execute import install_signals
from ecs_tui.commands.exits import EXIT_BUSY, EXIT_FAILED, EXIT_STOPPED, fail
from ecs_tui.fmt import pct


def run_sweep_cells(
    ctx: typer.Context, cells: list, blocks: list, gpus: list[str] | None, jobs: int
) -> int:
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
    done = sum(r.status == FINISHED.word for r in results)
    if done < len(results):
        msg = "run the same command again to continue (failed cells resume from a checkpoint)"
        typer.echo(f"{done} of {len(results)} cells finished; {msg}", err=True)
    if any(r.status == FAILED.word for r in results):
        return EXIT_FAILED
    busy = sum(r.status in ("busy", RUNNING.word) for r in results)
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

    rows = [("cell", "status", "density", "test acc", "quantized")]
    for r in results:
        s = r.summary
        quant = s.get("quant") if isinstance(s.get("quant"), dict) else {}
        density = pct(_times(s.get("density"), 100))
        rows.append((r.cell.name, r.status, density, pct(s.get("test_acc")),
                     pct(quant.get("test_acc"))))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    typer.echo("")
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [v.rjust(w) for v, w in zip(row[2:], widths[2:], strict=True)]
        typer.echo("  ".join(cells).rstrip())


def _times(value: Any, scale: float) -> Any:
    return value * scale if isinstance(value, int | float) else value


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


__all__ = ["run_sweep_cells"]
