"""What a pruner is given (`PruneJob`) and what it returns (a mask, and ECS's overlap counts)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ecs_core.models import prunable_weights
from ecs_core.names import ConfigError
from ecs_core.prune.distribution import budget_of
from ecs_core.prune.mask import KeepDense, Mask, Scope, mask_from_scores

if TYPE_CHECKING:
    from ecs_core.config import RunConfig

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
Pruned = tuple[Mask, "dict[str, int] | None"]


@dataclass(frozen=True)
class PruneJob:
    """The model, the run's options (a pruner reads its own in `config`: `score_batches`,
    `prune_iterations`, ...) and what the run hands it."""

    model: nn.Module
    config: RunConfig
    """Validated; `method` and `density` are this prune's (an IMP round's density)."""
    batches: Batches | None
    generator: torch.Generator
    """Seeded with `config.seed`: the method's random draws (random scores, --ablate shuffle)."""
    keep: Mask | None = None
    """Weights still eligible (iterative pruning): the others score below every kept one."""

    @property
    def density(self) -> float:
        return self.config.density

    @property
    def scope(self) -> Scope:
        """What `mask_from_scores` thresholds over: global, layer, or a per-layer budget
        (`--distribution erk|er`, `--distribution-from`); `KeepDense` around it for
        `--keep-dense`."""
        scope = budget_of(self.config.spread, self.config.distribution_from)
        dense = dense_names(self.model, self.config.dense_layers)
        return KeepDense(scope, dense) if dense else scope

    @property
    def invert(self) -> bool:
        """`--ablate invert`: keep the lowest scores (each pruner passes it to the thresholding)."""
        return self.config.ablate == "invert"

    def data(self) -> Batches:
        """The training batches; a `ConfigError` for a method that needs them and has none."""
        if self.batches is None:
            raise ConfigError(
                f"{self.config.method} needs batches of training data to compute gradients"
            )
        return self.batches


def grasp_options(job: PruneJob) -> dict[str, Any]:
    """GraSP's options from the run's config: `grasp_scores`' keywords."""
    c = job.config
    return {"n_batches": c.score_batches, "bn": c.score_bn, "samples": c.grasp_samples,
            "linear": c.grasp_linear, "generator": job.generator}  # fmt: skip


def dense_names(model: nn.Module, layers: str) -> frozenset[str]:
    """The prunable weights `--keep-dense` (resolved: none | output) leaves dense: output is
    the last Conv2d/Linear in model order, the classifier."""
    if layers == "none":
        return frozenset()
    return frozenset(list(prunable_weights(model))[-1:])


def scored(
    scores_fn: Callable[[PruneJob], dict[str, torch.Tensor]],
) -> Callable[[PruneJob], Pruned]:
    """A pruner whose mask is the shared top-k over one score dict."""

    def run(job: PruneJob) -> Pruned:
        scores = scores_fn(job)
        if job.keep is not None:  # already pruned: never chosen again, whichever end is kept
            out = {}
            for k, s in scores.items():
                fill = torch.finfo(s.dtype).max if job.invert else -1.0  # scores are >= 0
                out[k] = torch.where(job.keep[k], s, fill)
            scores = out
        return mask_from_scores(scores, job.density, job.scope, job.invert), None

    return run
