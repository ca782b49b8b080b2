"""Figures of models in memory, for a notebook: the run views without a run directory.

The original project's `VisualizeNetwork` drew `display_kernel(model)`,
`display_scatter_plot(net_before, net_after)` (each weight value's frequency, before and after
quantization) and `display_activations(model, x)`. These are the same pictures, made by the
views `ecs show --save` draws (`ecs_core.stats` computes, `ecs_core.figures` draws), from
`nn.Module`s instead of a run's files. Each returns a `matplotlib.figure.Figure`::

    from ecs_core import model_figures
    model_figures.kernels(net, "features.0").savefig("kernels.png")
    model_figures.clusters(net_before, net_after, "features.3")  # before / after weight sharing
    model_figures.activations(net, x)  # x: a normalised image (C, H, W), or a batch: its first

A layer is named as `ecs show --layer` names it: `features.3`, `features.3.weight` or a 1-based
number among the conv layers (kernels), the prunable layers (clusters) or the activation
points (activations). A name that is not there is a StatsError listing the choices.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecs_core.figures import (
    PAGE,
    activations_figure,
    check_page,
    clusters_figure,
    kernels_figure,
    page_offset,
)
from ecs_core.models import prunable_weights
from ecs_core.stats.activations import activation_maps
from ecs_core.stats.clusters import clusters_for
from ecs_core.stats.weights import StatsError, kernel_maps, pick_layer


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: w.detach() for name, w in prunable_weights(model).items()}


def kernels(model: nn.Module, layer: str | None = None, page: int = 1) -> Any:
    """A page of one conv layer's filter maps (default: the first conv layer), as
    `ecs show RUN kernels --save` draws them: colour bar, × over pruned cells."""
    weights = _weights(model)
    name = pick_layer([n for n, w in weights.items() if w.dim() == 4], layer, "conv layer")
    maps = kernel_maps(weights[name], name, page_offset(page), PAGE)
    check_page(page, maps.total, "filters")
    return kernels_figure(maps)


def clusters(before: nn.Module, after: nn.Module, layer: str | None = None, bins: int = 60) -> Any:
    """One layer's weight values in two models of one architecture, side by side on a shared
    axis (exact counts where a model has few distinct values, as after weight sharing);
    default: the layer with the most non-zero weights in `before`, as `ecs show` picks."""
    b, a = _weights(before), _weights(after)
    shapes_b = {n: tuple(w.shape) for n, w in b.items()}
    if shapes_b != {n: tuple(w.shape) for n, w in a.items()}:
        raise StatsError(
            "the two models have different layers or shapes: compare one architecture "
            "before and after (a copy, then share_weights on it)"
        )
    names = list(b)
    if layer is None:
        layer = max(names, key=lambda n: (int(torch.count_nonzero(b[n])), b[n].numel()))
    name = pick_layer(names, layer)
    return clusters_figure(clusters_for(name, b[name], a[name], bins, {}, True))


def activations(
    model: nn.Module, x: torch.Tensor, layer: str | None = None, page: int = 1, label: int = -1
) -> Any:
    """What each activation point outputs for one normalised image (every stage's channel
    mean), or a page of `layer`'s channels; `label`: the image's class, shown when given."""
    image = x[0] if x.dim() == 4 else x
    if layer is not None:
        layer = layer.removesuffix(".weight")
    acts = activation_maps(model, image, 0, label, layer, 0 if layer is None else
                           page_offset(page), PAGE)  # fmt: skip
    if layer is not None:
        check_page(page, acts.total, "channels")
    return activations_figure(acts)
