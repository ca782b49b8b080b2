"""The stages a run is made of, as plain generators of events: train epochs, prune, and the
stage frame around them. `pipeline.run` orders them (and `imp.imp_rounds` repeats them); each
takes the run's `Context` (its inputs, and the `TrainState` it advances) and yields its events.
They write no event: `pipeline._run` is the one loop that appends each event to events.jsonl
and folds it into the summary (`emitter`) before the stage goes on, so a stage that resumes
after a `yield` sees the summary with that event in it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ecs_core import events as ev
from ecs_core.context import Context, StopFlag, Stopped
from ecs_core.data.loader import Batches
from ecs_core.distributed import full_batches
from ecs_core.models import build_model
from ecs_core.prune import PruneError, PruneResult, prune
from ecs_core.prune.ablate import REINIT_SEED, reinit_weights
from ecs_core.prune.mask import Mask
from ecs_core.train import Step, evaluate, model_memory_format, optimizer_for, train_epoch

PROGRESS_EVERY_S = 0.25  # throttle batch_progress events (the TUI redraws slower anyway)
Emit = Callable[[ev.Event], ev.Event]


def emitter(ctx: Context) -> Emit:
    """`emit(event)`: append the event to the run's events.jsonl and fold it into the run's
    summary (`Summary.apply`); the one way an event leaves the engine (`pipeline._run`)."""

    def emit(event: ev.Event) -> ev.Event:
        ctx.store.append_event(event)
        ctx.summary.apply(event)
        return event

    return emit


def stage(name: str, epochs: int, body: Iterator[ev.Event], **where: int) -> Any:
    """Wrap a stage body in stage_started / stage_finished events; return the body's result.
    `where`: IMP's `round` and `rounds`, carried by the stage_started event."""
    t = time.time()
    yield ev.StageStarted(stage=name, epochs=epochs, **where)
    result = yield from body
    yield ev.StageFinished(stage=name, seconds=time.time() - t)
    return result


def epochs(ctx: Context, until: int, stop: StopFlag | None, name: str) -> Iterator[ev.Event]:
    """Train until `state.epoch == until` (epochs count on over the whole run, IMP rounds too),
    with an epoch_end event, and a checkpoint every `checkpoint_every` epochs and at the end
    of a training stage."""
    cfg, st = ctx.config, ctx.state
    while st.epoch < until:
        epoch = st.epoch + 1
        lr = st.optimizer.param_groups[0]["lr"]
        t = time.time()
        step = yield from _batches(ctx, epoch, stop, name)
        st.scheduler.step()
        step = ctx.runtime.reduce_step(step)  # DDP: epoch totals over all ranks
        ctx.runtime.sync_buffers(st.model)  # DDP: rank 0's batch-norm statistics everywhere
        test_loss, test_acc = evaluate(st.model, ctx.test, cfg.precision)
        seconds = time.time() - t
        st.epoch = epoch
        train_loss = step.loss if step else float("nan")
        train_acc = step.acc if step else 0.0
        best = test_acc > st.best_acc
        st.best_acc = max(st.best_acc, test_acc)
        yield ev.EpochEnd(
            stage=name, epoch=epoch, epochs=cfg.total_epochs, train_loss=train_loss,
            train_acc=train_acc, test_loss=test_loss, test_acc=test_acc, lr=lr,
            seconds=seconds, img_per_s=(step.seen if step else 0) / max(1e-9, seconds),
            density=ctx.summary.get("density", 1.0), round=st.round,
        )  # fmt: skip
        if epoch % cfg.checkpoint_every == 0 or (epoch == until and name == ev.TRAIN):
            path = ctx.save_checkpoint(best=best)
            yield ev.CheckpointSaved(path=str(path), epoch=epoch, best=best)
        if stop is not None and stop.is_set():
            raise Stopped


def _batches(ctx: Context, epoch: int, stop: StopFlag | None, name: str) -> Any:
    """One epoch's optimizer steps, with throttled batch_progress events; the last step."""
    st, cfg = ctx.state, ctx.config
    net = ctx.ddp if ctx.ddp is not None else st.model  # DDP: train through the wrapper
    steps = train_epoch(
        net, ctx.train, st.optimizer, st.generator, st.enforcer, epoch, cfg.precision
    )
    told = getattr(st.enforcer, "take_events", None)  # SET, RigL: when the mask moved
    moves = (lambda: told(epoch)) if told is not None else list
    return (yield from progress(steps, name, epoch, cfg.total_epochs, stopper(stop), moves))


