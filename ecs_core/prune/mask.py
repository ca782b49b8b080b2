"""Masks: which prunable weights are kept. One thresholding function serves every method.

A Mask is a plain `dict[str, BoolTensor]` keyed by parameter name (never `id(param)`), covering
the Conv2d and Linear weights. I/O lives in `store.py`, not here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

Mask = dict[str, torch.Tensor]
Scope = str | Callable[[dict[str, tuple[int, ...]], float], dict[str, int]]
"""global | layer, or a per-layer budget: (layer shapes, density) -> kept count per layer; or
`KeepDense` around one of those."""


@dataclass(frozen=True)
class KeepDense:
    """A scope with layers left out (`--keep-dense`): they stay 100% dense and the density is
    over the other layers, thresholded by `scope` as if the left-out layers were not there."""

    scope: Any
    """global | layer | a per-layer budget."""
    names: frozenset[str]

    def around(
        self, fn: Callable[[dict[str, torch.Tensor]], Mask], scores: dict[str, torch.Tensor]
    ) -> Mask:
        """`fn`'s mask of the other layers' `scores`, with the left-out layers all kept."""
        part = fn({k: v for k, v in scores.items() if k not in self.names})
        return {k: part[k] if k in part else torch.ones(v.shape, dtype=torch.bool, device=v.device)
                for k, v in scores.items()}  # fmt: skip


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


def not_binary(saved: dict[str, torch.Tensor], where: object) -> str | None:
    """A line saying a saved mask (masks.safetensors, a checkpoint's) holds a value other than
    0 and 1, which `.bool()` would silently read as kept; None when every value is 0 or 1."""
    for name, m in saved.items():
        bad = m[(m != 0) & (m != 1)]
        if bad.numel():
            return (
                f"{where} holds mask value {bad.flatten()[0].item():g} in {name} (a mask is 0 or "
                "1); it is damaged: restore it, or delete the run's masks.safetensors and "
                "checkpoints to prune again"
            )
    return None


def keep_count(total: int, density: float) -> int:
    """How many of `total` weights a density keeps (rounded, at least 1 when density > 0)."""
    return max(1, min(total, int(round(density * total)))) if density > 0 else 0


SAMPLE = 1 << 16  # scores sampled to bracket the k-th largest before the exact search


def _bracket(flats: list[torch.Tensor], n: int, k: int) -> tuple:
    """(lo, hi, side): sample values that bracket the k-th largest of n with high probability,
    and which side of the bracket to read (`_band`). None stands for an open end.

    Floyd & Rivest (1975): the k-th largest of a sample of m sits near rank (1 - k/n) m; six
    binomial standard deviations either side make a miss rare, and a miss only costs time.
    The sample is drawn at random positions (`_sample`). A run of equal values at an end of
    the bracket that stops short of that rank (SynFlow's pruned weights all score 0, just
    under the scores a late round ranks) is stepped over,
    so the band holds the values near the k-th, not the whole run.
    """
    step = n // SAMPLE
    gen = torch.Generator(device=flats[0].device).manual_seed(0)
    sample = torch.cat([_sample(f, step, gen) for f in flats]).sort().values
    m, q = sample.numel(), k / n
    margin = 6 * math.sqrt(m * q * (1 - q)) + 16
    centre = (1 - q) * m
    i_lo, i_hi = math.floor(centre - margin), math.ceil(centre + margin)
    if 0 <= i_lo:  # step over a run of ties at lo that ends below the centre
        run_end = int(torch.searchsorted(sample, sample[i_lo], right=True))
        if run_end - i_lo > 1 and run_end <= centre:
            i_lo = run_end
    if i_hi < m:  # and over one at hi that starts above it
        run_start = int(torch.searchsorted(sample, sample[i_hi]))
        if i_hi - run_start > 1 and run_start - 1 >= centre:
            i_hi = run_start - 1
    lo = sample[i_lo] if i_lo >= 0 else None
    hi = sample[i_hi] if i_hi < m else None
    top, bottom = m - max(i_lo, 0), min(i_hi, m - 1) + 1  # sampled entries >= lo, <= hi
    if lo is not None and hi is not None and min(top, bottom) > m // 4:
        side = "band"
    else:
        side = "top" if (top <= bottom and lo is not None) or hi is None else "bottom"
    return lo, hi, side


def _sample(f: torch.Tensor, step: int, gen: torch.Generator) -> torch.Tensor:
    """One entry at a random position in each run of `step` entries of f, the same ones every
    call (`gen`: a fixed-seed generator of the caller's, so the global RNG is untouched).
    Not every `step`-th entry: scores laid out as (out, in, kh, kw) vary with the kernel
    position and channel, and a stride samples a lattice of them (a late SynFlow round's
    bracket missed by 7% of the weights). In order, so the reads stay sequential."""
    count = -(-f.numel() // step)
    at = torch.arange(0, count * step, step, device=f.device)
    at += torch.randint(step, (count,), generator=gen, device=f.device)
    return f[at.clamp_(max=f.numel() - 1)]


def _band(f: torch.Tensor, lo, hi, side: str) -> tuple[int, torch.Tensor]:
    """(how many entries of f are > hi, the entries in [lo, hi]), reading the side of the
    bracket with fewer entries: the top for small k, the bottom for large k, and both bounds
    at once when each side holds much of the layer."""
    if side == "top":  # the entries >= lo, then split at hi
        sel = f if lo is None else f[f >= lo]
        if hi is None:
            return 0, sel
        over = sel > hi
        return int(torch.count_nonzero(over)), sel[~over]
    if side == "bottom":  # the entries <= hi, then cut at lo
        sel = f if hi is None else f[f <= hi]
        return f.numel() - sel.numel(), (sel if lo is None else sel[sel >= lo])
    within = f <= hi
    above = f.numel() - int(torch.count_nonzero(within))
    return above, f[within.logical_and_(f >= lo)]


def _kth_largest(flats: list[torch.Tensor], k: int) -> tuple[torch.Tensor, int]:
    """(v, c): the k-th largest value v over all of `flats` (1 <= k < total), exactly, and
    c = how many entries are >= v.

    Each layer is read once or twice to keep the entries inside a sampled bracket; `kthvalue`
    then runs on the few inside it. Nothing is concatenated, so the cost is a few vectorised
    passes per layer instead of a copy of every score and a serial selection over all of
    them. A bracket that misses falls back to that.
    """
    n = sum(f.numel() for f in flats)
    if n // SAMPLE >= 8:
        lo, hi, side = _bracket(flats, n, k)
        above, band = 0, []
        for f in flats:
            over, inside = _band(f, lo, hi, side)
            above += over
            band.append(inside)
        inside, r = torch.cat(band), k - above
        if 0 < r <= inside.numel():
            v = torch.kthvalue(inside, inside.numel() - r + 1).values
            return v, above + int(torch.count_nonzero(inside >= v))
    flat = torch.cat(flats)
    v = torch.kthvalue(flat, flat.numel() - k + 1).values
    return v, int(torch.count_nonzero(flat >= v))


def top_k(flats: list[torch.Tensor], k: int) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """(masks keeping exactly the k largest entries over all `flats`, the k-th largest value);
    ties keep earlier ones. The value is None when k keeps none or all."""
    n = sum(f.numel() for f in flats)
    if k <= 0 or k >= n:
        return [torch.full_like(f, k > 0, dtype=torch.bool) for f in flats], None
    v, count = _kth_largest(flats, k)
    masks = [f >= v for f in flats]
    extra = count - k
    for f, m in zip(reversed(flats), reversed(masks), strict=True):  # drop the last ties at v
        if extra <= 0:
            break
        ties = torch.nonzero(f == v).flatten()[-extra:]
        m[ties] = False
        extra -= ties.numel()
    return masks, v


def _check_finite(flats: list[torch.Tensor]) -> None:
    """Refuse NaN scores. A sum per layer (a fast reduction) is NaN if any entry is, so the
    exact per-entry test only runs when a sum is not finite."""
    suspects = [f for f in flats if not bool(torch.isfinite(f.sum()))]
    if any(bool(torch.isnan(f).any()) for f in suspects):
        raise PruneError("pruning scores contain NaN (did training diverge?); cannot rank weights")


def mask_from_scores(
    scores: dict[str, torch.Tensor], density: float, scope: Scope, lowest: bool = False
) -> Mask:
    """Keep the top `density` fraction of weights by score, globally or in every layer.

    Global scope keeps exactly round(density * total) weights overall; layer scope keeps
    round(density * n) in each layer; a per-layer budget (`prune.distribution.LayerBudget`,
    called with the layers' shapes and the density) keeps its own count in each layer.
    Higher score = more important; equal scores keep the earlier weight (model order, then
    position in the layer). `lowest`: keep the lowest scores instead (the `--ablate invert`
    sanity check), with the same counts and tie order.
    """
    if isinstance(scope, KeepDense):
        inner = scope.scope
        return scope.around(lambda part: mask_from_scores(part, density, inner, lowest), scores)
    if not callable(scope) and scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    flats = _prepared(scores, lowest)
    if callable(scope):
        counts = scope({k: tuple(s.shape) for k, s in scores.items()}, density)
        masks = [top_k([f], counts[k])[0][0] for k, f in zip(scores, flats, strict=True)]
    elif scope == "layer":
        masks = [top_k([f], keep_count(f.numel(), density))[0][0] for f in flats]
    else:
        masks, _ = top_k(flats, keep_count(sum(f.numel() for f in flats), density))
    return {name: m.view_as(s) for (name, s), m in zip(scores.items(), masks, strict=True)}


def keep_top(scores: dict[str, torch.Tensor], k: int, lowest: bool = False) -> Mask:
    """Exactly the k highest scores over all of `scores` (the lowest with `lowest`), ties to
    the earlier weight: the global top-k at a count rather than a density."""
    masks, _ = top_k(_prepared(scores, lowest), k)
    return {name: m.view_as(s) for (name, s), m in zip(scores.items(), masks, strict=True)}


def _prepared(scores: dict[str, torch.Tensor], lowest: bool) -> list[torch.Tensor]:
    """The scores as flat rows to rank (negated for `lowest`), NaN refused."""
    # float64 scores (ECS percentile ranks) stay float64 so distinct ranks stay distinct.
    wide = any(s.dtype == torch.float64 for s in scores.values())
    dtype = torch.float64 if wide else torch.float32
    flats = [s.flatten().to(dtype) for s in scores.values()]
    if lowest:
        flats = [-f for f in flats]
    _check_finite(flats)
    return flats


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
