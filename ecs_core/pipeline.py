"""`run(config, store, stop)`: the one place that orders the stages of a run.

    1) validate the config, load the data, build the model (errors here leave nothing on disk)
    2) warm-up epochs (ECS, magnitude), or none (SNIP, random prune at initialisation)
    3) prune: score, then mask; report density per layer; refuse layer collapse
    4) train the remaining epochs with the mask enforced after every step
    5) quantize and export (weight sharing, int8, compressed file), when asked
Every step is reported as an `Event`; the store appends each one to events.jsonl as it happens.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ecs_core import distributed
from ecs_core import events as ev
from ecs_core.checkpoint import ResumeError, apply_mask, check_resumable, restore, save_checkpoint
from ecs_core.config import RunConfig
from ecs_core.data import ImageData, load_dataset, make_batches
from ecs_core.data.loader import Batches
from ecs_core.models import build_model, prunable_weights
from ecs_core.prune import MaskEnforcer, PruneError, PruneResult, prune
from ecs_core.prune.ablate import REINIT_SEED, reinit_weights
from ecs_core.prune.mask import Mask, layer_report
from ecs_core.store import RunStore, StoreError
from ecs_core.train import evaluate, make_optimizer, model_memory_format, train_epoch

PROGRESS_EVERY_S = 0.25  # throttle batch_progress events (the TUI redraws slower anyway)


class StopFlag(Protocol):
    """Anything with `is_set()`, e.g. `threading.Event`."""

    def is_set(self) -> bool: ...


class Stopped(Exception):
    """Internal: a stop was requested at a batch boundary."""


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


@dataclass
class Context:
    """Everything a run holds while it runs (one per call to `run`)."""

    config: RunConfig
    device: torch.device
    data: ImageData
    model: nn.Module
    train: Batches
    test: Batches
    store: RunStore
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    mask: Mask | None = None
    enforcer: MaskEnforcer | None = None
    epoch: int = 0
    """Epochs completed."""
    best_acc: float = -1.0
    summary: dict[str, Any] = field(default_factory=dict)
    ddp: nn.Module | None = None
    """DDP: the DistributedDataParallel wrapper that training steps go through (None: 1 process)."""


def prepare(config: RunConfig, store: RunStore | None = None) -> Context:
    """Steps that can fail on bad input, before anything is written (data, model, device)."""
    device = distributed.setup(resolve_device(config.device))  # DDP: identity for 1 process
    seed_everything(config.seed)
    data = load_dataset(config.dataset, config.data_dir, config.download)
    model = build_model(config.model, data.num_classes, data.in_channels, config.width).to(device)
    model = model.to(memory_format=model_memory_format(device))
    distributed.seed_rank(config.seed)  # DDP: per-rank seed after the (shared) model init
    train_b = make_batches(
        data.train_x, data.train_y, data.mean, data.std, config.batch_size, True, data.flip,
        device, config.max_batches,
    )  # fmt: skip
    train_b = distributed.shard_batches(train_b, config.batch_size)  # DDP: this rank's slices
    test_b = make_batches(data.test_x, data.test_y, data.mean, data.std, 512, False, False, device)
    opt, sched = make_optimizer(
        model, config.lr, config.momentum, config.weight_decay, config.step_size, config.gamma
    )
    # DDP: only rank 0 creates and writes the run directory
    store = distributed.create_store(config) if store is None else distributed.rank_store(store)
    gen = torch.Generator().manual_seed(config.seed)
    ctx = Context(config, device, data, model, train_b, test_b, store, opt, sched, gen)
    ctx.ddp = distributed.wrap_model(model)
    return ctx


def run(
    config: RunConfig,
    store: RunStore | None = None,
    stop: StopFlag | None = None,
    resume: bool = False,
) -> Iterator[ev.Event]:
    """Run a whole experiment, yielding events. Re-raises the error after a `RunFailed` event.

    `store`: an existing run directory to run in (None: a new one under `config.runs_dir`);
    `resume`: continue it from its last checkpoint. One process per directory: it is locked
    before it is read, and `RunInUse` (nothing written) says another process holds it. What
    the directory holds is read again under the lock, so a run another process finished since
    the caller looked yields nothing, and one it started is resumed rather than overwritten.
    """
    config = config.validate()
    if resume and store is None:
        raise ResumeError("resume needs the run directory to continue")
    ctx = None
    try:
        if store is not None and distributed.env_rank() == 0:  # rank 0 locks for every rank
            store.lock()
            status = store.status()
            if status == "finished":
                return
            resume = resume or status != "new"
        if resume:
            check_resumable(store, config)  # type: ignore[arg-type]
        ctx = prepare(config, store)
        ctx.store.lock()  # a directory made just now by `prepare`; a no-op for `store`
        if resume:
            restore(ctx)
        events = _run(ctx, stop)
        if config.tensorboard and distributed.is_main():  # a consumer of the events, no more
            from ecs_core.tboard import logged

            events = logged(events, config.tensorboard)
        yield from events
    finally:
        if ctx is not None and ctx.store is not store:
            ctx.store.close()
        if store is not None:
            store.close()  # releases the lock
        distributed.teardown()


def _run(ctx: Context, stop: StopFlag | None) -> Iterator[ev.Event]:
    """The run itself, once the directory is ours: events out, summary written at the end."""
    config = ctx.config
    stop = distributed.agreed_stop(stop)  # DDP: every rank stops at the same batch
    emit = _emitter(ctx.store)
    t0 = time.time()
    ctx.summary.update(_base_summary(ctx))
    quantizing = False  # from here on the model holds shared weights, not the trained ones
    try:
        yield emit(
            ev.RunStarted(
                run_dir=str(ctx.store.path),
                config=config.to_dict(),
                device=str(ctx.device),
                params=sum(p.numel() for p in ctx.model.parameters()),
                train_size=len(ctx.data.train_y),
                test_size=len(ctx.data.test_y),
                resumed_from_epoch=ctx.epoch,
            )
        )
        yield from _train_and_prune(ctx, stop, emit)
        _save_model(ctx)
        if config.quantize and config.method != "none" and distributed.is_main():
            from ecs_core.quant.stage import quantize_stage

            quantizing = True
            result = yield from _stage(ctx, "quantize", 0, emit, quantize_stage(ctx, emit, stop))
            ctx.summary.update(result or {})
        yield emit(_finish(ctx, "finished", t0))
    except Stopped:
        if not quantizing:  # model.safetensors already holds the trained weights
            _save_model(ctx)
        yield emit(_finish(ctx, "stopped", t0))
    except KeyboardInterrupt:  # a second Ctrl-C: quit at once, but as stopped (resumable)
        ctx.summary.update(status="stopped")
        try:
            ctx.store.write_summary(ctx.summary)
        except StoreError:
            pass
        raise
    except Exception as exc:
        ctx.summary.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        try:
            ctx.store.write_summary(ctx.summary)
            failed = emit(
                ev.RunFailed(
                    error=type(exc).__name__, message=str(exc), traceback=traceback.format_exc()
                )
            )
        except StoreError:
            failed = ev.RunFailed(error=type(exc).__name__, message=str(exc))
        yield failed
        raise


def _finish(ctx: Context, status: str, t0: float) -> ev.RunFinished:
    """Write the final summary (finished or stopped) and make the event that says so."""
    ctx.summary.update(status=status, seconds=ctx.summary.get("seconds", 0) + time.time() - t0)
    ctx.store.write_summary(ctx.summary)
    return ev.RunFinished(
        status=status,
        test_acc=ctx.summary.get("test_acc"),
        summary=ctx.summary,
        seconds=time.time() - t0,
    )


def _emitter(store: RunStore):  # noqa: ANN202
    def emit(event: ev.Event) -> ev.Event:
        store.append_event(event)
        return event

    return emit


def _stage(ctx: Context, name: str, epochs: int, emit, body: Iterator[ev.Event]):  # noqa: ANN001, ANN202
    """Wrap a stage body in stage_started / stage_finished events; return the body's result."""
    t = time.time()
    yield emit(ev.StageStarted(stage=name, epochs=epochs))
    result = yield from body
    yield emit(ev.StageFinished(stage=name, seconds=time.time() - t))
    return result


