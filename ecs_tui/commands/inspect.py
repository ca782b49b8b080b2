"""`ecs show`, `ecs report`, `ecs compare`: look at run directories, headless.

The numbers come from `ecs_core.stats`; this module only lays them out (plotext, Rich, CSV,
Markdown). Engine and plotting imports happen inside the commands, so `ecs --help` stays fast.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_core.views import SHOWN, shown_names, shown_view
from ecs_tui.commands.exits import fail

Arg, Opt = typer.Argument, typer.Option
COLUMNS = (20, 1000)
LINES = (8, 500)
"""`ecs show` canvas bounds: a plot is built in memory cell by cell (10**7 columns: 22 GB)."""
TURNOVER_LAYERS = 5
"""`ecs show RUN turnover` lists this many layers under the bars (--json: every one)."""


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and infinities become null (json.dumps would write invalid NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(_clean(obj)))


# --- ecs show


def show_command(
    run: Annotated[Path, Arg(help="A run directory.", show_default=False)],
    view: Annotated[str, Arg(help=" | ".join(v.name for v in SHOWN) + " (clusters: quant).")],
    layer: Annotated[
        str | None, Opt(help="Layer name (features.3) or 1-based number.", show_default=False)
    ] = None,
    image: Annotated[int, Opt(help="Activations: index of the test image.")] = 0,
    page: Annotated[int, Opt(help="Kernels/activations of a layer: page of maps, from 1.")] = 1,
    metric: Annotated[str, Opt(help="Curves: all | loss | acc | lr | density.")] = "all",
    data_dir: Annotated[
        str | None, Opt(help="Activations: dataset folder if not the run's.", show_default=False)
    ] = None,
    width: Annotated[
        int | None, Opt(help="Columns, 20..1000 (default: terminal).", show_default=False)
    ] = None,
    height: Annotated[
        int | None, Opt(help="Lines, 8..500 (default: terminal).", show_default=False)
    ] = None,
    color: Annotated[
        bool | None, Opt("--color/--no-color", help="Default: on a TTY unless NO_COLOR is set.")
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the view's numbers as JSON.")] = False,
    save: Annotated[
        Path | None,
        Opt(
            help="Write the view as a figure: FILE.png, .svg or .pdf (matplotlib).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Draw one view of a run in the terminal (plotext), print its numbers with --json, or
    save it as a matplotlib figure with --save."""
    from ecs_core.stats import StatsError, load_run

    spec = shown_view(view)
    if spec is None:
        raise fail(f"unknown view {view!r}; choose one of: {shown_names()}")
    if save is not None:
        _save_view(run, view, save, layer=layer, image=image, page=page, metric=metric,
                   data_dir=data_dir)  # fmt: skip
        return
    size = _canvas_size(width, height)
    try:
        run_view = load_run(run)
        data = _view_data(run_view, spec.name, layer, image, page, size, data_dir)
    except StatsError as exc:
        raise fail(str(exc)) from None
    if spec.name == "curves" and run_view.events_note:
        typer.echo(f"note: {run_view.events_note}", err=True)
    if as_json:
        _print_json({"view": view, **asdict(data)})
        return
    use_color = (
        color if color is not None else sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    typer.echo(render(spec.name, data, size, use_color, metric))


def _save_view(run: Path, view: str, path: Path, **options: Any) -> None:
    """`ecs show --save`: the view's matplotlib figure, written to `path`."""
    from ecs_core.figures import check_path, save
    from ecs_core.stats import StatsError, load_run

    try:
        check_path(path)
        fig = load_run(run).figure(view, **options)
        save(fig, path)
    except StatsError as exc:
        raise fail(str(exc)) from None
    w, h = (round(v * fig.dpi) for v in fig.get_size_inches())
    typer.echo(f"wrote {path} ({view}, {w}x{h} px at {fig.dpi:g} dpi)")


def _canvas_size(width: int | None, height: int | None) -> tuple[int, int]:
    """(columns, lines) to draw in: the options, checked, else the terminal's, clamped."""
    for opt, value, (lo, hi) in (("--width", width, COLUMNS), ("--height", height, LINES)):
        if value is not None and not lo <= value <= hi:
            raise fail(f"{opt} must be in {lo}..{hi}, got {value}")
    term = shutil.get_terminal_size((80, 24))
    cols = width or min(max(term.columns, COLUMNS[0]), COLUMNS[1])
    lines = height or min(max(term.lines, LINES[0]), LINES[1])
    return cols, max(LINES[0], lines - 1)


def _view_data(view_obj: Any, view: str, layer, image, page, size, data_dir) -> Any:
    from ecs_core.stats import StatsError
    from ecs_tui.plots_maps import capacity

    if page < 1:
        raise StatsError(f"--page must be 1 or more, got {page}")
    if view == "sparsity":
        return view_obj.sparsity()
    if view == "curves":
        return view_obj.curves(max_points=max(10, size[0] - 10))
    if view == "quant":
        return view_obj.clusters(layer, bins=max(10, min(60, size[0] // 2 - 12)))
    if view == "turnover":
        return view_obj.turnover()
    if view == "kernels":
        first = view_obj.kernels(layer, 0, 1)
        shape = (len(first.maps[0]), len(first.maps[0][0]))
        limit = capacity(shape, size, min_rows=shape[0])
        _check_page(page, limit, first.total, "filters")
        return view_obj.kernels(layer, (page - 1) * limit, limit)
    if layer is None:  # every layer on one page: there are only a dozen or two
        return view_obj.activations(image, None, 0, 1000, data_dir)
    first = view_obj.activations(image, layer, 0, 1, data_dir)
    shape = (first.maps[0].height, first.maps[0].width)
    limit = capacity(shape, size, min_rows=min(shape[0], 6))
    _check_page(page, limit, first.total, "channels")
    return view_obj.activations(image, layer, (page - 1) * limit, limit, data_dir)


def _check_page(page: int, limit: int, total: int, what: str) -> None:
    from ecs_core.stats import StatsError

    pages = -(-total // limit)
    if page > pages:
        raise StatsError(f"--page {page} is past the end: {total} {what}, {pages} page(s) here")


def render(view: str, data: Any, size: tuple[int, int], color: bool, metric: str = "all") -> str:
    """The view as text, `size` = (columns, lines), drawn with the global plotext figure."""
    import plotext

    from ecs_tui import plots, plots_maps

    if view == "sparsity":
        plots.draw_sparsity(plotext, data, size)
    elif view == "curves":
        try:
            plots.draw_curves(plotext, data, metric)
        except ValueError as exc:
            raise fail(str(exc)) from None
    elif view == "quant":
        plots.draw_histogram(plotext, data, size)
    elif view == "turnover":
        plots.draw_turnover(plotext, data, size)
    elif view == "kernels":
        plots_maps.draw_kernels(plotext, data, size, color)
    else:
        plots_maps.draw_activations(plotext, data, size, color)
    plotext.limit_size(False, False)
    plotext.plotsize(*size)
    out = plotext.build()
    if view == "turnover" and data.layers:
        out += "\nmoved most:\n  " + "\n  ".join(plots.moves_parts(data.layers, TURNOVER_LAYERS))
    return out if color else plotext.uncolorize(out)


# --- ecs report


def report_command(run: Annotated[Path, Arg(help="A run directory.", show_default=False)]) -> None:
    """Summary of one run: config, density per layer, quantization, sizes, accuracies."""
    from rich.console import Console

    from ecs_core.stats import StatsError, load_run

    try:
        view = load_run(run)
    except StatsError as exc:
        raise fail(str(exc)) from None
    try:
        sparsity = view.sparsity()
    except StatsError:  # a run that failed before pruning or its first epoch
        sparsity = None
    console = Console(highlight=False)
    try:
        parts = _report_parts(view, sparsity)
    except StatsError as exc:
        raise fail(str(exc)) from None
    for part in parts:
        console.print(part)
    if view.events_note:
        typer.echo(f"note: {view.events_note}", err=True)


def _report_parts(view: Any, sparsity: Any) -> list[Any]:
    from rich.table import Table

    from ecs_core.stats.summary import speed_lines

    c, s = view.config, view.summary
    head = Table.grid(padding=(0, 2))
    head.add_column()
    head.add_column(overflow="fold")
    head.add_row("run", str(view.path))
    head.add_row("status", view.status + (f" ({s['error']})" if s.get("error") else ""))
    for key in ("model", "width", "dataset", "method", "density", "scope", "structure",
                "budget", "epochs", "max_batches", "batch_size", "lr", "seed", "quantize",
                "bits"):  # fmt: skip
        head.add_row(key, _setting(key, c.get(key, "weight" if key == "structure" else "?")))
    from ecs_core.stats.summary import training_speed
    from ecs_tui.fmt import run_time

    timed = run_time(s.get("seconds"), training_speed(view.events))
    parts: list[Any] = [head, *([f"time {timed}"] if timed else []), *speed_lines(s)]
    parts += _onnx_lines(s.get("onnx"))
    if sparsity is not None:
        parts += _density_parts(view, sparsity)
    parts += _quant_parts(view)
    acc = Table(title="test accuracy at each stage", title_justify="left")
    acc.add_column("stage")
    acc.add_column("accuracy %", justify="right")
    for row in view.accuracies():
        acc.add_row(row.stage, f"{row.test_acc:.2f}")
    parts.append(acc if acc.row_count else "no test accuracy recorded yet")
    parts += _round_parts(s.get("imp_rounds"))
    return parts


def _onnx_lines(onnx: Any) -> list[str]:
    """What `ecs export --format onnx` measured and recorded under the summary's `onnx`."""
    if not isinstance(onnx, dict):
        return []
    out = []
    for kind in ("fp32", "int8"):
        r = onnx.get(kind)
        keys = ("latency_ms", "latency_batch", "latency_threads", "test_acc", "bytes")
        if isinstance(r, dict) and all(isinstance(r.get(k), int | float) for k in keys):
            out.append(
                f"ONNX {kind} (from {onnx.get('source', '?')}), onnxruntime: "
                f"{r['latency_ms']:.1f} ms per batch of {r['latency_batch']} on "
                f"{r['latency_threads']} thread, test accuracy {r['test_acc']:.2f}%, "
                f"{r['bytes']:,} bytes"
            )
    return out


def _setting(key: str, value: Any) -> str:
    """A config value as `ecs run` takes it; an unset one in its option's word (max_batches:
    all, the whole training set)."""
    if value is None:
        from ecs_core.config import RunConfig
        from ecs_core.options import options

        blank = {f.name: o.blank for f, o in options(RunConfig)}.get(key)
        return blank or "-"
    return str(value)


def _round_parts(rounds: Any) -> list[Any]:
    """IMP: each round's density and accuracy (`imp_rounds`; round 0 is the dense model)."""
    from rich.table import Table

    if not isinstance(rounds, list) or not rounds:
        return []
    from ecs_tui.fmt import pct

    table = Table(title="IMP rounds (each round's best is its own)", title_justify="left")
    for col in ("round", "density", "epochs", "test acc %", "best acc %"):
        table.add_column(col, justify="right")
    for r in (r for r in rounds if isinstance(r, dict)):
        density = r.get("density")
        table.add_row(
            str(r.get("round", "?")), pct(density * 100 if pct(density) != "-" else None),
            str(r.get("epochs_done", "-")), pct(r.get("test_acc"), sign=""),
            pct(r.get("best_test_acc"), sign=""),
        )  # fmt: skip
    return [table]


def _density_parts(view: Any, sp: Any) -> list[Any]:
    from rich.table import Table

    target = f" (target {sp.target_density:.2%})" if sp.target_density else ""
    lines = [f"achieved density {sp.density:.2%}: kept {sp.kept:,} of {sp.params:,} "
             f"prunable weights{target}"]  # fmt: skip
    ov = view.overlap()
    if ov is not None:
        lines.append(
            f"ECS overlap ({ov.budget or '?'} budget): kept by both |w| and |g| {ov.both:,}, "
            f"by |w| only {ov.weight_only:,}, by |g| only {ov.grad_only:,}"
        )
    collapsed = [r.name for r in sp.layers if r.kept == 0]
    if collapsed:
        lines.append(f"[bold red]layer collapse: no weights kept in {', '.join(collapsed)}[/]")
    table = Table(title="per layer", title_justify="left")
    for col in ("layer", "params", "kept", "density"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in sp.layers:
        table.add_row(r.name, f"{r.params:,}", f"{r.kept:,}", f"{r.density:.2%}")
    return ["\n".join(lines), table]


def _quant_parts(view: Any) -> list[Any]:
    from rich.table import Table

    q = view.quant_table()
    if q is None or not q.layers:
        return ["quantization: none in this run (run with --quantize after pruning)"]
    bits = f"{2**q.bits} clusters ({q.bits} bits) per layer" if q.bits else "k-means"
    table = Table(title="unique weight values per layer", title_justify="left")
    for col in ("layer", "unique before", "unique after"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in q.layers:
        table.add_row(r.name, f"{r.unique_before:,}", f"{r.unique_after:,}")
    table.add_row("[bold]total[/]", f"[bold]{q.unique_before:,}[/]", f"[bold]{q.unique_after:,}[/]")
    parts: list[Any] = [f"weight sharing: {bits}", table]
    sz = view.sizes()
    if sz is not None:
        rows = [
            ("dense fp32", sz.dense_bytes, None),
            ("sparse (CSR, fp32)", sz.sparse_bytes, sz.ratio_sparse),
            ("compressed file", sz.compressed_bytes, sz.ratio_compressed),
        ]
        sizes = Table(title="sizes", title_justify="left")
        for col in ("form", "bytes", "smaller than dense"):
            sizes.add_column(col, justify="left" if col == "form" else "right")
        for name, n, ratio in rows:
            sizes.add_row(name, f"{n:,}" if n else "?", f"{ratio:.1f}x" if ratio else "")
        parts.append(sizes)
    return parts


# --- ecs compare

PLOT_X_HELP = "density | fp32 | int8"
"""`ecs compare --plot-x`'s choices as its help says them: `figures.COMPARE_X` (imported only
when the command runs; a test holds the two equal)."""
THRESHOLD_HELP = "2"
"""`ecs compare --threshold`'s default as its help says it: `stats.significance.THRESHOLD`
(imported only when the command runs; a test holds the two equal)."""


def compare_command(
    paths: Annotated[
        list[Path], Arg(help="Run directories or folders of them.", show_default=False)
    ],
    csv: Annotated[bool, Opt("--csv", help="One CSV row per cell (long format).")] = False,
    markdown: Annotated[bool, Opt("--markdown", help="Markdown tables, as in the README.")] = False,
    plot: Annotated[
        Path | None,
        Opt(
            help="Also draw accuracy against density into FILE.png, .svg or .pdf.",
            show_default=False,
        ),
    ] = None,
    plot_x: Annotated[
        str,
        Opt(
            "--plot-x",
            help=f"What --plot draws accuracy against: {PLOT_X_HELP} (the runs' measured "
            "speed-up x dense, batch 64, one thread).",
        ),
    ] = "density",
    baseline: Annotated[
        str | None,
        Opt(
            help="Show each cell as its difference in points to this row: dense, a method "
            "(snip, ecs, ...: its row at today's defaults) or a row label as printed "
            "('GraSP', 'SNIP [layer, channel]'), at the same density, ± its standard error "
            "(Welch over seeds; paired by seed for the same runs or an ablation), * beyond "
            "--threshold.",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        Opt(
            help="With --baseline: mark a difference beyond this many standard errors "
            f"[default: {THRESHOLD_HELP}].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Test accuracy, mean ± std over seeds: rows model × method, columns target density.

    A cell pools only runs that differ in nothing but the seed; a method's runs that differ in
    more are rows named by what differs, and a seed run twice counts once (the newest)."""
    from ecs_core.stats import StatsError, compare_runs
    from ecs_core.stats.compare import baseline_label
    from ecs_core.stats.runs import BROKEN_CONFIG
    from ecs_core.stats.significance import THRESHOLD

    try:
        threshold = THRESHOLD if threshold is None else threshold
        if not threshold > 0 or threshold == float("inf"):
            raise StatsError(f"--threshold must be a positive number of standard errors, "
                             f"got {threshold:g}")  # fmt: skip
        if plot is not None:
            from ecs_core.figures import check_path, check_x

            check_path(plot)
            check_x(plot_x)
        elif plot_x != "density":
            raise StatsError("--plot-x draws into the --plot FILE: give --plot FILE.png too")
        table = compare_runs(paths)
        rows = sorted({c.plain for c in table.cells})
        label = None if baseline is None else baseline_label(baseline, rows)
    except StatsError as exc:
        raise fail(str(exc)) from None
    if table.skipped:
        typer.echo(f"note: {len(table.skipped)} run(s) not finished, left out", err=True)
    for path, why in table.skipped:
        if why == "status unreadable":
            typer.echo(f"note: {path} is broken: {BROKEN_CONFIG}", err=True)
    for d in table.duplicates:
        typer.echo(f"note: {d.cell}: {len(d.left_out) + 1} runs of one recipe, used the newest "
                   f"finished {d.used}, left out " + " ".join(d.left_out), err=True)  # fmt: skip
    if not table.cells:
        raise fail("no finished runs to compare under " + " ".join(map(str, paths)))
    if label is not None and label not in rows:
        raise fail(f"--baseline {baseline}: the table has no row {label}; name a method or one "
                   "of its rows: " + ", ".join(rows))  # fmt: skip
    if plot is not None:
        _compare_plot(table, plot, label, threshold, plot_x)
    if csv:
        typer.echo(table.csv(label, threshold), nl=False)
    elif markdown:
        typer.echo(table.markdown(label, threshold), nl=False)
    else:
        _compare_rich(table, label, threshold)


def _compare_plot(
    table: Any, path: Path, baseline: str | None, threshold: float, x: str = "density"
) -> None:
    """`ecs compare --plot`: accuracy against density or a measured speed-up
    (ecs_core.figures.compare_figure)."""
    from ecs_core.figures import COMPARE_X, compare_figure, save
    from ecs_core.stats import StatsError

    try:
        save(compare_figure(table, baseline, threshold, x), path)
    except StatsError as exc:
        raise fail(str(exc)) from None
    against = "density" if x == "density" else COMPARE_X[x].split(" (")[0]
    typer.echo(f"wrote {path}: accuracy against {against}, {len(table.datasets)} dataset(s)",
               err=True)  # fmt: skip


def _compare_rich(table: Any, baseline: str | None, threshold: float) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    for dataset in table.datasets:
        header, rows = table.text_rows(dataset, baseline, threshold=threshold)
        caption = table.caption(baseline, threshold)
        t = Table(title=dataset, title_justify="left", caption=caption, caption_justify="left")
        for i, col in enumerate(header):
            t.add_column(col, justify="left" if i < 2 else "right")
        for row in rows:  # labels hold [layer], [channel]: text, not Rich markup
            t.add_row(*map(escape, row))
        console.print(t)


def register(app: typer.Typer) -> None:
    app.command("show")(show_command)
    app.command("report")(report_command)
    app.command("compare")(compare_command)
