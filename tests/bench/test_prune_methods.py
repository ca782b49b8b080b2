"""Synaptic-Flow's pruners as re-implemented for the bench, against ours on tiny models: the
same masks (the bench's check), the reference's own rules, and the quick bench pass."""

from __future__ import annotations

import pytest
import torch

from bench.prune_methods import agreement, model_and_batch, ours_run, reference_run, rows
from bench.reference import synaptic_flow as sf
from ecs_core.prune.mask import keep_count


@pytest.mark.parametrize("model", ["vgg16", "resnet50"])
@pytest.mark.parametrize("method", ["SNIP", "GraSP"])
def test_reference_single_shot_masks_equal_ours(model: str, method: str) -> None:
    net, batches = model_and_batch(model, 0.0625, 8)
    ref, ties, _ = reference_run(method, sf.masked_model(net), batches)
    diff, beyond, _ = agreement(ref, ties, ours_run(method, net, batches))
    assert beyond == 0 and diff == 0


@pytest.mark.parametrize("model", ["vgg16", "resnet50"])
def test_reference_synflow_in_float64_gives_our_iterative_mask(model: str) -> None:
    net, batches = model_and_batch(model, 0.0625, 2)
    ref, ties, nonfinite = reference_run("SynFlow", sf.masked_model(net), batches, 5, True)
    ours = ours_run("SynFlow", net, batches, 5)
    assert agreement(ref, ties, ours)[:2] == (0, 0) and nonfinite == 0
    total = sum(m.numel() for m in ours.values())
    assert sum(int(m.sum()) for m in ref.values()) == keep_count(total, 0.05)


def test_reference_synflow_restores_the_signed_weights() -> None:
    """linearise/nonlinearise: after a round every weight, BN parameter and statistic is back."""
    net, batches = model_and_batch("vgg16", 0.0625, 2)
    masked = sf.masked_model(net)
    before = {k: v.clone() for k, v in masked.state_dict().items() if "mask" not in k}
    pruner = sf.SynFlow(sf.masked_parameters(masked))
    sf.prune_loop(masked, pruner, batches, [0.5])
    after = masked.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    kept, total = pruner.stats()
    assert kept == total - int(0.5 * total)


def test_masked_model_computes_what_the_model_does() -> None:
    net, batches = model_and_batch("resnet50", 0.0625, 4)
    masked = sf.masked_model(net)
    net.eval(), masked.eval()
    x = batches[0][0]
    assert torch.equal(net(x), masked(x))
    layers = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len(list(sf.masked_parameters(masked))) == len(layers)


@pytest.mark.parametrize("n,k", [(1000, 50), (14_977_728, 748_886), (23_467_712, 1), (777, 776)])
def test_density_keeping_makes_the_kthvalue_mask_keep_exactly_k(n: int, k: int) -> None:
    d = sf.density_keeping(n, k)
    assert n - int((1.0 - d) * n) == k


def test_reference_global_mask_removes_every_tie_at_the_threshold() -> None:
    """Why the bench compares "up to ties": equal scores at the threshold all go."""
    w = torch.nn.Parameter(torch.ones(6))
    mask = torch.ones(6)
    pruner = sf.Pruner([(mask, w)])
    pruner.scores[id(w)] = torch.tensor([1.0, 2.0, 2.0, 2.0, 3.0, 4.0])
    pruner.global_mask(0.5)  # k = 3: threshold 2.0, and all three 2.0s go
    assert mask.tolist() == [0, 0, 0, 0, 1, 1]


def test_quick_bench_rows_run_and_agree() -> None:
    out = rows(quick=True)
    assert [r["what"].split(",")[0] for r in out] == [
        "SNIP mask", "GraSP mask", "SynFlow", "SynFlow",
    ]  # fmt: skip
    assert not any(r.get("check_failed") for r in out)
    assert all(r["reference_s"] > 0 and r["ours_s"] > 0 for r in out)
    assert "MiB ours vs" in out[1]["note"]
