"""The built-in pruners' channel forms (`registry.PrunerSpec.channels`): each turns a
`PruneJob` and the model's `channels.ChannelGraph` into the kept channels of every group.

The scores are each method's own (its module, its paper), lifted to group channels by
`channels.lift`; the thresholding is `channels.select` for every method, as `mask_from_scores`
is for weights. A pruner of your own gains a channel form the same way: a function like these,
named in its spec's `channels`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ecs_core.prune.baselines import magnitude_scores, random_scores
from ecs_core.prune.channels import ChannelGraph, lift, removed_in, select, to_mask
from ecs_core.prune.ecs import ecs_scores, overlap_counts
from ecs_core.prune.grasp import grasp_scores
from ecs_core.prune.job import PruneJob, grasp_options
from ecs_core.prune.scoring import percentile_ranks
from ecs_core.prune.snip import snip_scores
from ecs_core.prune.synflow import _Linearised, density_schedule, input_shape, synflow_scores_of

Keep = dict[str, torch.Tensor]
Kept = tuple[Keep, "dict[str, int] | None"]


def _removed(job: PruneJob, graph: ChannelGraph) -> Keep | None:
    return removed_in(graph, job.keep) if job.keep is not None else None


def lifted(scores_fn: Callable[[PruneJob], dict[str, torch.Tensor]]):
    """A channel pruner that keeps the top group channels by one lifted score dict."""

    def run(job: PruneJob, graph: ChannelGraph) -> Kept:
        scores = lift(graph, scores_fn(job))
        removed = _removed(job, graph)
        return select(graph, scores, job.density, job.scope, removed, job.invert), None

    return run


def ecs(job: PruneJob, graph: ChannelGraph) -> Kept:
    """ECS on channels: union of the top groups by mean |w| and by mean |g| (budget union),
    or exactly `density` ranked by the larger of the two percentile ranks (exact)."""
    w_abs, g_abs = ecs_scores(job.model, job.data(), job.config.score_batches, job.config.score_bn)
    lw, lg = lift(graph, w_abs), lift(graph, g_abs)
    removed = _removed(job, graph)
    by_w = select(graph, lw, job.density, job.scope, removed, job.invert)
    by_g = select(graph, lg, job.density, job.scope, removed, job.invert)
    if job.config.budget == "union":
        keep = {k: by_w[k] | by_g[k] for k in by_w}
    else:
        rw, rg = percentile_ranks(lw, job.scope), percentile_ranks(lg, job.scope)
        best = {k: torch.maximum(rw[k], rg[k]) for k in rw}
        keep = select(graph, best, job.density, job.scope, removed, job.invert)
    masks = [to_mask(graph, k) for k in (keep, by_w, by_g)]
    return keep, overlap_counts(*masks, job.config.budget)


def synflow(job: PruneJob, graph: ChannelGraph) -> Kept:
    """SynFlow's rounds on channels: each round scores the linearised network with the
    channels removed so far, lifts, and keeps the top d_k (d_k = d^(k/n))."""
    net = _Linearised(job.model, input_shape(job.model, job.batches))
    removed = _removed(job, graph)
    keep: Keep = {}
    for d_k in density_schedule(job.density, job.config.prune_iterations):
        scores = lift(graph, synflow_scores_of(net))
        keep = select(graph, scores, d_k, job.scope, removed, job.invert)
        removed = {k: ~v for k, v in keep.items()}
        net.prune_to(to_mask(graph, keep, net.ones.device))
    return keep, None


snip = lifted(lambda j: snip_scores(j.model, j.data(), j.config.score_batches, j.config.score_bn))
grasp = lifted(lambda j: grasp_scores(j.model, j.data(), **grasp_options(j)))
random = lifted(lambda j: random_scores(j.model, j.generator))
magnitude = lifted(lambda j: magnitude_scores(j.model))
