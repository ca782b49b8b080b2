"""SET and RigL: what one mask update does, checked against the rule written out here, and the
invariants of training with a moving mask."""

from __future__ import annotations

import math

import pytest
import torch

from ecs_core.config import RunConfig
from ecs_core.models import build_model, prunable_weights
from ecs_core.prune import prune
from ecs_core.prune.distribution import LayerBudget
from ecs_core.prune.dst import DynamicMask, Schedule, schedule
from ecs_core.train import train_epoch


def setup(method: str = "rigl", seed: int = 0, interval: int = 100):
    torch.manual_seed(0)
    net = build_model("vgg16", 10, 1, 0.125)
    mask = prune(net, method, 0.1, seed=seed).mask
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    grow = "gradient" if method == "rigl" else "random"
    enf = DynamicMask(net, mask, opt, Schedule(grow, interval, 0.3, 10_000, seed))
    return net, mask, opt, enf


def one_step(net, opt, enf, batches) -> None:
    """A training step as `train_epoch` takes it, so the momentum buffers exist."""
    x, y = next(iter(batches.epoch(torch.Generator().manual_seed(1))))
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    enf.after_backward()
    opt.step()
    enf.after_step()


def expected(before: torch.Tensor, old: torch.Tensor, score: torch.Tensor, k: int):
    """The paper's update of one layer, by sorting: drop the k smallest |w| of the kept,
    regrow the k highest `score` among the rest."""
    w, kept = before.abs().flatten(), old.flatten()
    kept_idx = kept.nonzero().flatten()
    drop = kept_idx[torch.argsort(w[kept_idx])[:k]]
    after = kept.clone()
    after[drop] = False
    free = (~after).nonzero().flatten()
    grow = free[torch.argsort(score.flatten()[free], descending=True)[:k]]
    after[grow] = True
    return after.view_as(old), grow, drop


def test_the_rigl_mask_starts_random_with_erk_counts() -> None:
    net, mask, _, _ = setup()
    shapes = {k: tuple(w.shape) for k, w in prunable_weights(net).items()}
    assert {k: int(m.sum()) for k, m in mask.items()} == LayerBudget("erk")(shapes, 0.1)


def test_a_rigl_update_drops_the_smallest_and_grows_the_largest_gradients(train_batches):
    net, mask, opt, enf = setup("rigl")
    one_step(net, opt, enf, train_batches())
    params = prunable_weights(net)
    before = {k: p.detach().clone() for k, p in params.items()}
    old = {k: m.clone() for k, m in mask.items()}
    grads = [torch.randn_like(p) for p in params.values()]  # a dense gradient, every entry
    counts = {k: int(m.sum()) for k, m in old.items()}
    moved = enf.update(0.3, grads)
    for (k, p), g in zip(params.items(), grads, strict=True):
        n = math.floor(0.3 * counts[k])
        after, grow, drop = expected(before[k], old[k], g.abs(), n)
        assert torch.equal(mask[k], after), k  # dropped the smallest, grew the largest |g|
        assert int(mask[k].sum()) == counts[k]  # the layer's count, exact
        assert bool((p.detach().flatten()[grow] == 0).all())  # regrown weights start at 0
        buf = opt.state[p]["momentum_buffer"].flatten()
        assert bool((buf[grow] == 0).all()) and bool((buf[~after.flatten()] == 0).all())
        stay = (after & old[k]).flatten().clone()
        stay[grow] = False
        assert torch.equal(p.detach().flatten()[stay], before[k].flatten()[stay])
        assert bool((p.detach()[~after] == 0).all())
        rest = ~after.flatten()  # not chosen: the grown beat every one of these on |g|
        if n and bool(rest.any()):  # (a layer ERK keeps dense has none)
            assert g.abs().flatten()[grow].min() >= g.abs().flatten()[rest].max()
        assert moved.get(k, 0) == int((after & ~old[k]).sum()), k
    assert sum(moved.values()) > 0 and 0 not in moved.values()


def test_set_regrows_at_random_with_the_seed(train_batches) -> None:
    masks = []
    for seed in (0, 0, 1):
        net, mask, opt, enf = setup("set", seed=0)
        enf.generator.manual_seed(seed)
        one_step(net, opt, enf, train_batches())
        before = {k: p.detach().clone() for k, p in prunable_weights(net).items()}
        old = {k: m.clone() for k, m in mask.items()}
        enf.update(0.3)
        for k, m in mask.items():
            n = math.floor(0.3 * int(old[k].sum()))
            _, _, drop = expected(before[k], old[k], torch.zeros_like(before[k]), n)
            survivors = old[k].flatten().clone()  # the drop is SET's too: smallest magnitudes
            survivors[drop] = False
            assert bool(m.flatten()[survivors].all()) and int(m.sum()) == int(old[k].sum())
        masks.append({k: m.clone() for k, m in mask.items()})
    assert all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0])  # same seed, same draw
    assert any(not torch.equal(masks[0][k], masks[2][k]) for k in masks[0])


def test_training_moves_the_mask_on_schedule_and_keeps_every_invariant(train_batches) -> None:
    net, mask, opt, enf = setup("rigl", interval=2)
    counts = {k: int(m.sum()) for k, m in mask.items()}
    start = {k: m.clone() for k, m in mask.items()}
    batches = train_batches(batch_size=16, max_batches=6)
    for _step in train_epoch(net, batches, opt, torch.Generator().manual_seed(0), enf):
        for k, p in prunable_weights(net).items():
            assert bool((p.detach()[~mask[k]] == 0).all())  # removed: 0 after every step
            assert bool((opt.state[p]["momentum_buffer"][~mask[k]] == 0).all())
            assert int(mask[k].sum()) == counts[k]
    events = enf.take_events(epoch=1)
    assert [e.step for e in events] == [2, 4, 6]
    assert all(e.moved > 0 and e.kept == sum(counts.values()) for e in events)
    assert all(e.layers and sum(e.layers.values()) == e.moved for e in events)
    assert all(set(e.layers) <= set(mask) for e in events)
    assert any(not torch.equal(start[k], mask[k]) for k in mask)
    assert enf.take_events(epoch=1) == []


def test_the_schedule_is_rigls() -> None:
    cfg = RunConfig(method="rigl", epochs=4).validate()
    s = schedule(cfg, 100)
    assert s is not None and s.end_step == 300  # none in the last quarter of 400 steps
    assert [t for t in range(1, 401) if s.due(t)] == [100, 200]
    assert s.fraction(0) == pytest.approx(0.3) and s.fraction(150) == pytest.approx(0.15)
    assert schedule(RunConfig(method="snip").validate(), 100) is None
    rigl = RunConfig(method="rigl").validate()
    assert rigl.method_tag == "rigl" and rigl.spread == "erk"  # ERK: its default
    assert RunConfig(method="rigl", distribution="erk").validate() == rigl
    assert RunConfig(method="rigl", distribution="global").validate().method_tag == "rigl-global"
