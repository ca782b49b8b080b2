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


class _Detached(nn.Module):
    """A head fed a detached feature map: autograd cannot see the conv that made it."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))

    def forward(self, x):
        return self.head(self.conv(x).detach())


def detached(num_classes: int, in_channels: int, width: float) -> nn.Module:
    """Trains with --structure weight (the conv's gradient is 0); channel pruning refuses it."""
    return _Detached(in_channels, num_classes)
