"""A user's own model: `--model package.module:factory`.

The factory is any callable `(num_classes, in_channels, width) -> nn.Module` (called with those
keywords) whose Conv2d / Linear weights are what gets pruned. The spec is stored as the run's
`model` in config.json, so `--resume` and sweeps rebuild the same model. Every way this can go
wrong (no such module, no such attribute, the call fails, nothing to prune) is one
`ConfigError` line, raised before anything is written.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from torch import nn

from ecs_core.config import ConfigError, check_model_spec


def is_custom(name: str) -> bool:
    """True for a `module:factory` spec (our own model names never contain a colon)."""
    return ":" in name


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def load_factory(spec: str) -> Callable[..., nn.Module]:
    """Import `module` and return its `factory` attribute (the working directory is importable,
    as with `python -m`, so a module beside you is found by the `ecs` script too)."""
    spec = check_model_spec(spec)
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the user's module is one line
        raise ConfigError(f"--model {spec}: cannot import {module_name} ({_why(exc)})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        what = "is not callable" if factory is not None else "is not defined there"
        raise ConfigError(f"--model {spec}: {attr} {what} in {module_name}")
    return factory


def build_custom(spec: str, num_classes: int, in_channels: int, width: float) -> nn.Module:
    """Call the factory; check it returned a module with something to prune."""
    factory = load_factory(spec)
    try:
        model = factory(num_classes=num_classes, in_channels=in_channels, width=width)
    except Exception as exc:
        raise ConfigError(
            f"--model {spec}: calling it with (num_classes={num_classes}, "
            f"in_channels={in_channels}, width={width:g}) failed ({_why(exc)})"
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {spec}: returned {type(model).__name__}, not a torch nn.Module")
    if not any(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules()):
        raise ConfigError(f"--model {spec}: the model has no Conv2d or Linear layer to prune")
    return model
