"""The widget that draws each view of `ecs_core.views.VIEWS` (the one table of views: name,
title, help, key, figure), by the view's name.

Every view widget has `show(snapshot, source)`; the app calls it only for the visible tab.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.widget import Widget

from ecs_tui.widgets.curves import CurvesView
from ecs_tui.widgets.logview import LogView
from ecs_tui.widgets.maps import ActivationsView, KernelsView
from ecs_tui.widgets.overview import OverviewView
from ecs_tui.widgets.quant import QuantView
from ecs_tui.widgets.runs import RunsView
from ecs_tui.widgets.sparsity import SparsityView

WIDGETS: dict[str, Callable[..., Widget]] = {
    "overview": OverviewView,
    "curves": CurvesView,
    "sparsity": SparsityView,
    "quant": QuantView,
    "kernels": KernelsView,
    "activations": ActivationsView,
    "runs": RunsView,
    "log": LogView,
}
