"""Explicit Connection Sensitivity: keep weights that are large OR have large gradients.

After `warmup_epochs` of training, a weight is important if its magnitude |w| is in the top-x
or its gradient magnitude |g| is in the top-x. Only weights low on both counts are removed.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ecs_core.models import prunable_weights
from ecs_core.prune.mask import Mask, Scope, mask_from_scores
from ecs_core.prune.scoring import percentile_ranks, prunable_grads


def ecs_scores(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_batches: int = 1,
    bn: str = "train",
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(|w|, |g|) for every prunable weight; g is dL/dw summed over `n_batches` batches (batch
    norm in `bn` mode: `prunable_grads`)."""
    grads = prunable_grads(model, batches, n_batches, bn)
    weights = prunable_weights(model)
    return (
        {k: w.detach().abs() for k, w in weights.items()},
        {k: g.abs() for k, g in grads.items()},
    )


def ecs_mask(
    w_abs: dict[str, torch.Tensor],
    g_abs: dict[str, torch.Tensor],
    density: float,
    scope: Scope,
    budget: str = "exact",
    lowest: bool = False,
) -> tuple[Mask, dict[str, int]]:
    """The ECS mask and the overlap counts {both, weight_only, grad_only} of kept weights.

    union: top-x by |w| OR top-x by |g| with x = density (achieved density in [x, 2x]).
    exact: rank each weight by the larger of its two percentile ranks and keep exactly x.
    lowest (`--ablate invert`): union keeps bottom-x by |w| OR bottom-x by |g|; exact keeps
    the lowest max-rank, i.e. exactly the weights ECS removes first (low on both counts).
    """
    by_w = mask_from_scores(w_abs, density, scope, lowest)
    by_g = mask_from_scores(g_abs, density, scope, lowest)
    if budget == "union":
        mask = {k: by_w[k] | by_g[k] for k in by_w}
    elif budget == "exact":
        rw, rg = percentile_ranks(w_abs, scope), percentile_ranks(g_abs, scope)
        best = {k: torch.maximum(rw[k], rg[k]) for k in rw}
        mask = mask_from_scores(best, density, scope, lowest)
    else:
        raise ValueError(f"budget must be 'exact' or 'union', got {budget!r}")
    return mask, overlap_counts(mask, by_w, by_g, budget)


def overlap_counts(mask: Mask, by_w: Mask, by_g: Mask, budget: str) -> dict[str, int]:
    """{both, weight_only, grad_only}: kept weights in both top-x sets, or in one only."""
    overlap = {"both": 0, "weight_only": 0, "grad_only": 0}
    for k, m in mask.items():
        w, g = by_w[k], by_g[k]
        if budget == "exact":  # the exact mask may drop part of either top-x set
            w, g = m & w, m & g
        both = int(torch.count_nonzero(w & g))  # count_nonzero: no int64 copy, unlike sum()
        overlap["both"] += both
        overlap["weight_only"] += int(torch.count_nonzero(w)) - both
        overlap["grad_only"] += int(torch.count_nonzero(g)) - both
    return overlap
