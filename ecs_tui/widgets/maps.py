"""Kernels and Activations tabs: pages of 2-D maps drawn as one mosaic (`plots_maps.draw_kernels`,
`plots_maps.draw_activations`), with a layer picker and `[` / `]` to page.

A page holds as many maps as fit the plot at a readable size (`plots_maps.capacity`), so a
512-filter layer shows a screenful at a time instead of 512 unreadable specks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, Select, Static
from textual_plotext import PlotextPlot

from ecs_tui.runmodel import Snapshot
from ecs_tui.widgets.statsview import StatsView

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

    def layer_picker(self) -> tuple[Any, list[str], str | None]:
        names = [name for _, name in self._options]
        return self.query_one(f"#{self.PREFIX}-layer", Select), names, self.sel_layer

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


@dataclass(frozen=True)
class WeightPage:
    """A page of filters, every weight kept: each tile is one filter's input-channel kernels
    in a near-square grid (None = padding between kernels)."""

    layer: str
    total: int
    offset: int
    tiles: list[tuple[str, list[list[float | None]]]]
    tile: tuple[int, int]
    """(rows, weight columns) of each tile."""
    cell: int
    """Characters per weight across (2 when they fit: cells then look square)."""
    vmax: float
    shown_in: int
    in_ch: int
    per_page: int


def weight_page(weight: Any, name: str, page: int, size: tuple[int, int]) -> WeightPage:
    """The filters of page `page` that fit `size`, each with its first input channels that fit
    (a tile never shrinks a weight into an average: that would hide which were pruned)."""
    out_ch, in_ch, kh, kw = weight.shape
    width, height = size
    g = max(1, math.isqrt(in_ch - 1) + 1)
    while g > 1 and (g * (kh + 1) - 1 + 2 > height or g * (kw + 1) - 1 > width):
        g -= 1
    shown = min(in_ch, g * g)
    th, tw = g * (kh + 1) - 1, g * (kw + 1) - 1
    cell = 2 if 2 * tw + 1 <= width else 1
    per_page = max(1, (width // (tw * cell + 1)) * max(1, (height - 1) // (th + 1)))
    offset = min(page * per_page, out_ch - 1)
    w = weight.detach().float().cpu()
    tiles = []
    for f in range(offset, min(out_ch, offset + per_page)):
        m: list[list[float | None]] = [[None] * tw for _ in range(th)]
        for ci, kernel in enumerate(w[f, :shown].tolist()):
            r0, c0 = (ci // g) * (kh + 1), (ci % g) * (kw + 1)
            for r, row in enumerate(kernel):
                m[r0 + r][c0 : c0 + kw] = row
        tiles.append((f"#{f + 1}", m))
    vmax = float(w.abs().max()) or 1.0
    return WeightPage(name, out_ch, offset, tiles, (th, tw), cell, vmax, shown, in_ch, per_page)


class KernelsView(MapsView):
    """Per-filter kernel maps of a conv layer (mean over input channels for k x k kernels), or
    (m) every weight of each filter, zeros marked: the mask made visible."""

    PREFIX = "kernels"
    PROMPT = "first conv layer"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.weights_mode = False

    def action_mode(self) -> None:
        self.weights_mode, self.page_no = not self.weights_mode, 0
        self.reload()

    def choice(self) -> tuple:
        return (*super().choice(), self.weights_mode)

    def compute(self, view: Any, choice: tuple) -> Any:
        from ecs_tui.plots_maps import capacity

        layer, page, size, weights_mode = choice
        if weights_mode:
            name = view.layer(layer, kind="conv")
            convs = [r.name for r in view.sparsity().layers if r.kind == "conv"]
            return convs, weight_page(view.weights[name], name, page, size)
        probe = view.kernels(layer, 0, 1)
        m = probe.maps[0]
        per_page = capacity((len(m), len(m[0])), size, MIN_TILE_ROWS)
        convs = [r.name for r in view.sparsity().layers if r.kind == "conv"]
        return convs, per_page, view.kernels(probe.layer, page * per_page, per_page)

    def draw(self, data: Any) -> None:
        from ecs_tui.plots import short
        from ecs_tui.plots_maps import draw_kernels, draw_weights

        if isinstance(data[1], WeightPage):
            convs, wp = data
            self.set_layers([(short(n), n) for n in convs], wp.layer)
            self.sel_layer = wp.layer
            last = wp.offset + len(wp.tiles)
            self.set_page_label(wp.offset + 1, last, wp.total, "filters", wp.per_page)
            if wp.shown_in < wp.in_ch:
                label = self.query_one("#kernels-page", Label)
                label.update(f"{label.render()} · in-ch 1-{wp.shown_in}/{wp.in_ch}")
            self.draw_plot(draw_weights, wp)
            return
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
        from ecs_tui.plots_maps import capacity

        image, layer, page, size = choice
        probe = view.activations(image, layer, 0, 1)
        m = probe.maps[0].map if probe.maps else probe.input
        per_page = capacity((len(m), len(m[0])), size, MIN_TILE_ROWS)
        if layer is None:
            per_page = max(1, per_page - 1)  # the input image takes the first tile
        return per_page, view.activations(image, layer, page * per_page, per_page)

    def draw(self, data: Any) -> None:
        from ecs_tui.plots_maps import draw_activations

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
