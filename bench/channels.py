"""Channel pruning's speed: the smaller model against the dense one, fp32 and int8, one thread.

For VGG16, ResNet34 and ResNet50 at full width (CIFAR shapes, 10 classes, seed 0): magnitude
scores, `--structure channel --scope layer` at 50% and 25% of the weights kept (layer scope:
every group keeps the same fraction of its channels, so the MAC reduction is about 1/density).
Rows: the fp32 speed-up over the dense model at batch 64 (`latency.measure`: median after a
warm-up, one thread), against the MAC reduction (the limit on a compute-bound CPU; goal: at
least 0.8 of it); the int8 model of the pruned net against dense fp32 eager (goal at 25%:
20x); and the time `prune(...)` takes for ResNet50 (goal: 5 s). The reference is the dense
model measured in the same process, in turns with the pruned one (`latency.measure`).

Run alone: `python -m bench --only channels` (`--quick`: VGG16 only, 50% only).
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

    out = []
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
