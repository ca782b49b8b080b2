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

from ecs_core import trust
from ecs_core.config import ConfigError, check_model_spec
from ecs_core.trust import is_custom

__all__ = ["build_custom", "is_custom", "load_factory"]


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def load_factory(spec: str, source: str = "a run's file") -> Callable[..., nn.Module]:
    """Import `module` and return its `factory` attribute, if the user chose it (`trust`).

    A spec the user typed finds a module in the working directory, as with `python -m`, so the
    `ecs` script finds one beside you too; a spec read from a file (`source`) that the user
    trusts is looked up on the import path as it is, never in the working directory."""
    spec = check_model_spec(spec)
    trust.check(spec, source)  # before any import: nothing of an untrusted module runs
    module_name, _, attr = spec.partition(":")
    typed = trust.is_own(spec)
    if typed and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the user's module is one line
        where = "" if typed else "; a model named by a file is imported from your PYTHONPATH"
        raise ConfigError(
            f"--model {spec}: cannot import {module_name} ({_why(exc)}){where}"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        what = "is not callable" if factory is not None else "is not defined there"
        raise ConfigError(f"--model {spec}: {attr} {what} in {module_name}")
    return factory


def build_custom(
    spec: str, num_classes: int, in_channels: int, width: float, source: str = "a run's file"
) -> nn.Module:
    """Call the factory; check it returned a module with something to prune."""
    factory = load_factory(spec, source)
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
