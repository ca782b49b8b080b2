"""The tiny run the tests train: a 1/8-width VGG16 on the embedded digits data, one batch of one
epoch, no quantization (seconds on a CPU). One set of values; a test that needs more of
something says so: `RunConfig(**tiny(epochs=3))`, `["run", *tiny_args(epochs=3)]`."""

from __future__ import annotations

from typing import Any

from ecs_tui.commands.argv import to_args

TINY = {"width": 0.125, "epochs": 1, "max_batches": 1, "batch_size": 32, "quantize": False}


def tiny(**change: Any) -> dict[str, Any]:
    """The tiny run's `RunConfig` fields, `change` applied."""
    return {**TINY, **change}


def tiny_args(**change: Any) -> list[str]:
    """The same as `ecs run` options (by `argv.to_args`, the one converter)."""
    return to_args(tiny(**change))
