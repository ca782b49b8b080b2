"""Pruning invariants on tiny CPU models (the checks open_lth runs on its masks), plus the
definitions of SNIP and ECS checked against computations written out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from ecs_core.models import build_model, prunable_weights
from ecs_core.prune import MaskEnforcer, prune
from ecs_core.prune.ecs import ecs_mask
from ecs_core.prune.mask import collapsed, mask_from_scores
from ecs_core.prune.snip import snip_scores

METHODS = ["ecs", "snip", "random", "magnitude"]
SCOPES = ["global", "layer"]


def tiny_net() -> nn.Module:
    """conv-bn-relu, conv-bn-relu, pool, linear: small enough to reason about, real layer types."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 10),
    )


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --- invariants for every method and scope


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scope", SCOPES)
def test_mask_invariants(method: str, scope: str, train_batches) -> None:
    """Keys are exactly the prunable weights, shapes match, values are bool; model untouched."""
    torch.manual_seed(0)
    net = build_model("vgg16", 10, 1, width=0.125)
    before = state(net)
    result = prune(net, method, 0.1, train_batches(), scope=scope, budget="exact")
    weights = prunable_weights(net)
    assert list(result.mask) == list(weights)
    for name, m in result.mask.items():
        assert m.dtype == torch.bool and m.shape == weights[name].shape
    for k, v in state(net).items():
        assert torch.equal(v, before[k]), f"prune() changed {k}"
    assert result.total == sum(w.numel() for w in weights.values())
    assert result.kept == sum(int(m.sum()) for m in result.mask.values())
    assert result.density == pytest.approx(result.kept / result.total)
    assert [r["name"] for r in result.layers] == list(weights)
    for row in result.layers:
        assert row["kept"] == int(result.mask[row["name"]].sum())
        assert row["params"] == weights[row["name"]].numel()
        assert row["density"] == pytest.approx(row["kept"] / row["params"])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("density", [0.05, 0.1, 0.37])
def test_exact_budget_global_is_within_one_weight(
    method: str,
    density: float,
    train_batches,
) -> None:
    net = build_model("resnet34", 10, 1, width=0.125)
    result = prune(net, method, density, train_batches(), scope="global", budget="exact")
    assert abs(result.kept - density * result.total) <= 1


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("density", [0.05, 0.3])
def test_layer_scope_keeps_the_fraction_in_every_layer(
    method: str,
    density: float,
    train_batches,
) -> None:
    net = build_model("resnet50", 10, 1, width=0.125)
    result = prune(net, method, density, train_batches(), scope="layer", budget="exact")
    for row in result.layers:
        target = max(1.0, density * row["params"])  # a layer scope never empties a layer
        assert abs(row["kept"] - target) <= 1, row
    assert not result.collapsed_layers


@pytest.mark.parametrize("scope", SCOPES)
def test_ecs_union_budget_lands_between_x_and_2x(scope: str, train_batches) -> None:
    net = build_model("vgg16", 10, 1, width=0.125)
    x = 0.05
    result = prune(net, "ecs", x, train_batches(), scope=scope, budget="union")
    assert result.budget == "union"
    assert x * result.total - 1 <= result.kept <= 2 * x * result.total + len(result.layers)
    assert result.kept > x * result.total + 1  # |w| and |g| disagree on a real net
    overlap = result.overlap
    assert overlap is not None
    assert overlap["both"] + overlap["weight_only"] + overlap["grad_only"] == result.kept


def test_ecs_exact_budget_reports_overlap_inside_the_union(train_batches) -> None:
    net = build_model("vgg16", 10, 1, width=0.125)
    result = prune(net, "ecs", 0.05, train_batches(), scope="global", budget="exact")
    o = result.overlap
    assert o is not None and o["both"] + o["weight_only"] + o["grad_only"] == result.kept
    assert o["weight_only"] > 0 and o["grad_only"] > 0