def _train_and_prune(ctx: Context, stop: StopFlag | None, emit) -> Iterator[ev.Event]:  # noqa: ANN001
    cfg = ctx.config
    prune_at = cfg.prune_epoch if cfg.method != "none" else None
    if ctx.epoch < cfg.epochs and ctx.mask is None and prune_at is not None and prune_at > 0:
        yield from _stage(
            ctx, "warmup", prune_at - ctx.epoch, emit, _epochs(ctx, prune_at, stop, emit, "warmup")
        )
    if prune_at is not None and ctx.mask is None:
        yield from _stage(ctx, "prune", 0, emit, _prune(ctx, emit))
    if ctx.epoch < cfg.epochs:
        yield from _stage(
            ctx,
            "train",
            cfg.epochs - ctx.epoch,
            emit,
            _epochs(ctx, cfg.epochs, stop, emit, "train"),
        )
    if "test_acc" not in ctx.summary:
        loss, acc = evaluate(ctx.model, ctx.test, ctx.config.precision)
        ctx.summary.update(test_acc=acc, test_loss=loss)


def _epochs(
    ctx: Context, until: int, stop: StopFlag | None, emit, stage: str
) -> Iterator[ev.Event]:  # noqa: ANN001
    cfg = ctx.config
    while ctx.epoch < until:
        epoch = ctx.epoch + 1
        lr = ctx.optimizer.param_groups[0]["lr"]
        t, last = time.time(), 0.0
        step = None
        net = ctx.ddp if ctx.ddp is not None else ctx.model  # DDP: train through the wrapper
        for step in train_epoch(
            net, ctx.train, ctx.optimizer, ctx.generator, ctx.enforcer, epoch, cfg.precision
        ):
            now = time.time()
            if now - last >= PROGRESS_EVERY_S or step.batch == step.batches:
                last = now
                yield emit(
                    ev.BatchProgress(
                        stage=stage, epoch=epoch, epochs=cfg.epochs, batch=step.batch,
                        batches=step.batches, loss=step.loss,
                        img_per_s=step.seen / max(1e-9, now - t), elapsed=now - t,
                    )
                )  # fmt: skip
            if stop is not None and stop.is_set():
                raise Stopped
        ctx.scheduler.step()
        step = distributed.reduce_step(step)  # DDP: epoch totals over all ranks
        distributed.sync_buffers(ctx.model)  # DDP: rank 0's batch-norm statistics everywhere
        test_loss, test_acc = evaluate(ctx.model, ctx.test, ctx.config.precision)
        seconds = time.time() - t
        ctx.epoch = epoch
        dens = ctx.summary.get("density", 1.0)
        ctx.summary.update(
            epochs_done=epoch, train_loss=step.loss if step else None,
            train_acc=step.acc if step else None, test_loss=test_loss, test_acc=test_acc,
        )  # fmt: skip
        best = test_acc > ctx.best_acc
        ctx.best_acc = max(ctx.best_acc, test_acc)
        ctx.summary["best_test_acc"] = ctx.best_acc
        yield emit(
            ev.EpochEnd(
                stage=stage, epoch=epoch, epochs=cfg.epochs,
                train_loss=step.loss if step else float("nan"), train_acc=step.acc if step else 0.0,
                test_loss=test_loss, test_acc=test_acc, lr=lr, seconds=seconds,
                img_per_s=(step.seen if step else 0) / max(1e-9, seconds), density=dens,
            )
        )  # fmt: skip
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            path = save_checkpoint(ctx, best=best)
            yield emit(ev.CheckpointSaved(path=str(path), epoch=epoch, best=best))
        if stop is not None and stop.is_set():
            raise Stopped


