"""One-shot pruning: score, then mask. `prune(model, "ecs", 0.05, batches)` returns a Mask.

Example (notebook)::

    import torch
    from ecs_core import data, models, prune
    d = data.load_dataset("digits")
    net = models.build_model("vgg16", d.num_classes, d.in_channels, width=0.25)
    batches = data.make_batches(
        d.train_x, d.train_y, d.mean, d.std, 128, True, d.flip, torch.device("cpu")
    )
    result = prune.prune(net, "snip", density=0.05, batches=batches)
    print(result.density, result.layers[0])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from ecs_core.config import ABLATIONS, ConfigError, canonical_name
from ecs_core.models import prunable_weights
from ecs_core.prune.ablate import shuffle_mask
from ecs_core.prune.baselines import magnitude_scores, random_scores
from ecs_core.prune.ecs import ecs_mask, ecs_scores
from ecs_core.prune.grasp import grasp_scores
from ecs_core.prune.mask import (
    Mask,
    MaskEnforcer,
    PruneError,
    collapsed,
    layer_report,
    mask_from_scores,
    validate_mask,
)
from ecs_core.prune.mask import density as mask_density
from ecs_core.prune.snip import snip_scores
from ecs_core.prune.synflow import synflow_mask

__all__ = [
    "PRUNERS",
    "Mask",
    "MaskEnforcer",
    "PruneError",
    "PruneJob",
    "PruneResult",
    "mask_from_scores",
    "prune",
    "validate_mask",
]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class PruneResult:
    """A mask and what it means: achieved density, per-layer rows, collapsed layers, overlap."""

    mask: Mask
    method: str
    scope: str
    budget: str
    target_density: float
    density: float
    kept: int
    total: int
    layers: list[dict] = field(default_factory=list)
    collapsed_layers: list[str] = field(default_factory=list)
    overlap: dict[str, int] | None = None
    seconds: float = 0.0
    ablate: str = "none"


@dataclass(frozen=True)
class PruneJob:
    """What a pruner is given: the model and every option a method may read."""

    model: nn.Module
    method: str
    batches: Batches | None
    density: float
    scope: str
    budget: str
    score_batches: int
    generator: torch.Generator
    iterations: int = 100
    """SynFlow: pruning rounds (exponential density schedule)."""
    invert: bool = False
    """`--ablate invert`: keep the lowest scores (every pruner passes it to the thresholding)."""

    def data(self) -> Batches:
        """The training batches; a `ConfigError` for a method that needs them and has none."""
        if self.batches is None:
            raise ConfigError(f"{self.method} needs batches of training data to compute gradients")
        return self.batches


Pruned = tuple[Mask, "dict[str, int] | None"]


def _scored(scores_fn: Callable[[PruneJob], dict[str, torch.Tensor]]) -> Callable:
    """A pruner whose mask is the shared top-k over one score dict."""

    def run(job: PruneJob) -> Pruned:
        return mask_from_scores(scores_fn(job), job.density, job.scope, job.invert), None

    return run


def _ecs(job: PruneJob) -> Pruned:
    w_abs, g_abs = ecs_scores(job.model, job.data(), job.score_batches)
    return ecs_mask(w_abs, g_abs, job.density, job.scope, job.budget, job.invert)


def _synflow(job: PruneJob) -> Pruned:
    args = (job.model, job.density, job.scope, job.iterations, job.batches, job.invert)
    return synflow_mask(*args), None


# name -> fn(PruneJob) -> (mask, overlap or None). A new pruner is one file plus one line here
# (and its name in config.METHOD_NAMES, which the CLI and the TUI form read).
PRUNERS: dict[str, Callable[[PruneJob], Pruned]] = {
    "ecs": _ecs,
    "snip": _scored(lambda j: snip_scores(j.model, j.data(), j.score_batches)),
    "grasp": _scored(lambda j: grasp_scores(j.model, j.data(), j.score_batches)),
    "synflow": _synflow,
    "random": _scored(lambda j: random_scores(j.model, j.generator)),
    "magnitude": _scored(lambda j: magnitude_scores(j.model)),
}


def prune(
    model: nn.Module,
    method: str,
    density: float,
    batches: Batches | None = None,
    scope: str = "global",
    budget: str = "exact",
    score_batches: int = 1,
    seed: int = 0,
    iterations: int = 100,
    ablate: str = "none",
) -> PruneResult:
    """Compute a mask for `model` (does not modify it; see `MaskEnforcer` to apply it).

    `batches` (an iterable of (images, labels)) is needed by the gradient methods (snip, ecs,
    grasp); synflow is data-free (it reads only the input shape from a batch when given one).
    `iterations`: synflow's pruning rounds. `ablate` (see `prune.ablate`): shuffle permutes
    each layer's mask, invert keeps the lowest scores; reinit leaves the mask as it is (the
    caller re-initialises the kept weights: `ablate.reinit_weights`).
    """
    method = canonical_name(method, tuple(PRUNERS), "pruning method")
    ablate = canonical_name(ablate, ABLATIONS, "ablation (--ablate)")
    if not 0 < density <= 1:
        raise ConfigError(f"density must be in (0, 1], got {density}")
    if iterations < 1:
        raise ConfigError(f"--prune-iterations must be >= 1, got {iterations}")
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    job = PruneJob(model, method, batches, density, scope, budget, score_batches, generator,
                   iterations, invert=ablate == "invert")  # fmt: skip
    mask, overlap = PRUNERS[method](job)
    if ablate == "shuffle":  # after the method's own draws, from the same seeded generator
        mask, overlap = shuffle_mask(mask, generator), None
    validate_mask(mask, prunable_weights(model))
    rows = layer_report(mask)
    kept = sum(r["kept"] for r in rows)
    total = sum(r["params"] for r in rows)
    return PruneResult(
        mask=mask,
        method=method,
        scope=scope,
        budget=budget if method == "ecs" else "exact",
        target_density=density,
        density=mask_density(mask),
        kept=kept,
        total=total,
        layers=rows,
        collapsed_layers=collapsed(mask),
        overlap=overlap,
        seconds=time.perf_counter() - start,
        ablate=ablate,
    )