# --- SNIP against its definition


def test_snip_scores_equal_gate_gradient_computed_by_hand(digits) -> None:
    """SNIP (Lee et al. 2019): s = |dL/dc| at c = 1 for w_eff = c * w. Build the gates
    explicitly, differentiate the loss with respect to them, and compare with |g * w|."""
    net = tiny_net()
    x = (digits.train_x[:8].float() / 255 - 0.3) / 0.4
    y = digits.train_y[:8]
    before = state(net)

    weights = prunable_weights(net)
    gates = {k: torch.ones_like(w, requires_grad=True) for k, w in weights.items()}
    params = {k: v.detach() for k, v in net.named_parameters()}
    params.update({k: gates[k] * weights[k].detach() for k in weights})
    loss = nn.functional.cross_entropy(functional_call(net.train(), params, (x,)), y)
    by_hand = dict(zip(gates, torch.autograd.grad(loss, list(gates.values())), strict=True))
    for k, v in before.items():  # restore BN statistics moved by the forward above
        net.state_dict()[k].copy_(v)

    scores = snip_scores(net, [(x, y)], n_batches=1)
    assert list(scores) == list(weights)
    for k in weights:
        assert torch.allclose(scores[k], by_hand[k].abs(), rtol=1e-5, atol=1e-8), k
    for k, v in state(net).items():
        assert torch.equal(v, before[k]), f"SNIP changed {k} (weights or BN buffers)"
    assert all(p.grad is None for p in net.parameters())


def test_snip_sums_gradients_over_score_batches(digits) -> None:
    net = tiny_net()
    x = (digits.train_x[:16].float() / 255 - 0.3) / 0.4
    y = digits.train_y[:16]
    b1, b2 = (x[:8], y[:8]), (x[8:], y[8:])
    g = {}
    for i, batch in enumerate((b1, b2)):
        s = snip_scores(net, [batch], 1)
        g[i] = {k: s[k] for k in s}
    both = snip_scores(net, [b1, b2, b1], n_batches=2)
    w = prunable_weights(net)
    for k in both:
        signed = sum(
            torch.autograd.grad(
                nn.functional.cross_entropy(net.train()(bx), by), w[k], retain_graph=False
            )[0]
            for bx, by in (b1, b2)
        )
        assert torch.allclose(both[k], (signed * w[k].detach()).abs(), rtol=1e-4, atol=1e-7)
    assert not all(torch.allclose(both[k], g[0][k]) for k in both)


# --- ECS against set arithmetic on a hand-made example


def test_ecs_union_is_the_union_of_the_two_top_k_sets() -> None:
    """10 weights, x = 0.3 -> top-3 by |w| = {0, 1, 2}, top-3 by |g| = {2, 7, 9}."""
    w = {"a": torch.tensor([9.0, 8.0, 7.0, 1.0, 2.0]), "b": torch.tensor([0.5, 3.0, 0.1, 0.2, 0.3])}
    g = {"a": torch.tensor([0.1, 0.2, 5.0, 0.3, 0.0]), "b": torch.tensor([0.4, 0.0, 6.0, 0.2, 4.0])}
    mask, overlap = ecs_mask(w, g, 0.3, "global", "union")
    kept = {i for i, v in enumerate(torch.cat([mask["a"], mask["b"]]).tolist()) if v}
    top_w = {0, 1, 2}
    top_g = {2, 7, 9}
    assert kept == top_w | top_g
    assert overlap == {"both": 1, "weight_only": 2, "grad_only": 2}


