"""Per-layer budgets: ERK and ER as in Evci et al. 2020, --distribution-from, and every method
thresholding within the counts a budget gives."""

from __future__ import annotations

import json
import math

import pytest

from ecs_core.config import ConfigError, RunConfig
from ecs_core.models import build_model, prunable_weights
from ecs_core.prune import prune
from ecs_core.prune.distribution import LayerBudget
from ecs_core.prune.mask import keep_count, layer_report


def paper_erk(shapes: dict[str, tuple[int, ...]], density: float, kernel: bool) -> dict:
    """ERK written from the paper, another way than the engine's: try k = 0, 1, ... of the
    layers with the largest (sum of dims)/(product of dims) dense, and take the first k for
    which the rest, scaled to the target, stays at or below density 1."""
    n = {k: math.prod(s) for k, s in shapes.items()}
    raw = {
        k: sum(s if kernel else s[:2]) / math.prod(s if kernel else s[:2])
        for k, s in shapes.items()
    }
    order = sorted(shapes, key=lambda k: -raw[k])
    for dense in range(len(order) + 1):
        full, rest = order[:dense], order[dense:]
        eps = (density * sum(n.values()) - sum(n[k] for k in full)) / sum(
            raw[k] * n[k] for k in rest
        )
        if all(eps * raw[k] <= 1 for k in rest):
            return {k: 1.0 if k in full else eps * raw[k] for k in shapes}
    raise AssertionError("no ERK solution")


@pytest.mark.parametrize("model", ["vgg16", "resnet50"])
@pytest.mark.parametrize("kind", ["erk", "er"])
@pytest.mark.parametrize("density", [0.01, 0.05, 0.2])
def test_erk_matches_the_paper_and_hits_the_target(model: str, kind: str, density: float) -> None:
    net = build_model(model, 10, 3, 1.0)
    shapes = {k: tuple(w.shape) for k, w in prunable_weights(net).items()}
    want = paper_erk(shapes, density, kernel=kind == "erk")
    counts = LayerBudget(kind)(shapes, density)
    total = sum(math.prod(s) for s in shapes.values())
    assert sum(counts.values()) == keep_count(total, density)  # exactly the target
    for k, s in shapes.items():
        assert abs(counts[k] - want[k] * math.prod(s)) <= 1, k  # the paper's density, rounded
        if want[k] == 1.0:
            assert counts[k] == math.prod(s)
    if kind == "erk" and density == 0.2 and model == "vgg16":  # the first conv, tiny, is dense
        assert want["features.0.weight"] == 1.0


def test_erk_masks_of_every_method_keep_the_counts(train_batches) -> None:
    net = build_model("vgg16", 10, 1, 0.125)
    shapes = {k: tuple(w.shape) for k, w in prunable_weights(net).items()}
    counts = LayerBudget("erk")(shapes, 0.05)
    for method in ("random", "snip", "ecs", "synflow"):
        result = prune(net, method, 0.05, train_batches(), distribution="erk", prune_iterations=5)
        assert {r["name"]: r["kept"] for r in result.layers} == counts, method
        assert result.distribution == "erk"


def test_distribution_from_reproduces_the_other_runs_counts(tmp_path, train_batches) -> None:
    net = build_model("vgg16", 10, 1, 0.125)
    source = prune(net, "snip", 0.05, train_batches())  # global: its own per-layer densities
    run = tmp_path / "snip-run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"layers": layer_report(source.mask)}))
    again = prune(net, "random", 0.05, distribution_from=str(run))
    assert [r["kept"] for r in again.layers] == [r["kept"] for r in source.layers]
    assert again.distribution == "from"
    assert (again.mask["features.0.weight"] != source.mask["features.0.weight"]).any()
    half = prune(net, "random", 0.025, distribution_from=str(run))  # rescaled to the target
    assert half.kept == keep_count(half.total, 0.025)


def test_distribution_from_a_run_that_did_not_prune_says_what_to_do(tmp_path) -> None:
    net = build_model("vgg16", 10, 1, 0.125)
    with pytest.raises(ConfigError, match="give the directory of a run that pruned"):
        prune(net, "random", 0.05, distribution_from=str(tmp_path))


def test_scope_layer_is_distribution_uniform_and_names_stay() -> None:
    old = RunConfig(method="snip", scope="layer").validate()
    new = RunConfig(method="snip", distribution="uniform").validate()
    assert old == new and old.method_tag == "snip-layer"
    default = RunConfig(method="snip").validate()
    assert default.method_tag == "snip" and default.distribution == "auto"  # as before it
    assert RunConfig(method="snip", distribution="global").validate() == default
    assert RunConfig(method="snip", distribution="erk").validate().method_tag == "snip-erk"
    with pytest.raises(ConfigError, match="--scope layer is --distribution uniform"):
        RunConfig(scope="layer", distribution="erk").validate()
    with pytest.raises(ConfigError, match="leave out --distribution"):
        RunConfig(distribution="er", distribution_from="x").validate()


def test_a_run_from_a_missing_run_is_refused_before_anything_is_written(tmp_path) -> None:
    from ecs_core.pipeline import run

    gone, runs = str(tmp_path / "gone"), str(tmp_path / "runs")
    cfg = RunConfig(width=0.125, method="random", epochs=1, max_batches=1, quantize=False,
                    distribution_from=gone, runs_dir=runs)  # fmt: skip
    with pytest.raises(ConfigError, match="give the directory of a run that pruned"):
        list(run(cfg))
    assert not (tmp_path / "runs").exists()
