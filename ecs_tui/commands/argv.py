"""A `RunConfig` as the `ecs run` options that reproduce it: the one config -> argv converter.

Used by the app's copy command, `ecs sweep --print-commands` and the torchrun launcher. Every
`RunConfig` field (but `extra`) is an `ecs run` option spelled `--field-name` (a test holds
`ecs run` to that), so this needs neither typer nor the command itself.
"""

from __future__ import annotations

import dataclasses

from ecs_core.config import RunConfig

ALWAYS = ("model", "dataset", "method", "density", "seed")
"""Written even at their defaults, so that each line records the experiment on its own."""


def flag(name: str) -> str:
    """RunConfig field -> `ecs run` option (`batch_size` -> `--batch-size`)."""
    return "--" + name.replace("_", "-")


def config_to_args(config: RunConfig) -> list[str]:
    """`ecs run` options that reproduce `config`: `ALWAYS`, then the fields off their default."""
    defaults = RunConfig().validate()
    args: list[str] = []
    for f in dataclasses.fields(RunConfig):
        name = f.name
        value = getattr(config, name)
        if name == "extra" or value is None:
            continue
        if value == getattr(defaults, name) and name not in ALWAYS:
            continue
        if isinstance(value, bool):
            args.append(flag(name) if value else f"--no-{flag(name)[2:]}")
        else:
            args += [flag(name), repr(value) if isinstance(value, float) else str(value)]
    return args
