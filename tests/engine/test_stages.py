"""The stage contract: a stage is a plain generator of events that writes none of them (the
pipeline's one loop appends and folds), and `checkpoint.TrainState` saves, restores and
rewinds the whole training state."""

from __future__ import annotations

from pathlib import Path

import torch

from ecs_core import events as ev
from ecs_core.config import RunConfig
from ecs_core.pipeline import prepare
from ecs_core.stages import emitter, epochs, stage


def _config(tmp_path: Path, **kw: object) -> RunConfig:
    base = dict(
        model="vgg16", dataset="digits", width=0.125, epochs=2, max_batches=2, batch_size=16,
        device="cpu", download=False, runs_dir=str(tmp_path), method="magnitude",
    )  # fmt: skip
    base.update(kw)
    return RunConfig(**base).validate()  # type: ignore[arg-type]


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_stage_yields_its_events_and_writes_none(tmp_path: Path) -> None:
    ctx = prepare(_config(tmp_path))
    try:
        out = list(stage("train", 1, epochs(ctx, 1, None, "train")))
        kinds = [e.kind for e in out]
        assert kinds[0] == "stage_started" and kinds[-1] == "stage_finished"
        assert "epoch_end" in kinds and "checkpoint_saved" in kinds
        assert list(ctx.store.read_events()) == []  # nothing appended by the stage itself
        assert ctx.summary.epochs_done is None  # and nothing folded
        assert ctx.state.epoch == 1
        emit = emitter(ctx)
        for e in out:  # what the pipeline's loop does with each
            emit(e)
        assert [e.kind for e in ctx.store.read_events()] == kinds
        assert ctx.summary.test_acc == next(e for e in out if isinstance(e, ev.EpochEnd)).test_acc
    finally:
        ctx.store.close()


def test_train_state_restores_what_it_saved(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    ctx = prepare(cfg)
    try:
        for e in stage("train", 1, epochs(ctx, 1, None, "train")):
            ctx.summary.apply(e)
        ctx.state.apply_mask({k: torch.rand_like(w) > 0.5 for k, w in _weights(ctx).items()})
        ctx.state.best_acc, ctx.state.round = 0.25, 3
        ctx.save_checkpoint()
        saved = ctx.state
        fresh = prepare(cfg, ctx.store)
        summary = fresh.state.restore(ctx.store, fresh.device)
        st = fresh.state
        assert summary is not None and summary.test_acc == ctx.summary.test_acc
        assert summary.run_dir == str(ctx.store.path)
        assert (st.epoch, st.round, st.best_acc) == (1, 3, 0.25)
        assert _same_tensors(st.model.state_dict(), saved.model.state_dict())
        assert st.mask is not None and _same_tensors(st.mask, saved.mask or {})
        assert st.enforcer is not None
        assert torch.equal(st.generator.get_state(), saved.generator.get_state())
        assert (
            st.optimizer.state_dict()["state"].keys()
            == saved.optimizer.state_dict()["state"].keys()
        )
        assert st.scheduler.state_dict() == saved.scheduler.state_dict()
    finally:
        ctx.store.close()


def test_a_run_that_saved_nothing_restores_nothing(tmp_path: Path) -> None:
    ctx = prepare(_config(tmp_path))
    try:
        before = {k: v.clone() for k, v in ctx.state.model.state_dict().items()}
        assert ctx.state.restore(ctx.store, ctx.device) is None
        assert ctx.state.epoch == 0 and _same_tensors(before, ctx.state.model.state_dict())
    finally:
        ctx.store.close()


def test_rewind_puts_back_the_weights_and_keeps_the_count(tmp_path: Path) -> None:
    ctx = prepare(_config(tmp_path))
    try:
        st = ctx.state
        st.save_rewind(ctx.store)
        at_save = {k: v.clone() for k, v in st.model.state_dict().items()}
        list(epochs(ctx, 1, None, "train"))
        assert not _same_tensors(at_save, st.model.state_dict())
        st.rewind(ctx.store)
        assert _same_tensors(at_save, st.model.state_dict()) and st.epoch == 1
    finally:
        ctx.store.close()


def _weights(ctx) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    from ecs_core.models import prunable_weights

    return prunable_weights(ctx.state.model)


def test_the_checkpoint_holds_the_mask_before_mask_applied_is_seen(tmp_path: Path) -> None:
    """A consumer that stops at mask_applied (a second Ctrl-C) leaves a run that resumes from
    the mask, not one that prunes again."""
    import json

    from ecs_core.pipeline import run
    from ecs_core.store import RunStore

    seen = None
    for e in run(_config(tmp_path, method="snip", epochs=1)):
        if isinstance(e, ev.RunStarted):
            store = RunStore(e.run_dir)
        if isinstance(e, ev.MaskApplied):
            seen = store.load_checkpoint("last.pt")
            break
    assert seen is not None and seen["mask"] is not None and seen["epoch"] == 0
    assert json.loads(seen["summary_json"])["pruned_test_acc"] == e.test_acc
