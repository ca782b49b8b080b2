"""Measured CPU latency: how fast is it, on this machine (not FLOPs; Blalock et al. 2020).

`measure(models, shape)` times models' forward passes on one CPU thread at batch 1 and 64,
in turns: a warm-up pass each, then rounds of one call each (at least 3, at most 20, about
0.3 s per model), the median in milliseconds. One thread so that numbers from a loaded
machine or another core count stay comparable, and so that a speed-up reads against the MAC
reduction (the limit on a compute-bound CPU). `record` is the summary's `latency` object: the
dense model of the same architecture, the final fp32 model and the int8 one, with the CPU's
name and torch's version.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from ecs_core import events as ev

if TYPE_CHECKING:
    from ecs_core.context import Context

BATCHES = (1, 64)
MIN_REPEATS, MAX_REPEATS, BUDGET_S = 3, 20, 0.3


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what `platform` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@torch.no_grad()
def median_ms(forwards: list[Callable[[torch.Tensor], Any]], x: torch.Tensor) -> list[float]:
    """Median wall time in ms of each `forward(x)`, after one warm-up call each, timed in
    turns (one call of each per round), so a machine's load drifting during the measurement
    hits every model alike; at least MIN_REPEATS rounds, then until BUDGET_S per model."""
    for fn in forwards:
        fn(x)
    times: list[list[float]] = [[] for _ in forwards]
    start = time.perf_counter()
    budget = BUDGET_S * len(forwards)
    while len(times[0]) < MAX_REPEATS and (
        len(times[0]) < MIN_REPEATS or time.perf_counter() - start < budget
    ):
        for fn, ts in zip(forwards, times, strict=True):
            t = time.perf_counter()
            fn(x)
            ts.append((time.perf_counter() - t) * 1e3)
    return [statistics.median(ts) for ts in times]


def measure(
    models: dict[str, dict[int, Callable[[torch.Tensor], Any]]], shape: tuple[int, ...]
) -> dict[str, dict[str, float]]:
    """{name: {"b1": ms, "b64": ms}}: each model's forward per batch size, on zero inputs, one
    thread, the models of one batch size timed in turns (`median_ms`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, dict[str, float]] = {name: {} for name in models}
    try:
        for b in sorted({b for fwd in models.values() for b in fwd}):
            names = [n for n, fwd in models.items() if b in fwd]
            ms = median_ms([models[n][b] for n in names], torch.zeros((b, *shape)))
            for n, v in zip(names, ms, strict=True):
                out[n][f"b{b}"] = v
        return out
    finally:
        torch.set_num_threads(before)


def eager(model: torch.nn.Module) -> dict[int, Callable[[torch.Tensor], Any]]:
    """The same fp32 model in eval mode, on the CPU, for every batch size."""
    model = model.to("cpu").eval()
    return {b: model for b in BATCHES}


def record(
    dense: dict[str, float], fp32: dict[str, float], int8: dict[str, float] | None
) -> dict[str, Any]:
    """The summary's `latency`: ms per model and batch, speed-ups x dense, CPU, torch."""
    out: dict[str, Any] = {
        "dense_ms": dense, "fp32_ms": fp32, "int8_ms": int8, "threads": 1,
        "cpu": cpu_name(), "torch": torch.__version__,
    }  # fmt: skip
    for kind, ms in (("fp32", fp32), ("int8", int8)):
        out[f"{kind}_speedup"] = (
            None if ms is None else {b: dense[b] / ms[b] for b in ms if b in dense}
        )
    return out


def run_latency(ctx: Context) -> Iterator[ev.Event]:
    """The end of a run: the dense model of the same config, the final fp32 model (the
    smaller one, for `--structure channel`) and the run's int8 model, timed on this CPU.

    The int8 model is the one the quantize stage built and evaluated (`ctx.int8`), at batch
    64 and at batch 1 (the same quantized graph lowered for one image, `Int8Model.at`; a model
    whose graph depends on its batch size is timed at 64 only); a run without one
    (`--no-quantize`, or int8 unavailable) records none."""
    import copy

    from ecs_core.models import build_model
    from ecs_core.prune.compact import shrink
    from ecs_core.stages import input_shape

    cfg, d = ctx.config, ctx.data
    shape = input_shape(ctx)
    final = copy.deepcopy(ctx.state.model).to("cpu")
    plan = ctx.store.read_channels() if cfg.structure == "channel" else None
    if plan is not None:
        final = shrink(final, plan, shape)
    dense_model = build_model(cfg.model, d.num_classes, d.in_channels, cfg.width)
    models = {"dense": eager(dense_model), "fp32": eager(final)}
    if ctx.int8 is not None:
        sizes = [b for b in BATCHES if b == ctx.int8.batch_size or b in ctx.int8.others]
        models["int8"] = {b: ctx.int8.at(b) for b in sizes}
    ms = measure(models, shape)
    yield ev.LatencyMeasured(latency=record(ms["dense"], ms["fp32"], ms.get("int8")))
