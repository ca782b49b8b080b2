"""matplotlib figures of the `ecs_core.stats` views, for papers and notebooks.

The same dataclasses that `ecs show` draws in the terminal become a `matplotlib.figure.Figure`
here. Figures are made with `Figure()` directly (not pyplot): no display, no global state, and
saving goes through the Agg (PNG), SVG or PDF canvas. matplotlib is imported inside the
functions, so importing this module (or `ecs_core`) never imports it. Example::

    from ecs_core.stats import load_run
    fig = load_run("runs/...").figure("kernels")   # a matplotlib Figure
    fig.savefig("kernels.pdf")
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecs_core.config import INSTALL_EXTRA as INSTALL_HINT
from ecs_core.events import WARMUP
from ecs_core.stats.weights import StatsError
from ecs_core.views import shown_names, shown_view

if TYPE_CHECKING:
    from ecs_core.stats import Activations, Clusters, CompareTable, Curves, KernelMaps, Sparsity
    from ecs_core.stats.summary import Turnover

FORMATS = ("png", "svg", "pdf")
DPI = 100
"""Pixels per inch of a saved PNG: a figure of 8 x 5 inches is 800 x 500 pixels."""
SIZE = (8.0, 5.0)


class FigureError(StatsError):
    """A figure cannot be made or saved; the message says what to do."""


def new_figure(size: tuple[float, float] = SIZE) -> Any:
    """An empty Figure of `size` inches; FigureError naming the install line without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise FigureError(f"figures need matplotlib: {INSTALL_HINT}") from None
    return Figure(figsize=size, dpi=DPI, layout="constrained")


def check_path(path: str | Path) -> Path:
    """A file name ending in .png, .svg or .pdf, else FigureError."""
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in FORMATS:
        raise FigureError(f"{path}: the file name must end in .png, .svg or .pdf")
    return path


def save(fig: Any, path: str | Path) -> Path:
    """Write `fig` to `path` (.png at DPI, .svg, .pdf); FigureError if it cannot be written."""
    path = check_path(path)
    try:
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise FigureError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _short(name: str) -> str:
    return name.removesuffix(".weight")


# --- one figure per `ecs show` view


