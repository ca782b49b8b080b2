"""`ecs show` views at 80x24 and 200x60 on a real tiny run, `ecs report`, imports stay light."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from ecs_tui.cli import app

KEYS = {
    "sparsity": ["kept", "features.0", "classifier.3"],
    "curves": ["loss", "accuracy", "epoch", "train"],
    "clusters": ["before:", "features.17 value", "zero"],  # the layer with the most kept weights
    "kernels": ["features.0: filters 1-8/8", "#1", "#8"],
    "activations": ["input", "features.2", "predicted"],
}


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
@pytest.mark.parametrize("view", list(KEYS))
def test_view_renders_within_terminal(runner, tiny_run, view, size):
    cols, lines = size
    res = runner.invoke(app, ["show", str(tiny_run), view], env={"COLUMNS": str(cols),
                              "LINES": str(lines)})  # fmt: skip
    assert res.exit_code == 0, res.output
    out = res.stdout.rstrip("\n").split("\n")
    assert 8 <= len(out) <= lines and max(len(line) for line in out) <= cols
    assert "\x1b[" not in res.stdout  # not a TTY: no colour codes
    for key in KEYS[view]:
        assert key in res.stdout, (key, res.stdout)


def test_quant_is_the_views_name_and_clusters_still_answers(runner, tiny_run):
    """One table of views (`ecs_core.views`): the app's Quant tab is `ecs show RUN quant`."""
    new = runner.invoke(app, ["show", str(tiny_run), "quant", "--json"])
    old = runner.invoke(app, ["show", str(tiny_run), "clusters", "--json"])
    assert new.exit_code == old.exit_code == 0, (new.output, old.output)
    a, b = json.loads(new.stdout), json.loads(old.stdout)
    assert a.pop("view") == "quant" and b.pop("view") == "clusters" and a == b


