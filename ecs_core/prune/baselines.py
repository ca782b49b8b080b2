"""Sanity baselines: random scores and weight magnitude."""

from __future__ import annotations

import torch
from torch import nn

from ecs_core.models import prunable_weights


def random_scores(
    model: nn.Module, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Uniform random scores, drawn on the CPU from `generator`: seeded, device-independent."""
    return {
        k: torch.rand(w.shape, generator=generator).to(w.device)
        for k, w in prunable_weights(model).items()
    }


def magnitude_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    """|w| at the pruning point."""
    return {k: w.detach().abs() for k, w in prunable_weights(model).items()}
