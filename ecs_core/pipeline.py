"""`run(config, store, stop)`: the one place that orders the stages of a run.

    1) validate the config, load the data, build the model (errors here leave nothing on disk)
    2) warm-up epochs (ECS, magnitude), or none (SNIP, GraSP, SynFlow, random: at init)
    3) prune: score, then mask; report density per layer; refuse layer collapse
    4) train the remaining epochs with the mask enforced after every step
       (IMP, `imp.imp_rounds`: 2-4 become rounds of train, prune, rewind)
    5) quantize and export (weight sharing, int8, compressed file), when asked
When a method prunes is its spec's (`registry.PrunerSpec.when`); the stages are `stages.py`,
plain generators of events. `_run` is the one loop over them: each event is appended to
events.jsonl, folded into the summary and yielded, in that order, as it happens.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ecs_core import distributed, trust
from ecs_core import events as ev
from ecs_core.checkpoint import ResumeError, TrainState, check_resumable
from ecs_core.config import RunConfig
from ecs_core.context import Context, StopFlag, Stopped
from ecs_core.data import load_dataset, make_batches
from ecs_core.distributed import Runtime
from ecs_core.imp import imp_rounds
from ecs_core.models import build_model, prunable_weights
from ecs_core.prune.distribution import LayerBudget
from ecs_core.prune.dst import schedule as dst_schedule
from ecs_core.prune.mask import layer_report
from ecs_core.runfiles import recorded_status
from ecs_core.stages import (
    apply_result,
    emitter,
    epochs,
    prune_stage,
    resume_smaller,
    stage,
    train_dense,
)
from ecs_core.store import RunStore, StoreError
from ecs_core.train import evaluate, model_memory_format, optimizer_for


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device cpu"
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare(
    config: RunConfig, store: RunStore | None = None, runtime: Runtime | None = None
) -> Context:
    """Steps that can fail on bad input, before anything is written (data, model, device).
    `runtime`: the process group the run is one rank of (None: a single process)."""
    rt = runtime if runtime is not None else Runtime(resolve_device(config.device))
    device = rt.device  # DDP: this rank's device
    seed_everything(config.seed)
    data = load_dataset(config.dataset, config.data_dir, config.download)
    where = str(store.path / "config.json") if store is not None else "the run's config"
    model = build_model(config.model, data.num_classes, data.in_channels, config.width, where)
    model = model.to(device)
    model = model.to(memory_format=model_memory_format(device, model))
    if config.structure == "channel":  # a model the tracer cannot follow: one line, nothing written
        from ecs_core.prune.channels import channel_graph

        channel_graph(model, tuple(data.train_x.shape[1:]))
    rt.seed_rank(config.seed)  # DDP: per-rank seed after the (shared) model init
    train_b = make_batches(
        data.train_x, data.train_y, data.mean, data.std, config.batch_size, True, data.flip,
        device, config.max_batches,
    )  # fmt: skip
    train_b = rt.shard(train_b, config.batch_size)  # DDP: this rank's slices
    test_b = make_batches(data.test_x, data.test_y, data.mean, data.std, 512, False, False, device)
    opt, sched = optimizer_for(config, model)
    # DDP: only rank 0 creates and writes the run directory
    store = rt.create_store(config) if store is None else rt.rank_store(store)
    state = TrainState(model, opt, sched, torch.Generator().manual_seed(config.seed))
    state.dst = dst_schedule(config, len(train_b))  # SET, RigL: the mask moves in training
    ctx = Context(config, device, data, train_b, test_b, store, rt, state)
    ctx.ddp = rt.wrap(model)  # DDP: the wrapper training steps go through
    return ctx


def run(
    config: RunConfig,
    store: RunStore | None = None,
    stop: StopFlag | None = None,
    resume: bool = False,
    runtime: Runtime | None = None,
) -> Iterator[ev.Event]:
    """Run a whole experiment, yielding events. Re-raises the error after a `RunFailed` event.

    `store`: an existing run directory to run in (None: a new one under `config.runs_dir`);
    `resume`: continue it from its last checkpoint. One process per directory: it is locked
    before it is read, and `RunInUse` (nothing written) says another process holds it. What
    the directory holds is read again under the lock, so a run another process finished since
    the caller looked yields nothing, and one it started is resumed rather than overwritten.
    `runtime`: the process group (None: `distributed.join` reads torchrun's environment, and
    the group it joins is left at the end).
    """
    config = config.validate()
    if resume and store is None:
        raise ResumeError("resume needs the run directory to continue")
    if not resume:  # a new run's config is the caller's choice; a resumed one came from a file
        trust.own(config.model)
    ctx, joined = None, None
    try:
        rank = distributed.env_rank() if runtime is None else runtime.rank
        if store is not None and rank == 0:  # DDP: rank 0 locks for every rank
            store.lock()
            if recorded_status(store.path) == "finished":
                return
            resume = resume or (store.path / "config.json").is_file()
        if resume:
            check_resumable(store, config)  # type: ignore[arg-type]
        if runtime is None:  # DDP: the group torchrun describes, or one process
            runtime = joined = distributed.join(resolve_device(config.device))
        if config.distribution_from and not resume:  # refused before anything is written
            LayerBudget.from_run(config.distribution_from)
        ctx = prepare(config, store, runtime)
        ctx.store.lock()  # a directory made just now by `prepare`; a no-op for `store`
        if resume:  # the last checkpoint, if the run got as far as one
            ctx.summary = ctx.state.restore(ctx.store, ctx.device) or ctx.summary
        events = _run(ctx, stop)
        if config.tensorboard and runtime.is_main():  # DDP: rank 0 logs the events
            from ecs_core.tboard import logged

            events = logged(events, config.tensorboard)
        yield from events
    finally:
        if ctx is not None and ctx.store is not store:
            ctx.store.close()
        if store is not None:
            store.close()  # releases the lock
        if joined is not None:
            joined.close()  # DDP: leave the group we joined


def _run(ctx: Context, stop: StopFlag | None) -> Iterator[ev.Event]:
    """The run itself, once the directory is ours: the one loop that appends each event the
    stages yield to events.jsonl, folds it into the summary and yields it; the summary is
    written at the end (finished, stopped or failed)."""
    stop = ctx.runtime.agreed(stop)  # DDP: every rank stops at the same batch
    emit = emitter(ctx)
    t0 = time.time()
    quantizing = False  # from here on the model holds shared weights, not the trained ones
    try:
        for event in _stages(ctx, stop):
            quantizing = quantizing or (
                isinstance(event, ev.StageStarted) and event.stage == ev.QUANTIZE
            )
            yield emit(event)
        yield emit(_finish(ctx, "finished", t0))
    except Stopped:
        if not quantizing:  # model.safetensors already holds the trained weights
            _save_model(ctx)
        yield emit(_finish(ctx, "stopped", t0))
    except KeyboardInterrupt:  # a second Ctrl-C: quit at once, but as stopped (resumable)
        ctx.summary.status = "stopped"  # no event: the process is on its way out
        try:
            ctx.store.write_summary(ctx.summary.to_dict())
        except StoreError:
            pass
        raise
    except Exception as exc:
        failed = ev.RunFailed(
            error=type(exc).__name__, message=str(exc), traceback=traceback.format_exc()
        )
        try:
            emit(failed)
        except StoreError:
            ctx.summary.apply(failed)
        try:
            ctx.store.write_summary(ctx.summary.to_dict())
        except StoreError:
            failed = ev.RunFailed(error=type(exc).__name__, message=str(exc))
        yield failed
        raise


def _stages(ctx: Context, stop: StopFlag | None) -> Iterator[ev.Event]:
    """Steps 1-5 as one stream of events (the numbered steps of this module's docstring)."""
    config, st = ctx.config, ctx.state
    yield ev.RunStarted(
        run_dir=str(ctx.store.path),
        config=config.to_dict(),
        device=str(ctx.device),
        params=sum(p.numel() for p in st.model.parameters()),
        train_size=len(ctx.data.train_y),
        test_size=len(ctx.data.test_y),
        resumed_from_epoch=st.epoch,
        layers=None if config.prunes else _dense_layers(st.model),
    )
    resume_smaller(ctx)  # a channel run resumed after its prune trains the smaller model again
    if config.rounds:  # 2-4 as IMP's rounds of train, prune, rewind
        yield from imp_rounds(ctx, stop)
    else:
        yield from _train_and_prune(ctx, stop)
    train_dense(ctx)  # channel runs: what follows training reads the dense (masked) model
    if ctx.summary.test_acc is None:  # no epoch and no mask evaluated the model
        loss, acc = evaluate(st.model, ctx.test, config.precision)
        yield ev.Evaluated(test_acc=acc, test_loss=loss)
    _save_model(ctx)
    if config.quantize and config.prunes and ctx.runtime.is_main():  # 5; DDP: rank 0
        from ecs_core.quant.stage import quantize_stage

        yield from stage(ev.QUANTIZE, 0, quantize_stage(ctx, stop))
    if config.latency and ctx.runtime.is_main():  # DDP: rank 0 measures
        from ecs_core.latency import run_latency

        yield from run_latency(ctx)


def _finish(ctx: Context, status: str, t0: float) -> ev.RunFinished:
    """Write the final summary (finished or stopped) and make the event that says so: the
    event carries the summary it leaves (the fold of every event, this one included)."""
    seconds = time.time() - t0
    final = ctx.summary.copy().apply(ev.RunFinished(status, None, {}, seconds))
    ctx.store.write_summary(final.to_dict())
    return ev.RunFinished(status, final.test_acc, final.to_dict(), seconds)


def _train_and_prune(ctx: Context, stop: StopFlag | None) -> Iterator[ev.Event]:
    """Steps 2-4 of a one-shot method (or none): warm-up, prune, train."""
    cfg, st = ctx.config, ctx.state
    if cfg.prunes and st.mask is None and 0 < cfg.prune_epoch and st.epoch < cfg.epochs:
        until = cfg.prune_epoch
        yield from stage(ev.WARMUP, until - st.epoch, epochs(ctx, until, stop, ev.WARMUP))
    if cfg.prunes and st.mask is None:
        yield from stage(ev.PRUNE, 0, _one_shot(ctx))
    if st.epoch < cfg.epochs:
        yield from stage(ev.TRAIN, cfg.epochs - st.epoch, epochs(ctx, cfg.epochs, stop, ev.TRAIN))


def _one_shot(ctx: Context) -> Iterator[ev.Event]:
    cfg = ctx.config
    result = yield from prune_stage(ctx, cfg.density, cfg.method, cfg.ablate)
    yield from apply_result(ctx, result, cfg.ablate)


def _dense_layers(model: torch.nn.Module) -> list[dict[str, Any]]:
    """The per-layer report of a run that keeps every weight."""
    ones = {k: torch.ones_like(w, dtype=torch.bool) for k, w in prunable_weights(model).items()}
    return layer_report(ones)


def _save_model(ctx: Context) -> None:
    st = ctx.state
    ctx.store.save_tensors("model.safetensors", st.model_state())  # dense-shaped
    if st.dst is not None and st.mask is not None:  # SET, RigL: the mask training ended with
        ctx.store.save_tensors(
            "masks.safetensors", {k: v.to(torch.uint8) for k, v in st.mask.items()}
        )
