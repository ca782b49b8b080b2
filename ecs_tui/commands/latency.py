"""`ecs latency RUN...`: measure finished runs' CPU speed again, here, one run at a time.

A run measures its latency at its end (`ecs_core.latency`), beside whatever else the machine is
doing then: cells of a sweep train side by side, so their timings share the cores. This times
each run's dense model and final fp32 model again, in turns, on one thread, one run after
another, so a sweep's speed axis can be measured once on a quiet machine. The int8 model is not
rebuilt (that needs the calibration data), so a re-measured record has no int8 numbers;
`--write` keeps the run's own record in summary.json as `latency_at_end` (nothing is lost).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_tui.commands.exits import fail


def latency_command(
    runs: Annotated[list[Path], typer.Argument(help="Finished run directories.")],
    write: Annotated[
        bool,
        typer.Option(
            help="Store each new record in the run's summary.json (`ecs compare` and "
            "`ecs report` read it); the run's own is kept as latency_at_end."
        ),
    ] = False,  # fmt: skip
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """Time finished runs' dense and final fp32 models again on this CPU (one thread, batch 1
    and 64), one run after another: a sweep's speed measured on a quiet machine."""
    from ecs_core.runfiles import FINISHED
    from ecs_core.stats.summary import speed_lines
    from ecs_core.store import RunStore, StoreError
    from ecs_tui.commands.quant import final_fp32

    for run in runs:  # every run checked before any is timed: a typo costs nothing
        try:
            status = (
                RunStore(run).read_summary().get("status")
                if (run / "summary.json").is_file()
                else None
            )
        except StoreError as exc:
            raise fail(str(exc)) from None
        if status != FINISHED.word:
            raise fail(f"{run} is not a finished run ({status or 'no summary.json'}); "
                       "time it once it has finished")  # fmt: skip
    for run in runs:  # one model in memory at a time
        cfg, model, num_classes, in_channels, _ = final_fp32(run)
        new = _measure(cfg, model, num_classes, in_channels)
        if write:
            _store(run, new)
        if json_out:
            typer.echo(json.dumps({"run": str(run), "latency": new}))
            continue
        typer.echo(f"{run.name}:")
        for line in speed_lines({"latency": new}):
            typer.echo(f"  {line}")


def _measure(cfg: Any, model: Any, num_classes: int, in_channels: int) -> dict[str, Any]:
    from ecs_core.latency import eager, measure, record
    from ecs_core.models import build_model
    from ecs_core.prune.compact import rebuild_shape

    dense = build_model(cfg.model, num_classes, in_channels, cfg.width)
    ms = measure({"dense": eager(dense), "fp32": eager(model)}, rebuild_shape(in_channels))
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {**record(ms["dense"], ms["fp32"], None), "measured_again": when}


def _store(run: Path, new: dict[str, Any]) -> None:
    """summary.json with `latency` = the new record; the run's own first one kept."""
    from ecs_core.store import RunStore, StoreError

    store = RunStore(run)
    try:
        summary = store.read_summary()
        summary.setdefault("latency_at_end", summary.get("latency"))
        summary["latency"] = new
        store.write_summary(summary)
    except StoreError as exc:
        raise fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add `ecs latency`."""
    app.command("latency")(latency_command)
