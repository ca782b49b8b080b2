"""The pipeline's quantize stage: share weights, fine-tune centroids, int8, export, measure.

`pipeline.run` calls `yield from quantize_stage(ctx, stop)` after training; its Quantized and
Exported events are what summary.json's `quant` and `sizes` are folded from (`summary.py`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ecs_core import events as ev
from ecs_core.data.loader import Batches
from ecs_core.quant.codec import save_compressed
from ecs_core.quant.kmeans import ShareReport, share_weights, shareable_weights
from ecs_core.stages import progress, stage, stopper
from ecs_core.train import NonFiniteLoss, Step, autocast, evaluate

if TYPE_CHECKING:
    from ecs_core.context import Context

INT8_BATCH = 64  # the int8 graph is built for one batch size; evaluation pads to it
FINETUNE_LR = 1e-4  # Adam step on the centroids (the weights are ~1e-2)


def dense_bytes(model: nn.Module) -> int:
    """Size of the fp32 state dict as a safetensors file (what model.safetensors takes)."""
    from safetensors.torch import save

    return len(save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))


def csr_bytes(model: nn.Module) -> int:
    """A naive sparse baseline: conv/linear weights as CSR over (out, rest) with fp32 values,
    int32 column indices and int32 row pointers; every other tensor stored densely."""
    total = 0
    for t in model.state_dict().values():
        if t.is_floating_point() and t.dim() >= 2:
            nnz = int(torch.count_nonzero(t))
            total += nnz * (4 + 4) + (t.shape[0] + 1) * 4
        else:
            total += t.numel() * t.element_size()
    return total


def calibration_images(batches: Batches, n_batches: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """`n_batches` batches of training images, shuffled but not augmented (for int8 ranges)."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(batches.y), generator=gen)[: n_batches * batches.batch_size]
    for idx in order.split(batches.batch_size):
        yield batches.normalise(batches.x[idx.to(batches.x.device)])


