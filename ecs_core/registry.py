"""Name -> factory registries (plain dicts). A new model or pruner is one file plus one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecs_core.config import ConfigError, canonical_name
from ecs_core.data.cifar import load_cifar
from ecs_core.data.digits import load_digits_data
from ecs_core.data.fashion import load_fashion
from ecs_core.models.resnet import resnet34, resnet50
from ecs_core.models.resnet18 import resnet18
from ecs_core.models.vgg import vgg16, vgg19

MODELS: dict[str, Callable[..., Any]] = {
    "vgg16": vgg16,
    "vgg19": vgg19,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
}

# (data_dir, download) -> ImageData
DATASETS: dict[str, Callable[..., Any]] = {
    "digits": lambda data_dir, download: load_digits_data(),
    "fashion-mnist": load_fashion,
    "cifar10": lambda data_dir, download: load_cifar("cifar10", data_dir, download),
    "cifar100": lambda data_dir, download: load_cifar("cifar100", data_dir, download),
}


def lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    """registry[name], case-insensitive; unknown names raise `ConfigError` listing valid ones."""
    try:
        return registry[canonical_name(name, tuple(registry), what)]
    except KeyError as exc:  # pragma: no cover - canonical_name already checked membership
        raise ConfigError(f"unknown {what} {name!r}") from exc
