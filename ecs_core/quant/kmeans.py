"""k-means weight sharing, one layer at a time, on the non-zero weights only.

Deep Compression (Han et al. 2016) clusters each layer's weights into 2**bits shared values
with linear initialisation between min and max. Unlike the original project, only the
non-zero weights are clustered, so pruned weights stay exactly 0 and the mask is untouched.

Example (notebook)::

    from ecs_core.models import build_model
    from ecs_core.quant import share_weights
    net = build_model("vgg16", 10, 3, width=0.25)
    report = share_weights(net, bits=5)
    print(report.unique_before, report.unique_after, report.rows()[0])

The clustering itself (sorted-values Lloyd, O(k log n) per step) lives in `lloyd.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ecs_core.models import prunable_weights
from ecs_core.quant.lloyd import MAX_ITER, KMeans1D, kmeans_1d, kmeans_sorted, linear_init

__all__ = ["KMeans1D", "LayerShare", "ShareReport", "kmeans_1d", "linear_init", "share_weights"]


@dataclass
class LayerShare:
    """One layer's weight sharing: the table row plus the codebook and codes."""

    name: str
    unique_before: int
    unique_after: int
    sse: float
    nnz: int
    iterations: int
    codebook: torch.Tensor = field(repr=False)
    """float32 shared values, ascending."""
    codes: torch.Tensor = field(repr=False)
    """int64 codebook index of each shared weight, in flat (row-major) order."""
    index: torch.Tensor = field(repr=False)
    """int64 flat (row-major) positions of the shared weights; all others are 0."""

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unique_before": self.unique_before,
            "unique_after": self.unique_after,
            "sse": self.sse,
        }


@dataclass
class ShareReport:
    """What `share_weights` did: per-layer rows (the original report's table) and totals."""

    bits: int
    layers: list[LayerShare]
    seconds: float

    @property
    def unique_before(self) -> int:
        return sum(r.unique_before for r in self.layers)

    @property
    def unique_after(self) -> int:
        return sum(r.unique_after for r in self.layers)

    @property
    def sse(self) -> float:
        return sum(r.sse for r in self.layers)

    def rows(self) -> list[dict[str, Any]]:
        """[{name, unique_before, unique_after, sse}] in model order."""
        return [r.row() for r in self.layers]

    def codebooks(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{name: (codebook, codes)} for the codec or a custom exporter."""
        return {r.name: (r.codebook, r.codes) for r in self.layers}


def shareable_weights(model: nn.Module, include_bn: bool = False) -> dict[str, nn.Parameter]:
    """Conv2d and Linear weights, plus batch-norm weights when `include_bn` (the original did)."""
    out = dict(prunable_weights(model))
    if include_bn:
        for mod_name, mod in model.named_modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.weight is not None:
                out[f"{mod_name}.weight"] = mod.weight
    return out


@torch.no_grad()
def share_layer(
    name: str, weight: torch.Tensor, bits: int, keep: torch.Tensor | None, dp: bool = True
) -> LayerShare:
    """Cluster the non-zero (and kept) entries of `weight` in place; the rest become exactly 0."""
    inplace = weight.device.type == "cpu" and weight.is_contiguous()
    w = weight.detach().cpu().reshape(-1).numpy()  # a view when `inplace`, else a copy
    sel = w != 0
    if keep is not None:
        sel &= keep.detach().cpu().numpy().reshape(-1).astype(bool)
    idx = np.flatnonzero(sel)
    values = w[idx]
    order = np.argsort(values)  # sort once: the unique count and every Lloyd step reuse it
    s = values[order].astype(np.float64)
    unique_before = int(np.count_nonzero(np.diff(s))) + 1 if len(s) else 0
    k = 2**bits
    if unique_before <= k:  # already at most k values: keep them exactly
        book, codes = np.unique(s, return_inverse=True)
        codes, iters = codes[np.argsort(order)], 0
    else:
        res = kmeans_sorted(s, order, linear_init(s, k), MAX_ITER, dp)
        book, codes, iters = res.centroids, res.codes, res.iterations
    book32 = book.astype(np.float32)
    shared = book32[codes]
    sse = float(np.sum((values.astype(np.float64) - shared) ** 2))  # of what is stored
    w[~sel] = 0.0
    w[idx] = shared
    if not inplace:
        weight.copy_(torch.from_numpy(w).view(weight.shape))
    used = book32[np.bincount(codes, minlength=len(book32)) > 0]
    unique_after = int(np.count_nonzero(np.unique(used)))
    codes_t = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int64))
    return LayerShare(
        name, unique_before, unique_after, sse, len(values), iters,
        torch.from_numpy(book32), codes_t, torch.from_numpy(idx.astype(np.int64)),
    )  # fmt: skip


def share_weights(
    model: nn.Module,
    bits: int = 5,
    mask: dict[str, torch.Tensor] | None = None,
    include_bn: bool = False,
    dp: bool = True,
) -> ShareReport:
    """Replace each layer's non-zero weights by the nearest of 2**bits shared values, in place.

    `mask` (name -> bool tensor), when given, also zeroes any weight outside it. Zeros stay
    exactly zero; each layer ends with at most 2**bits distinct non-zero values. Clustering is
    Lloyd from linear init and from a binned optimal clustering, keeping the lower SSE
    (`dp=False`: Lloyd from linear init only, which gives scikit-learn's result).
    """
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    t = time.perf_counter()
    rows = []
    for name, w in shareable_weights(model, include_bn).items():
        keep = mask.get(name) if mask is not None else None
        rows.append(share_layer(name, w.data, bits, keep, dp))
    return ShareReport(bits, rows, time.perf_counter() - t)
