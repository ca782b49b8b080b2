"""Weight sharing seen from the weights: value histograms before/after, distinct-value counts.

"Before" is `model.safetensors` (trained, pruned, fp32); "after" is `quantized.safetensors`
(the shared-weight state dict the quantize stage writes). After k-means with 2^bits clusters a
layer has at most 2^bits distinct non-zero values, so its histogram is exact (Han et al. 2016,
Deep Compression, fig. 5 plots the same thing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ecs_core.stats.summary import QuantLayer, QuantTable, integer, num
from ecs_core.stats.weights import Histogram, unique_nonzero, weight_histograms


@dataclass(frozen=True)
class Clusters:
    """One layer's weight values at two stages, on a shared value axis."""

    layer: str
    before: Histogram
    after: Histogram | None
    bits: int | None
    note: str | None
    """Why `after` is missing, when it is."""


def clusters_for(
    layer: str,
    before: torch.Tensor,
    after: torch.Tensor | None,
    bins: int,
    summary: dict[str, Any],
    has_quantized_file: bool,
) -> Clusters:
    tensors = {"before": before} if after is None else {"before": before, "after": after}
    hists = weight_histograms(tensors, layer, bins)
    q = summary.get("quant") if isinstance(summary.get("quant"), dict) else {}
    note = None
    if after is None:
        note = (
            f"{layer} was not quantized"
            if has_quantized_file
            else "no quantized.safetensors: run with --quantize"
        )
    return Clusters(
        layer, hists[0], hists[1] if len(hists) > 1 else None, integer(q.get("bits")), note
    )


def quant_table_from_tensors(
    before: dict[str, torch.Tensor],
    after: dict[str, torch.Tensor],
    order: list[str],
    summary: dict[str, Any],
) -> QuantTable:
    """Count distinct non-zero values per layer in both files (prunable layers, then any other
    weight the quantize stage changed, such as shared batch-norm weights)."""
    names = [n for n in order if n in before and n in after]
    names += [
        k
        for k in after
        if k not in names and k in before and k.endswith("weight")
        and after[k].shape == before[k].shape and not torch.equal(after[k], before[k])
    ]  # fmt: skip
    rows = [QuantLayer(n, unique_nonzero(before[n]), unique_nonzero(after[n])) for n in names]
    q = summary.get("quant") if isinstance(summary.get("quant"), dict) else {}
    return QuantTable(
        bits=integer(q.get("bits")),
        layers=rows,
        unique_before=sum(r.unique_before for r in rows),
        unique_after=sum(r.unique_after for r in rows),
        test_acc=num(q.get("test_acc")),
        int8_test_acc=num(q.get("int8_test_acc")),
        source="tensors",
    )
