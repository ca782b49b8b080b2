"""Names users type, made canonical: the one place a spelling becomes a registered name.

Torch-free and import-free on purpose: the config, the registry and `ecs --help` read it.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and what would be valid."""


# Spellings users type for the same thing (the original used "CIFAR10", "ResNet34").
ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "cifar_10": "cifar10",
    "cifar_100": "cifar100",
    "vgg": "vgg16",
    "vgg16_bn": "vgg16",
    "vgg16bn": "vgg16",
    "vgg19_bn": "vgg19",
    "vgg19bn": "vgg19",
    "dense": "none",
    "lth": "imp",
    "lottery": "imp",
}


def canonical_name(name: str, choices: Iterable[str], what: str) -> str:
    """Case-insensitive lookup of `name` among `choices`; raise `ConfigError` listing them."""
    choices = tuple(choices)
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in choices:
        raise ConfigError(f"unknown {what} {name!r}; choose one of: {', '.join(choices)}")
    return key
