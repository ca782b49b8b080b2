"""What the workbench offers, by name: models, datasets and pruning methods, one spec each.

A new model or pruner is one file plus one line here: the spec names the function to call as
`"module:attribute"`, imported only when a run needs it, so this module (and the config, the
CLI's help and the app's form, which read it) stays torch-free. Everything else derives from
these dicts: the config's valid names, the `--model` / `--method` help, the form's choices, when
a run prunes (`PrunerSpec.when`) and which stage marks the app expects.

At run time, `register(spec)` adds one (a notebook's pruner, a test's throwaway model).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecs_core.names import canonical_name

WHEN = ("never", "init", "warmup", "iterative")
"""When a method prunes: never (dense), at initialisation, after the warm-up epochs, or in
rounds of train-prune-rewind (iterative magnitude pruning)."""


@dataclass(frozen=True)
class Spec:
    """A name and what to call for it: a callable, or `"module:attribute"` imported on use."""

    name: str
    target: str | Callable[..., Any] | None

    def load(self) -> Callable[..., Any]:
        if self.target is None or callable(self.target):
            return self.target  # type: ignore[return-value]
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ModelSpec(Spec):
    """`target(num_classes=, in_channels=, width=) -> nn.Module`."""


@dataclass(frozen=True)
class DatasetSpec(Spec):
    """`target(data_dir: Path, download: bool) -> ImageData`."""


@dataclass(frozen=True)
class PrunerSpec(Spec):
    """`target(job: prune.PruneJob) -> (mask, overlap or None)`; None for the dense method.
    The method reads its own options from `job.config`; one that needs training batches and
    has none gets a `ConfigError` from `job.data()`."""

    when: str = "init"
    """One of `WHEN`."""
    budgets: tuple[str, ...] = ("exact",)
    """Budgets the method honours; any other is recorded as exact."""
    grow: str = ""
    """Dynamic sparse training (`prune/dst.py`): how the mask regrows at each update during
    training, random (SET) or gradient (RigL); "" for a mask fixed once pruned."""
    score_bn: bool = False
    """Reads `--score-bn` (batch norm in train or eval mode while it scores); for a method that
    does not, `RunConfig.validate` puts the option back to its default, so its name and recipe
    never say it."""
    channels: str | Callable[..., Any] | None = None
    """`--structure channel`: `channels(job, graph) -> (kept channels per group, overlap or
    None)` (see `prune.channel_methods`); None: the method prunes weights only."""

    def load_channels(self) -> Callable[..., Any] | None:
        return Spec(self.name, self.channels).load()

    def __post_init__(self) -> None:
        if self.when not in WHEN:
            raise ValueError(f"PrunerSpec({self.name!r}).when must be one of {WHEN}")


MODELS: dict[str, ModelSpec] = {}
DATASETS: dict[str, DatasetSpec] = {}
PRUNERS: dict[str, PrunerSpec] = {}
_KINDS: dict[type, tuple[dict[str, Any], str]] = {
    ModelSpec: (MODELS, "model"),
    DatasetSpec: (DATASETS, "dataset"),
    PrunerSpec: (PRUNERS, "method"),
}


def register(spec: Spec, replace: bool = False) -> Spec:
    """Add `spec` to its registry (a name taken needs `replace=True`); return it."""
    table, what = _KINDS[type(spec)]
    if spec.name != spec.name.strip().lower() or not spec.name:
        raise ValueError(f"a {what} name is lower case without spaces, got {spec.name!r}")
    if spec.name in table and not replace:
        raise ValueError(f"a {what} named {spec.name!r} is already registered")
    table[spec.name] = spec
    return spec


def unregister(spec: Spec) -> None:
    _KINDS[type(spec)][0].pop(spec.name, None)


def lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    """registry[name], case-insensitive; unknown names raise `ConfigError` listing valid ones."""
    return registry[canonical_name(name, tuple(registry), what)]


def pruner(method: str) -> PrunerSpec:
    return lookup(PRUNERS, method, "method")


_CHANNELS = "ecs_core.prune.channel_methods:"
for _spec in (
    ModelSpec("vgg16", "ecs_core.models.vgg:vgg16"),
    ModelSpec("vgg19", "ecs_core.models.vgg:vgg19"),
    ModelSpec("resnet18", "ecs_core.models.resnet18:resnet18"),
    ModelSpec("resnet34", "ecs_core.models.resnet:resnet34"),
    ModelSpec("resnet50", "ecs_core.models.resnet:resnet50"),
    DatasetSpec("digits", "ecs_core.data.digits:load"),
    DatasetSpec("fashion-mnist", "ecs_core.data.fashion:load_fashion"),
    DatasetSpec("cifar10", "ecs_core.data.cifar:load_cifar10"),
    DatasetSpec("cifar100", "ecs_core.data.cifar:load_cifar100"),
    PrunerSpec(
        "ecs",
        "ecs_core.prune.methods:ecs",
        when="warmup",
        budgets=("exact", "union"),
        score_bn=True,
        channels=_CHANNELS + "ecs",
    ),
    PrunerSpec("snip", "ecs_core.prune.methods:snip", score_bn=True, channels=_CHANNELS + "snip"),
    PrunerSpec(
        "grasp", "ecs_core.prune.methods:grasp", score_bn=True, channels=_CHANNELS + "grasp"
    ),
    PrunerSpec("synflow", "ecs_core.prune.methods:synflow", channels=_CHANNELS + "synflow"),
    PrunerSpec("random", "ecs_core.prune.methods:random", channels=_CHANNELS + "random"),
    PrunerSpec(
        "magnitude",
        "ecs_core.prune.methods:magnitude",
        when="warmup",
        channels=_CHANNELS + "magnitude",
    ),
    PrunerSpec(
        "imp",
        "ecs_core.prune.methods:magnitude",
        when="iterative",
        channels=_CHANNELS + "magnitude",
    ),
    PrunerSpec("set", "ecs_core.prune.methods:random", grow="random"),
    PrunerSpec("rigl", "ecs_core.prune.methods:random", grow="gradient"),
    PrunerSpec("none", None, when="never"),
):
    register(_spec)
