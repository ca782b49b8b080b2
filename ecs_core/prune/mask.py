"""Masks: which prunable weights are kept. One thresholding function serves every method.

A Mask is a plain `dict[str, BoolTensor]` keyed by parameter name (never `id(param)`), covering
the Conv2d and Linear weights. I/O lives in `store.py`, not here.
"""

from __future__ import annotations

import math

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


SAMPLE = 1 << 16  # scores sampled to bracket the k-th largest before the exact search


def _bracket(flats: list[torch.Tensor], n: int, k: int) -> tuple:
    """Sample values (lo, hi) that bracket the k-th largest of n with high probability.

    Floyd & Rivest (1975): the k-th largest of a sample of m sits near rank (1 - k/n) m; six
    binomial standard deviations either side make a miss rare, and a miss only costs time.
    None stands for an open end.
    """
    step = n // SAMPLE
    sample = torch.cat([f[::step] for f in flats]).sort().values
    m, q = sample.numel(), k / n
    margin = 6 * math.sqrt(m * q * (1 - q)) + 16
    i_lo, i_hi = math.floor((1 - q) * m - margin), math.ceil((1 - q) * m + margin)
    return (sample[i_lo] if i_lo >= 0 else None), (sample[i_hi] if i_hi < m else None)


def _kth_largest(flats: list[torch.Tensor], k: int) -> tuple[torch.Tensor, int]:
    """(v, c): the k-th largest value v over all of `flats` (1 <= k < total), exactly, and
    c = how many entries are >= v.

    Each layer is read once to keep the side of the bracket with fewer entries (the top for
    density <= 0.5); `kthvalue` then runs on the few inside the bracket. Nothing is
    concatenated, so the cost is two vectorised passes per layer instead of a copy of every
    score and a serial selection over all of them. A bracket that misses falls back to that.
    """
    n = sum(f.numel() for f in flats)
    if n // SAMPLE >= 8:
        lo, hi = _bracket(flats, n, k)
        above, band = 0, []
        for f in flats:
            if k <= n // 2:  # keep the top side: the entries >= lo
                sel = f if lo is None else f[f >= lo]
                over = None if hi is None else sel > hi
                above += 0 if over is None else int(torch.count_nonzero(over))
                band.append(sel if over is None else sel[~over])
            else:  # keep the bottom side: the entries <= hi
                sel = f if hi is None else f[f <= hi]
                above += f.numel() - sel.numel()
                band.append(sel if lo is None else sel[sel >= lo])
        inside, r = torch.cat(band), k - above
        if 0 < r <= inside.numel():
            v = torch.kthvalue(inside, inside.numel() - r + 1).values
            return v, above + int(torch.count_nonzero(inside >= v))
    flat = torch.cat(flats)
    v = torch.kthvalue(flat, flat.numel() - k + 1).values
    return v, int(torch.count_nonzero(flat >= v))


def _topk_masks(flats: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Masks keeping exactly the k largest entries over all `flats`; ties keep earlier ones."""
    n = sum(f.numel() for f in flats)
    if k <= 0 or k >= n:
        return [torch.full_like(f, k > 0, dtype=torch.bool) for f in flats]
    v, count = _kth_largest(flats, k)
    masks = [f >= v for f in flats]
    extra = count - k
    for f, m in zip(reversed(flats), reversed(masks), strict=True):  # drop the last ties at v
        if extra <= 0:
            break
        ties = torch.nonzero(f == v).flatten()[-extra:]
        m[ties] = False
        extra -= ties.numel()
    return masks


def _check_finite(flats: list[torch.Tensor]) -> None:
    """Refuse NaN scores. A sum per layer (a fast reduction) is NaN if any entry is, so the
    exact per-entry test only runs when a sum is not finite."""
    suspects = [f for f in flats if not bool(torch.isfinite(f.sum()))]
    if any(bool(torch.isnan(f).any()) for f in suspects):
        raise PruneError("pruning scores contain NaN (did training diverge?); cannot rank weights")


def mask_from_scores(
    scores: dict[str, torch.Tensor], density: float, scope: str, lowest: bool = False
) -> Mask:
    """Keep the top `density` fraction of weights by score, globally or in every layer.

    Global scope keeps exactly round(density * total) weights overall; layer scope keeps
    round(density * n) in each layer. Higher score = more important; equal scores keep the
    earlier weight (model order, then position in the layer). `lowest`: keep the lowest scores
    instead (the `--ablate invert` sanity check), with the same counts and tie order.
    """
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    # float64 scores (ECS percentile ranks) stay float64 so distinct ranks stay distinct.
    wide = any(s.dtype == torch.float64 for s in scores.values())
    dtype = torch.float64 if wide else torch.float32
    flats = [s.flatten().to(dtype) for s in scores.values()]
    if lowest:
        flats = [-f for f in flats]
    _check_finite(flats)
    if scope == "layer":
        masks = [_topk_masks([f], keep_count(f.numel(), density))[0] for f in flats]
    else:
        masks = _topk_masks(flats, keep_count(sum(f.numel() for f in flats), density))
    return {name: m.view_as(s) for (name, s), m in zip(scores.items(), masks, strict=True)}


def layer_report(mask: Mask) -> list[dict]:
    """[{name, params, kept, density}] in mask (= model) order."""
    rows = []
    for name, m in mask.items():
        kept = int(torch.count_nonzero(m))
        rows.append({"name": name, "params": m.numel(), "kept": kept, "density": kept / m.numel()})
    return rows


def density(mask: Mask) -> float:
    """Fraction of weights kept over the whole mask."""
    total = sum(m.numel() for m in mask.values())
    return sum(int(torch.count_nonzero(m)) for m in mask.values()) / max(1, total)


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
