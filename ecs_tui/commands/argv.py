"""A `RunConfig` as the `ecs run` options that reproduce it: the one config -> argv converter.

Used by the app's copy command, `ecs sweep --print-commands` and the torchrun launcher. Every
option field of the config (`ecs_core/options.py`) is an `ecs run` option spelled
`--field-name`, as `ecs run` is made from the same declarations, so this needs neither typer
nor the command itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ecs_core.config import RunConfig
from ecs_core.options import flag, options

ALWAYS = ("model", "dataset", "method", "density", "seed")
"""Written even at their defaults, so that each line records the experiment on its own."""


def config_to_args(config: RunConfig) -> list[str]:
    """`ecs run` options that reproduce `config`: `ALWAYS`, then the fields off their default.
    The scope's default is what `--scope auto` gives this config (layer for a channel run), so
    a channel run of the global scope says so."""
    defaults = dataclasses.replace(
        type(config)().validate(), scope=dataclasses.replace(config, scope="auto").validate().scope
    )
    chosen = {}
    for f, _ in options(type(config)):
        value = getattr(config, f.name)
        if value is not None and (value != getattr(defaults, f.name) or f.name in ALWAYS):
            chosen[f.name] = value
    return to_args(chosen)


def to_args(values: dict[str, Any]) -> list[str]:
    """Field values -> `ecs run` options: `{"epochs": 2, "quantize": False}` ->
    `["--epochs", "2", "--no-quantize"]` (a float as its repr, so it reads back the same)."""
    args: list[str] = []
    for name, value in values.items():
        if isinstance(value, bool):
            args.append(flag(name) if value else f"--no-{flag(name)[2:]}")
        else:
            args += [flag(name), repr(value) if isinstance(value, float) else str(value)]
    return args
