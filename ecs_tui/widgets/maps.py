"""Kernels and Activations tabs: pages of 2-D maps drawn as one mosaic (`plots.draw_kernels`,
`plots.draw_activations`), with a layer picker and `[` / `]` to page.

A page holds as many maps as fit the plot at a readable size (`plots.capacity`), so a
512-filter layer shows a screenful at a time instead of 512 unreadable specks.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, Select, Static
from textual_plotext import PlotextPlot

from ecs_tui.widgets.statsview import StatsView
from ecs_tui.worker import Snapshot

MIN_TILE_ROWS = 3


class MapsView(StatsView):
    """Shared by both tabs: layer select, page position, one mosaic plot."""

    PREFIX = "maps"
    PROMPT = "first layer"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.sel_layer: str | None = None
        self.page_no = 0
        self.page_count = 1
        self._options: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(classes="view-note")
        with Horizontal(classes="controls"):
            yield from self.extra_controls()
            yield Label("layer")
            yield Select([], prompt=self.PROMPT, compact=True, id=f"{self.PREFIX}-layer")
            yield Label("", id=f"{self.PREFIX}-page")
        yield PlotextPlot(id=f"{self.PREFIX}-plot")

    def extra_controls(self) -> ComposeResult:
        return iter(())

    def plot_size(self) -> tuple[int, int]:
        w, h = self.query_one(f"#{self.PREFIX}-plot", PlotextPlot).size
        return (w, h) if w and h else (76, 14)

    def choice(self) -> tuple:
        return (self.sel_layer, self.page_no, self.plot_size())

    def ready(self, snap: Snapshot) -> str | None:
        if snap.active and snap.epoch < 1:
            return "No weights saved yet: the first checkpoint comes after the first epoch."
        return None

    def change_page(self, delta: int) -> None:
        page = max(0, min(self.page_count - 1, self.page_no + delta))
        if page != self.page_no:
            self.page_no = page
            self.reload()

    def set_layers(self, options: list[tuple[str, str]], current: str | None) -> None:
        select = self.query_one(f"#{self.PREFIX}-layer", Select)
        if options != self._options:
            self._options = options
            select.set_options(options)
        with select.prevent(Select.Changed):
            select.value = current if current is not None else Select.NULL

    def set_page_label(self, first: int, last: int, total: int, what: str, per_page: int) -> None:
        self.page_count = max(1, -(-total // max(1, per_page)))
        self.page_no = min(self.page_no, self.page_count - 1)
        text = f"{what} {first}-{last} of {total}"
        if self.page_count > 1:
            text += f" · page {self.page_no + 1}/{self.page_count} ([ ])"
        self.query_one(f"#{self.PREFIX}-page", Label).update(text)

    def draw_plot(self, draw: Any, data: Any) -> None:
        plot = self.query_one(f"#{self.PREFIX}-plot", PlotextPlot)
        draw(plot.plt, data, size=self.plot_size(), color=not self.app.no_color)
        plot.refresh()

    @on(Select.Changed)
    def _layer_changed(self, event: Select.Changed) -> None:
        value = event.value if isinstance(event.value, str) else None
        if value != self.sel_layer:
            self.sel_layer, self.page_no = value, 0
            self.reload()


class KernelsView(MapsView):
    """Per-filter kernel maps of a conv layer (mean over input channels for k x k kernels)."""

    PREFIX = "kernels"
    PROMPT = "first conv layer"

    def compute(self, view: Any, choice: tuple) -> Any:
        from ecs_tui.plots import capacity

        layer, page, size = choice
        probe = view.kernels(layer, 0, 1)
        m = probe.maps[0]
        per_page = capacity((len(m), len(m[0])), size, MIN_TILE_ROWS)
        convs = [r.name for r in view.sparsity().layers if r.kind == "conv"]
        return convs, per_page, view.kernels(probe.layer, page * per_page, per_page)

    def draw(self, data: Any) -> None:
        from ecs_tui.plots import draw_kernels, short

        convs, per_page, maps = data
        self.set_layers([(short(n), n) for n in convs], maps.layer)
        self.sel_layer = maps.layer
        first = maps.offset + 1
        self.set_page_label(first, maps.offset + len(maps.filters), maps.total, "filters", per_page)
        self.draw_plot(draw_kernels, maps)


class ActivationsView(MapsView):
    """Activation maps of one test image: every stage's channel mean, or one layer's channels."""

    PREFIX = "acts"
    PROMPT = "every stage"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.image_index = 0

    def extra_controls(self) -> ComposeResult:
        yield Label("image")
        yield Input("0", compact=True, id="acts-image", type="integer")

    def choice(self) -> tuple:
        return (self.image_index, *super().choice())

    def compute(self, view: Any, choice: tuple) -> Any:
        from ecs_tui.plots import capacity

        image, layer, page, size = choice
        probe = view.activations(image, layer, 0, 1)
        m = probe.maps[0].map if probe.maps else probe.input
        per_page = capacity((len(m), len(m[0])), size, MIN_TILE_ROWS)
        if layer is None:
            per_page = max(1, per_page - 1)  # the input image takes the first tile
        return per_page, view.activations(image, layer, page * per_page, per_page)

    def draw(self, data: Any) -> None:
        from ecs_tui.plots import draw_activations

        per_page, acts = data
        self.set_layers([(n, n) for n in acts.names], acts.layer)
        what = "layers" if acts.layer is None else "channels"
        last = acts.offset + len(acts.maps)
        self.set_page_label(acts.offset + 1, last, acts.total, what, per_page)
        self.draw_plot(draw_activations, acts)

    @on(Input.Submitted, "#acts-image")
    @on(Input.Changed, "#acts-image")
    def _image_changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            image = int(event.value)
        except ValueError:
            return
        if image != self.image_index:
            self.image_index, self.page_no = image, 0
            self.reload()