def _prune(ctx: Context, emit) -> Iterator[ev.Event]:  # noqa: ANN001
    cfg = ctx.config
    score_gen = torch.Generator().manual_seed(cfg.seed + 1)
    scoring = _ScoringBatches(distributed.full_batches(ctx.train), score_gen)

    def score() -> PruneResult:
        return prune(ctx.model, cfg.method, cfg.density, scoring, cfg.scope, cfg.budget,
                     cfg.score_batches, cfg.seed, cfg.prune_iterations, cfg.ablate)  # fmt: skip

    # DDP: rank 0 scores on the global batches and broadcasts, so every rank holds one mask
    result = distributed.on_main(score)
    event = ev.Pruned(
        method=result.method, scope=result.scope, budget=result.budget,
        target_density=result.target_density, density=result.density, kept=result.kept,
        total=result.total, layers=result.layers, collapsed_layers=result.collapsed_layers,
        overlap=result.overlap, seconds=result.seconds, ablate=result.ablate,
    )  # fmt: skip
    _record_prune(ctx, result)
    yield emit(event)
    if result.collapsed_layers:
        names = ", ".join(result.collapsed_layers)
        yield emit(ev.Log(message=f"layer collapse: no weights kept in {names}", level="error"))
        if not cfg.allow_collapse:
            raise PruneError(
                f"pruning to density {cfg.density:g} ({cfg.scope} scope) leaves no weights in "
                f"{names}; use --scope layer, a higher --density, or --allow-collapse"
            )
    if cfg.method == "ecs" and cfg.budget == "union":
        yield emit(
            ev.Log(
                message=f"ECS union budget kept {result.density:.2%} of weights for a target of "
                f"{cfg.density:.2%}; compare with other methods at the achieved density",
                level="warning",
            )
        )
    if cfg.ablate == "reinit":  # a fresh draw of the kept weights (same init, another seed)
        d = ctx.data
        fresh = lambda: build_model(cfg.model, d.num_classes, d.in_channels, cfg.width)  # noqa: E731
        reinit_weights(ctx.model, fresh, cfg.seed + REINIT_SEED)  # DDP: same draw on every rank
    apply_mask(ctx, result.mask)
    # The pruned model's own accuracy (before any training with the mask): reported, and the
    # run's result if no epoch follows.
    loss, acc = evaluate(ctx.model, ctx.test, ctx.config.precision)
    ctx.summary.update(pruned_test_acc=acc, test_acc=acc, test_loss=loss)
    ctx.summary.pop("best_test_acc", None)  # the dense warm-up's best is not this model's
    ctx.best_acc = -1.0
    ctx.store.save_tensors(
        "masks.safetensors", {k: v.to(torch.uint8) for k, v in result.mask.items()}
    )
    save_checkpoint(ctx)


