"""Figures of models in memory (`ecs_core.model_figures`): the run views, from nn.Modules."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ecs_core import model_figures
from ecs_core.models import build_model
from ecs_core.stats import StatsError, load_run


def _model(run) -> torch.nn.Module:
    """The known run's network (width-0.125 VGG16 on 1-channel input) with its weights."""
    net = build_model("vgg16", 10, 1, 0.125)
    net.load_state_dict(load_run(run).weights)
    return net


def _pictures(fig) -> list[tuple[str, np.ndarray]]:
    return [(ax.get_title(), np.asarray(ax.images[0].get_array())) for ax in fig.axes if ax.images]


def test_kernels_of_a_model_are_the_runs_figure(known_run):
    net = _model(known_run)
    for layer in (None, "features.3", "2"):
        fig = model_figures.kernels(net, layer)
        want = load_run(known_run).figure("kernels", layer=layer)
        got, expected = _pictures(fig), _pictures(want)
        assert [t for t, _ in got] == [t for t, _ in expected] and got
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, expected, strict=True))
        assert fig._suptitle.get_text() == want._suptitle.get_text()
    crossed = [ax.get_title() for ax in model_figures.kernels(net).axes if ax.collections]
    assert crossed == ["#8", ""]  # the pruned filter, and the colour bar's own mesh
    with pytest.raises(StatsError, match="no conv layer 'classifier.0'; choose a name or 1..13"):
        model_figures.kernels(net, "classifier.0")
    with pytest.raises(StatsError, match="--page 2 is past the end: 8 filters"):
        model_figures.kernels(net, page=2)


def test_clusters_of_two_models_before_and_after_sharing(known_run):
    before = _model(known_run)
    after = copy.deepcopy(before)
    with torch.no_grad():  # what the known run's quantized file holds: 4 shared values
        w = after.features[7].weight
        w.copy_(torch.where(w != 0, torch.ceil(w * 4) / 4, w))
    fig = model_figures.clusters(before, after, "features.7")
    titles = [ax.get_title() for ax in fig.axes]
    run_fig = load_run(known_run).figure("clusters", layer="features.7")
    assert titles == [ax.get_title() for ax in run_fig.axes]
    assert titles[1] == "after: 4 values, 13% zero"
    with pytest.raises(StatsError, match="different layers or shapes"):
        model_figures.clusters(before, build_model("vgg16", 10, 3, 0.125))


def test_activations_of_a_model_for_an_image_or_a_batch():
    torch.manual_seed(0)
    net = build_model("vgg16", 10, 1, 0.125)
    batch = torch.randn(4, 1, 32, 32)
    fig = model_figures.activations(net, batch)
    titles = [t for t, _ in _pictures(fig)]
    assert titles[0] == "input" and len(titles) == 1 + 13  # the input and each conv's ReLU
    assert all(np.array_equal(a, b) for (_, a), (_, b) in
               zip(_pictures(model_figures.activations(net, batch[0])), _pictures(fig),
                   strict=True))  # fmt: skip
    channels = model_figures.activations(net, batch[0], "features.2", label=3)
    assert [t for t, _ in _pictures(channels)][:2] == ["#1", "#2"]
    assert "label 3" in channels._suptitle.get_text()
    with pytest.raises(StatsError, match="no activation maps for 'nope'"):
        model_figures.activations(net, batch[0], "nope")
    assert "label" not in model_figures.activations(net, batch[0])._suptitle.get_text()
