"""The numbers behind every view: density per layer, weight histograms, kernel and activation
maps, ECS overlap, training curves, and the comparison table across runs.

Pure data (torch and the standard library): every function returns plain dataclasses, so
`ecs show`, `ecs show --json`, `ecs report` and the TUI draw the same numbers. Example::

    from ecs_core.stats import load_run, compare_runs
    view = load_run("runs/20250101-120000-vgg16-digits-ecs-d0.05-s0")
    [(l.name, round(l.density, 3)) for l in view.sparsity().layers]
    view.clusters("features.3").after.values        # the shared weight values, exact
    view.kernels("features.0", offset=0, limit=16)  # a page of 2-D filter maps
    view.activations(image=5).maps[0].map           # first ReLU's output for test image 5
    compare_runs(["runs/"]).cells                   # mean ± std of accuracy over seeds
"""

from __future__ import annotations

from ecs_core.stats.activations import ActivationMap, Activations, activation_maps
from ecs_core.stats.clusters import Clusters
from ecs_core.stats.compare import CompareCell, CompareTable, compare_infos, compare_runs
from ecs_core.stats.run import RunView, load_run
from ecs_core.stats.runs import RunInfo, find_runs, run_info
from ecs_core.stats.summary import Curves, Overlap, QuantTable, Sizes, StageAccuracy
from ecs_core.stats.weights import (
    Histogram,
    KernelMaps,
    LayerDensity,
    Sparsity,
    StatsError,
    kernel_maps,
    layer_densities,
    weight_histograms,
)

__all__ = [
    "ActivationMap",
    "Activations",
    "Clusters",
    "CompareCell",
    "CompareTable",
    "Curves",
    "Histogram",
    "KernelMaps",
    "LayerDensity",
    "Overlap",
    "QuantTable",
    "RunInfo",
    "RunView",
    "Sizes",
    "Sparsity",
    "StageAccuracy",
    "StatsError",
    "activation_maps",
    "compare_infos",
    "compare_runs",
    "find_runs",
    "kernel_maps",
    "layer_densities",
    "load_run",
    "run_info",
    "weight_histograms",
]
