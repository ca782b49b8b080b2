"""Models of a user's own, for `--model tests.engine.custom_model:factory` (not a test file)."""

from __future__ import annotations

from torch import nn


def factory(num_classes: int, in_channels: int, width: float) -> nn.Module:
    """A small CNN whose channels follow `width`: conv-bn-relu x2, pool, linear."""
    c = max(1, int(round(32 * width)))
    return nn.Sequential(
        nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * c),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * c, num_classes),
    )


def broken(num_classes: int, in_channels: int, width: float) -> nn.Module:
    raise RuntimeError("this factory always fails")


def nothing_to_prune(num_classes: int, in_channels: int, width: float) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.ReLU())


def not_a_module(num_classes: int, in_channels: int, width: float) -> int:
    return 3


NOT_CALLABLE = 42