@dataclass
class _ScoringBatches:
    """The training batches (augmented), drawn from a generator of their own."""

    batches: Batches
    generator: torch.Generator

    def __iter__(self):  # noqa: ANN204
        return self.batches.epoch(self.generator)


def _record_prune(ctx: Context, r: PruneResult) -> None:
    ctx.summary.update(
        target_density=r.target_density, density=r.density, kept=r.kept, total=r.total,
        layers=r.layers, collapsed_layers=r.collapsed_layers, overlap=r.overlap,
        budget=r.budget,
    )  # fmt: skip


def _base_summary(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    out = {
        "status": "running", "run_dir": str(ctx.store.path), "model": cfg.model,
        "dataset": cfg.dataset, "method": cfg.method, "scope": cfg.scope, "seed": cfg.seed,
        "target_density": cfg.density, "device": str(ctx.device),
        "params": sum(p.numel() for p in ctx.model.parameters()),
    }  # fmt: skip
    if cfg.method == "none":
        ones = {
            k: torch.ones_like(w, dtype=torch.bool) for k, w in prunable_weights(ctx.model).items()
        }
        out.update(density=1.0, layers=layer_report(ones), collapsed_layers=[])
    out.update({k: v for k, v in ctx.summary.items() if k != "status"})
    return out


def _save_model(ctx: Context) -> None:
    ctx.store.save_tensors("model.safetensors", ctx.model.state_dict())
