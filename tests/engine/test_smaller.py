"""Channel runs train the smaller model: the same training as the masked dense model, the
optimizer on the smaller parameters, IMP's rounds on it, everything saved dense-shaped."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from ecs_core import events as ev
from ecs_core.config import RunConfig
from ecs_core.pipeline import prepare, run
from ecs_core.prune.mask import MaskEnforcer
from ecs_core.stages import apply_result, epochs, prune_stage
from ecs_core.train import train_epoch
from tests.tiny import tiny


def _drain(gen: Iterator[ev.Event]) -> Any:
    """Run a stage generator to its end; its return value."""
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value


def _pruned(tmp_path, model: str):
    """A channel run's context right after its prune (ECS, after a warm-up epoch, so the
    momentum buffers hold the warm-up's history)."""
    cfg = RunConfig(
        **tiny(model=model, method="ecs", structure="channel", density=0.3, epochs=2,
               max_batches=3, runs_dir=str(tmp_path))
    ).validate()  # fmt: skip
    ctx = prepare(cfg)
    _drain(epochs(ctx, 1, None, ev.WARMUP))
    result = _drain(prune_stage(ctx, cfg.density, cfg.method, cfg.ablate))
    _drain(apply_result(ctx, result, cfg.ablate))
    return ctx


def _momentum(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> dict:
    return {n: optimizer.state[p]["momentum_buffer"] for n, p in model.named_parameters()}


class _Double(torch.nn.Module):
    """`model` in float64, fed the float32 batches."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.double())


def _double(optimizer: torch.optim.Optimizer) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                state[k] = v.double()


@pytest.mark.parametrize("model", ["vgg16", "resnet18"])
def test_an_epoch_of_the_smaller_model_is_an_epoch_of_the_masked_dense_one(tmp_path, model):
    """From the state right after the prune: one epoch on the smaller model and one on the
    masked dense model (mask enforced) end with the same weights, batch-norm statistics and
    momentum; the optimizer holds the smaller parameters only, with the warm-up's momentum
    sliced to them. In float64, so the tolerance is tight and no CPU's rounding matters: in
    float32 the two differ by rounding (other kernel shapes), which a few steps at lr 0.1
    amplify past any fixed tolerance (1e-6 after 3 steps, 1e-3 after 4 on random data)."""
    ctx = _pruned(tmp_path, model)
    st, dense = ctx.state, ctx.state.dense
    assert dense is not None and st.enforcer is None
    held = [p for g in st.optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in held} == {id(p) for p in st.model.parameters()}
    small_n = sum(p.numel() for p in held)
    assert small_n < sum(p.numel() for p in dense.model.parameters()) / 2
    assert st.scheduler.state_dict() == dense.scheduler.state_dict()  # the schedule goes on
    assert st.optimizer.param_groups[0]["lr"] == dense.optimizer.param_groups[0]["lr"]
    index = dense.index
    # the twin: the masked dense model, optimizer and batch order as they were at the prune
    twin, opt = copy.deepcopy((dense.model, dense.optimizer))
    order = torch.Generator()
    order.set_state(st.generator.get_state())
    history = index.slice(_momentum(opt, twin))  # the warm-up's, at the kept channels
    assert sum(float(history[n].abs().sum()) for n, _ in st.model.named_parameters()) > 0
    for n, b in _momentum(st.optimizer, st.model).items():
        assert torch.equal(b, history[n]), n
    small, twin64 = _Double(st.model), _Double(twin)
    _double(st.optimizer), _double(opt)
    enforcer = MaskEnforcer(twin, st.mask)
    for _ in train_epoch(small, ctx.train, st.optimizer, st.generator):
        pass
    for _ in train_epoch(twin64, ctx.train, opt, order, enforcer):
        pass
    close = dict(rtol=1e-9, atol=1e-12)
    got, want = st.model.state_dict(), index.slice(twin.state_dict())
    assert got.keys() == want.keys()
    for k in got:
        torch.testing.assert_close(got[k], want[k], **close, msg=k)
    moved = index.slice(_momentum(opt, twin))
    for n, b in _momentum(st.optimizer, st.model).items():
        torch.testing.assert_close(b, moved[n], **close, msg=n)
    dense.model.double()  # what the smaller model expands into, in float64 too
    full, masked = st.model_state(), twin.state_dict()  # dense-shaped: removed weights are 0
    for k, m in st.mask.items():
        assert full[k].shape == m.shape and not full[k][~m].any()
        torch.testing.assert_close(full[k], masked[k], **close, msg=k)


def test_expanding_and_slicing_give_back_the_smaller_model_exactly(tmp_path):
    """slice(expand(x)) == x, weights and momentum, what resume relies on; expanded, the
    mask is enforced on the dense model again."""
    ctx = _pruned(tmp_path, "resnet18")
    st, index = ctx.state, ctx.state.dense.index
    for _ in train_epoch(st.model, ctx.train, st.optimizer, st.generator):
        pass
    small = copy.deepcopy(st.model.state_dict())
    moment = copy.deepcopy(_momentum(st.optimizer, st.model))
    st.expand()
    assert st.dense is None and st.enforcer is not None
    again = index.slice(st.model.state_dict())
    for k, v in small.items():
        assert torch.equal(v, again[k]), k
    again = index.slice(_momentum(st.optimizer, st.model))
    for n, v in moment.items():
        assert torch.equal(v, again[n]), n


def test_imp_channel_rounds_train_smaller_models_within_the_last(tmp_path, monkeypatch):
    """IMP with --structure channel: two rounds, each trained on its smaller model (a Log
    event per round), each round's kept channels within the last round's."""
    from ecs_core.store import RunStore

    plans, write = [], RunStore.write_channels
    monkeypatch.setattr(
        RunStore, "write_channels", lambda self, plan: (plans.append(plan), write(self, plan))
    )
    cfg = RunConfig(
        **tiny(method="imp", structure="channel", density=0.3, prune_fraction=0.5, epochs=2,
               rewind_epoch=1, max_batches=2, runs_dir=str(tmp_path))
    )  # fmt: skip
    events = list(run(cfg))
    assert events[-1].status == "finished"
    smaller = [e for e in events if isinstance(e, ev.Log) and "smaller model" in e.message]
    pruned = [e for e in events if isinstance(e, ev.Pruned)]
    assert len(pruned) == len(smaller) == 2
    first, second = plans
    assert all(set(second[k]) <= set(first[k]) for k in first) and second != first
    assert [p.channels for p in pruned] == [{k: len(v) for k, v in p.items()} for p in plans]
    (run_dir,) = list(tmp_path.iterdir())
    assert json.loads((run_dir / "channels.json").read_text()) == second
