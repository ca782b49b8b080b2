"""SynFlow (Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks without any data by
iteratively conserving synaptic flow", NeurIPS 2020): data-free, iterative pruning at init.

1) Linearise: every parameter and batch-norm buffer θ -> |θ| (batch norm in eval mode, so it is
   a fixed affine map), pruned weights 0.
2) R = 1ᵀ (Π_l |θ_l|) 1: the sum of the output for an all-ones input.
3) Score = |θ ⊙ ∂R/∂θ|, the synaptic flow through each weight; keep the top d_k.
4) Repeat for k = 1..n with the exponential schedule d_k = d^(k/n): pruning a little at a time
   lets the remaining flow redistribute, which is what avoids layer collapse (the paper shows
   that single-shot conservative scores prune the largest layers first, and that iterative
   positive conservative scoring reaches maximal critical compression).
The model itself is never modified: the linearised network is evaluated with
`torch.func.functional_call` on float64 copies of |θ|, so the signed weights are untouched
by construction. float64 because R is a product over all layers: it overflows float32 for deep
nets (a full-width ResNet50 at init has scores up to 2.5e67; float32 ends at 3.4e38), which
would turn scores into inf ties.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.func import functional_call

from ecs_core.models import prunable_weights
from ecs_core.prune.mask import (
    KeepDense,
    Mask,
    Scope,
    keep_count,
    keep_top,
    mask_from_scores,
    top_k,
)


def density_schedule(density: float, iterations: int) -> list[float]:
    """[d^(1/n), d^(2/n), ..., d]: the last entry is exactly the target."""
    return [density ** (k / iterations) for k in range(1, iterations)] + [density]


def input_shape(model: nn.Module, batches: Iterable | None) -> tuple[int, ...]:
    """One sample's shape: from a batch when there is one, else the first layer's input
    (a Conv2d reads 32x32 images, the CIFAR size our models are built for)."""
    if batches is not None:
        for x, _ in batches:
            return tuple(x.shape[1:])
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            return (mod.in_channels, 32, 32)
        if isinstance(mod, nn.Linear):
            return (mod.in_features,)
    raise ValueError("the model has no Conv2d or Linear layer to prune")


class _Linearised:
    """The linearised network, built once: float64 |θ| of every parameter and floating buffer.

    Rounds only zero the newly pruned weights in place (`prune_to`), so each round costs one
    forward and one backward plus a few passes over the weights, not a fresh copy of the model.
    """

    def __init__(self, model: nn.Module, shape: tuple[int, ...]) -> None:
        self.model, self.names = model, list(prunable_weights(model))
        with torch.no_grad():
            self.tensors = {k: v.detach().abs().double() for k, v in model.named_parameters()}
            for k, v in model.named_buffers():  # BN running mean/var: linearised too, as reference
                self.tensors[k] = v.detach().abs().double() if v.is_floating_point() else v
        device = self.tensors[self.names[0]].device
        self.ones = torch.ones((1, *shape), dtype=torch.float64, device=device)

    @torch.no_grad()
    def prune_to(self, mask: Mask) -> None:
        """Zero the weights outside `mask` (a multiply by the bool mask: one pass, less than
        half the time of a masked fill on the CPU)."""
        for k in self.names:
            self.tensors[k].mul_(mask[k].to(self.ones.device))

    def grads(self) -> list[torch.Tensor]:
        """∂R/∂θ for the prunable weights (float64), in `names` order."""
        weights = [self.tensors[k].requires_grad_(True) for k in self.names]
        was_training = self.model.training
        self.model.eval()
        try:
            r = functional_call(self.model, self.tensors, (self.ones,)).sum()
            return list(torch.autograd.grad(r, weights))
        finally:
            self.model.train(was_training)
            for w in weights:
                w.requires_grad_(False)


def synflow_scores(
    model: nn.Module, shape: tuple[int, ...], mask: Mask | None = None
) -> dict[str, torch.Tensor]:
    """|θ ⊙ ∂R/∂θ| (float64) for the prunable weights of the linearised, masked network."""
    net = _Linearised(model, shape)
    if mask is not None:
        net.prune_to(mask)
    return synflow_scores_of(net)


def synflow_scores_of(net: _Linearised) -> dict[str, torch.Tensor]:
    """|θ ⊙ ∂R/∂θ| of the linearised network as it stands (fresh tensors, float64)."""
    grads = net.grads()
    return {k: g.mul_(net.tensors[k]).abs_() for k, g in zip(net.names, grads, strict=True)}


def synflow_mask(
    model: nn.Module,
    density: float,
    scope: Scope,
    iterations: int = 100,
    batches: Iterable | None = None,
    lowest: bool = False,
) -> Mask:
    """Prune to `density` in `iterations` rounds of SynFlow scoring (d_k = d^(k/n)).
    `lowest` (`--ablate invert`): every round keeps the lowest flow instead."""
    net = _Linearised(model, input_shape(model, batches))
    mask: Mask | None = None
    for d_k in density_schedule(density, iterations):
        scores = synflow_scores_of(net)
        if mask is None:
            mask = mask_from_scores(scores, d_k, scope, lowest)
        else:
            mask = _rank_live(scores, mask, d_k, scope, lowest)
        net.prune_to(mask)
    assert mask is not None
    return mask


def _rank_live(scores: dict, mask: Mask, d_k: float, scope: Scope, lowest: bool) -> Mask:
    """The round's mask: the shared top-k over the weights still in `mask` only.

    A pruned weight is never a candidate again. Live entries keep model order and position,
    so ties break as in the full-size ranking; the counts are those of the full layers
    (round(d_k * n) overall, or per layer). `_top_flow` finds that ranking from the
    full-size scores; `_top_live` gathers the live scores and ranks them on their own (for
    `--ablate invert`, and for scores that are not finite).
    """
    if isinstance(scope, KeepDense):
        return scope.around(lambda part: _rank_live(part, mask, d_k, scope.scope, lowest), scores)
    groups = [list(scores)] if scope == "global" else [[k] for k in scores]
    counts = scope({k: tuple(s.shape) for k, s in scores.items()}, d_k) if callable(scope) else {}
    out: Mask = {}
    for names in groups:
        part = {k: scores[k] for k in names}
        count = counts.get(names[0]) if counts else None
        if count is None:
            count = keep_count(sum(mask[k].numel() for k in names), d_k)
        kept = None if lowest else _top_flow(part, mask, count)
        out.update(kept if kept is not None else _top_live(part, mask, count, lowest))
    return out


def _top_flow(scores: dict, mask: Mask, count: int) -> Mask | None:
    """The `count` highest live scores, read from the full-size scores (None if one is not
    finite: 0 * inf at a pruned weight).

    A pruned weight scores exactly |0 * g| = 0 and no score is negative. So when the count-th
    largest score v is positive, every weight kept (score >= v) is live and the top `count`
    overall is the live ranking, ties included. When v is 0 (the round keeps more weights
    than have flow: a full-width VGG16's last conv has 1.3M weights that its 1x1 max-pool
    never reads), the ranking is every positive score, then the first live zeros in model
    order. Either way there is no gather of the live scores and no scatter back, which cost
    four times a round's forward and backward on a full-width VGG16.
    """
    flats = [s.reshape(-1) for s in scores.values()]  # a channels-last score copies
    if not all(bool(torch.isfinite(f.sum())) for f in flats):
        return None
    masks, v = top_k(flats, count)
    if v is not None and not bool(v > 0):  # positives, then live zeros by position
        masks = [f > 0 for f in flats]
        need = count - sum(int(torch.count_nonzero(m)) for m in masks)
        for k, m in zip(scores, masks, strict=True):
            if need <= 0:
                break
            zeros = torch.nonzero(mask[k].reshape(-1) & ~m).flatten()[:need]
            m[zeros] = True
            need -= zeros.numel()
    return {k: m.view_as(s) for (k, s), m in zip(scores.items(), masks, strict=True)}


def _top_live(scores: dict, mask: Mask, count: int, lowest: bool) -> Mask:
    """The `count` highest (or lowest) scores among the weights in `mask`, gathered."""
    kept = keep_top({k: s[mask[k]] for k, s in scores.items()}, count, lowest)
    out = {}
    for k in scores:
        new = torch.zeros_like(mask[k])
        new[mask[k]] = kept[k]
        out[k] = new
    return out
