"""Numbers about weights: per-layer density, value histograms, kernel maps. Tensors in, data out.

Every function here takes plain tensors (a state dict, a mask, one weight) and returns frozen
dataclasses of Python numbers, so the same results feed `ecs show`, `--json` and the TUI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ecs_core.stats.errors import StatsError

EXACT_MAX = 256
"""A layer with at most this many distinct non-zero values gets exact counts, not bins."""


@dataclass(frozen=True)
class LayerDensity:
    """One prunable layer: how many of its weights are kept."""

    name: str
    kind: str
    """conv | linear (from the weight's rank)."""
    shape: tuple[int, ...]
    params: int
    kept: int
    density: float
    """kept / params, in [0, 1]."""


@dataclass(frozen=True)
class Sparsity:
    """Per-layer density in model order, and the totals over all prunable weights."""

    layers: list[LayerDensity]
    params: int
    kept: int
    density: float
    target_density: float | None
    source: str
    """masks (masks.safetensors) | weights (non-zero count) | summary (summary.json)."""


def layer_kind(shape: tuple[int, ...]) -> str:
    return "conv" if len(shape) == 4 else "linear" if len(shape) == 2 else f"{len(shape)}-d"


def pick_layer(names: list[str], spec: str | None, what: str = "layer") -> str:
    """`spec` among `names`: a full name, a module name without `.weight`, or a 1-based index;
    None picks the first. Else a StatsError listing the choices."""
    if not names:
        raise StatsError(f"no {what}s")
    if spec is None:
        return names[0]
    if spec.isdigit() and 1 <= int(spec) <= len(names):
        return names[int(spec) - 1]
    for cand in (spec, f"{spec}.weight"):
        if cand in names:
            return cand
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise StatsError(f"no {what} {spec!r}; choose a name or 1..{len(names)}: {shown}")


def layer_densities(tensors: dict[str, torch.Tensor], order: list[str]) -> list[LayerDensity]:
    """Density of each tensor in `order`: a mask counts its ones, a weight its non-zeros."""
    rows = []
    for name in order:
        t = tensors[name]
        kept = int(torch.count_nonzero(t))
        shape = tuple(t.shape)
        rows.append(
            LayerDensity(name, layer_kind(shape), shape, t.numel(), kept, kept / max(1, t.numel()))
        )
    return rows


def sparsity_from_rows(rows: list[LayerDensity], target: float | None, source: str) -> Sparsity:
    params = sum(r.params for r in rows)
    kept = sum(r.kept for r in rows)
    return Sparsity(rows, params, kept, kept / max(1, params), target, source)


# --- histograms


@dataclass(frozen=True)
class Histogram:
    """Non-zero weight values of one layer at one stage, binned or (few values) exact.

    Zeros are pruned weights (or never-used ones); they are counted in `zeros` and left out of
    the counts, which would otherwise be one spike at 0 that hides everything else.
    """

    label: str
    """Which stage or run: before, after, or a run name."""
    layer: str
    total: int
    zeros: int
    unique: int | None
    """Distinct non-zero values when exact; None when binned (more than EXACT_MAX)."""
    exact: bool
    """True: `values` are the distinct values and `counts` their exact counts."""
    values: list[float]
    """Bin centres (binned) or the distinct values (exact)."""
    counts: list[int]
    edges: list[float]
    """Bin edges, len(values) + 1; empty when exact."""


def _value_range(flats: list[torch.Tensor]) -> tuple[float, float]:
    nonempty = [f for f in flats if f.numel()]
    if not nonempty:
        return -1.0, 1.0
    lo = min(float(f.min()) for f in nonempty)
    hi = max(float(f.max()) for f in nonempty)
    if hi <= lo:  # one value: give the bins some width around it
        pad = abs(lo) * 0.05 or 1e-6
        lo, hi = lo - pad, hi + pad
    return lo, hi


def _distinct(nz: torch.Tensor, exact_max: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(values, counts) if there are at most `exact_max` distinct values, else None.

    Trained fp32 weights are almost all distinct, so a small prefix already proves "too many"
    and the full sort (about 1 s for 2.4M values on a laptop core) is skipped.
    """
    if nz.numel() > exact_max and torch.unique(nz[: 4 * exact_max + 1]).numel() > exact_max:
        return None
    values, counts = np.unique(nz.numpy(), return_counts=True)  # faster than torch.unique on CPU
    if values.size > exact_max:
        return None
    return torch.from_numpy(values), torch.from_numpy(counts)


def weight_histograms(
    tensors: dict[str, torch.Tensor], layer: str = "", bins: int = 60, exact_max: int = EXACT_MAX
) -> list[Histogram]:
    """One histogram per labelled tensor, binned over a shared range so they compare side by side.

    Example: `weight_histograms({"before": w, "after": shared_w}, "features.3.weight")`.
    Binning is `torch.histc` on the non-zero values, so a 2.4M-weight layer costs one pass.
    """
    flats = {k: v.detach().float().flatten().cpu() for k, v in tensors.items()}
    nonzero = {k: f[f != 0] for k, f in flats.items()}
    lo, hi = _value_range(list(nonzero.values()))
    out = []
    for label, nz in nonzero.items():
        total, zeros = flats[label].numel(), flats[label].numel() - nz.numel()
        distinct = _distinct(nz, exact_max)
        if distinct is not None:
            values, counts = distinct
            out.append(Histogram(label, layer, total, zeros, values.numel(), True,
                                 values.tolist(), counts.tolist(), []))  # fmt: skip
            continue
        hist = torch.histc(nz, bins=bins, min=lo, max=hi)
        edges = torch.linspace(lo, hi, bins + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        out.append(Histogram(label, layer, total, zeros, None, False, centres.tolist(),
                             [int(c) for c in hist.tolist()], edges.tolist()))  # fmt: skip
    return out


def unique_nonzero(t: torch.Tensor) -> int:
    """Distinct values of a tensor, zero not counted (as weight sharing leaves zeros alone).

    numpy's sort-based unique is about 3x faster than torch.unique on CPU for float32.
    """
    flat = t.detach().float().flatten().cpu().numpy()
    return int(np.unique(flat[flat != 0]).size)


# --- kernel maps


@dataclass(frozen=True)
class KernelMaps:
    """One 2-D map per output filter of a conv layer, a page of them, normalised to [0, 1].

    Normalisation uses the range over the whole layer (`vmin`..`vmax`), so a filter looks the
    same on every page and filters compare with each other.
    """

    layer: str
    shape: tuple[int, ...]
    """(out_channels, in_channels, kh, kw)"""
    reduction: str
    total: int
    """Filters in the layer."""
    offset: int
    filters: list[int]
    """0-based filter indices on this page."""
    maps: list[list[list[float]]]
    """Normalised maps, one per filter on this page."""
    raw: list[list[list[float]]]
    vmin: float
    vmax: float
    pruned: list[list[list[bool]]]
    """Per map cell: every weight it shows is exactly 0 (pruned). A k x k cell: that position
    of every input channel; a 1x1 filter's cell: its one weight (padding is never pruned)."""


def _fold(vectors: torch.Tensor) -> torch.Tensor:
    """(n, k) -> (n, r, c) near-square grids, zero-padded: a 1x1 filter's input weights as 2-D."""
    n, k = vectors.shape
    rows = max(1, math.isqrt(k))
    cols = -(-k // rows)
    padded = torch.zeros(n, rows * cols, dtype=vectors.dtype)
    padded[:, :k] = vectors
    return padded.view(n, rows, cols)


def kernel_maps(
    weight: torch.Tensor, layer: str = "", offset: int = 0, limit: int = 64
) -> KernelMaps:
    """A page of per-filter maps of a conv weight (out, in, kh, kw).

    For kh x kw > 1 a filter's map is the mean over its input channels, as the original's
    VisualizeNetwork did; a 1x1 filter has no spatial extent, so its input-channel weights are
    folded into a near-square grid instead (zero-padded).
    """
    if weight.dim() != 4:
        raise StatsError(
            f"kernel maps need a conv weight (4-D), {layer or 'this'} is {weight.dim()}-D"
        )
    w = weight.detach().float().cpu()
    out_ch, in_ch, kh, kw = w.shape
    if kh * kw > 1:
        reduced, how = w.mean(dim=1), "mean over input channels"
        zeros = (w == 0).all(dim=1)
    else:
        reduced, how = _fold(w.view(out_ch, in_ch)), "1x1 kernel: input-channel weights as a grid"
        zeros = _fold((w == 0).view(out_ch, in_ch).float()) > 0
    vmin, vmax = float(reduced.min()), float(reduced.max())
    scale = vmax - vmin if vmax > vmin else 1.0
    offset = max(0, min(offset, out_ch - 1))
    page = reduced[offset : offset + max(1, limit)]
    norm = (page - vmin) / scale
    return KernelMaps(
        layer, (out_ch, in_ch, kh, kw), how, out_ch, offset,
        list(range(offset, offset + page.shape[0])), norm.tolist(), page.tolist(), vmin, vmax,
        zeros[offset : offset + page.shape[0]].tolist(),
    )  # fmt: skip
