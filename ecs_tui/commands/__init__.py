"""CLI commands, one module per area; each module's `register(app)` adds its commands."""

from __future__ import annotations

import typer

from ecs_tui.commands import inspect, latency, quant, run, runs, sweep

MODULES = (run, quant, inspect, runs, sweep, latency)


def register(app: typer.Typer) -> None:
    for module in MODULES:
        module.register(app)
