"""The views, in tab order: name, tab title, one line of help, and the widget that draws it.

Keys 1..n follow this order; the command palette lists the same entries. Every view widget has
`show(snapshot, source)`; the app calls it only for the visible tab.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.widget import Widget

from ecs_tui.widgets.curves import CurvesView
from ecs_tui.widgets.logview import LogView
from ecs_tui.widgets.maps import ActivationsView, KernelsView
from ecs_tui.widgets.overview import OverviewView
from ecs_tui.widgets.quant import QuantView
from ecs_tui.widgets.runs import RunsView
from ecs_tui.widgets.sparsity import SparsityView


@dataclass(frozen=True)
class ViewSpec:
    name: str
    title: str
    help: str
    factory: Callable[..., Widget]


VIEWS = (
    ViewSpec("overview", "Overview", "what the run is and what it achieved", OverviewView),
    ViewSpec("curves", "Curves", "loss and accuracy per epoch, live loss per batch", CurvesView),
    ViewSpec("sparsity", "Sparsity", "weights kept in each layer", SparsityView),
    ViewSpec("quant", "Quant", "weight values before/after sharing, unique weights", QuantView),
    ViewSpec("kernels", "Kernels", "conv filter heatmaps, a page at a time", KernelsView),
    ViewSpec("activations", "Activ", "activation maps of one test image", ActivationsView),
    ViewSpec("runs", "Runs", "every run under the runs folder and the compare table", RunsView),
    ViewSpec("log", "Log", "one line per event, and tracebacks", LogView),
)
