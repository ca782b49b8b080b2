"""plotext mosaics of 2-D maps: kernels, activations, and every weight of a page of filters.

A map is drawn as one mosaic that fills the canvas cell for cell: a scatter with one point per
character, coloured by value, with a character ramp as the marker so the picture survives
NO_COLOR and copy-paste. Pass the drawing area's `size`; the TUI passes its widget's size.
Like `plots`, every function takes a plotext-like `plt` and clears it first.

Example (TUI widget)::

    draw_kernels(widget.plt, view.kernels("features.0", limit=64), size=tuple(widget.size))
    widget.refresh()
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ecs_tui.plots import RAMP, Matrix, abbreviate, short, text_canvas

if TYPE_CHECKING:  # only for annotations: importing plots must not import torch
    from ecs_core.stats import Activations, KernelMaps


def _spans(n: int, out: int) -> list[tuple[int, int]]:
    """Source index ranges [a, b) feeding each of `out` cells (never empty)."""
    return [((i * n) // out, max((i * n) // out + 1, ((i + 1) * n) // out)) for i in range(out)]


def resize(m: Matrix, rows: int, cols: int) -> Matrix:
    """Area-average when shrinking, nearest cell when growing (maps are small: pure Python)."""
    h, w = len(m), len(m[0]) if m else 0
    if not h or not w:
        return [[0.0] * cols for _ in range(rows)]
    col_spans = _spans(w, cols)
    out = []
    for r0, r1 in _spans(h, rows):
        src = m[r0:r1]
        out.append([sum(sum(row[c0:c1]) for row in src) / ((r1 - r0) * (c1 - c0))
                    for c0, c1 in col_spans])  # fmt: skip
    return out


def grid(
    n: int, shape: tuple[int, int], size: tuple[int, int], label: int = 1, stretch: float = 1.0
) -> tuple[int, int, int]:
    """(columns, tile rows, tile cols) that show n maps of `shape` as large as the canvas allows.

    A character is about twice as tall as wide, so a map of h x w cells becomes h*s rows by
    2*w*s columns; each tile also needs `label` rows above it and one blank column beside it.
    `stretch` > 1 lets a shrunk map grow by up to that factor along one side to fill the space
    its grid leaves (activation maps: a little distortion beats a third of the screen empty).
    """
    width, height = size
    h, w = shape
    best = (1, 1, 1, 0.0, 1, 1)
    for cols in range(1, max(1, n) + 1):
        rows = -(-n // cols)
        tw, th = width // cols - 1, (height - 1) // rows - label
        scale = min(tw / (2 * w), th / h)
        if tw >= 1 and th >= 1 and scale > best[3]:
            shown = (max(1, round(h * scale)), max(1, min(tw, round(2 * w * scale))))
            best = (cols, *shown, scale, th, tw)
    cols, th, tw, scale, room_h, room_w = best
    if scale >= 1:  # growing: whole characters per map cell, so every cell is the same size
        return cols, h * int(scale), 2 * w * int(scale)
    if stretch > 1:
        th = min(room_h, max(th, round(th * stretch)))
        tw = min(room_w, max(tw, round(tw * stretch)))
    return cols, th, tw


def capacity(shape: tuple[int, int], size: tuple[int, int], min_rows: int) -> int:
    """How many maps of `shape` fit on one page with tiles at least `min_rows` tall."""
    h, w = shape
    th = max(1, min_rows)
    tw = max(1, math.ceil(2 * w * th / h))
    cols = max(1, size[0] // (tw + 1))
    rows = max(1, (size[1] - 1) // (th + 1))
    return cols * rows


def draw_mosaic(
    plt: Any,
    tiles: list[tuple[str, Matrix]],
    title: str,
    size: tuple[int, int] | None = None,
    color: bool = True,
    stretch: float = 1.0,
) -> None:
    """Tiles of [0, 1] maps, each labelled, filling a `size` canvas one point per character
    (`stretch`: see `grid`). Without colour the title also names the ramp, low to high."""
    titles = [title] if color else [f"{title} · low→high {RAMP.strip()}", title]
    width, canvas_h = text_canvas(plt, titles, size)
    if not tiles:
        return
    shape = max(((len(m), len(m[0]) if m else 1) for _, m in tiles), key=lambda s: s[0] * s[1])
    cols, th, tw = grid(len(tiles), shape, (width, canvas_h + 1), stretch=stretch)
    xs, ys, markers, colors = [], [], [], []
    for i, (label, m) in enumerate(tiles):
        x0, y0 = (i % cols) * (tw + 1), (i // cols) * (th + 1)
        label = label if len(label) <= tw else abbreviate(label)
        plt.text(label[:tw], x0, canvas_h - 1 - y0, alignment="left")
        for r, row in enumerate(resize(m, th, tw)):
            for c, v in enumerate(row):
                v = min(1.0, max(0.0, v))
                xs.append(x0 + c)
                ys.append(canvas_h - 2 - y0 - r)
                markers.append("█" if color else RAMP[min(len(RAMP) - 1, int(v * len(RAMP)))])
                g = int(40 + 215 * v)
                colors.append((g, g, g))
    if color:
        plt.canvas_color("black")
        plt.scatter(xs, ys, marker=markers, color=colors)
    else:
        plt.scatter(xs, ys, marker=markers)


def draw_kernels(
    plt: Any, maps: KernelMaps, size: tuple[int, int] | None = None, color: bool = True
) -> None:
    """A page of filter maps, labelled with their filter numbers (1-based)."""
    tiles = [(f"#{i + 1}", m) for i, m in zip(maps.filters, maps.maps, strict=True)]
    last = maps.filters[-1] + 1 if maps.filters else 0
    title = (
        f"{short(maps.layer)}: filters {maps.offset + 1}-{last}/{maps.total}, "
        f"{maps.reduction}, {maps.vmin:.2g}..{maps.vmax:.2g}"
    )
    draw_mosaic(plt, tiles, title, size, color)


def draw_activations(
    plt: Any, acts: Activations, size: tuple[int, int] | None = None, color: bool = True
) -> None:
    """The input and each layer's channel-mean map, or a page of one layer's channels."""
    head = f"image #{acts.image} (label {acts.label}, predicted {acts.predicted})"
    if acts.layer is None:
        tiles = [("input", acts.input)] + [(m.name, m.map) for m in acts.maps]
        title = f"{head}: mean activation per stage (bright = its max)"
    else:
        tiles = [(f"#{acts.offset + i + 1}", m.map) for i, m in enumerate(acts.maps)]
        last = acts.offset + len(acts.maps)
        title = f"{head}: {acts.layer} channels {acts.offset + 1}-{last}/{acts.total}"
    draw_mosaic(plt, tiles, title, size, color, stretch=ACTIVATION_STRETCH)


ACTIVATION_STRETCH = 1.5
"""Activation maps may stretch by up to this much to fill the view (see `grid`)."""


# --- every weight of a page of filters: the mask made visible


PRUNED_GLYPH = "·"
"""A pruned weight (exactly 0), with or without colour."""
SIGN_GLYPHS = {-1: ("-", "="), 1: ("+", "#")}
"""Without colour a weight's sign is its glyph: (|w| up to half the page's largest, above it).
`=` is a doubled `-`, `#` a doubled `+`."""


def weights_legend(vmax: float, color: bool) -> list[str]:
    """What the glyphs of `draw_weights` mean, longest wording first (see `fit`)."""
    if color:
        return [f"{PRUNED_GLYPH} = 0 (pruned) · blue − red + · |w| ≤ {vmax:.2g}"]
    (neg, neg2), (pos, pos2) = SIGN_GLYPHS[-1], SIGN_GLYPHS[1]
    half = f"{vmax / 2:.2g}"
    return [
        f"{PRUNED_GLYPH} pruned (0) · {neg}/{neg2} negative · {pos}/{pos2} positive"
        f" ({neg2}/{pos2}: |w| > {half})",
        f"{PRUNED_GLYPH} pruned · {neg}/{neg2} neg · {pos}/{pos2} pos ({neg2}/{pos2}: |w|>{half})",
    ]


def draw_weights(
    plt: Any, page: Any, size: tuple[int, int] | None = None, color: bool = True
) -> None:
    """Each filter's individual weights (its input-channel kernels in a grid), on a diverging
    scale: negative blue, positive red, brighter = larger |w|; a pruned weight (exactly 0) is a
    grey `·`, so the mask shows. Without colour the glyph is the sign (`SIGN_GLYPHS`), and the
    title says so."""
    head = f"{short(page.layer)}: filters {page.offset + 1}-{page.offset + len(page.tiles)}"
    titles = [f"{head}/{page.total} · {legend}" for legend in weights_legend(page.vmax, color)]
    if not color:  # the legend matters more than the filter count
        titles += [f"{short(page.layer)}: {legend}" for legend in weights_legend(page.vmax, color)]
    width, canvas_h = text_canvas(plt, titles, size)
    xs, ys, markers, colors = [], [], [], []
    th, tw = page.tile
    cols = max(1, width // (tw * page.cell + 1))
    for i, (label, m) in enumerate(page.tiles):
        x0, y0 = (i % cols) * (tw * page.cell + 1), (i // cols) * (th + 1)
        plt.text(label[: tw * page.cell], x0, canvas_h - 1 - y0, alignment="left")
        for r, row in enumerate(m):
            for c, v in enumerate(row):
                if v is None:
                    continue
                mark, rgb = _weight_glyph(v / page.vmax if page.vmax else 0.0, color)
                for k in range(page.cell):
                    xs.append(x0 + c * page.cell + k)
                    ys.append(canvas_h - 2 - y0 - r)
                    markers.append(mark)
                    colors.append(rgb)
    if not xs:
        return
    if color:
        plt.canvas_color("black")
        plt.scatter(xs, ys, marker=markers, color=colors)
    else:
        plt.scatter(xs, ys, marker=markers)


def _weight_glyph(v: float, color: bool) -> tuple[str, tuple[int, int, int]]:
    """(marker, colour) of one weight scaled to [-1, 1]."""
    if v == 0:
        return PRUNED_GLYPH, (110, 110, 110)
    a = min(1.0, abs(v))
    if not color:
        return SIGN_GLYPHS[1 if v > 0 else -1][a > 0.5], (0, 0, 0)
    g = int(60 + 195 * a)
    return "█", ((g, 40, 40) if v > 0 else (40, 70, g))
