"""Per-layer budgets (`--distribution`, `--distribution-from`): how many weights each layer keeps.

global and uniform are thresholding scopes (`mask_from_scores`' "global" and "layer"); the others
give every layer a count of its own, and a method's scores then choose which weights within it.

- erk (Evci, Gale, Menick, Castro & Elsen, "Rigging the Lottery", ICML 2020, Erdős–Rényi-Kernel):
  a layer of shape (out, in, kh, kw) gets density eps * (out + in + kh + kw) / (out * in * kh * kw).
  eps is set so the kept total is the target; a layer whose density would exceed 1 is kept dense
  and eps is solved again over the others (the largest offender first, as the paper's code does).
- er (Mocanu et al. 2018, Erdős–Rényi): the same without the kernel dims, (out + in) / (out * in).
- from a run (`LayerBudget.from_run`): another run's per-layer kept counts (the shuffle sanity
  check generalised: one method's per-layer budget, another's placement), rescaled to the target.

Counts are rounded by largest remainder so they add up to `keep_count(total, density)` exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ecs_core.config import SCOPE_OF
from ecs_core.names import ConfigError
from ecs_core.prune.mask import keep_count


def erk_raw(shape: tuple[int, ...], kernel: bool = True) -> float:
    """A layer's unscaled density: sum of its dims over their product (ER: out and in only)."""
    dims = list(shape) if kernel else list(shape[:2])
    return sum(dims) / math.prod(dims)


def erk_densities(
    shapes: Mapping[str, tuple[int, ...]], density: float, kernel: bool = True
) -> dict[str, float]:
    """Each layer's density under ERK (ER with `kernel=False`) at overall `density`."""
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    raw = {k: erk_raw(s, kernel) for k, s in shapes.items()}
    target = density * sum(sizes.values())
    dense: set[str] = set()
    while True:
        sparse = [k for k in shapes if k not in dense]
        rest = target - sum(sizes[k] for k in dense)
        if not sparse:
            break
        eps = rest / sum(raw[k] * sizes[k] for k in sparse)
        over = [k for k in sparse if eps * raw[k] > 1]
        if not over:
            break
        dense.add(max(over, key=lambda k: raw[k]))  # the largest offender first
    return {k: 1.0 if k in dense else eps * raw[k] for k in shapes}


def exact_counts(
    sizes: Mapping[str, int], wanted: Mapping[str, float], total: int
) -> dict[str, int]:
    """Per-layer counts near `wanted` (fractional) adding up to `total` exactly: floors, then one
    more for the largest remainders (ties to the earlier layer); each in [1, size]."""
    counts = {k: max(1, min(sizes[k], math.floor(wanted[k]))) for k in sizes}
    left = total - sum(counts.values())
    order = sorted(sizes, key=lambda k: -(wanted[k] - math.floor(wanted[k])))
    while left != 0:
        moved = False
        for k in order if left > 0 else reversed(order):
            if left > 0 and counts[k] < sizes[k]:
                counts[k], left, moved = counts[k] + 1, left - 1, True
            elif left < 0 and counts[k] > 1:
                counts[k], left, moved = counts[k] - 1, left + 1, True
            if left == 0:
                break
        if not moved:
            break
    return counts


@dataclass(frozen=True)
class LayerBudget:
    """A per-layer budget: called with the layers' shapes and a density, it gives each layer's
    kept count (`mask_from_scores` takes one where it takes a scope)."""

    kind: str
    """erk | er | from"""
    source: tuple[tuple[str, int], ...] = ()
    """from: the other run's (layer, kept) pairs, in its model order."""

    def __call__(self, shapes: Mapping[str, tuple[int, ...]], density: float) -> dict[str, int]:
        sizes = {k: math.prod(s) for k, s in shapes.items()}
        total = keep_count(sum(sizes.values()), density)
        if self.kind == "from":
            kept = dict(self.source)
            if set(kept) != set(sizes):
                raise ConfigError(
                    "--distribution-from: that run's layers are not this model's (missing "
                    f"{sorted(set(sizes) - set(kept))[:3]}); use a run of the same model and width"
                )
            scale = total / sum(kept.values())
            return exact_counts(sizes, {k: kept[k] * scale for k in sizes}, total)
        dens = erk_densities(shapes, density, kernel=self.kind == "erk")
        return exact_counts(sizes, {k: dens[k] * sizes[k] for k in sizes}, total)

    @classmethod
    def from_run(cls, run_dir: str) -> LayerBudget:
        """The per-layer kept counts of the run in `run_dir` (its summary.json `layers`)."""
        path = Path(run_dir).expanduser() / "summary.json"
        try:
            layers = json.loads(path.read_text())["layers"]
            pairs = tuple((str(r["name"]), int(r["kept"])) for r in layers)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"--distribution-from {run_dir}: no per-layer counts in {path} "
                f"({type(exc).__name__}); give the directory of a run that pruned"
            ) from exc
        if not pairs or sum(k for _, k in pairs) <= 0:
            raise ConfigError(f"--distribution-from {run_dir}: that run keeps no weights")
        return cls("from", pairs)


def budget_of(distribution: str, distribution_from: str = "") -> str | LayerBudget:
    """What `mask_from_scores` takes as its scope for a (validated) config's distribution."""
    if distribution_from:
        return LayerBudget.from_run(distribution_from)
    return SCOPE_OF.get(distribution) or LayerBudget(distribution)
