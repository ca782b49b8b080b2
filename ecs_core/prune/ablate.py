"""Sanity-check ablations of a pruning method (`--ablate`).

Frankle, Dziugaite, Roy & Carbin, "Pruning Neural Networks at Initialization: Why Are We Missing
the Mark?" (ICLR 2021) and Su et al., "Sanity-Checking Pruning Methods: Random Tickets can Win
the Jackpot" (NeurIPS 2020): if a method's accuracy survives these, what it found is the
per-layer density, not which weights.
- shuffle: permute each layer's mask at random; every layer keeps its count, not its positions.
- reinit:  keep the mask; the kept weights are drawn afresh from the model's initialisation.
- invert:  keep the lowest-scored weights instead of the highest (done by the pruner itself,
           through `mask_from_scores(..., lowest=True)`, so it holds for every method).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ecs_core.config import ABLATIONS
from ecs_core.models import prunable_weights
from ecs_core.prune.mask import Mask

__all__ = ["ABLATIONS", "REINIT_SEED", "reinit_weights", "shuffle_mask"]

REINIT_SEED = 1_000_003
"""Added to the run's seed for the fresh draw of `reinit`, so it differs from the model's own."""


def shuffle_mask(mask: Mask, generator: torch.Generator) -> Mask:
    """Each layer's mask with its entries permuted at random (same count, new positions).
    Permutations are drawn on the CPU from `generator`: seeded and device-independent."""
    out = {}
    for name, m in mask.items():
        perm = torch.randperm(m.numel(), generator=generator).to(m.device)
        out[name] = m.flatten()[perm].view_as(m)
    return out


@torch.no_grad()
def reinit_weights(model: nn.Module, fresh: Callable[[], nn.Module], seed: int) -> None:
    """Overwrite `model`'s prunable weights with those of `fresh()` built under `seed` (a new
    draw from the same initialisation); other parameters and the mask are left alone."""
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        new = prunable_weights(fresh())
    finally:
        torch.set_rng_state(state)
    for name, w in prunable_weights(model).items():
        w.copy_(new[name].to(device=w.device, dtype=w.dtype))
