"""Channel pruning's speed: the smaller model against the dense one, fp32 and int8, one thread.

For VGG16, ResNet34 and ResNet50 at full width (CIFAR shapes, 10 classes, seed 0): magnitude
scores, `--structure channel --scope layer` at 50% and 25% of the weights kept (layer scope:
every group keeps the same fraction of its channels, so the MAC reduction is about 1/density).
Rows: the fp32 speed-up over the dense model at batch 64 (`latency.measure`: median after a
warm-up, one thread), against the MAC reduction (the limit on a compute-bound CPU; goal: at
least 0.8 of it); the int8 model of the pruned net against dense fp32 eager (goal at 25%:
20x); and the time `prune(...)` takes for ResNet50 (goal: 5 s). The reference is the dense
model measured in the same process, in turns with the pruned one (`latency.measure`).

One more row times training (`train_row`): one epoch of VGG16 x0.25 on the digits data, 25% of
the weights kept, the smaller model as `ecs run --structure channel` trains it after the prune
(`stages.train_smaller`) against the masked dense model (the mask enforced after every step, as
channel runs trained before), in turns in this process.

Run alone: `python -m bench --only channels` (`--quick`: VGG16 only, 50% only; the training
row with 3 batches).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch

from bench.common import row

SHAPE = (3, 32, 32)


def _int8_ms(model: torch.nn.Module) -> float:
    from ecs_core.latency import measure
    from ecs_core.quant.int8 import build_int8

    calib = [torch.randn(64, *SHAPE, generator=torch.Generator().manual_seed(0))]
    return measure({"int8": {64: build_int8(model, calib, 64)}}, SHAPE)["int8"]["b64"]


def rows(quick: bool = False) -> list[dict[str, Any]]:
    from ecs_core.latency import measure
    from ecs_core.models import build_model
    from ecs_core.prune import prune
    from ecs_core.prune.compact import macs_and_params, shrink

    out = [train_row(quick)]
    models = ("vgg16",) if quick else ("vgg16", "resnet34", "resnet50")
    for name in models:
        torch.manual_seed(0)
        dense = build_model(name, 10, 3, 1.0).eval()
        dense_macs = macs_and_params(dense, SHAPE)[0]
        for density in (0.5,) if quick else (0.5, 0.25):
            t = time.perf_counter()
            r = prune(dense, "magnitude", density, None, scope="layer", structure="channel")
            prune_s = time.perf_counter() - t
            small = shrink(copy.deepcopy(dense), r.channels, SHAPE).eval()
            macs = macs_and_params(small, SHAPE)[0]
            got = measure({"dense": {64: dense}, "small": {64: small}}, SHAPE)  # in turns
            ref, ms = got["dense"]["b64"], got["small"]["b64"]
            speedup, limit = ref / ms, dense_macs / macs
            what = f"{name} channel {density:.0%} kept, fp32 b64"
            out.append(row(what, "dense fp32 eager", ref / 1e3, ms / 1e3, speedup,
                           ">= 0.8 x MAC reduction", speedup >= 0.8 * limit,
                           f"MACs {dense_macs / 1e6:,.0f}M -> {macs / 1e6:,.0f}M "
                           f"({limit:.2f}x); achieved density {r.density:.3f}"))  # fmt: skip
            try:
                i8 = _int8_ms(small)
                out.append(row(f"{name} channel {density:.0%} kept, int8 b64", "dense fp32 eager",
                               ref / 1e3, i8 / 1e3, ref / i8, ">= 20x at 25%",
                               ref / i8 >= 20 if density == 0.25 else None))  # fmt: skip
            except Exception as exc:  # int8 needs torchao's x86 lowering
                out.append(row(f"{name} int8", "dense fp32", None, None, None, "", None,
                               f"{type(exc).__name__}: {exc}"))  # fmt: skip
            if name == "resnet50":
                out.append(row(f"resnet50 channel pruning time, {density:.0%}", "goal 5 s", 5.0,
                               prune_s, 5.0 / prune_s, "<= 5 s", prune_s <= 5.0))  # fmt: skip
    return out


def train_row(quick: bool = False) -> dict[str, Any]:
    """One training epoch of the smaller model against the masked dense model (same run,
    same mask, same batches), interleaved; the ratio is the training speed-up."""
    import tempfile

    from bench.common import interleaved, median
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import prepare
    from ecs_core.prune import prune
    from ecs_core.stages import train_smaller
    from ecs_core.train import train_epoch

    batches, reps = (3, 2) if quick else (None, 3)
    with tempfile.TemporaryDirectory(prefix="ecs-bench-") as runs_dir:
        cfg = RunConfig(
            model="vgg16", dataset="digits", width=0.25, method="magnitude",
            structure="channel", density=0.25, device="cpu", runs_dir=runs_dir,
            quantize=False, max_batches=batches,
        ).validate()  # fmt: skip
        dense, small = prepare(cfg), prepare(cfg)
        result = prune(dense.state.model, cfg.method, cfg.density, None, None, cfg)
        for ctx in (dense, small):
            ctx.state.apply_mask(result.mask)
        train_smaller(small, result.channels)

        def epoch(ctx: Any) -> float:
            st = ctx.state
            steps = train_epoch(st.model, ctx.train, st.optimizer, st.generator, st.enforcer)
            return [s.loss for s in steps][-1]  # reading the loss is part of the epoch

        fns = {"dense": lambda: epoch(dense), "small": lambda: epoch(small)}
        times = interleaved(fns, reps, warmup=1)
        n = len(dense.train)
    ref, ours = median(times["dense"]), median(times["small"])
    params = (sum(p.numel() for p in c.state.model.parameters()) for c in (dense, small))
    return row(
        f"training epoch, CPU: VGG16 x0.25 on digits ({n} batches of {cfg.batch_size}), "
        "channel 25% kept, the smaller model",
        "the masked dense model (mask enforced)", ref, ours, ref / ours, "> 1x (faster)",
        ref > ours, "parameters {:,} -> {:,}; median of {}".format(*params, reps),
    )  # fmt: skip
