"""plotext drawings of the `ecs_core.stats` dataclasses, for `ecs show` and the TUI alike.

Every function takes a plotext-like `plt`: the `plotext` module itself, or `PlotextPlot.plt` from
textual-plotext (a figure object with the same methods). Each starts by clearing the figure, so
views can follow each other on one widget. The data arrive pre-binned and downsampled from
`ecs_core.stats`; plotext's build runs on the UI thread and is slow on raw data.

Maps (kernels, activations, a filter's weights) are in `plots_maps`.

Example (TUI widget)::

    draw_sparsity(widget.plt, view.sparsity(), size=tuple(widget.size))
    widget.refresh()
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ecs_core.events import WARMUP

if TYPE_CHECKING:  # only for annotations: importing plots must not import torch
    from ecs_core.stats import Clusters, Curves, Histogram, LayerMoves, Sparsity, Turnover

RAMP = " .,:;ox*%@"
"""Dark to bright, one character per tenth of the value range. No `-`, `=`, `+` or `#`: beside
the Kernels tab's weights those are signs (`plots_maps.SIGN_GLYPHS`), never a brightness."""
DEFAULT_SIZE = (80, 24)
Matrix = list[list[float]]


def reset(plt: Any) -> None:
    """Back to one empty plot on the master figure (after subplots, too)."""
    plt.main()
    plt.clear_figure()


def short(name: str) -> str:
    return name[: -len(".weight")] if name.endswith(".weight") else name


def fit(text: str | list[str], width: int | None) -> str:
    """plotext drops a title wider than its plot, so shorten it instead. Given several
    wordings, longest first, the first that fits whole (else the last, cut)."""
    texts = [text] if isinstance(text, str) else text
    for t in texts:
        if width is None or len(t) <= width - 2:
            return t
    return texts[-1][: max(1, width - 3)] + "…"


# --- bars and lines


def text_canvas(plt: Any, title: str | list[str], size: tuple[int, int] | None) -> tuple[int, int]:
    """An axis-free plot whose coordinates are character cells: x in [0, w), y in [0, h).

    Used where plotext's own layout would round (bars thinner than a row vanish or borrow a
    neighbour's label). Returns (w, h); y = h - 1 is the top row under the title (several
    wordings of it, longest first: see `fit`).
    """
    reset(plt)
    width, height = size or DEFAULT_SIZE
    plt.title(fit(title, width))
    plt.frame(False)
    plt.xticks([])
    plt.yticks([])
    canvas_h = max(1, height - 1)
    plt.xlim(-0.5, width - 0.5)
    plt.ylim(-0.5, canvas_h - 0.5)
    return width, canvas_h


_ABBREV = (("features.", "f"), ("classifier.", "fc"), ("layer", "L"), ("shortcut.", "s"),
           ("conv", "c"))  # fmt: skip


def abbreviate(name: str) -> str:
    """features.40 -> f40, layer4.2.shortcut.0 -> L4.2.s0: for narrow columns."""
    for long, brief in _ABBREV:
        name = name.replace(long, brief)
    return name


NEAR_COLLAPSE = 0.001
"""A layer keeping less than this share of its weights (but some) is flagged `!`: 1 of 36,864
left is nearly a cut in the network, not a small layer."""


def near_collapse(kept: int, density: float) -> bool:
    return 0 < kept and density < NEAR_COLLAPSE


def density_text(kept: int, density: float) -> str:
    """`12.50%`, or `! 3 kept` for a layer near collapse (its percentage would read 0.0%)."""
    return f"! {kept:,} kept" if near_collapse(kept, density) else f"{100 * density:.2f}%"


