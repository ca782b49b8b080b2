"""SNIP (Lee et al., ICLR 2019): connection sensitivity at initialisation."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ecs_core.models import prunable_weights
from ecs_core.prune.scoring import prunable_grads


def snip_scores(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_batches: int = 1,
    bn: str = "train",
) -> dict[str, torch.Tensor]:
    """Score = |dL/dc| at c = 1 for a multiplicative gate c on each weight, which is |g * w|.

    Computed on the model's own (initial) weights, not a re-initialised copy; `bn`: batch
    norm's mode while scoring (`prunable_grads`).
    """
    grads = prunable_grads(model, batches, n_batches, bn)
    weights = prunable_weights(model)
    return {name: (grads[name] * weights[name].detach()).abs() for name in weights}