def progress(
    steps: Iterator[Step], name: str, epoch: int, epochs: int, check: Callable,
    moves: Callable[[], list[ev.Event]] = list,
) -> Any:  # fmt: skip
    """Drive one epoch's steps (training, or the quantize stage's centroid fine-tuning):
    a batch_progress event at most every PROGRESS_EVERY_S and at the last batch, the events
    `moves()` returns (mask updates) after each step, `check()` (which raises `Stopped` on a
    stop request) after every step; returns the last step."""
    t, last, step = time.time(), 0.0, None
    for step in steps:
        now = time.time()
        if now - last >= PROGRESS_EVERY_S or step.batch == step.batches:
            last = now
            yield ev.BatchProgress(
                stage=name, epoch=epoch, epochs=epochs, batch=step.batch,
                batches=step.batches, loss=step.loss,
                img_per_s=step.seen / max(1e-9, now - t), elapsed=now - t,
            )  # fmt: skip
        yield from moves()
        check()
    return step


def stopper(stop: StopFlag | None) -> Callable[[], None]:
    """`check()`: raises `Stopped` once `stop` is set (None: never)."""

    def check() -> None:
        if stop is not None and stop.is_set():
            raise Stopped

    return check


def prune_stage(
    ctx: Context, density: float, method: str, ablate: str, keep: Mask | None = None,
    **where: int,
) -> Iterator[ev.Event]:  # fmt: skip
    """Score, mask, report; refuse layer collapse; apply the mask (re-initialising the kept
    weights for `--ablate reinit`); save masks.safetensors and a checkpoint.

    One-shot methods call this once with the config's own method; IMP once per round, with
    magnitude scores among the weights in `keep` (`where`: round, rounds)."""
    cfg = ctx.config
    score_gen = torch.Generator().manual_seed(cfg.seed + 1)
    scoring = _ScoringBatches(full_batches(ctx.train), score_gen)  # DDP: the global batches

    def score() -> PruneResult:
        return prune(ctx.state.model, method, density, scoring, keep, cfg, ablate=ablate)

    # DDP: rank 0 scores on the global batches and broadcasts, so every rank holds one mask
    result = ctx.runtime.on_main(score)
    yield ev.Pruned(**_prune_fields(result), **_channel_fields(ctx, result), **where)
    yield from _check_result(ctx, result, density)
    return result


def apply_result(
    ctx: Context, result: PruneResult, ablate: str, evaluate_now: bool = True
) -> Iterator[ev.Event]:
    """The mask in force from now on (after any rewind), and its model evaluated and saved:
    masks and a checkpoint (its summary with the event folded in), then the mask_applied event.

    `evaluate_now=False` (IMP's rounds, which always train next): no test pass on the pruned,
    untrained model; it would be most of the work between rounds (a full test set), and the
    round's result is its accuracy after training."""
    cfg, st = ctx.config, ctx.state
    if ablate == "reinit":  # a fresh draw of the kept weights (same init, another seed)
        d = ctx.data

        def fresh() -> torch.nn.Module:
            return build_model(cfg.model, d.num_classes, d.in_channels, cfg.width)

        reinit_weights(st.model, fresh, cfg.seed + REINIT_SEED)  # DDP: same draw on every rank
    st.apply_mask(result.mask)
    applied = ev.MaskApplied(round=st.round)  # IMP: the last round's numbers are not this
    if evaluate_now:  # model's, and none are until its first epoch ends
        # The pruned model's own accuracy (before any training with the mask): reported, and
        # the run's result if no epoch follows.
        loss, acc = evaluate(st.model, ctx.test, cfg.precision)
        applied = ev.MaskApplied(test_acc=acc, test_loss=loss, round=st.round)
    st.best_acc = -1.0  # as the summary's best_test_acc: the dense training's is not this one's
    ctx.store.save_tensors(
        "masks.safetensors", {k: v.to(torch.uint8) for k, v in result.mask.items()}
    )
    if result.channels is not None:
        ctx.store.write_channels(result.channels)
    # saved before the event leaves, so whoever sees mask_applied can resume from the mask
    ctx.save_checkpoint(summary=ctx.summary.copy().apply(applied))
    yield applied
    if result.channels is not None:
        yield train_smaller(ctx, result.channels)


