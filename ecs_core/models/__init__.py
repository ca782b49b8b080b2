"""CIFAR-style CNNs. `build_model("VGG16", num_classes=10, in_channels=3, width=0.25)`."""

from __future__ import annotations

from torch import nn

from ecs_core.models.resnet import resnet34, resnet50
from ecs_core.models.resnet18 import resnet18
from ecs_core.models.vgg import vgg16, vgg19

__all__ = [
    "build_model", "prunable_weights", "resnet18", "resnet34", "resnet50", "vgg16", "vgg19",
]  # fmt: skip


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    width: float = 1.0,
    source: str = "a run's file",
) -> nn.Module:
    """Build a model by case-insensitive name; an unknown name raises an error listing them.

    `name` may also be `package.module:factory`, a model of your own (see `models.custom`): it
    is built only if the user typed it or trusts its module (`ecs_core.trust`), else
    `trust.UntrustedModel` names `source`, the file the name came from."""
    from ecs_core.models.custom import build_custom, is_custom
    from ecs_core.registry import MODELS, lookup

    if is_custom(name):
        return build_custom(name, num_classes, in_channels, width, source)
    factory = lookup(MODELS, name, "model").load()
    return factory(num_classes=num_classes, in_channels=in_channels, width=width)


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Conv2d and Linear weights by parameter name, in model order: what a Mask covers."""
    out: dict[str, nn.Parameter] = {}
    for mod_name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d | nn.Linear):
            out[f"{mod_name}.weight" if mod_name else "weight"] = mod.weight
    return out