def test_ecs_union_layer_scope_by_hand() -> None:
    w = {"a": torch.tensor([4.0, 3.0, 2.0, 1.0]), "b": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    g = {"a": torch.tensor([0.0, 0.0, 0.0, 9.0]), "b": torch.tensor([0.0, 0.0, 0.0, 9.0])}
    mask, overlap = ecs_mask(w, g, 0.25, "layer", "union")
    assert mask["a"].tolist() == [True, False, False, True]
    assert mask["b"].tolist() == [False, False, False, True]
    assert overlap == {"both": 1, "weight_only": 1, "grad_only": 1}


def test_ecs_exact_keeps_the_weights_high_in_either_ranking() -> None:
    """Rank by the larger of the two percentile ranks: 8 weights, keep 4.

    |w| ranks (of 8): idx 0 -> 7, 1 -> 6, 2 -> 5, ...; |g| ranks: idx 7 -> 7, 6 -> 6, ...
    max rank: idx 0 and 7 -> 7, idx 1 and 6 -> 6, others <= 5 -> keep {0, 1, 6, 7}.
    """
    w = {"a": torch.tensor([8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])}
    g = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])}
    mask, overlap = ecs_mask(w, g, 0.5, "global", "exact")
    assert mask["a"].tolist() == [True, True, False, False, False, False, True, True]
    assert overlap == {"both": 0, "weight_only": 2, "grad_only": 2}


def test_ecs_exact_equals_union_when_the_rankings_agree() -> None:
    torch.manual_seed(0)
    w = {"a": torch.rand(50), "b": torch.rand(3, 10)}
    g = {k: v * 2 for k, v in w.items()}
    exact, _ = ecs_mask(w, g, 0.2, "global", "exact")
    union, overlap = ecs_mask(w, g, 0.2, "global", "union")
    assert all(torch.equal(exact[k], union[k]) for k in w)
    assert overlap == {"both": 16, "weight_only": 0, "grad_only": 0}


@pytest.mark.parametrize("scope", SCOPES)
def test_exact_counts_with_float64_ranks_and_ties(scope: str) -> None:
    """Regression: float64 percentile ranks rounded to float32 kept k+1 weights per layer."""
    torch.manual_seed(1)
    for n in (7, 33, 101, 250):
        w = {"a": torch.rand(n), "b": torch.randint(0, 3, (n + 5,)).float()}  # b: many ties
        g = {"a": torch.rand(n), "b": torch.zeros(n + 5)}
        for d in (0.05, 0.13, 0.5):
            mask, o = ecs_mask(w, g, d, scope, "exact")
            kept = {k: int(m.sum()) for k, m in mask.items()}
            if scope == "layer":
                assert kept == {k: max(1, round(d * v.numel())) for k, v in w.items()}
            else:
                assert sum(kept.values()) == round(d * (2 * n + 5))
            assert o["both"] + o["weight_only"] + o["grad_only"] == sum(kept.values())


# --- baselines


def test_magnitude_keeps_the_largest_weights() -> None:
    net = tiny_net()
    result = prune(net, "magnitude", 0.2, scope="global")
    w = torch.cat([p.detach().abs().flatten() for p in prunable_weights(net).values()])
    m = torch.cat([v.flatten() for v in result.mask.values()])
    assert float(w[m].min()) >= float(w[~m].max())


def test_random_is_seeded_and_uniform_across_layers() -> None:
    net = build_model("vgg16", 10, 1, width=0.125)
    a = prune(net, "random", 0.2, scope="global", seed=1)
    b = prune(net, "random", 0.2, scope="global", seed=1)
    c = prune(net, "random", 0.2, scope="global", seed=2)
    assert all(torch.equal(a.mask[k], b.mask[k]) for k in a.mask)
    assert not all(torch.equal(a.mask[k], c.mask[k]) for k in a.mask)
    for row in a.layers:
        if row["params"] > 5000:  # large layers: random keeps about the global fraction
            assert 0.17 < row["density"] < 0.23, row


# --- masked training


def sgd_steps(net: nn.Module, opt: torch.optim.Optimizer, batches, enforcer) -> None:
    for x, y in batches:
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if enforcer is not None:
            enforcer.after_backward()
        opt.step()
        if enforcer is not None:
            enforcer.after_step()
        yield


