"""GraSP (Wang et al. 2020): Hg against finite differences of gradients, the sign of the score,
and the invariants every pruner keeps."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from ecs_core.models import build_model, prunable_weights
from ecs_core.prune import prune
from ecs_core.prune.grasp import TEMPERATURE, grasp_scores, hessian_gradient_product


def tiny_net() -> nn.Module:
    """conv-bn-relu, pool, linear, in float64 so a finite difference is accurate."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, bias=False),
        nn.BatchNorm2d(3),
        nn.Tanh(),  # smooth, so the finite difference has no kinks to step over
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 5),
    ).double()


def batches(n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(6, 1, 5, 5, generator=g, dtype=torch.float64),
            torch.randint(0, 5, (6,), generator=g),
        )
        for _ in range(n)
    ]


def grad_at(net: nn.Module, shift: dict[str, torch.Tensor], data: list) -> dict[str, torch.Tensor]:
    """∇L at θ + shift (prunable weights only), L = Σ_b CE(f(x_b) / T, y_b), train mode."""
    weights = prunable_weights(net)
    params = {k: v.detach() for k, v in net.named_parameters()}
    moved = {k: (weights[k].detach() + shift[k]).requires_grad_() for k in weights}
    params.update(moved)
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    loss = sum(
        nn.functional.cross_entropy(
            functional_call(net.train(), {**params, **buffers}, (x,)) / TEMPERATURE, y
        )
        for x, y in data
    )
    return dict(zip(moved, torch.autograd.grad(loss, list(moved.values())), strict=True))


def test_hg_equals_a_finite_difference_of_gradients() -> None:
    """Hg ≈ (∇L(θ + εg) - ∇L(θ - εg)) / 2ε, central difference along g = ∇L."""
    net, data = tiny_net(), batches(2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hg = hessian_gradient_product(net, data, n_batches=2)
    zero = {k: torch.zeros_like(w) for k, w in prunable_weights(net).items()}
    g = grad_at(net, zero, data)
    eps = 1e-5 / max(float(v.abs().max()) for v in g.values())
    plus = grad_at(net, {k: eps * v for k, v in g.items()}, data)
    minus = grad_at(net, {k: -eps * v for k, v in g.items()}, data)
    for k in hg:
        fd = (plus[k] - minus[k]) / (2 * eps)
        assert torch.allclose(hg[k], fd, rtol=1e-5, atol=1e-6 * float(fd.abs().max())), k
        assert float(hg[k].abs().max()) > 0, k
    for k, v in net.state_dict().items():  # BN statistics restored, weights untouched
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in net.parameters())


def test_hg_reads_only_n_batches() -> None:
    net, data = tiny_net(), batches(3)
    two = hessian_gradient_product(net, data, n_batches=2)
    same = hessian_gradient_product(net, data[:2], n_batches=5)
    assert all(torch.allclose(two[k], same[k]) for k in two)


def test_grasp_keeps_the_highest_theta_hg_and_removes_large_negative_ones() -> None:
    """The paper removes the top of S(-θ) = -θ ⊙ Hg: kept weights have the highest θ ⊙ Hg."""
    net, data = tiny_net(), batches(1)
    scores = grasp_scores(net, data, 1)
    hg = hessian_gradient_product(net, data, 1)
    w = prunable_weights(net)
    for k in w:
        assert torch.equal(scores[k], w[k].detach() * hg[k])
    result = prune(
        net, "grasp", 0.3, data, scope="global", grasp_samples="batch", grasp_linear="keep"
    )
    s = torch.cat([scores[k].flatten() for k in scores])
    m = torch.cat([result.mask[k].flatten() for k in scores])
    assert float(s[m].min()) >= float(s[~m].max())
    assert float(s.min()) < 0 and not bool(m[s.argmin()])  # most negative θ·Hg goes first
    by_abs = prune(net, "magnitude", 0.3).mask  # not just large weights, and not |θ ⊙ Hg|
    assert not all(torch.equal(by_abs[k], result.mask[k]) for k in by_abs)
    top_abs = s.abs() >= s.abs().kthvalue(s.numel() - int(m.sum()) + 1).values
    assert not torch.equal(top_abs, m)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_grasp_exact_budget_and_invariants(scope: str, train_batches) -> None:
    net = build_model("vgg16", 10, 1, width=0.125)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = prune(net, "grasp", 0.1, train_batches(), scope=scope)
    assert list(result.mask) == list(prunable_weights(net))
    assert result.method == "grasp" and result.budget == "exact"
    if scope == "global":
        assert abs(result.kept - 0.1 * result.total) <= 1
    else:
        for row in result.layers:
            assert abs(row["kept"] - max(1.0, 0.1 * row["params"])) <= 1, row
        assert not result.collapsed_layers
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_grasp_needs_batches() -> None:
    from ecs_core.config import ConfigError

    with pytest.raises(ConfigError, match="grasp needs batches"):
        prune(tiny_net(), "grasp", 0.1)


def test_grasp_end_to_end_prunes_at_initialisation(tmp_path, small_digits) -> None:
    from ecs_core import events as ev
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import run

    cfg = RunConfig(method="grasp", density=0.1, width=0.125, epochs=1, max_batches=1,
                    batch_size=8, quantize=False, device="cpu", runs_dir=str(tmp_path))  # fmt: skip
    events = list(run(cfg))
    kinds = [e.kind for e in events]
    assert kinds.index("pruned") < kinds.index("epoch_end")  # no warm-up: pruned at init
    pruned = next(e for e in events if isinstance(e, ev.Pruned))
    assert pruned.method == "grasp" and abs(pruned.kept - 0.1 * pruned.total) <= 1
    assert events[-1].status == "finished"


@pytest.mark.parametrize("model", ["resnet18", "resnet50", "vgg19"])
def test_grasp_on_residual_and_deep_models(model: str, train_batches) -> None:
    net = build_model(model, 10, 1, width=0.125)
    result = prune(net, "grasp", 0.05, train_batches(), scope="global")
    assert abs(result.kept - 0.05 * result.total) <= 1
    assert list(result.mask) == list(prunable_weights(net))
