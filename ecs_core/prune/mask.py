"""Masks: which prunable weights are kept. One thresholding function serves every method.

A Mask is a plain `dict[str, BoolTensor]` keyed by parameter name (never `id(param)`), covering
the Conv2d and Linear weights. I/O lives in `store.py`, not here.
"""

from __future__ import annotations

import torch
from torch import nn

Mask = dict[str, torch.Tensor]


class PruneError(RuntimeError):
    """Pruning cannot produce the requested mask (e.g. a layer would collapse)."""


def validate_mask(mask: Mask, params: dict[str, torch.Tensor]) -> None:
    """Raise `PruneError` unless mask keys equal `params` keys, shapes match and dtype is bool."""
    if set(mask) != set(params):
        missing = sorted(set(params) - set(mask))
        extra = sorted(set(mask) - set(params))
        raise PruneError(f"mask does not match the model: missing {missing}, unexpected {extra}")
    for name, m in mask.items():
        if m.dtype != torch.bool or m.shape != params[name].shape:
            raise PruneError(
                f"mask entry {name}: expected bool {tuple(params[name].shape)}, "
                f"got {m.dtype} {tuple(m.shape)}"
            )


def keep_count(total: int, density: float) -> int:
    """How many of `total` weights a density keeps (rounded, at least 1 when density > 0)."""
    return max(1, min(total, int(round(density * total)))) if density > 0 else 0


def _topk_mask(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of exactly k largest entries (ties broken by position, deterministically)."""
    out = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if not flat.is_floating_point():
        flat = flat.float()
    if bool(torch.isnan(flat).any()):
        raise PruneError("pruning scores contain NaN (did training diverge?); cannot rank weights")
    if k >= flat.numel():
        out.fill_(True)
    elif k > 0:
        # kthvalue gives the threshold; entries strictly above are kept, then ties fill up to k.
        # The threshold stays in the scores' own dtype: rounding float64 ranks to float32 made
        # `flat == thresh` miss the threshold entry, so a layer kept k+1 (or fewer) weights.
        thresh = torch.kthvalue(flat, flat.numel() - k).values
        above = flat > thresh
        out |= above
        need = k - int(above.sum())
        if need > 0:
            ties = torch.nonzero(flat == thresh).flatten()[:need]
            out[ties] = True
    return out


def mask_from_scores(scores: dict[str, torch.Tensor], density: float, scope: str) -> Mask:
    """Keep the top `density` fraction of weights by score, globally or in every layer.

    Global scope keeps exactly round(density * total) weights overall; layer scope keeps
    round(density * n) in each layer. Higher score = more important.
    """
    if scope == "layer":
        return {
            name: _topk_mask(s.flatten(), keep_count(s.numel(), density)).view_as(s)
            for name, s in scores.items()
        }
    if scope != "global":
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    # float64 scores (ECS percentile ranks) stay float64 so distinct ranks stay distinct.
    wide = any(s.dtype == torch.float64 for s in scores.values())
    dtype = torch.float64 if wide else torch.float32
    flat = torch.cat([s.flatten().to(dtype) for s in scores.values()])
    keep = _topk_mask(flat, keep_count(flat.numel(), density))
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = keep[start : start + s.numel()].view_as(s)
        start += s.numel()
    return out


def layer_report(mask: Mask) -> list[dict]:
    """[{name, params, kept, density}] in mask (= model) order."""
    rows = []
    for name, m in mask.items():
        kept = int(m.sum())
        rows.append({"name": name, "params": m.numel(), "kept": kept, "density": kept / m.numel()})
    return rows


def density(mask: Mask) -> float:
    """Fraction of weights kept over the whole mask."""
    total = sum(m.numel() for m in mask.values())
    return sum(int(m.sum()) for m in mask.values()) / max(1, total)


def collapsed(mask: Mask) -> list[str]:
    """Layers with no weight left."""
    return [name for name, m in mask.items() if not bool(m.any())]


class MaskEnforcer:
    """Keeps pruned weights exactly 0 during training, with momentum and weight decay on.

    Call `after_backward()` between `loss.backward()` and `optimizer.step()` (zeroes pruned
    gradients so momentum never accumulates for them) and `after_step()` after the step (zeroes
    the weights again, which also covers weight decay and any numerical drift). Both are one
    fused `_foreach_mul_` over all masked tensors, so the cost is a fraction of a step.
    We do not use torch.nn.utils.prune: its forward pre-hooks rename parameters to
    `weight_orig` and multiply on every forward, which costs more and breaks name-keyed masks.
    """

    def __init__(self, model: nn.Module, mask: Mask) -> None:
        params = dict(model.named_parameters())
        self.params = [params[name] for name in mask]
        self.masks = [
            m.to(device=p.device, dtype=p.dtype)
            for m, p in zip(mask.values(), self.params, strict=True)
        ]
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        torch._foreach_mul_(self.params, self.masks)

    @torch.no_grad()
    def after_backward(self) -> None:
        grads = [p.grad for p in self.params]
        if all(g is not None for g in grads):
            torch._foreach_mul_(grads, self.masks)
        else:  # a layer unused this step: mask the gradients that exist
            for g, m in zip(grads, self.masks, strict=True):
                if g is not None:
                    g.mul_(m)

    after_step = apply

    @torch.no_grad()
    def mask_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero momentum buffers of pruned weights (they hold warm-up history before pruning)."""
        for p, m in zip(self.params, self.masks, strict=True):
            state = optimizer.state.get(p, {})
            for key in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
                buf = state.get(key)
                if isinstance(buf, torch.Tensor) and buf.shape == m.shape:
                    buf.mul_(m)
