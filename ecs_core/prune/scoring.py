"""Gradients of the loss with respect to the prunable weights, for the gradient-based scores."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ecs_core.models import prunable_weights
from ecs_core.prune.mask import KeepDense


def prunable_grads(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_batches: int,
    bn: str = "train",
) -> dict[str, torch.Tensor]:
    """dL/dw for every prunable weight, summed over the first `n_batches` batches.

    `bn` (`--score-bn`): train (batch statistics, as training sees them) | eval (the running
    statistics). Restores the batch-norm running statistics afterwards, so scoring leaves the
    model exactly as it found it.
    """
    weights = prunable_weights(model)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    was_training = model.training
    model.train(bn == "train")
    for p in model.parameters():
        p.grad = None
    seen = 0
    for x, y in batches:
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        seen += 1
        if seen >= n_batches:
            break
    if seen == 0:
        raise ValueError("no batches to score connections with")
    grads = {name: w.grad.detach().clone() for name, w in weights.items()}
    for p in model.parameters():
        p.grad = None
    with torch.no_grad():
        for k, v in model.named_buffers():
            v.copy_(buffers[k])
    model.train(was_training)
    return grads


def percentile_ranks(scores: dict[str, torch.Tensor], scope: object) -> dict[str, torch.Tensor]:
    """Each entry's rank in [0, 1) among its pool (all layers for the global scope, else its
    own layer: a per-layer budget ranks within each layer too)."""

    def ranks(flat: torch.Tensor) -> torch.Tensor:
        # Ties rank the earlier entry higher, the same order `mask_from_scores` keeps them in,
        # so an exact-budget ECS mask stays inside the union of the two top-x sets.
        n = flat.numel()
        order = (n - 1) - torch.argsort(flat.flip(0), stable=True)
        r = torch.empty(n, dtype=torch.float64, device=flat.device)
        r[order] = torch.arange(n, dtype=torch.float64, device=flat.device)
        return r / n

    if isinstance(scope, KeepDense):  # ranked among the other layers only
        part = percentile_ranks({k: v for k, v in scores.items() if k not in scope.names},
                                scope.scope)  # fmt: skip
        return {k: part.get(k, torch.ones(v.shape, dtype=torch.float64, device=v.device))
                for k, v in scores.items()}  # fmt: skip
    if scope != "global":
        return {k: ranks(v.flatten().float()).view_as(v) for k, v in scores.items()}
    flat = ranks(torch.cat([v.flatten().float() for v in scores.values()]))
    out, start = {}, 0
    for k, v in scores.items():
        out[k] = flat[start : start + v.numel()].view_as(v)
        start += v.numel()
    return out
