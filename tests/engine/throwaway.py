"""A throwaway pruner and model, registered by `test_registry.py` at test time (not a test file).

This file is what "a new pruner is one file" means: the function a `PrunerSpec` names, and the
model factory a `ModelSpec` names; the test adds the two registry lines.
"""

from __future__ import annotations

import torch
from torch import nn

from ecs_core.prune import Pruned, PruneJob, mask_from_scores


def every_other(job: PruneJob) -> Pruned:
    """Scores 1 for every other weight in flat order (0 elsewhere), then the shared top-k."""
    scores = {}
    for name, module in job.model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            flat = (torch.arange(module.weight.numel()) % 2 == 0).float()
            scores[f"{name}.weight"] = flat.reshape(module.weight.shape)
    return mask_from_scores(scores, job.density, job.scope, job.invert), None


def tiny_net(num_classes: int, in_channels: int, width: float) -> nn.Module:
    c = max(2, int(round(16 * width)))
    return nn.Sequential(
        nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c, num_classes),
    )
