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

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ecs_core.config import ConfigError, RunConfig
from ecs_core.models import prunable_weights
from ecs_core.prune.ablate import shuffle_mask
from ecs_core.prune.job import Batches, Pruned, PruneJob
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
from ecs_core.registry import PRUNERS, pruner

__all__ = [
    "PRUNERS",
    "Mask",
    "MaskEnforcer",
    "PruneError",
    "PruneJob",
    "PruneResult",
    "Pruned",
    "mask_from_scores",
    "prune",
    "validate_mask",
]


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
    distribution: str = "global"
    structure: str = "weight"
    channels: dict[str, list[int]] | None = None
    """`structure="channel"`: kept channel indices per group (`prune.compact.Plan`)."""


def prune(
    model: nn.Module,
    method: str,
    density: float,
    batches: Batches | None = None,
    keep: Mask | None = None,
    config: RunConfig | None = None,
    **options: Any,
) -> PruneResult:
    """Compute a mask for `model` (does not modify it; see `MaskEnforcer` to apply it).

    `batches` (an iterable of (images, labels)) is needed by the gradient methods (snip, ecs,
    grasp); synflow is data-free (it reads only the input shape from a batch when given one).
    The method reads its options from `config` (a run's; default `RunConfig()`), of which
    `options` replace any by name: scope, budget, score_batches, seed, prune_iterations,
    keep_dense (output: the last layer kept whole, the density over the others), score_bn
    (batch norm's mode while snip, ecs, grasp score), grasp_samples (balanced | batch), ablate
    (see `prune.ablate`: shuffle permutes each layer's mask, invert keeps the lowest scores;
    reinit leaves the mask as it is, the caller re-initialises the kept weights:
    `ablate.reinit_weights`). `keep`: the weights still eligible (iterative pruning prunes
    within the previous round's mask). `structure` (an option too): "weight" (any weight)
    or "channel" (whole groups of coupled channels: `prune.channels`).
    """
    spec = pruner(method)
    if spec.target is None:
        raise ConfigError(f"--method {spec.name} does not prune (it trains the dense model)")
    base = config if config is not None else RunConfig()
    cfg = dataclasses.replace(base, method=method, density=density, **options).validate()
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(cfg.seed)
    job = PruneJob(model, cfg, batches, generator, keep)
    plan = None
    if cfg.structure == "channel":
        mask, overlap, plan = _channel_mask(job, spec)
    else:
        mask, overlap = spec.load()(job)
    if cfg.ablate == "shuffle" and plan is None:  # after the method's draws, same generator
        mask, overlap = shuffle_mask(mask, generator), None
    validate_mask(mask, prunable_weights(model))
    rows = layer_report(mask)
    kept = sum(r["kept"] for r in rows)
    total = sum(r["params"] for r in rows)
    return PruneResult(
        mask=mask,
        method=cfg.method,
        scope=cfg.scope,
        budget=cfg.budget if cfg.budget in spec.budgets else "exact",
        target_density=density,
        density=mask_density(mask),
        kept=kept,
        total=total,
        layers=rows,
        collapsed_layers=collapsed(mask),
        overlap=overlap,
        seconds=time.perf_counter() - start,
        ablate=cfg.ablate,
        distribution=cfg.spread,
        structure=cfg.structure,
        channels=plan,
    )


def _channel_mask(job: PruneJob, spec) -> tuple[Mask, dict | None, dict]:
    """(weight mask, overlap, kept channel indices) of the method's channel form."""
    from ecs_core.prune.channels import channel_graph, kept_indices, to_mask
    from ecs_core.prune.synflow import input_shape

    fn = spec.load_channels()
    if fn is None:
        raise ConfigError(f"--method {spec.name} has no channel form; use --structure weight")
    graph = channel_graph(job.model, input_shape(job.model, job.batches))
    keep, overlap = fn(job, graph)
    if job.config.ablate == "shuffle":  # each group keeps as many channels, drawn at random
        keep = {k: v[torch.randperm(len(v), generator=job.generator)] for k, v in keep.items()}
        overlap = None
    device = next(iter(prunable_weights(job.model).values())).device
    return to_mask(graph, keep, device), overlap, kept_indices(keep)