def test_kernel_pages_and_channel_pages(runner, tiny_run):
    args = ["show", str(tiny_run), "kernels", "--layer", "features.27", "--width", "80",
            "--height", "24"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "filters 1-" in first.stdout
    second = runner.invoke(app, [*args, "--page", "2"])
    assert second.exit_code == 0 and "filters 1-" not in second.stdout and "/64" in second.stdout
    past = runner.invoke(app, [*args, "--page", "99"])
    assert past.exit_code == 2 and "past the end" in past.stderr
    res = runner.invoke(app, ["show", str(tiny_run), "activations", "--layer", "features.5",
                              "--image", "7", "--width", "100", "--height", "30"])  # fmt: skip
    assert res.exit_code == 0 and "image #7" in res.stdout and "channels 1-8/8" in res.stdout


def test_json_gives_the_same_numbers(runner, tiny_run):
    res = runner.invoke(app, ["show", str(tiny_run), "sparsity", "--json"])
    data = json.loads(res.stdout)
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert data["view"] == "sparsity" and data["kept"] == summary["kept"]
    assert [r["name"] for r in data["layers"]] == [r["name"] for r in summary["layers"]]
    res = runner.invoke(app, ["show", str(tiny_run), "curves", "--json"])
    curves = json.loads(res.stdout)
    assert curves["epoch"] == [1, 2] and curves["test_acc"][-1] == pytest.approx(
        summary["test_acc"])  # fmt: skip
    res = runner.invoke(app, ["show", str(tiny_run), "kernels", "--json", "--layer", "2"])
    km = json.loads(res.stdout)
    assert km["layer"] == "features.3.weight" and len(km["maps"]) == len(km["filters"])


def test_show_errors_are_one_line_exit_2(runner, tiny_run, tmp_path):
    for args, text in [
        ([str(tmp_path), "sparsity"], "not a run directory"),
        ([str(tiny_run), "pictures"], "unknown view"),
        ([str(tiny_run), "kernels", "--layer", "nope"], "no conv layer 'nope'"),
        ([str(tiny_run), "activations", "--image", "100000"], "--image must be in"),
    ]:
        res = runner.invoke(app, ["show", *args])
        assert res.exit_code == 2, res.output
        assert res.stderr.count("\n") == 1 and text in res.stderr


def test_report_of_real_run(runner, tiny_run):
    res = runner.invoke(app, ["report", str(tiny_run)], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    assert re.search(r"time \d+:\d\d wall · [\d,]+ img/s training \(last epoch\)", res.stdout)
    for key in ("achieved density", "features.0.weight", "classifier.3.weight", "ECS overlap",
                "test accuracy at each stage", "warm-up", "pruned + trained (P)"):  # fmt: skip
        assert key in res.stdout, key


def test_report_quantization_table_and_sizes(runner, known_run):
    summary = json.loads((known_run / "summary.json").read_text())
    summary["quant"] = {"bits": 2, "unique_before": 1003, "unique_after": 7, "test_acc": 99.0,
                        "layers": [{"name": "features.7.weight", "unique_before": 1000,
                                    "unique_after": 4}]}  # fmt: skip
    summary["sizes"] = {
        "dense_bytes": 1_000_000,
        "sparse_bytes": 200_000,
        "compressed_bytes": 20_000,
    }
    (known_run / "summary.json").write_text(json.dumps(summary))
    res = runner.invoke(app, ["report", str(known_run)], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    for key in ("unique before", "4 clusters (2 bits) per layer", "1,000", "total", "1,003",
                "50.0x", "5.0x", "weight sharing (P+Q)", "99.00"):  # fmt: skip
        assert key in res.stdout, key


def test_report_of_a_run_that_failed_early(runner, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text('{"model": "vgg16", "method": "snip"}')
    (run / "summary.json").write_text('{"status": "failed", "error": "DatasetError: missing"}')
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert "failed (DatasetError: missing)" in res.stdout and "no test accuracy" in res.stdout


def test_imports_stay_light():
    """The CLI module and plots load without torch; the engine's stats without any UI library."""
    code = ("import sys, ecs_tui.commands.inspect, ecs_tui.plots; "
            "assert not {'torch', 'ecs_core.stats'} & set(sys.modules)")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
    code = ("import sys, ecs_core.stats; "
            "bad = {'textual', 'rich', 'typer', 'plotext'} & set(sys.modules); "
            "assert not bad, bad")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)


def test_drawings_work_on_a_textual_plotext_figure(tiny_run):
    """The TUI passes `PlotextPlot.plt` (a figure object, not the module): same drawings."""
    from textual_plotext.plot import Plot

    from ecs_core.stats import load_run
    from ecs_tui import plots, plots_maps

    view, plt = load_run(tiny_run), Plot()
    drawings = [
        (plots_maps.draw_kernels, view.kernels()), (plots.draw_sparsity, view.sparsity()),
        (plots.draw_histogram, view.clusters()), (plots_maps.draw_activations, view.activations(3)),
    ]  # fmt: skip
    for draw, data in drawings:
        draw(plt, data, (70, 20))
        plt.plotsize(70, 20)
        plt._set_size(70, 20)  # what PlotextPlot.render does
        lines = plt.uncolorize(plt.build()).splitlines()
        assert len(lines) == 20 and max(map(len, lines)) == 70, draw.__name__
    plots.draw_curves(plt, view.curves(), "loss")
    assert "loss" in plt.uncolorize(plt.build())


def test_the_curve_legend_gets_headroom_only_where_the_curve_runs_under_it():
    """plotext writes the legend top left: a falling loss starts there, so the y axis grows
    above the highest point by the legend's share; a rising accuracy leaves it free."""
    from ecs_tui.plots import LEGEND_BOX, legend_headroom

    falling = [(1, 2.0), (2, 1.0), (3, 0.5)]
    top = legend_headroom(falling, 0.5, 2.0, log=False)
    assert top is not None and (top - 2.0) / (top - 0.5) == pytest.approx(LEGEND_BOX[1])
    rising = [(1, 50.0), (2, 70.0), (3, 80.0)]
    assert legend_headroom(rising, 50.0, 80.0, log=False) is None
    log_top = legend_headroom(falling, 0.5, 2.0, log=True)
    assert log_top is not None and log_top > 2.0
    assert legend_headroom([(1, 1.0)], 1.0, 1.0, log=False) is None  # one point, nothing to do


def test_report_says_max_batches_and_each_imp_round(runner, make_fake_run, tmp_path):
    """`ecs report` shows max_batches (a capped smoke run is not a full one) and, for IMP,
    each round's density and accuracies, and that the best epoch is the last round's (issue
    30, items 7 and 15)."""
    rounds = [
        {"round": 0, "density": 1.0, "epochs_done": 2, "test_acc": 33.61, "best_test_acc": 33.61},
        {"round": 1, "density": 0.2, "epochs_done": 4, "test_acc": 17.5, "best_test_acc": 17.5},
    ]
    summary = {
        "test_acc": 17.5,
        "best_test_acc": 17.5,
        "imp_rounds": rounds,
        "rounds": 1,
        "seconds": 81.0,
        "onnx": {"source": "model", "fp32": {"latency_ms": 12.34, "latency_batch": 64,
                 "latency_threads": 1, "test_acc": 17.5, "bytes": 940_000}},
    }  # fmt: skip
    imp = make_fake_run(tmp_path, "imp", summary, method="imp", max_batches=4)
    res = runner.invoke(app, ["report", str(imp)], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    cells = [line.replace("│", " ").split() for line in res.stdout.splitlines()]
    assert ["max_batches", "4"] in cells, res.stdout
    assert "time 1:21 wall" in res.stdout  # item 6: the run's wall time, the ONNX latency
    said = " ".join(res.stdout.split())
    assert "ONNX fp32 (from model), onnxruntime: 12.3 ms per batch of 64 on 1 thread" in said
    assert "IMP rounds" in res.stdout and "best epoch, last round" in res.stdout
    assert ["0", "100.00%", "2", "33.61", "33.61"] in cells, res.stdout
    assert ["1", "20.00%", "4", "17.50", "17.50"] in cells
    full = make_fake_run(tmp_path, "full", {"test_acc": 50.0}, method="snip")
    res = runner.invoke(app, ["report", str(full)], env={"COLUMNS": "100"})
    assert any(line.split() == ["max_batches", "all"] for line in res.stdout.splitlines())
    assert "IMP rounds" not in res.stdout
