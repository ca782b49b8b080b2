"""matplotlib figures: `ecs show --save` for every view, `RunView.figure`, `ecs compare --plot`."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from ecs_core.figures import DPI
from ecs_core.stats import compare_runs, load_run
from ecs_tui.cli import app

VIEWS = ("sparsity", "curves", "clusters", "kernels", "activations")


@pytest.mark.parametrize("view", VIEWS)
def test_saved_png_has_the_figures_pixel_size_and_is_not_blank(runner, known_run, tmp_path, view):
    out = tmp_path / f"{view}.png"
    result = runner.invoke(app, ["show", str(known_run), view, "--save", str(out)])
    assert result.exit_code == 0, result.output
    pixels = imread(out)
    w, h = (round(v * DPI) for v in load_run(known_run).figure(view).get_size_inches())
    assert pixels.shape[:2] == (h, w)
    assert f"{w}x{h} px" in result.output
    rgb = pixels[..., :3]
    drawn = (rgb < 0.9).any(axis=-1).mean()  # share of pixels that are not (near) white
    assert 0.01 < drawn < 0.95, drawn
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 10


def test_curves_png_is_8_by_4_inches(runner, known_run, tmp_path):
    out = tmp_path / "c.png"
    assert runner.invoke(app, ["show", str(known_run), "curves", "--save", str(out)]).exit_code == 0
    assert imread(out).shape[:2] == (4 * DPI, 8 * DPI)


def test_svg_and_pdf_are_written_in_their_formats(runner, known_run, tmp_path):
    for name, head in (("k.svg", b"<?xml"), ("k.pdf", b"%PDF")):
        out = tmp_path / name
        result = runner.invoke(app, ["show", str(known_run), "kernels", "--save", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes().startswith(head)


def test_bad_suffix_or_page_is_one_line_exit_2_nothing_written(runner, known_run, tmp_path):
    for args in (["kernels", "--save", str(tmp_path / "k.jpg")],
                 ["kernels", "--page", "9", "--save", str(tmp_path / "k.png")]):  # fmt: skip
        result = runner.invoke(app, ["show", str(known_run), *args])
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert list(tmp_path.iterdir()) == [tmp_path / "runs"]


def test_load_run_figure_kernels_is_a_figure_with_one_image_per_filter(known_run):
    fig = load_run(known_run).figure("kernels")
    assert isinstance(fig, Figure)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 8  # features.0 of a width-0.125 VGG16 has 8 filters
    assert images[7].get_title() == "#8"
    assert "features.0" in fig._suptitle.get_text()
    clusters = load_run(known_run).figure("clusters", layer="features.7")
    assert [ax.get_title().split(":")[0] for ax in clusters.axes] == ["before", "after"]


def test_saved_kernels_have_a_colour_bar_and_cross_out_the_pruned_weights(known_run):
    """As the app: the scale (a colour bar in weight units, centred on 0) and the mask (×
    over every cell whose weights are all 0: features.0's filter 8 is pruned, whole)."""
    fig = load_run(known_run).figure("kernels")
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bar.get_ylabel() == "mean weight over input channels"
    assert bar.get_ylim() == (-1.0, 1.0)  # every kept weight of features.0 is 1
    tiles = [ax for ax in fig.axes if ax.images]
    crossed = {ax.get_title(): ax.collections for ax in tiles if ax.collections}
    assert list(crossed) == ["#8"]
    (marks,) = crossed["#8"]
    assert marks.get_label() == "pruned"
    assert sorted(map(tuple, marks.get_offsets().tolist())) == [
        (c, r) for c in range(3) for r in range(3)
    ]
    assert "× pruned" in fig._suptitle.get_text()
    unpruned = load_run(known_run).figure("kernels", layer="features.3")
    assert not any(ax.collections for ax in unpruned.axes if ax.images)
    assert "pruned" not in unpruned._suptitle.get_text()


def test_compare_plot_has_one_line_per_method(fake_runs):
    from ecs_core.figures import compare_figure

    (ax,) = compare_figure(compare_runs([fake_runs])).axes
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["Dense (100%)", "SNIP", "ECS (P) [union]", "ECS (P+Q) [union]"]
    assert len(ax.containers) == 3  # one errorbar series per pruned method
    assert ax.get_xscale() == "log"
    notes = [t.get_text() for t in ax.texts]
    # ECS's union budget kept 18% for a 10% target: said once, on the P line (P+Q has the same)
    assert notes.count("d 18.00%") == 1
    assert ax.containers[2].lines[0].get_linestyle() == "--"  # P+Q dashed
    assert ax.containers[2].lines[0].get_color() == ax.containers[1].lines[0].get_color()
    snip = ax.containers[0]
    (ybars,) = snip.lines[2]
    lo, hi = ybars.get_segments()[0][:, 1]
    assert (hi - lo) / 2 == pytest.approx(7**0.5)  # std over the three seeds


def test_compare_plot_puts_ablations_in_a_panel_of_bars(tmp_path, make_fake_run):
    """Ablated runs are not lines on the density plot: a second panel has, per method and
    density, a bar for the method's own mask and one per ablation (height = mean)."""
    from ecs_core.figures import compare_figure

    for seed in (0, 1):
        make_fake_run(tmp_path, f"own{seed}", {"test_acc": 80.0 + seed, "density": 0.05},
                      method="snip", density=0.05, seed=seed)  # fmt: skip
        for kind, acc in (("shuffle", 70.0), ("reinit", 75.0)):
            make_fake_run(tmp_path, f"{kind}{seed}", {"test_acc": acc + seed, "density": 0.05},
                          method="snip", density=0.05, seed=seed, ablate=kind)  # fmt: skip
    curves, bars = compare_figure(compare_runs([tmp_path])).axes
    assert curves.get_legend_handles_labels()[1] == ["SNIP"]
    assert bars.get_legend_handles_labels()[1] == ["the method's own mask", "reinit", "shuffle"]
    from matplotlib.container import BarContainer

    heights = [[p.get_height() for p in c.patches] for c in bars.containers
               if isinstance(c, BarContainer)]  # fmt: skip
    assert heights == [[80.5], [75.5], [70.5]]
    assert [t.get_text() for t in bars.get_xticklabels()] == ["SNIP\n5%"]


def test_ecs_compare_plot_writes_the_figure_and_still_prints_the_table(runner, fake_runs, tmp_path):
    out = tmp_path / "acc.png"
    result = runner.invoke(app, ["compare", str(fake_runs), "--csv", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert imread(out).shape[2] in (3, 4)
    assert "dataset,model,method" in result.stdout and "wrote" not in result.stdout
    bad = runner.invoke(app, ["compare", str(fake_runs), "--plot", str(tmp_path / "acc.gif")])
    assert bad.exit_code == 2 and not (tmp_path / "acc.gif").exists()


def test_compare_plot_rings_differences_beyond_the_threshold(tmp_path, make_fake_run):
    """`--plot` with `--baseline`: a point beyond the threshold (in SEs) against the baseline
    is ringed; SNIP (P+Q) is dashed in SNIP's colour, as ECS (P+Q) in ECS (P)'s."""
    from ecs_core.figures import compare_figure

    for seed, (snip, rand) in enumerate([(80.0, 70.0), (82.0, 71.0), (87.0, 75.0)]):
        quant = {"quant": {"bits": 5, "test_acc": snip - 1, "int8_test_acc": snip - 1}}
        make_fake_run(tmp_path, f"snip{seed}", {"test_acc": snip, "density": 0.1, **quant},
                      method="snip", density=0.1, seed=seed)  # fmt: skip
        for density in (0.1, 0.05):
            make_fake_run(tmp_path, f"rand{seed}-{density}", {"test_acc": rand, "density": density},
                          method="random", density=density, seed=seed)  # fmt: skip
    table = compare_runs([tmp_path])
    (ax,) = compare_figure(table, "Random", 2.0).axes
    labels = ax.get_legend_handles_labels()[1]
    assert sorted(labels) == ["Random", "SNIP", "SNIP (P+Q)", "beyond 2 SE vs Random"]
    (rings,) = ax.collections[-1:]
    assert sorted(map(tuple, rings.get_offsets().tolist())) == [(10.0, 82.0), (10.0, 83.0)]
    assert ax.containers[1].lines[0].get_color() == ax.containers[0].lines[0].get_color()
    (plain,) = compare_figure(table, "Random", 10.0).axes  # 10 SE: nothing beyond
    assert "beyond 10 SE vs Random" not in plain.get_legend_handles_labels()[1]


def test_compare_plot_against_measured_speed_up(tmp_path, make_fake_run, runner):
    """`--plot-x fp32`: each row's points at its runs' mean measured speed-up (linear axis),
    rows whose runs measured none left out; a speed no run measured, an unknown axis, or
    --plot-x without --plot: one line, exit 2, no file."""
    from ecs_core.figures import COMPARE_X, compare_figure
    from ecs_core.stats import StatsError
    from ecs_tui.commands.inspect import PLOT_X_HELP

    assert PLOT_X_HELP == " | ".join(COMPARE_X)
    for seed in (0, 1):
        for density, fast in ((0.5, 1.5), (0.25, 2.5)):
            lat = {"latency": {"fp32_speedup": {"b64": fast + seed / 10}}}
            acc = {"test_acc": 90.0 - 10 * density + seed, "density": density, **lat}
            make_fake_run(tmp_path, f"ch{density}-{seed}", acc, method="snip", density=density,
                          seed=seed, structure="channel")  # fmt: skip
        make_fake_run(tmp_path, f"w{seed}", {"test_acc": 95.0, "density": 0.25,
                      "latency": {"fp32_speedup": {"b64": 1.0}}},
                      method="snip", density=0.25, seed=seed)  # fmt: skip
        make_fake_run(tmp_path, f"r{seed}", {"test_acc": 60.0, "density": 0.25},
                      method="random", density=0.25, seed=seed)  # fmt: skip
    table = compare_runs([tmp_path])
    (ax,) = compare_figure(table, x="fp32").axes
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == COMPARE_X["fp32"]
    assert "Random" not in ax.get_legend_handles_labels()[1]
    points = sorted(tuple(c.lines[0].get_xdata()) for c in ax.containers)
    assert points == [(1.0,), pytest.approx((1.55, 2.55))]
    with pytest.raises(StatsError, match="no run here measured its int8 latency"):
        compare_figure(table, x="int8")
    # the CSV carries the speed the figure draws (the study CSV needs it): per cell
    rows = {(r["method"], r["target_density"]): r for r in csv.DictReader(io.StringIO(table.csv()))}
    speeds = {k: (r["fp32_speedup"], r["int8_speedup"]) for k, r in rows.items()}
    assert speeds == {
        ("SNIP [layer, channel]", "0.5"): ("1.5500", ""),
        ("SNIP [layer, channel]", "0.25"): ("2.5500", ""),
        ("SNIP", "0.25"): ("1.0000", ""),
        ("Random", "0.25"): ("", ""),
    }
    out = tmp_path / "speed.png"
    ok = runner.invoke(app, ["compare", str(tmp_path), "--plot", str(out), "--plot-x", "fp32"])
    assert ok.exit_code == 0, ok.output
    assert "accuracy against measured fp32 speed-up" in ok.output and imread(out).ndim == 3
    for args in (["--plot", str(tmp_path / "a.png"), "--plot-x", "fast"], ["--plot-x", "fp32"],
                 ["--plot", str(tmp_path / "b.png"), "--plot-x", "int8"]):  # fmt: skip
        bad = runner.invoke(app, ["compare", str(tmp_path), *args])
        assert bad.exit_code == 2 and "--plot-x" in bad.output, bad.output
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()