def train_smaller(ctx: Context, plan: dict[str, list[int]]) -> ev.Log:
    """Channel runs, from the prune on: train the dense model shrunk by `plan` (the same
    function as the masked dense model, at the smaller model's speed); what is saved stays
    dense-shaped (`TrainState.compact`). The Log event says how much smaller it is."""
    from ecs_core.prune.compact import IndexMap, shrink

    st, shape = ctx.state, input_shape(ctx)
    small = shrink(copy.deepcopy(st.model), plan, shape)
    small = small.to(memory_format=model_memory_format(ctx.device, small))
    dense = sum(p.numel() for p in st.model.parameters())
    st.compact(small, IndexMap.of(st.model, plan, shape), lambda m: optimizer_for(ctx.config, m))
    ctx.ddp = ctx.runtime.wrap(small)  # DDP: the wrapper of the model that trains now
    kept = sum(p.numel() for p in small.parameters())
    macs, dense_macs = ctx.summary.get("macs"), ctx.summary.get("dense_macs")
    fewer = f" (MACs {dense_macs / macs:.1f}x fewer)" if macs and dense_macs else ""
    return ev.Log(message=f"training the smaller model: {kept:,} of {dense:,} parameters{fewer}")


def resume_smaller(ctx: Context) -> None:
    """A channel run resumed with a mask trains the smaller model again: its plan is the
    channels the checkpoint's own mask removed (`channels.removed_in`)."""
    st = ctx.state
    if ctx.config.structure != "channel" or st.mask is None or st.dense is not None:
        return
    from ecs_core.prune.channels import channel_graph, kept_indices, removed_in

    removed = removed_in(channel_graph(st.model, input_shape(ctx)), st.mask)
    train_smaller(ctx, kept_indices({k: ~v for k, v in removed.items()}))


def train_dense(ctx: Context) -> None:
    """Back to the dense (masked) model, the smaller one's values in it (`TrainState.expand`):
    for IMP's next prune and rewind, and for everything after training."""
    if ctx.state.dense is not None:
        ctx.state.expand()
        ctx.ddp = ctx.runtime.wrap(ctx.state.model)


def _check_result(ctx: Context, result: PruneResult, density: float) -> Iterator[ev.Event]:
    cfg = ctx.config
    if result.collapsed_layers:
        names = ", ".join(result.collapsed_layers)
        yield ev.Log(message=f"layer collapse: no weights kept in {names}", level="error")
        if not cfg.allow_collapse:
            raise PruneError(
                f"pruning to density {density:g} ({cfg.scope} scope) leaves no weights in "
                f"{names}; use --scope layer, a higher --density, or --allow-collapse"
            )
    if cfg.dense_layers != "none":
        yield ev.Log(
            message=f"--keep-dense {cfg.dense_layers}: that layer kept 100%, the other layers "
            f"at {density:.2%}; {result.density:.2%} of all prunable weights kept",
            level="info",
        )
    if result.budget == "union":
        yield ev.Log(
            message=f"ECS union budget kept {result.density:.2%} of weights for a target "
            f"of {cfg.density:.2%}; compare with other methods at the achieved density",
            level="warning",
        )


def _prune_fields(r: PruneResult) -> dict[str, Any]:
    return dict(
        method=r.method, scope=r.scope, budget=r.budget, target_density=r.target_density,
        density=r.density, kept=r.kept, total=r.total, layers=r.layers,
        collapsed_layers=r.collapsed_layers, overlap=r.overlap, seconds=r.seconds,
        ablate=r.ablate, distribution=r.distribution,
    )  # fmt: skip


def _channel_fields(ctx: Context, r: PruneResult) -> dict[str, Any]:
    """Structure, kept channels per group and MACs of the smaller model (and the dense one)."""
    if r.channels is None:
        return {"structure": r.structure}
    from ecs_core.prune.compact import macs_and_params, shrink

    shape = input_shape(ctx)
    dense = copy.deepcopy(ctx.state.model).to("cpu")
    macs = macs_and_params(dense, shape)[0]
    small = shrink(dense, r.channels, shape)
    return dict(
        structure=r.structure, channels={k: len(v) for k, v in r.channels.items()},
        macs=macs_and_params(small, shape)[0], dense_macs=macs,
    )  # fmt: skip


def input_shape(ctx: Context) -> tuple[int, ...]:
    """One image's shape (channels, height, width) in the run's dataset."""
    return tuple(ctx.data.train_x.shape[1:])


@dataclass
class _ScoringBatches:
    """The training batches (augmented), drawn from a generator of their own."""

    batches: Batches
    generator: torch.Generator

    def __iter__(self) -> Iterator:
        return self.batches.epoch(self.generator)


__all__ = ["apply_result", "emitter", "epochs", "prune_stage", "stage"]
