"""The built-in pruners as `registry.PrunerSpec` targets: each turns a `PruneJob` into a mask.

Each method's scores live in its own module (with its paper); these adapters only read the
method's own options from the job's config (`job.config.score_batches`, ...). A pruner of your
own is a function like these in a file of its own, plus one `PrunerSpec` line in
`ecs_core/registry.py` (or `registry.register(...)` at run time).
"""

from __future__ import annotations

from ecs_core.prune.baselines import magnitude_scores, random_scores
from ecs_core.prune.ecs import ecs_mask, ecs_scores
from ecs_core.prune.grasp import grasp_scores
from ecs_core.prune.job import Pruned, PruneJob, grasp_options, scored
from ecs_core.prune.snip import snip_scores
from ecs_core.prune.synflow import synflow_mask


def ecs(job: PruneJob) -> Pruned:
    w_abs, g_abs = ecs_scores(job.model, job.data(), job.config.score_batches, job.config.score_bn)
    return ecs_mask(w_abs, g_abs, job.density, job.scope, job.config.budget, job.invert)


def synflow(job: PruneJob) -> Pruned:
    rounds = job.config.prune_iterations
    args = (job.model, job.density, job.scope, rounds, job.batches, job.invert)
    return synflow_mask(*args), None


snip = scored(lambda j: snip_scores(j.model, j.data(), j.config.score_batches, j.config.score_bn))
grasp = scored(lambda j: grasp_scores(j.model, j.data(), **grasp_options(j)))
random = scored(lambda j: random_scores(j.model, j.generator))
magnitude = scored(lambda j: magnitude_scores(j.model))
