"""Which row and cell of `ecs compare` a run belongs to: its labels, the part of its recipe
that sets it apart from its method's other runs, one run per seed, and the cell (`CompareCell`)
those runs make.

A row is a dataset, a model (with its width), a method label (`SNIP`, `ECS (P) [union]`,
`SNIP [shuffle]`, and `SNIP (P+Q)` for its quantized accuracy) and, where the method's runs
differ in anything but the seed, density and ablation, the fields that differ with their
values (`SNIP {epochs 3, max-batches 6}`). The recipe is `config.recipe_fields()` (RunInfo.recipe),
so a field added to RunConfig splits rows without a change here.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecs_core.config import AFTER_PRUNING, BEFORE_OPTIONS, choice_tags, method_tag
from ecs_core.stats.runs import RunInfo

LABELS = {"snip": "SNIP", "ecs": "ECS (P)", "none": "Dense", "random": "Random",
          "magnitude": "Magnitude", "grasp": "GraSP", "synflow": "SynFlow",
          "imp": "IMP", "set": "SET", "rigl": "RigL"}  # fmt: skip
"""Method name -> its row label (pruned); `pq_label` gives the pruned + quantized row's."""
PQ = " (P+Q)"
MODEL_LABELS = {"vgg16": "VGG16", "vgg19": "VGG19", "resnet18": "ResNet18",
                "resnet34": "ResNet34", "resnet50": "ResNet50"}  # fmt: skip
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion-mnist": "Fashion-MNIST"}


ACHIEVED_TOLERANCE = 0.02
"""Achieved density is shown when it differs from the target by more than 2% of the target."""


@dataclass(frozen=True)
class CompareCell:
    """One cell: runs with the same dataset, model, method label, recipe and target density."""

    dataset: str
    model: str
    method: str
    """The row label: `SNIP`, `ECS (P+Q) [union]`, `SNIP {epochs 3}` (see `plain`, `recipe`)."""
    target_density: float
    n: int
    mean: float
    std: float | None
    """Sample standard deviation (n - 1) over seeds; None for a single run."""
    achieved: float | None
    """Mean achieved density of the runs."""
    seeds: list[int]
    runs: list[str]
    fp32_pq: int = 0
    """P+Q rows: runs without an int8 model, whose shared-weight fp32 accuracy stands in."""
    ablate: str = "none"
    """The runs' --ablate (none for the method itself)."""
    base: str = ""
    """The row label without the ablation tag (`SNIP` for `SNIP [shuffle]`)."""
    collapsed: int = 0
    """Runs whose pruning left a layer with no weights (layer collapse)."""
    thinnest: int | None = None
    """The fewest weights any layer kept, over the cell's runs (see `RunInfo.thinnest`)."""
    fp32_speedup: float | None = None
    """Mean measured speed-up x dense of the runs' final fp32 model (batch 64, one thread)."""
    int8_speedup: float | None = None
    """... and of their int8 model (against dense fp32)."""
    plain: str = ""
    """The row label without the recipe suffix: what `--baseline` names (`SNIP`, `Dense`)."""
    recipe: tuple[tuple[str, Any], ...] = ()
    """(field, value): what sets this row's runs apart from other runs of its method (empty
    where all of them share one recipe); the label's `{...}` suffix."""
    setting: tuple[tuple[str, Any], ...] = ()
    """The runs' whole recipe (`RunInfo.recipe`) without the density."""
    accs: tuple[tuple[int | None, float], ...] = ()
    """(seed, accuracy) of each run averaged, by seed."""
    partner: str = ""
    """A P+Q row's P row (the same runs before quantization); empty for other rows."""
    left_out: int = 0
    """Runs of a seed the cell already has (same recipe), left out (`CompareTable.duplicates`)."""

    @property
    def achieved_differs(self) -> bool:
        if self.achieved is None:
            return False
        return abs(self.achieved - self.target_density) > ACHIEVED_TOLERANCE * self.target_density

    @property
    def ratio(self) -> float | None:
        """Achieved / target density (1.0 when the method kept exactly what it was asked)."""
        return None if self.achieved is None else self.achieved / self.target_density


@dataclass(frozen=True)
class Duplicate:
    """Runs of one recipe and one seed: only `used` (the newest finished) is in the table."""

    cell: str
    """Which cell: `digits VGG16 SNIP 10% seed 0`."""
    used: str
    left_out: list[str]


def pq_label(label: str) -> str:
    """The P+Q row of a method's P row: `SNIP` -> `SNIP (P+Q)`, `ECS (P)` -> `ECS (P+Q)`."""
    return label.removesuffix(" (P)") + PQ


def model_label(model: str, width: float | None) -> str:
    name = MODEL_LABELS.get(model, model)
    return name if width in (None, 1.0) else f"{name} x{width:g}"


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def method_entries(info: RunInfo, ablated: bool = True) -> list[tuple[str, float]]:
    """(label, accuracy) pairs a finished run contributes: its P row and, if quantized, P+Q.

    Layer-wise scope, another per-layer budget (`SNIP [erk]`), ECS's union budget and an
    `--ablate` check are not the defaults, so they are named in the label (`SNIP [layer]`,
    `ECS (P) [union]`, `SNIP [shuffle]`) rather than averaged with default-setting runs.
    `ablated=False`: the labels without the ablation tag.
    """
    p, pq = labels(info, ablated)
    out = [(p, info.test_acc)]
    if info.method != "none":  # a dense run is never quantized
        out.append((pq, info.pq_acc))
    return [(label, acc) for label, acc in out if acc is not None]


