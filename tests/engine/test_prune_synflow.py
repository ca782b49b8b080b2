"""SynFlow (Tanaka et al. 2020): the score against autograd on the explicit product of absolute
weights, the exponential schedule, no layer collapse where magnitude collapses, and the model
(signed weights, batch-norm mode and statistics) left exactly as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecs_core.models import build_model, prunable_weights
from ecs_core.prune import prune
from ecs_core.prune.mask import keep_count
from ecs_core.prune.synflow import density_schedule, synflow_mask, synflow_scores


def test_score_equals_autograd_on_the_product_of_absolute_weights() -> None:
    """Two linear layers, no bias: R = 1ᵀ|W2||W1|1, score = |W ⊙ ∂R/∂|W||, written out."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False))
    w1, w2 = (net[0].weight.detach().clone(), net[1].weight.detach().clone())
    a1 = w1.abs().double().requires_grad_()
    a2 = w2.abs().double().requires_grad_()
    r = (a2 @ a1 @ torch.ones(5, dtype=torch.float64)).sum()
    g1, g2 = torch.autograd.grad(r, [a1, a2])
    scores = synflow_scores(net, (5,))
    assert torch.allclose(scores["0.weight"], (g1 * a1).detach(), rtol=1e-12)
    assert torch.allclose(scores["1.weight"], (g2 * a2).detach(), rtol=1e-12)
    # closed form: flow through W1[i, j] is |W1[i, j]| times the column sum of |W2| at i
    assert torch.allclose(scores["0.weight"], w1.abs().double() * w2.abs().sum(0).double()[:, None])
    assert torch.equal(net[0].weight, w1) and torch.equal(net[1].weight, w2)  # signs kept


def test_masked_weights_carry_no_flow() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False))
    mask = {k: torch.rand(w.shape) < 0.5 for k, w in prunable_weights(net).items()}
    scores = synflow_scores(net, (5,), mask)
    for k, m in mask.items():
        assert bool((scores[k][~m] == 0).all())


def test_schedule_is_exponential_and_ends_exactly_at_the_target() -> None:
    sched = density_schedule(0.01, 4)
    assert sched == pytest.approx([0.01**0.25, 0.01**0.5, 0.01**0.75, 0.01])
    assert sched[-1] == 0.01 and density_schedule(0.3, 1) == [0.3]


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize(("density", "iterations"), [(0.05, 7), (0.37, 3), (0.01, 1)])
def test_iterative_synflow_hits_the_target_exactly(
    scope: str, density: float, iterations: int
) -> None:
    torch.manual_seed(0)
    net = build_model("vgg16", 10, 1, width=0.125)
    result = prune(net, "synflow", density, scope=scope, prune_iterations=iterations)
    if scope == "global":
        assert result.kept == keep_count(result.total, density)
    else:
        for row in result.layers:
            assert row["kept"] == keep_count(row["params"], density), row


def test_every_round_keeps_a_subset_of_the_last() -> None:
    torch.manual_seed(0)
    net = build_model("vgg16", 10, 1, width=0.125)
    coarse = synflow_mask(net, 0.1, "global", iterations=1)
    fine = synflow_mask(net, 0.1, "global", iterations=2)
    first = synflow_mask(net, 0.1**0.5, "global", iterations=1)  # round 1 of the 2-round run
    for k in fine:
        assert not bool((fine[k] & ~first[k]).any()), k  # nothing pruned comes back
    assert not all(torch.equal(coarse[k], fine[k]) for k in fine)  # iterating changes the mask


def test_synflow_at_one_percent_leaves_no_layer_collapsed_where_magnitude_does() -> None:
    """Quarter-scale VGG16 at init, 1% global: magnitude empties both classifier layers (their
    default init is smaller than the convs' Kaiming init); SynFlow keeps every layer."""
    torch.manual_seed(0)
    net = build_model("vgg16", 10, 1, width=0.125)
    assert prune(net, "magnitude", 0.01).collapsed_layers == [
        "classifier.1.weight",
        "classifier.3.weight",
    ]
    result = prune(net, "synflow", 0.01, prune_iterations=100)
    assert result.collapsed_layers == []
    assert result.kept == keep_count(result.total, 0.01)


@pytest.mark.parametrize("training", [True, False])
def test_model_is_left_exactly_as_it_was(training: bool) -> None:
    torch.manual_seed(0)
    net = build_model("resnet34", 10, 1, width=0.125)
    with torch.no_grad():  # non-trivial BN statistics and signs, to see they survive
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.normal_()
                mod.weight.normal_()
    net.train(training)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    prune(net, "synflow", 0.1, prune_iterations=2)
    assert net.training is training
    assert all(m.training is training for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in net.parameters())


def test_scores_use_eval_mode_batch_norm() -> None:
    """With BN in train mode an all-ones input has zero variance and zero output; eval mode
    uses the (linearised) running statistics, so every weight carries flow."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 36, 3))
    scores = synflow_scores(net.train(), (1, 8, 8))
    assert all(bool((s > 0).all()) for s in scores.values())
    assert net.training


def test_synflow_end_to_end_prunes_at_init_with_the_configured_rounds(
    tmp_path,
    small_digits,
) -> None:
    import json
    from pathlib import Path

    from ecs_core import events as ev
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import run

    cfg = RunConfig(method="synflow", density=0.05, prune_iterations=5, width=0.125, epochs=1,
                    max_batches=1, batch_size=8, quantize=False, device="cpu",
                    runs_dir=str(tmp_path))  # fmt: skip
    events = list(run(cfg))
    kinds = [e.kind for e in events]
    assert kinds.index("pruned") < kinds.index("epoch_end")
    pruned = next(e for e in events if isinstance(e, ev.Pruned))
    assert pruned.method == "synflow" and pruned.kept == keep_count(pruned.total, 0.05)
    saved = json.loads((Path(events[0].run_dir) / "config.json").read_text())
    assert saved["prune_iterations"] == 5


def test_prune_iterations_below_one_is_refused_naming_the_field() -> None:
    from ecs_core.config import ConfigError, RunConfig

    with pytest.raises(ConfigError, match="--prune-iterations must be >= 1, got 0"):
        RunConfig(method="synflow", prune_iterations=0).validate()


def test_deep_nets_do_not_overflow() -> None:
    """40 layers of 16 units with |w| = 1: R = 16^41 ≈ 2.3e49, beyond float32 (3.4e38)."""
    layers = [nn.Linear(16, 16, bias=False) for _ in range(40)]
    for layer in layers:
        nn.init.ones_(layer.weight)
    scores = synflow_scores(nn.Sequential(*layers), (16,))
    for s in scores.values():
        assert s.dtype == torch.float64 and bool(torch.isfinite(s).all())
        assert torch.allclose(
            s, torch.full_like(s, 16.0**39)
        )  # conserved: a layer's 256 weights carry R / 256 each


@pytest.mark.parametrize("model", ["resnet18", "resnet50", "vgg19"])
def test_synflow_on_residual_and_deep_models(model: str) -> None:
    torch.manual_seed(0)
    net = build_model(model, 10, 1, width=0.125)
    result = prune(net, "synflow", 0.05, scope="global", prune_iterations=3)
    assert result.kept == keep_count(result.total, 0.05)
    assert list(result.mask) == list(prunable_weights(net))