def finetune_centroids(
    model: nn.Module,
    report: ShareReport,
    batches: Batches,
    generator: torch.Generator,
    include_bn: bool = False,
    lr: float = FINETUNE_LR,
    precision: str = "auto",
) -> Iterator[Step]:
    """One epoch of trained quantization: yields the running totals (`train.Step`) per batch.

    Deep Compression (Han et al. 2016, sec. 3.2): every weight in a cluster shares its
    centroid, so dL/dc is the sum of dL/dw over the cluster. The centroids take Adam steps on
    that summed gradient (Adam keeps the step size independent of the cluster size); the
    weights are then rewritten from their codes, so zeros and codes never change. The
    updated codebooks are written back into `report`. `precision`: as in `train_epoch`.
    """
    params = shareable_weights(model, include_bn)
    device = next(model.parameters()).device
    rows = [r for r in report.layers if r.nnz]
    layers = [
        (params[r.name], r.index.to(device), r.codes.to(device), r.codebook.to(device).clone())
        for r in rows
    ]
    opt = torch.optim.Adam([c for *_, c in layers], lr=lr)
    model.train()
    loss_sum, correct, seen, n = 0.0, 0, 0, len(batches)
    for i, (x, y) in enumerate(batches.epoch(generator), start=1):
        with autocast(device, precision):
            out = model(x)
            loss = nn.functional.cross_entropy(out, y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p, idx, codes, c in layers:
                c.grad = torch.zeros_like(c).index_add_(0, codes, p.grad.reshape(-1)[idx])
            opt.step()
            for p, idx, codes, c in layers:
                flat = torch.zeros(p.numel(), device=device, dtype=p.dtype)
                flat[idx] = c[codes]
                p.copy_(flat.view(p.shape))
        loss_sum += float(loss.detach()) * len(y)
        if not math.isfinite(loss_sum):
            raise NonFiniteLoss(0, i, float(loss))
        correct += int((out.argmax(1) == y).sum())
        seen += len(y)
        yield Step(i, n, loss_sum, correct, seen)
    model.zero_grad(set_to_none=True)
    for r, (*_, c) in zip(rows, layers, strict=True):
        r.codebook = c.detach().cpu()


def _finetune(ctx: Context, report: ShareReport, check: Callable) -> Iterator[ev.Event]:
    """`finetune_epochs` epochs of centroid training, reported like training epochs (their
    optimizer is over the centroids, and their epochs are not the run's: 1..finetune_epochs)."""
    cfg, st = ctx.config, ctx.state
    epochs = cfg.finetune_epochs
    for epoch in range(1, epochs + 1):
        t = time.time()
        steps = finetune_centroids(
            st.model, report, ctx.train, st.generator, cfg.quantize_bn, precision=cfg.precision
        )
        step = yield from progress(steps, ev.FINETUNE, epoch, epochs, check)
        loss, acc = (step.loss, step.acc) if step else (float("nan"), 0.0)
        test_loss, test_acc = evaluate(st.model, ctx.test, cfg.precision)
        yield ev.EpochEnd(
            stage=ev.FINETUNE, epoch=epoch, epochs=epochs, train_loss=loss, train_acc=acc,
            test_loss=test_loss, test_acc=test_acc, lr=FINETUNE_LR, seconds=time.time() - t,
            img_per_s=ctx.train.num_images / max(1e-9, time.time() - t),
            density=ctx.summary.get("density", 1.0),
        )  # fmt: skip


def _smaller(ctx: Context, model: nn.Module) -> nn.Module:
    """`--structure channel`: a copy with the removed channels gone; else `model` itself."""
    plan = ctx.store.read_channels() if ctx.config.structure == "channel" else None
    if plan is None:
        return model
    import copy

    from ecs_core.prune.compact import rebuild_shape, shrink

    return shrink(copy.deepcopy(model), plan, rebuild_shape(ctx.data.in_channels))


def _int8(ctx: Context, model: nn.Module, check: Callable) -> Iterator[ev.Event]:
    """Build and evaluate the int8 CPU model; on any failure warn and return None."""
    from ecs_core.context import Stopped
    from ecs_core.latency import BATCHES
    from ecs_core.quant.int8 import build_int8, int8_accuracy

    try:
        calib = calibration_images(ctx.train, ctx.config.calib_batches, ctx.config.seed)
        also = tuple(b for b in BATCHES if b != INT8_BATCH) if ctx.config.latency else ()
        int8 = build_int8(model, calib, INT8_BATCH, check=check, also=also)
        acc = int8_accuracy(int8, ctx.test.epoch())
        ctx.int8 = int8  # the latency step times this one
    except Stopped:
        raise
    except Exception as exc:  # int8 is a bonus; the run goes on without it
        reason = str(exc).splitlines()[0] if str(exc) else ""
        yield ev.Log(
            message=f"int8 inference model skipped: {type(exc).__name__}: {reason}",
            level="warning",
        )
        return None
    return acc


def export_meta(ctx: Context, bits: int, test_acc: float | None) -> dict[str, Any]:
    """What the .ecsz manifest records about a run (enough to rebuild and evaluate it)."""
    cfg = ctx.config
    plan = ctx.store.read_channels() if cfg.structure == "channel" else None
    return {
        "model": cfg.model, "width": cfg.width, "num_classes": ctx.data.num_classes,
        "in_channels": ctx.data.in_channels, "dataset": cfg.dataset, "bits": bits,
        "method": cfg.method, "density": ctx.summary.get("density"), "test_acc": test_acc,
        "run": ctx.store.path.name, **({"channels": plan} if plan is not None else {}),
    }  # fmt: skip


def quantize_stage(ctx: Context, stop: Any = None) -> Iterator[ev.Event]:
    """Weight sharing, optional centroid fine-tuning, int8, export (the Quantized and Exported
    events give the summary its `quant` and `sizes`).

    A stop request (`stop.is_set()`) raises `Stopped` within one fine-tuning or calibration
    batch, or between steps; `--resume` then redoes this stage from the trained weights.
    """
    check = stopper(stop)
    cfg, model, mask = ctx.config, ctx.state.model, ctx.state.mask
    t = time.time()
    report = share_weights(model, cfg.bits, mask, cfg.quantize_bn)
    check()
    if cfg.finetune_epochs > 0:
        yield from stage(ev.FINETUNE, cfg.finetune_epochs, _finetune(ctx, report, check))
    _, acc = evaluate(model, ctx.test, cfg.precision)
    check()
    ctx.store.save_tensors("quantized.safetensors", model.state_dict())
    small = _smaller(ctx, model)  # the model as it runs: channels removed for real
    int8_acc = yield from _int8(ctx, small, check)
    check()
    rows = report.rows()
    yield ev.Quantized(
        bits=cfg.bits,
        unique_before=report.unique_before,
        unique_after=report.unique_after,
        layers=rows,
        test_acc=acc,
        int8_test_acc=int8_acc,
        seconds=time.time() - t,
    )
    path = ctx.store.path / "model.ecsz"
    meta = export_meta(ctx, cfg.bits, acc)
    size = save_compressed(path, small, mask if small is model else None, meta)
    dense, sparse = dense_bytes(model), csr_bytes(model)
    yield ev.Exported(path=str(path), dense_bytes=dense, sparse_bytes=sparse, compressed_bytes=size)
