"""The numbers: known weights give known densities, histogram counts, kernel means, maps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecs_core.stats import (
    StatsError,
    activation_maps,
    kernel_maps,
    load_run,
    weight_histograms,
)


def test_known_run_densities_in_model_order(known_run):
    sp = load_run(known_run).sparsity()
    rows = {r.name: r for r in sp.layers}
    assert sp.source == "masks"
    assert [r.name for r in sp.layers][:3] == ["features.0.weight", "features.3.weight",
                                                "features.7.weight"]  # fmt: skip
    assert sp.layers[-1].name == "classifier.3.weight"
    assert (rows["features.0.weight"].kept, rows["features.0.weight"].params) == (63, 72)
    assert rows["features.3.weight"].density == 0.5
    assert rows["features.7.weight"].kept == 1000
    assert rows["classifier.3.weight"].density == 0.75
    assert rows["features.10.weight"].density == 1.0
    assert rows["classifier.1.weight"].kind == "linear" and rows["features.0.weight"].kind == "conv"
    pruned = (72 - 63) + 288 + 152 + 160
    assert sp.params == sum(r.params for r in sp.layers)
    assert sp.kept == sp.params - pruned
    assert sp.density == pytest.approx(sp.kept / sp.params)
    assert sp.target_density == 0.5


def test_histogram_exact_for_few_values_binned_for_many(known_run):
    view = load_run(known_run)
    cl = view.clusters("classifier.3")
    assert cl.before.exact and cl.after is not None and cl.after.exact
    assert (cl.before.values, cl.before.counts) == ([-1.0, 1.0, 2.0], [160, 160, 160])
    assert (cl.before.zeros, cl.before.total, cl.before.unique) == (160, 640, 3)

    cl = view.clusters("features.7", bins=10)
    assert not cl.before.exact and cl.before.counts == [100] * 10
    assert cl.before.zeros == 152 and cl.before.unique is None  # binned: not counted
    assert len(cl.before.edges) == 11 and cl.before.edges[0] == pytest.approx(0.0005)
    assert cl.after.exact
    assert cl.after.values == [0.25, 0.5, 0.75, 1.0] and cl.after.counts == [250] * 4
    assert cl.note is None


def test_histograms_share_one_value_range():
    a, b = torch.linspace(-1, 1, 1001), torch.linspace(0, 3, 1001)
    a[500] = 0.0
    ha, hb = weight_histograms({"a": a, "b": b}, "x", bins=30)
    assert ha.edges == hb.edges
    assert ha.edges[0] == pytest.approx(-1) and ha.edges[-1] == pytest.approx(3)
    assert sum(ha.counts) == sum(hb.counts) == 1000  # the zeros are left out
    assert ha.zeros == hb.zeros == 1
    assert sum(ha.counts[16:]) == 0 and sum(hb.counts[:7]) == 0  # bins 4/30 wide from -1


def test_clusters_without_quantized_file_says_why(tmp_path, make_known_run):
    view = load_run(make_known_run(tmp_path, quantized=False))
    cl = view.clusters()
    assert cl.after is None and "quantized.safetensors" in cl.note
    assert cl.layer == "features.27.weight"  # default: the most kept weights (first of equals)


def test_clusters_default_to_the_layer_with_most_kept_weights(tmp_path, make_known_run):
    """Not the largest by parameters: pruning can leave the largest layers almost empty (on a
    ResNet, 20 of 2.4M weights), and their histogram shows nothing."""
    from safetensors.torch import load_file, save_file

    path = make_known_run(tmp_path, quantized=False)
    masks = load_file(path / "masks.safetensors")
    for name in ("features.27.weight", "features.30.weight", "features.34.weight",
                 "features.37.weight", "features.40.weight"):  # fmt: skip
        m = torch.zeros_like(masks[name])
        m.view(-1)[0] = 1
        masks[name] = m
    save_file(masks, path / "masks.safetensors")
    view = load_run(path)
    assert view.clusters().layer == "features.24.weight"  # 18,432 kept, the most now
    assert view.clusters("features.27").layer == "features.27.weight"  # chosen: as asked


def test_kernel_means_and_layer_wide_normalisation(known_run):
    km = load_run(known_run).kernels("features.3")
    assert km.shape == (8, 8, 3, 3) and km.total == 8
    assert km.reduction == "mean over input channels"
    for o in range(8):
        assert km.raw[o] == [[pytest.approx((o + 1) * 10 / 64)] * 3] * 3
        assert km.maps[o][1][1] == pytest.approx(o / 7)
    assert (km.vmin, km.vmax) == (pytest.approx(10 / 64), pytest.approx(80 / 64))
    assert not any(v for m in km.pruned for row in m for v in row)  # 4 of 8 inputs kept
    first = load_run(known_run).kernels("features.0")  # filter 8 pruned, whole
    assert [m == [[True] * 3] * 3 for m in first.pruned] == [False] * 7 + [True]


def test_kernel_pages():
    w = torch.arange(512 * 2 * 9, dtype=torch.float32).view(512, 2, 3, 3)
    page = kernel_maps(w, "big", offset=100, limit=64)
    assert page.total == 512 and page.filters == list(range(100, 164)) and len(page.maps) == 64
    assert page.raw[0][0][0] == pytest.approx(float(w[100, :, 0, 0].mean()))
    last = kernel_maps(w, "big", offset=500, limit=64)
    assert last.filters == list(range(500, 512))


def test_one_by_one_kernels_fold_input_channels():
    w = torch.arange(2 * 6, dtype=torch.float32).view(2, 6, 1, 1)
    km = kernel_maps(w, "pw")
    assert km.raw[1] == [[6.0, 7.0, 8.0], [9.0, 10.0, 11.0]]
    # the one zero weight is pruned; the padding of a 5-weight filter (2 x 3 grid) is not
    km = kernel_maps(w[:, :5], "pw")
    assert km.pruned == [[[True, False, False], [False, False, False]]] + [[[False] * 3] * 2]
    with pytest.raises(StatsError, match="conv"):
        kernel_maps(torch.zeros(3, 4), "fc")


def test_activation_maps_of_a_known_net():
    """conv weights +1 and -1, then ReLU: the channel mean is |x| / 2."""
    net = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
    x = torch.tensor([[[-2.0, 1.0], [0.0, 4.0]]])
    acts = activation_maps(net, x, index=3, label=1)
    (m,) = acts.maps
    assert (m.name, m.channels, m.height, m.width) == ("1", 2, 2, 2)
    assert m.max == pytest.approx(2.0)
    assert m.map == [[pytest.approx(0.5), pytest.approx(0.25)], [0.0, 1.0]]
    assert m.active == pytest.approx(3 / 8)
    per_channel = activation_maps(net, x, layer="1")
    assert [a.name for a in per_channel.maps] == ["1[0]", "1[1]"]
    assert per_channel.maps[1].map == [[1.0, 0.0], [0.0, 0.0]]
    with pytest.raises(StatsError, match="no activation maps"):
        activation_maps(net, x, layer="nope")


def test_curves_downsample_keeps_ends(known_run):
    curves = load_run(known_run).curves(max_points=50)
    assert curves.points == 300 and len(curves.epoch) <= 50
    assert curves.epoch[0] == 1 and curves.epoch[-1] == 300
    assert curves.test_acc[-1] == pytest.approx(100.0) and curves.stage[0] == "warmup"
    assert curves.epoch == sorted(curves.epoch)


def test_overlap_and_quant_table_from_files(known_run):
    view = load_run(known_run)
    ov = view.overlap()
    assert (ov.both, ov.weight_only, ov.grad_only, ov.kept, ov.budget) == (5, 3, 2, 10, "union")
    q = view.quant_table()
    rows = {r.name: r for r in q.layers}
    assert q.source == "tensors"
    assert (rows["features.7.weight"].unique_before, rows["features.7.weight"].unique_after) == (
        1000, 4)  # fmt: skip
    assert rows["classifier.3.weight"].unique_after == 3
    assert q.unique_before - q.unique_after == 996


def test_layer_resolution(known_run):
    view = load_run(known_run)
    assert view.layer("features.3") == view.layer("features.3.weight") == view.layer("2")
    with pytest.raises(StatsError, match="no layer 'nope'"):
        view.layer("nope")
    with pytest.raises(StatsError, match="conv layer"):
        view.kernels("classifier.1")


def test_not_a_run_dir(tmp_path):
    with pytest.raises(StatsError, match="not a run directory"):
        load_run(tmp_path)
