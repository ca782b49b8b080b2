"""The smaller dense model: a channel plan (kept channel indices per group) applied for real.

A plan is `{group: [kept channel indices]}` (`channels.kept_indices`), JSON in the run
directory and the `.ecsz` manifest. `shrink` rebuilds the smaller architecture from it on the
dense model of the same config, through Torch-Pruning's dependency graph (each group's other
channels are removed from the conv, its batch norm, the layers that read it and the layers tied
to it by residual additions); the weights then load by name. Nothing is pickled.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecs_core.names import ConfigError
from ecs_core.prune.channels import dependency_graph

Plan = dict[str, list[int]]
IMAGE = 32
"""Every dataset's images are 32x32: the shape a rebuild traces (`rebuild_shape`)."""


def rebuild_shape(in_channels: int) -> tuple[int, int, int]:
    """The input a plan is applied with when no batch is at hand (the .ecsz file, ecs export)."""
    return (in_channels, IMAGE, IMAGE)


def shrink(model: nn.Module, plan: Plan, input_shape: tuple[int, ...]) -> nn.Module:
    """Remove every channel not in `plan` from `model`, in place (values of the kept weights
    are copied exactly); returns the model."""
    graph, _ = dependency_graph(model, input_shape)
    modules = dict(model.named_modules())
    for name, kept in plan.items():
        layer = modules.get(name)
        if layer is None:
            raise ConfigError(f"channel plan names layer {name!r}, which this model does not have")
        size = layer.weight.shape[0]
        gone = sorted(set(range(size)) - set(kept))
        if not gone:
            continue
        if len(gone) == size or min(kept, default=0) < 0 or max(kept, default=0) >= size:
            raise ConfigError(f"channel plan for {name}: kept indices do not fit {size} channels")
        fn = graph.get_pruner_of_module(layer).prune_out_channels
        graph.get_pruning_group(layer, fn, gone).prune()
    return model


def macs_and_params(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(multiply-accumulates for one image, parameters), counted by Torch-Pruning."""
    import torch_pruning as tp

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        macs, params = tp.utils.count_ops_and_params(
            model, torch.zeros((1, *input_shape), device=device)
        )
    finally:
        model.train(was_training)
    return int(macs), int(params)


def layer_channels(model: nn.Module) -> list[dict[str, Any]]:
    """[{name, out}] output channels of every Conv2d / Linear, in model order."""
    return [
        {"name": n, "out": m.weight.shape[0]}
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
