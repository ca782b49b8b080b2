"""The original's global mask: every score copied into one Python list, then `np.percentile`.

Re-implemented from the original project's ECS.py (not copied): for every Conv2d/Linear layer
it extended one Python list with the layer's absolute scores (one numpy scalar object per
weight), turned the list into an array for `np.percentile(..., 100 - retain%)`, counted the
kept fraction over the list again (a sanity check it computed every time), then built each
layer's mask with `np.where(score >= threshold, 1, 0)` and, for ECS, `np.logical_or` of the
weight mask and the gradient mask, as float64 arrays handed back to torch. SNIP uses the same
code on one score list (|g * w|). The per-element Python objects are where its time goes.
"""

from __future__ import annotations

import numpy as np
import torch


def _score_list(scores: dict[str, torch.Tensor]) -> list:
    """One Python list holding every score, one numpy scalar per weight (as the original)."""
    out: list = []
    for s in scores.values():
        out += list(abs(s.detach().flatten().cpu().numpy()))
    return out


def _threshold(values: list, retain: float) -> float:
    """The original's threshold and the kept-fraction check it computed on every call."""
    threshold = np.percentile(np.array(values), 100 - 100 * retain)
    _check = np.where(np.array(values) >= threshold, 1, 0).sum() / len(values)
    return float(threshold)


def percentile_mask(scores: dict[str, torch.Tensor], retain: float) -> dict[str, torch.Tensor]:
    """SNIP's global mask the original's way: float64 0/1 per layer, score >= threshold."""
    threshold = _threshold(_score_list(scores), retain)
    return {
        name: torch.from_numpy(np.where(abs(s.cpu().numpy()) >= threshold, 1, 0).astype(float))
        for name, s in scores.items()
    }


def ecs_union_mask(
    w_abs: dict[str, torch.Tensor], g_abs: dict[str, torch.Tensor], retain: float
) -> dict[str, torch.Tensor]:
    """ECS's global mask (ECS.py): top-`retain` by |g| OR top-`retain` by |w|, float64 0/1."""
    grad_list, weight_list = _score_list(g_abs), _score_list(w_abs)  # both held, as ECS.py
    threshold_grad = _threshold(grad_list, retain)
    threshold_weight = _threshold(weight_list, retain)
    del grad_list, weight_list
    masks = {}
    for name in w_abs:
        grad_mask = np.where(abs(g_abs[name].cpu().numpy()) >= threshold_grad, 1, 0)
        weight_mask = np.where(abs(w_abs[name].cpu().numpy()) >= threshold_weight, 1, 0)
        masks[name] = torch.from_numpy(np.logical_or(grad_mask, weight_mask).astype(float))
    return masks


def retain_keeping(total: int, keep: int) -> float:
    """The `retain` for which the original keeps exactly `keep` of `total` distinct scores.

    `np.percentile` interpolates linearly between order statistics, so for a fraction x the
    original keeps floor(x*n - x) + 1 weights where ours keeps round(x*n): at most one apart.
    Putting numpy's virtual index half-way between the two order statistics that bound the
    top `keep` makes the original keep exactly `keep`, whatever the rounding; this fraction
    is within 1/total of x, so the work timed is the same.
    """
    return 1 - (total - keep - 0.5) / (total - 1)
