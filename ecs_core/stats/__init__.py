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

import importlib
from typing import Any

_WHERE = {
    "ActivationMap": "activations", "Activations": "activations", "activation_maps": "activations",
    "Clusters": "clusters",
    "CompareCell": "compare", "CompareTable": "compare", "compare_infos": "compare",
    "compare_runs": "compare",
    "RunView": "run", "load_run": "run",
    "RunInfo": "runs", "find_runs": "runs", "run_info": "runs",
    "Curves": "summary", "Overlap": "summary", "QuantTable": "summary", "Sizes": "summary",
    "LayerMoves": "summary", "StageAccuracy": "summary", "Turnover": "summary",
    "StatsError": "errors",
    "Histogram": "weights", "KernelMaps": "weights", "LayerDensity": "weights",
    "Sparsity": "weights", "kernel_maps": "weights", "layer_densities": "weights",
    "weight_histograms": "weights",
}  # fmt: skip
"""Name -> submodule. Imported on first use (PEP 562), so the torch-free readers (runs,
compare, summary) can list and compare run directories without loading torch."""

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value