def sparsity_figure(data: Sparsity) -> Any:
    """Kept % per layer, one horizontal bar each in model order; the target as a line."""
    n = len(data.layers)
    fig = new_figure((8.0, max(3.0, 0.22 * n + 1.2)))
    ax = fig.add_subplot()
    ys = list(range(n))
    ax.barh(ys, [100 * r.density for r in data.layers], color="tab:blue")
    ax.set_yticks(ys, [_short(r.name) for r in data.layers], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    if data.target_density:
        ax.axvline(100 * data.target_density, color="tab:red", ls="--", label="target")
        ax.legend(loc="lower right")
    ax.set_xlabel("weights kept %")
    ax.set_title(f"kept {data.kept:,}/{data.params:,} = {100 * data.density:.2f}%")
    return fig


_SERIES = {
    "loss": (("train_loss", "train"), ("test_loss", "test")),
    "acc": (("train_acc", "train"), ("test_acc", "test")),
    "lr": (("lr", "lr"),),
    "density": (("density", "density"),),
}
_TITLES = {"loss": "loss", "acc": "accuracy %", "lr": "learning rate", "density": "density"}


def curves_figure(curves: Curves, metric: str = "all") -> Any:
    """metric: all (loss and accuracy side by side) | loss | acc | lr | density."""
    if metric != "all" and metric not in _SERIES:
        raise FigureError(f"metric must be one of all, {', '.join(_SERIES)}; got {metric!r}")
    metrics = ["loss", "acc"] if metric == "all" else [metric]
    fig = new_figure((8.0 if len(metrics) == 2 else 6.0, 4.0))
    warm = [e for e, s in zip(curves.epoch, curves.stage, strict=True) if s == WARMUP]
    for i, m in enumerate(metrics, start=1):
        ax = fig.add_subplot(1, len(metrics), i)
        for field, label in _SERIES[m]:
            pts = [(x, y) for x, y in zip(curves.epoch, getattr(curves, field), strict=True)
                   if y is not None]  # fmt: skip
            if pts:
                ax.plot(*zip(*pts, strict=True), marker=".", label=label)
        if warm and len(warm) < len(curves.epoch):
            ax.axvline(max(warm) + 0.5, color="grey", ls=":", label="pruned")
        ax.set_title(_TITLES[m])
        ax.set_xlabel("epoch")
        if ax.get_lines():
            ax.legend()
    return fig


def clusters_figure(data: Clusters) -> Any:
    """Weight-value histograms of one layer before and after weight sharing, shared value axis."""
    hists = [h for h in (data.before, data.after) if h is not None]
    fig = new_figure((8.0, 4.0))
    axes = fig.subplots(1, len(hists), sharex=True, squeeze=False)[0]
    for ax, h in zip(axes, hists, strict=True):
        if h.exact:  # few distinct values (shared weights): stems at the exact values
            ax.vlines(h.values, 0, h.counts, color="tab:orange")
            ax.plot(h.values, h.counts, "o", color="tab:orange", ms=3)
        elif h.values:
            ax.stairs(h.counts, h.edges, fill=True, color="tab:blue")
        kind = f"{h.unique:,} values" if h.exact else f"{len(h.values)} bins"
        ax.set_title(f"{h.label}: {kind}, {h.zeros / max(1, h.total):.0%} zero", fontsize=9)
        ax.set_xlabel(f"{_short(h.layer)} value" + (f" ({data.note})" if data.note else ""))
        ax.set_ylabel("count")
    return fig


def mosaic_figure(
    tiles: list[tuple[str, list[list[float]]]],
    title: str,
    cmap: str = "gray",
    limits: tuple[float, float] = (0.0, 1.0),
    bar: str | None = None,
    marks: list[list[list[bool]]] | None = None,
) -> Any:
    """Labelled maps in a near-square grid (kernels and activations), coloured by `cmap` over
    `limits`; `bar`: a colour bar with that label; `marks`: per tile, the cells to cross out."""
    n = max(1, len(tiles))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = new_figure((8.0, max(2.5, 8.0 * rows / cols + 0.6)))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    image = None
    for i, (ax, (label, m)) in enumerate(zip(axes, tiles, strict=False)):
        image = ax.imshow(m, cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
        ax.set_title(label, fontsize=7)
        crossed = [(c, r) for r, row in enumerate(marks[i] if marks else []) for c, v in
                   enumerate(row) if v]  # fmt: skip
        if crossed:
            cell = 0.3 * 72 * 8.0 / (cols * max(len(m[0]), len(m)))  # points, about
            ax.scatter(*zip(*crossed, strict=True), marker="x", color="0.2", label=PRUNED,
                       s=cell**2, linewidths=max(0.5, cell / 8))  # fmt: skip
    if bar is not None and image is not None:
        fig.colorbar(image, ax=axes.tolist(), label=bar, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


PRUNED = "pruned"
"""The label of the crosses over pruned cells (`kernels_figure`)."""


def kernels_figure(maps: KernelMaps) -> Any:
    """A page of filter maps in weight units on a diverging scale centred on 0 (blue negative,
    red positive, as the app's weights), a colour bar, and × over each pruned cell."""
    tiles = [(f"#{i + 1}", m) for i, m in zip(maps.filters, maps.raw, strict=True)]
    last = maps.filters[-1] + 1 if maps.filters else 0
    title = (f"{_short(maps.layer)}: filters {maps.offset + 1}-{last}/{maps.total}, "
             f"{maps.reduction}")  # fmt: skip
    if any(v for m in maps.pruned for row in m for v in row):
        title += "; × pruned (every weight under it is 0)"
    top = max(abs(maps.vmin), abs(maps.vmax)) or 1.0
    bar = "weight" if maps.reduction.startswith("1x1") else "mean weight over input channels"
    return mosaic_figure(tiles, title, "RdBu_r", (-top, top), bar, maps.pruned)


def activations_figure(acts: Activations) -> Any:
    known = f"label {acts.label}, " if acts.label >= 0 else ""  # -1: an image of no dataset
    head = f"image #{acts.image} ({known}predicted {acts.predicted})"
    if acts.layer is None:
        tiles = [("input", acts.input)] + [(m.name, m.map) for m in acts.maps]
        return mosaic_figure(tiles, f"{head}: mean activation per stage")
    tiles = [(f"#{acts.offset + i + 1}", m.map) for i, m in enumerate(acts.maps)]
    last = acts.offset + len(acts.maps)
    return mosaic_figure(tiles, f"{head}: {acts.layer} channels {acts.offset + 1}-{last}/"
                                f"{acts.total}")  # fmt: skip


def turnover_figure(data: Turnover) -> Any:
    """SET, RigL: connections moved at each mask update against the optimizer step, with the
    update's drop fraction of the kept weights on a second axis."""
    fig = new_figure((8.0, 4.0))
    ax = fig.add_subplot()
    ax.bar(data.step, data.moved, width=_bar_width(data.step), color="tab:blue", label="moved")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("connections moved")
    drop = ax.twinx()
    drop.plot(data.step, data.drop, color="tab:orange", marker=".", label="drop fraction")
    drop.set_ylabel("drop fraction", color="tab:orange")
    drop.set_ylim(bottom=0)
    ax.set_title(f"mask turnover: {len(data.step)} updates, {data.total:,} moved "
                 f"(mask {data.kept:,} weights)")  # fmt: skip
    return fig


def _bar_width(steps: list[int]) -> float:
    """Bars 0.8 of the gap between updates (one update: 1 step)."""
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    return 0.8 * min(gaps) if gaps else 1.0


def view_figure(view: str, data: Any, metric: str = "all") -> Any:
    """The figure of one `ecs show` view's data (its `views.View.figure`)."""
    spec = shown_view(view)
    if spec is None:
        raise FigureError(f"unknown view {view!r}; choose one of: {shown_names()}")
    if spec.name == "curves":
        return curves_figure(data, metric)
    return globals()[spec.figure](data)


# --- ecs compare --plot


COMPARE_X = {
    "density": "target density (log scale)",
    "fp32": "measured fp32 speed-up ×dense (batch 64, 1 thread)",
    "int8": "measured int8 speed-up ×dense fp32 (batch 64, 1 thread)",
}
"""`ecs compare --plot-x`: what accuracy is drawn against, and the axis' label; a speed is the
cells' mean `<x>_speedup` (the runs' summary.json `latency`)."""


def check_x(x: str) -> None:
    """A `StatsError` unless `x` is one of `COMPARE_X`."""
    if x not in COMPARE_X:
        raise StatsError(f"--plot-x {x!r}: choose one of {', '.join(COMPARE_X)}")


def _x_of(cell: Any, x: str) -> float | None:
    """A cell's position on the `x` axis (None: its runs did not measure that speed)."""
    return cell.target_density * 100 if x == "density" else getattr(cell, f"{x}_speedup")


def compare_figure(table: CompareTable, baseline: str | None = None,
                   threshold: float | None = None, x: str = "density") -> Any:  # fmt: skip
    """Accuracy against target density, one panel per dataset, one line per model x method;
    and where the table has ablated runs (`--ablate`), a panel of bars beside it: each ablated
    method at each density it was checked at, the method itself next to its ablations.

    Log density axis; error bars = std over seeds; dense runs as a horizontal band (mean ± std);
    P+Q rows dashed in their P row's colour; where the achieved density differs from the
    target, the point is labelled with it. With `baseline` (a row label), a point whose
    difference to it is beyond `threshold` standard errors (`CompareTable.difference`) is
    ringed in black. `x` (`COMPARE_X`): density, or a measured speed-up (fp32 | int8, linear
    axis; cells without one are left out, and a table with none is a `StatsError`).
    """
    check_x(x)
    if x != "density" and all(_x_of(c, x) is None for c in table.cells):
        raise StatsError(f"--plot-x {x}: no run here measured its {x} latency (summary.json "
                         "latency); run without --no-latency, or plot against density")  # fmt: skip
    sets = table.datasets
    ablated = {d: any(c.ablate != "none" for c in table.cells if c.dataset == d) for d in sets}
    panels = [(d, "curves") for d in sets] + [(d, "ablations") for d in sets if ablated[d]]
    widths = [7.5 if kind == "curves" else 5.5 for _, kind in panels]
    fig = new_figure((sum(widths), 5.0))
    axes = fig.subplots(1, len(panels), squeeze=False, width_ratios=widths)[0]
    for ax, (dataset, kind) in zip(axes, panels, strict=True):
        if kind == "curves":
            _compare_panel(ax, table, dataset, baseline, threshold, x)
        else:
            _ablation_panel(ax, table, dataset)
    return fig


def _series(table: CompareTable, dataset: str, model: str, method: str) -> list[Any]:
    cells = (c for c in table.cells if (c.dataset, c.model, c.method) == (dataset, model, method))
    return sorted(cells, key=lambda c: c.target_density)


def _compare_panel(ax: Any, table: CompareTable, dataset: str, baseline: str | None = None,
                   threshold: float | None = None, x: str = "density") -> None:  # fmt: skip
    rows = [(m, r) for m, r in table.rows(dataset)
            if all(c.ablate == "none" for c in _series(table, dataset, m, r))]  # fmt: skip
    if x != "density":  # the cells that measured the speed, rows with at least one
        rows = [(m, r) for m, r in rows
                if any(_x_of(c, x) is not None for c in _series(table, dataset, m, r))]  # fmt: skip
    several_models = len({m for m, _ in rows}) > 1
    palette = _palette()
    colours: dict[str, Any] = {}
    for model, method in rows:
        cells = _series(table, dataset, model, method)
        label = f"{model} {method}" if several_models else method
        if all(c.target_density >= 1 for c in cells):  # dense: a band across the panel
            c = cells[-1]
            line = ax.axhline(c.mean, ls="--", color="grey", label=f"{label} (100%)")
            if c.std:
                ax.axhspan(c.mean - c.std, c.mean + c.std, color=line.get_color(), alpha=0.2)
            continue
        pq = bool(cells[0].partner)
        key = f"{model} {cells[0].partner or method}"
        colour = colours.setdefault(key, next(palette))
        if x != "density":
            cells = sorted((c for c in cells if _x_of(c, x) is not None), key=lambda c: _x_of(c, x))
        xs = [_x_of(c, x) for c in cells]
        bars = ax.errorbar(xs, [c.mean for c in cells], yerr=[c.std or 0.0 for c in cells],
                           marker="s" if pq else "o", ls="--" if pq else "-", capsize=3,
                           color=colour, label=label, markersize=4)  # fmt: skip
        for c, at in zip(cells, xs, strict=True):
            if c.achieved_differs and c.target_density < 1 and not pq:
                ax.annotate(
                    f"d {c.achieved:.2%}",
                    (at, c.mean),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize=6,
                    color=bars.lines[0].get_color(),
                )
    if baseline is not None:
        _mark_beyond(ax, table, [c for m, r in rows for c in _series(table, dataset, m, r)
                                 if _x_of(c, x) is not None], baseline, threshold, x)  # fmt: skip
    if x == "density":
        ax.set_xscale("log")
        ticks = sorted({c.target_density * 100 for c in table.cells
                        if c.dataset == dataset and c.target_density < 1})  # fmt: skip
        ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel(COMPARE_X[x])
    ax.set_ylabel("test accuracy %")
    models = sorted({m for m, _ in rows})
    ax.set_title(f"{dataset}: {models[0]}" if len(models) == 1 else dataset)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncols=2 if len(rows) > 6 else 1)


def _mark_beyond(ax: Any, table: CompareTable, cells: list[Any], baseline: str,
                 threshold: float | None, x: str = "density") -> None:  # fmt: skip
    """Ring the points whose difference to `baseline` is beyond `threshold` SEs (one legend
    entry, only where some are)."""
    from ecs_core.stats.significance import THRESHOLD

    k = THRESHOLD if threshold is None else threshold
    beyond = []
    for c in cells:
        d = table.difference(c, baseline)
        if d is not None and d.beyond(k) and c.target_density < 1:
            beyond.append(c)
    if beyond:
        ax.scatter([_x_of(c, x) for c in beyond], [c.mean for c in beyond], s=90,
                   facecolors="none", edgecolors="black", linewidths=1.0, zorder=5,
                   label=f"beyond {k:g} SE vs {baseline}")  # fmt: skip


def _palette() -> Any:
    """Colours for many lines, the strong ones first (matplotlib's tab10, then tab20's light
    ones), without the greys: grey is the dense band's."""
    import itertools

    from matplotlib import colormaps

    strong = [colormaps["tab10"](i) for i in range(10) if i != 7]
    light = [colormaps["tab20"](i) for i in range(1, 20, 2) if i != 15]
    return itertools.cycle(strong + light)


def _ablation_panel(ax: Any, table: CompareTable, dataset: str) -> None:
    """Bars: for each (model, method, density) with ablated runs, the method and its ablations."""
    from ecs_core.stats.compare import method_rank

    ablated = [c for c in table.cells if c.dataset == dataset and c.ablate != "none"]
    groups = sorted({(c.model, c.base, c.target_density) for c in ablated},
                    key=lambda g: (g[0], method_rank(g[1]), -g[2]))  # fmt: skip
    kinds = ["none"] + sorted({c.ablate for c in ablated})
    several_models = len({g[0] for g in groups}) > 1
    width = 0.8 / len(kinds)
    palette = _palette()
    colours = {k: next(palette) for k in kinds}
    for k, kind in enumerate(kinds):
        xs, ys, errs = [], [], []
        for i, (model, base, density) in enumerate(groups):
            cell = _ablation_cell(table, dataset, model, base, density, kind)
            if cell is not None:
                xs.append(i + (k - (len(kinds) - 1) / 2) * width)
                ys.append(cell.mean)
                errs.append(cell.std or 0.0)
        name = "the method's own mask" if kind == "none" else kind
        ax.bar(xs, ys, width, yerr=errs, capsize=2, color=colours[kind], label=name)
    ticks = [f"{model + chr(10) if several_models else ''}{base}\n{density * 100:g}%"
             for model, base, density in groups]  # fmt: skip
    ax.set_xticks(range(len(groups)), ticks, fontsize=7)
    ax.set_ylabel("test accuracy %")
    ax.set_title(f"{dataset}: sanity checks (Frankle et al. 2021)")
    lows = [c.mean - (c.std or 0.0) for c in table.cells if c.dataset == dataset]
    ax.set_ylim(max(0.0, min(lows) - 5), None)
    ax.grid(True, axis="y", alpha=0.3)
    # below the axes: bars of every height fill the inside
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=len(kinds))


def _ablation_cell(table: CompareTable, dataset: str, model: str, base: str, density: float,
                   kind: str) -> Any:  # fmt: skip
    for c in table.cells:
        if (c.dataset, c.model, c.base, c.target_density, c.ablate) == (
            dataset, model, base, density, kind):  # fmt: skip
            return c
    return None


# --- a run's view, as `RunView.figure` and `ecs show --save` make it

PAGE = 64
"""Kernel or channel maps on one page of a saved figure."""


def run_figure(run: Any, view: str, layer: str | None = None, image: int = 0, page: int = 1,
               metric: str = "all", data_dir: str | Path | None = None) -> Any:  # fmt: skip
    """The Figure of one view of a `RunView` (StatsError for what the run lacks)."""
    offset = page_offset(page)
    spec = shown_view(view)
    name = spec.name if spec is not None else None
    if name == "sparsity":
        data = run.sparsity()
    elif name == "curves":
        data = run.curves(max_points=1000)
    elif name == "quant":
        data = run.clusters(layer)
    elif name == "kernels":
        data = run.kernels(layer, offset, PAGE)
        check_page(page, data.total, "filters")
    elif name == "turnover":
        data = run.turnover()
    elif name == "activations":
        data = run.activations(image, layer, 0 if layer is None else offset, PAGE, data_dir)
        if layer is not None:
            check_page(page, data.total, "channels")
    else:
        raise StatsError(f"unknown view {view!r}; choose one of: {shown_names()}")
    return view_figure(view, data, metric)


def page_offset(page: int) -> int:
    """The first map of 1-based `page` (StatsError below 1)."""
    if page < 1:
        raise StatsError(f"--page must be 1 or more, got {page}")
    return (page - 1) * PAGE


def check_page(page: int, total: int, what: str) -> None:
    """StatsError when `page` is past the last page of `total` maps."""
    pages = -(-total // PAGE)
    if page > pages:
        raise StatsError(f"--page {page} is past the end: {total} {what}, {pages} page(s) of "
                         f"{PAGE} in a saved figure")  # fmt: skip