@pytest.mark.parametrize("use_enforcer", [True, False])
def test_masked_weights_stay_exactly_zero(use_enforcer: bool, train_batches) -> None:
    """Momentum 0.9 and weight decay 5e-4, with momentum built up before pruning.

    Without the enforcer the same steps resurrect pruned weights (the test can fail)."""
    torch.manual_seed(0)
    net = build_model("vgg16", 10, 1, width=0.125)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for _ in sgd_steps(net, opt, train_batches(16, 3), None):  # dense warm-up: momentum != 0
        pass
    mask = prune(net, "magnitude", 0.1).mask
    weights = prunable_weights(net)
    enforcer = None
    if use_enforcer:
        enforcer = MaskEnforcer(net, mask)
        enforcer.mask_optimizer_state(opt)
    else:  # zero the weights once, as a naive implementation would
        with torch.no_grad():
            for k, m in mask.items():
                weights[k].mul_(m)
    resurrected = 0
    for _ in sgd_steps(net, opt, train_batches(16, 5), enforcer):
        for k, m in mask.items():
            resurrected += int((weights[k][~m] != 0).sum())
            if use_enforcer:
                buf = opt.state[weights[k]]["momentum_buffer"]
                assert int((buf[~m] != 0).sum()) == 0, k
    if use_enforcer:
        assert resurrected == 0
        kept = sum(int((weights[k][m] != 0).sum()) for k, m in mask.items())
        assert kept == sum(int(m.sum()) for m in mask.values())  # kept weights still train
    else:
        assert resurrected > 0


def test_enforcer_masks_gradients_when_a_layer_has_none() -> None:
    net = tiny_net()
    mask = prune(net, "magnitude", 0.3, scope="layer").mask
    enforcer = MaskEnforcer(net, mask)
    names = list(mask)
    params = dict(net.named_parameters())
    params[names[0]].grad = torch.ones_like(params[names[0]])
    enforcer.after_backward()
    assert torch.equal(params[names[0]].grad, mask[names[0]].float())


# --- collapse


def test_layer_collapse_is_detected() -> None:
    """A layer whose weights are all tiny vanishes under a global magnitude threshold."""
    net = tiny_net()
    with torch.no_grad():
        net[3].weight.mul_(1e-6)
    result = prune(net, "magnitude", 0.3, scope="global")
    assert result.collapsed_layers == ["3.weight"]
    assert collapsed(result.mask) == ["3.weight"]
    layer = prune(net, "magnitude", 0.3, scope="layer")
    assert layer.collapsed_layers == []


def test_mask_from_scores_rejects_nan_scores() -> None:
    from ecs_core.prune import PruneError

    with pytest.raises(PruneError, match="NaN"):
        mask_from_scores({"a": torch.tensor([1.0, float("nan"), 0.5])}, 0.5, "global")


def test_train_epoch_keeps_the_mask_after_every_step(train_batches) -> None:
    """The real training loop (ecs_core.train) with the enforcer: zero after each batch."""
    from ecs_core.train import make_optimizer, train_epoch

    torch.manual_seed(0)
    net = build_model("resnet34", 10, 1, width=0.125)
    opt, _ = make_optimizer(net, 0.1, 0.9, 5e-4, 20, 0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in train_epoch(net, train_batches(8, 2), opt, gen):  # momentum before pruning
        pass
    result = prune(net, "ecs", 0.05, train_batches(8, 1))
    enforcer = MaskEnforcer(net, result.mask)
    enforcer.mask_optimizer_state(opt)
    weights = prunable_weights(net)
    steps = 0
    for step in train_epoch(net, train_batches(8, 4), opt, gen, enforcer):
        steps += 1
        assert step.batch == steps
        for k, m in result.mask.items():
            assert int((weights[k][~m] != 0).sum()) == 0, (k, step.batch)
    assert steps == 4