def draw_sparsity(plt: Any, data: Sparsity, size: tuple[int, int] | None = None) -> None:
    """Kept % per layer, one row each in model order, in as many columns as the height needs.
    A layer near collapse gets a thin bar and `!` with its count instead of a percentage."""
    target = f" (target {100 * data.target_density:.2f}%)" if data.target_density else ""
    title = f"kept {data.kept:,}/{data.params:,} = {100 * data.density:.2f}%{target}"
    if any(near_collapse(r.kept, r.density) for r in data.layers):
        title += f" · ! = under {NEAR_COLLAPSE:.1%} kept"
    width, rows = text_canvas(plt, title, size)
    n = len(data.layers)
    ncols = max(1, -(-n // rows))
    col_w = width // ncols
    names = [short(r.name) for r in data.layers]
    if max(map(len, names), default=0) > col_w // 2:
        names = [abbreviate(x) for x in names]
    label_w = min(max(map(len, names), default=1), max(1, col_w // 2))
    bar_w = max(1, col_w - label_w - 9)
    xs, ys, marks = [], [], []
    for i, r in enumerate(data.layers):
        col, row = divmod(i, rows)
        x0, y = col * col_w, rows - 1 - row
        plt.text(names[i][:label_w].rjust(label_w), x0, y, alignment="left")
        filled = max(1 if r.kept else 0, round(r.density * bar_w))
        thin = near_collapse(r.kept, r.density)
        for c in range(bar_w):
            xs.append(x0 + label_w + 1 + c)
            ys.append(y)
            marks.append(("▏" if thin else "█") if c < filled else "·")
        text = f"! {r.kept}" if thin else f"{100 * r.density:5.1f}%"
        plt.text(text, x0 + label_w + 2 + bar_w, y, alignment="left")
    if xs:
        plt.scatter(xs, ys, marker=marks)


def draw_curves(plt: Any, curves: Curves, metric: str = "all", log: bool = False) -> None:
    """metric: all (loss and accuracy side by side) | loss | acc | lr | density; `log`: the
    loss on a log scale (one spike no longer flattens the rest)."""
    reset(plt)
    if not curves.epoch:
        plt.title("no finished epochs yet")
        return
    if metric == "all":
        plt.subplots(1, 2)
        _curve(plt.subplot(1, 1), curves, "loss", log)
        _curve(plt.subplot(1, 2), curves, "acc")
        plt.main()
    else:
        _curve(plt, curves, metric, log)


_SERIES = {
    "loss": (("train_loss", "train"), ("test_loss", "test")),
    "acc": (("train_acc", "train"), ("test_acc", "test")),
    "lr": (("lr", "lr"),),
    "density": (("density", "density"),),
}
MARKERS = {"train": "braille", "test": "•"}
"""Train and test differ by glyph as well as colour: NO_COLOR and pasted plots keep them apart."""
_TITLES = {"loss": "loss", "acc": "accuracy %", "lr": "learning rate", "density": "density"}


def _last_warmup(curves: Curves) -> int | None:
    """The last warm-up epoch, when training went on after it (pruning came between)."""
    warm = [e for e, s in zip(curves.epoch, curves.stage, strict=True) if s == WARMUP]
    return max(warm) if warm and len(warm) < len(curves.epoch) else None


def _curve(fig: Any, curves: Curves, metric: str, log: bool = False) -> None:
    if metric not in _SERIES:
        raise ValueError(f"metric must be one of all, {', '.join(_SERIES)}; got {metric!r}")
    lo, hi, at = math.inf, -math.inf, None
    drawn: list[tuple[float, float]] = []
    for field, label in _SERIES[metric]:
        pts = [
            (x, y)
            for x, y in zip(curves.epoch, getattr(curves, field), strict=True)
            if y is not None
        ]
        if pts:
            marker = MARKERS.get(label, "braille")
            fig.plot([p[0] for p in pts], [p[1] for p in pts], label=label, marker=marker)
            lo, hi = min(lo, *(p[1] for p in pts)), max(hi, *(p[1] for p in pts))
            at = next((y for x, y in pts if x == _last_warmup(curves)), None)
            drawn += pts
    use_log = log and metric == "loss" and lo > 0
    top = legend_headroom(drawn, lo, hi, use_log) if len(_SERIES[metric]) > 1 else None
    if top is not None:
        fig.ylim(lo, top)
    warm = _last_warmup(curves)
    if warm is not None:
        fig.vertical_line(warm + 0.5)  # where pruning happened, labelled away from the line
        if hi > lo:
            # away from the curve there, and below the legend (top left)
            y = lo if at is None or at > (lo + hi) / 2 else hi - 0.3 * (hi - lo)
            fig.text("pruned", warm + 0.6, y, alignment="left")
    if use_log:
        fig.yscale("log")
    fig.title(_TITLES[metric] + (" (log)" if use_log else ""))
    fig.xlabel("epoch")


LEGEND_BOX = (0.3, 0.25)
"""The part of a chart plotext's legend covers (top left): fractions of the x and y ranges."""


def legend_headroom(
    pts: list[tuple[float, float]], lo: float, hi: float, log: bool
) -> float | None:
    """A higher top for the y axis when the curve passes under the legend (a falling loss
    starts top left, where plotext writes it), so the legend sits above the data; else None."""
    if len(pts) < 2 or not hi > lo:
        return None
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    f = (lambda v: math.log(v)) if log else (lambda v: v)
    ylo, yhi = f(lo), f(hi)
    wx, wy = LEGEND_BOX
    under = any(x <= x0 + wx * (x1 - x0) and f(y) >= yhi - wy * (yhi - ylo) for x, y in pts)
    if not under:
        return None
    top = yhi + (yhi - ylo) * wy / (1 - wy)  # the legend's rows above the highest point
    return math.exp(top) if log else top


def turnover_title(data: Turnover) -> str:
    """One line: how many updates, how many connections they moved, and the mask's size."""
    return (f"{len(data.step)} mask updates moved {data.total:,} connections "
            f"(mask {data.kept:,} weights)")  # fmt: skip


def moves_parts(rows: list[LayerMoves], n: int) -> list[str]:
    """`features.10 1,234 (52% of its kept)` for each of the `n` layers that moved most (the
    Sparsity view's line, `ecs show RUN turnover`)."""
    parts = []
    for r in rows[:n]:
        share = f" ({r.share:.0%} of its kept)" if r.share is not None else ""
        parts.append(f"{short(r.name)} {r.moved:,}{share}")
    return parts


def draw_turnover(plt: Any, data: Turnover, size: tuple[int, int] | None = None) -> None:
    """SET, RigL: connections moved at each mask update, as bars against the optimizer step."""
    reset(plt)
    plt.title(fit(turnover_title(data), (size or DEFAULT_SIZE)[0]))
    plt.bar(data.step, data.moved, width=0.6, marker="sd")
    plt.xlabel("optimizer step")
    plt.ylabel("moved")


def draw_histogram(
    plt: Any, data: Clusters | list[Histogram], size: tuple[int, int] | None = None
) -> None:
    """Weight-value histograms side by side on a shared value axis (before | after sharing)."""
    reset(plt)
    is_pair = not isinstance(data, list)  # a Clusters (duck-typed: no torch import here)
    hists = [h for h in ([data.before, data.after] if is_pair else data) if h]
    lo = min((h.values[0] for h in hists if h.values), default=-1.0)
    hi = max((h.values[-1] for h in hists if h.values), default=1.0)
    note = data.note if is_pair else None
    width = size[0] // max(1, len(hists)) if size else None
    if len(hists) == 1:
        _histogram(plt, hists[0], lo, hi, width, note)
        return
    plt.subplots(1, len(hists))
    for i, h in enumerate(hists):
        _histogram(plt.subplot(1, i + 1), h, lo, hi, width, None)
    plt.main()


def _histogram(
    fig: Any, h: Histogram, lo: float, hi: float, width: int | None, note: str | None
) -> None:
    kind = f"{h.unique:,} values" if h.exact else f"{len(h.values)} bins"
    zeros = f"{h.zeros / max(1, h.total):.0%} zero"
    fig.title(fit([f"{h.label}: {kind}, {zeros}", f"{h.label}: {kind}", h.label],
                  width and width - 4))  # fmt: skip
    if not h.values:
        return
    if h.exact:  # the original's value/frequency scatter, with stems to the axis
        fig.bar(h.values, h.counts, width=0.0, reset_ticks=False, marker="│")
        fig.scatter(h.values, h.counts, marker="●")
    else:
        fig.bar(h.values, h.counts, width=1.0, reset_ticks=False)
    pad = (hi - lo) * 0.03 or 1e-6
    fig.xlim(lo - pad, hi + pad)
    value = f"{short(h.layer)} value"
    labels = [f"{value} ({note})"] if note else []
    fig.xlabel(fit([*labels, value, "value"], width and width - 16))  # the layer is named above
    fig.ylabel("count")
