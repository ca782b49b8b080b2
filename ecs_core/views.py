"""The views of a run, said once: the name (the app's tab and `ecs show`'s argument), the tab's
title, one line of help, and for the views `ecs show` draws, the `ecs_core.figures` function
that `--save` (`RunView.figure`) draws its data with. The app's keys 1..n follow this order.

Import-free: the app, the CLI and `ecs_core.figures` read it without torch or matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    name: str
    """The app's tab (`tab-NAME`), `ecs show RUN NAME`, and the `view` key of its JSON."""
    title: str
    """The tab's title."""
    help: str
    """One line: the command palette and the help screen."""
    figure: str = ""
    """The `ecs_core.figures` function drawing its data ('': the app alone shows it)."""
    aliases: tuple[str, ...] = ()
    """Other names `ecs show` accepts (`clusters`, the quant view's name before)."""

    @property
    def key(self) -> str:
        """The app's key for its tab: its place in `VIEWS`, from 1."""
        return str(VIEWS.index(self) + 1)


VIEWS = (
    View("overview", "Overview", "what the run is and what it achieved"),
    View("curves", "Curves", "loss and accuracy per epoch, live loss per batch", "curves_figure"),
    View("sparsity", "Sparsity", "weights kept in each layer", "sparsity_figure"),
    View(
        "quant",
        "Quant",
        "weight values before/after sharing, unique weights",
        "clusters_figure",
        aliases=("clusters",),
    ),  # fmt: skip
    View("kernels", "Kernels", "conv filter heatmaps, a page at a time", "kernels_figure"),
    View("activations", "Activ", "activation maps of one test image", "activations_figure"),
    View("runs", "Runs", "every run under the runs folder and the compare table"),
    View("log", "Log", "one line per event, and tracebacks"),
)
TURNOVER = View("turnover", "Turnover", "SET, RigL: connections moved at each mask update",
                "turnover_figure")  # fmt: skip
"""`ecs show` alone: the app shows the moves in its Sparsity view (no tab of its own)."""
SHOWN = (*(v for v in VIEWS if v.figure), TURNOVER)
"""The views `ecs show` draws (and `--save`, `--json`)."""


def view(name: str) -> View:
    """The `VIEWS` entry called `name`."""
    return next(v for v in VIEWS if v.name == name)


def shown_view(name: str) -> View | None:
    """The `ecs show` view called `name` (or one of its aliases), or None."""
    return next((v for v in SHOWN if name == v.name or name in v.aliases), None)


def shown_names() -> str:
    """`sparsity, curves, ...`: the names an unknown view's message lists."""
    return ", ".join(v.name for v in SHOWN)
