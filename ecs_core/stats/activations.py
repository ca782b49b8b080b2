"""Activation maps: what each stage of the network outputs for one input image.

VGG: the output of every ReLU (as the original notebook plotted). ResNet: the stem's ReLU, then
the output of every residual block (one map per block, where hooking each ReLU would show every
block's inner activations too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecs_core.stats.weights import StatsError


@dataclass(frozen=True)
class ActivationMap:
    """One 2-D map, normalised to [0, 1] by its own maximum (ReLU outputs are >= 0)."""

    name: str
    """Module name (`features.2`, `layer1.0`), with `[c]` for one channel of it."""
    channels: int
    """Channels averaged into this map (1 for a single channel)."""
    height: int
    width: int
    map: list[list[float]]
    max: float
    """Largest raw activation in the map (what 1.0 stands for)."""
    active: float
    """Fraction of positions with a positive activation (ReLU sparsity)."""


@dataclass(frozen=True)
class Activations:
    """Maps for one test image: one per layer (channel mean), or one per channel of `layer`."""

    image: int
    label: int
    predicted: int
    layer: str | None
    total: int
    """Layers (when `layer` is None) or channels of `layer`."""
    offset: int
    maps: list[ActivationMap]
    input: list[list[float]]
    """The input image (mean over its channels), normalised to [0, 1]."""
    names: list[str]
    """Every layer that has maps, in forward order (for choosing `layer`)."""


def activation_points(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) whose outputs are the maps, in forward order."""
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        points = [("relu", model.relu)] if isinstance(getattr(model, "relu", None), nn.ReLU) else []
        for stage in ("layer1", "layer2", "layer3", "layer4"):
            for i, block in enumerate(getattr(model, stage)):
                points.append((f"{stage}.{i}", block))
        return points
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]


@torch.no_grad()
def capture(model: nn.Module, image: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
    """Run one normalised image (C, H, W) through `model` in eval mode; (outputs by name, class)."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in activation_points(model):

        def hook(mod: nn.Module, inp: object, out: torch.Tensor, name: str = name) -> None:
            if out.dim() == 4 and name not in outputs:  # spatial maps only, first call only
                outputs[name] = out.detach()[0].float().cpu().clone()

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        logits = model(image.unsqueeze(0))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    predicted = int(logits.argmax(dim=1)[0]) if logits.dim() == 2 else -1  # -1: not a classifier
    return outputs, predicted


def _to_map(name: str, x: torch.Tensor) -> ActivationMap:
    """x: (C, H, W) -> the channel mean as one map; `active` counts over all C channels."""
    m = x.mean(dim=0)
    top = float(m.max())
    norm = m / top if top > 0 else torch.zeros_like(m)
    active = float((x > 0).float().mean())
    return ActivationMap(name, x.shape[0], m.shape[0], m.shape[1], norm.tolist(), top, active)


def activation_maps(
    model: nn.Module,
    image: torch.Tensor,
    index: int = 0,
    label: int = -1,
    layer: str | None = None,
    offset: int = 0,
    limit: int = 64,
) -> Activations:
    """Maps for one normalised image: per layer (channel mean), or a page of `layer`'s channels.

    Example: `activation_maps(net, x_test[5], index=5, layer="features.2", limit=16)`.
    """
    outputs, predicted = capture(model, image)
    names = list(outputs)
    if layer is None:
        chosen = names[offset : offset + max(1, limit)]
        maps = [_to_map(n, outputs[n]) for n in chosen]
        total = len(names)
    else:
        if layer not in outputs and layer.isdigit() and 1 <= int(layer) <= len(names):
            layer = names[int(layer) - 1]  # a 1-based stage number, as `ecs show` numbers them
        if layer not in outputs:
            raise StatsError(f"no activation maps for {layer!r}; layers: {', '.join(names)}")
        x = outputs[layer]
        total = x.shape[0]
        offset = max(0, min(offset, total - 1))
        maps = [
            _to_map(f"{layer}[{c}]", x[c : c + 1])
            for c in range(offset, min(total, offset + limit))
        ]
    img = image.detach().float().cpu().mean(dim=0)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else torch.zeros_like(img)
    return Activations(index, label, predicted, layer, total, offset, maps, img.tolist(), names)