def labels(info: RunInfo, ablated: bool) -> tuple[str, str]:
    name = LABELS.get(info.method, info.method)
    tags = []
    if info.method != "none" and info.scope == "layer":
        tags.append("layer")
    if info.method == "ecs" and info.budget == "union":
        tags.append("union")
    spread = method_tag(info.method, distribution=info.distribution, distribution_from=info.source)
    if spread != info.method:  # a per-layer budget not the method's own: erk, from-RUN
        tags.append(spread.removeprefix(info.method + "-"))
    if info.structure == "channel":
        tags.append("channel")
    if info.method != "none":  # IMP's optimizer, the layers kept dense, ...: as the run's name
        tags.extend(choice_tags(info.method, dict(info.recipe), info.structure))
    if info.ablate != "none" and ablated:
        tags.append(info.ablate)
    suffix = f" [{', '.join(tags)}]" if tags else ""
    return name + suffix, pq_label(name) + suffix


SHOWN = ("density", "ablate", "distribution", "distribution_from", "structure",
         *BEFORE_OPTIONS, "score_bn")  # fmt: skip
"""Recipe fields the table shows already (the columns; the `[shuffle]`, `[erk]`, `[channel]`
tags): never in `{...}`."""


def apart(infos: list[RunInfo]) -> dict[tuple[str, bool], tuple[tuple[str, Any], ...]]:
    """(run path, P+Q row?) -> the recipe fields, with the run's values, in which the runs of
    its method (same dataset, model and row label, ablations included) differ from each other.
    A P row leaves out the fields that act after its accuracy is taken (`AFTER_PRUNING`)."""
    families: dict[tuple[str, str, str], list[RunInfo]] = {}
    for i in infos:
        key = (dataset_label(i.dataset), model_label(i.model, i.width), labels(i, False)[0])
        families.setdefault(key, []).append(i)
    out = {}
    for members in families.values():
        for pq in (False, True):
            runs = [i for i in members if not pq or len(method_entries(i)) > 1]
            recipes = [dict(recipe_of(i, pq)) for i in runs]
            fields = [f for f, _ in recipe_of(runs[0], pq) if f not in SHOWN] if runs else []
            varying = [f for f in fields if len({r.get(f) for r in recipes}) > 1]
            for i, r in zip(runs, recipes, strict=True):
                out[i.path, pq] = tuple((f, r.get(f)) for f in varying)
    return out


def recipe_of(info: RunInfo, pq: bool) -> tuple[tuple[str, Any], ...]:
    """The run's recipe as its P+Q row (`pq`) or its P row sees it (no `AFTER_PRUNING`)."""
    return tuple((f, v) for f, v in info.recipe if pq or f not in AFTER_PRUNING)


def recipe_suffix(recipe: tuple[tuple[str, Any], ...]) -> str:
    """' {epochs 3, max-batches 6}' (the option names), or '' for no fields."""
    if not recipe:
        return ""
    return " {" + ", ".join(f"{f.replace('_', '-')} {_value(v)}" for f, v in recipe) + "}"


def _value(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return {True: "yes", False: "no", None: "none"}[v]
    return format(v, "g") if isinstance(v, float) else str(v)


def finished_ns(info: RunInfo) -> int:
    """When the run's summary was last written (its end, for a finished run); 0 if unknown."""
    try:
        return os.stat(Path(info.path) / "summary.json").st_mtime_ns
    except OSError:
        return 0


def one_per_seed(
    key: tuple[str, str, str, float], members: list[tuple[float, RunInfo]]
) -> tuple[list[tuple[float, RunInfo]], list[Duplicate]]:
    """One run per seed, the newest finished (then the last path): same recipe, same seed is
    one measurement, not two."""
    by_seed: dict[int | None, list[tuple[float, RunInfo]]] = {}
    for acc, info in members:
        by_seed.setdefault(info.seed, []).append((acc, info))
    kept, dups = [], []
    for seed, runs in sorted(by_seed.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        runs.sort(key=lambda m: (finished_ns(m[1]), m[1].path))
        kept.append(runs[-1])
        if len(runs) > 1:
            where = f"{key[0]} {key[1]} {key[2]} {key[3] * 100:g}% seed {seed}"
            dups.append(Duplicate(where, runs[-1][1].path, [i.path for _, i in runs[:-1]]))
    return kept, dups


def make_cell(
    key: tuple[str, str, str, float],
    members: list[tuple[float, RunInfo]],
    plain: str,
    base: str,
    partner: str,
    recipe: tuple[tuple[str, Any], ...],
    left_out: int,
) -> CompareCell:
    accs = [a for a, _ in members]
    achieved = [i.density for _, i in members if i.density is not None]
    first = members[0][1]
    return CompareCell(
        dataset=key[0], model=key[1], method=key[2], target_density=key[3], n=len(accs),
        mean=statistics.fmean(accs), std=statistics.stdev(accs) if len(accs) > 1 else None,
        achieved=statistics.fmean(achieved) if achieved else None,
        seeds=sorted(i.seed for _, i in members if i.seed is not None),
        runs=sorted(i.path for _, i in members),
        fp32_pq=sum(i.int8_acc is None for _, i in members) if partner else 0,
        ablate=first.ablate, base=base, collapsed=sum(i.collapsed > 0 for _, i in members),
        thinnest=min((i.thinnest for _, i in members if i.thinnest is not None), default=None),
        plain=plain, recipe=recipe,
        fp32_speedup=_mean([i.fp32_speedup for _, i in members]),
        int8_speedup=_mean([i.int8_speedup for _, i in members]),
        setting=tuple((f, v) for f, v in recipe_of(first, bool(partner)) if f != "density"),
        accs=tuple((i.seed, a) for a, i in members), partner=partner, left_out=left_out,
    )  # fmt: skip


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None
