"""One CPU training epoch: ours vs the original's DataLoader loop, and ours with vs without a mask.

Ours is exactly what `ecs run` trains: the model, batches and optimizer come from
`ecs_core.pipeline.prepare` (quarter-width VGG16, batch 128, a fixed number of batches on
Fashion-MNIST when it is installed, else the embedded digits), stepped by `train_epoch`. The
reference is `bench.reference.dataloader_loop` on the same uint8 images with a model built the
same way. The masked side adds a `MaskEnforcer` holding a 5% mask; the bf16 side is ours with
`precision="bf16"` (opt-in on the CPU). All run interleaved in this process, so they share the
machine's conditions (and the thread count the harness sets). One more row times a ResNet18
training step in channels-last (its strided shortcuts `StridedPointwise`, as `ecs run` trains
it) against the same step contiguous (how CPU training ran before).

Run alone: `python -m bench.train [--quick]`.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from typing import Any

import torch

from bench.common import interleaved, median, row

WIDTH = 0.25
BATCH = 128
DATASETS = ("fashion-mnist", "digits")  # the first one that loads without a download
SPEEDUP_GOAL = 2.0  # ours at least this many times faster per image
MASK_GOAL = 1.10  # masked epoch at most this many times the unmasked one


def dataset_name() -> str:
    """Fashion-MNIST if it is on disk (e.g. Debian's dataset-fashion-mnist), else digits."""
    from ecs_core.data import DatasetError, load_dataset

    try:
        load_dataset(DATASETS[0], download=False)
        return DATASETS[0]
    except DatasetError:
        return DATASETS[1]


def ours(
    dataset: str, batches: int, runs_dir: str, masked: bool = False, precision: str = "auto"
) -> Callable[[], object]:
    """One epoch of `max_batches` batches through the engine, as `ecs run` would train it."""
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import prepare
    from ecs_core.prune import MaskEnforcer, prune
    from ecs_core.train import train_epoch

    config = RunConfig(
        model="vgg16", dataset=dataset, width=WIDTH, batch_size=BATCH, max_batches=batches,
        device="cpu", download=False, runs_dir=runs_dir, quantize=False,
    )  # fmt: skip
    ctx = prepare(config)
    enforcer = None
    if masked:
        enforcer = MaskEnforcer(ctx.state.model, prune(ctx.state.model, "magnitude", 0.05).mask)

    st = ctx.state

    def epoch() -> float:
        steps = train_epoch(
            st.model, ctx.train, st.optimizer, st.generator, enforcer, precision=precision
        )
        return [s.loss for s in steps][-1]  # reading the loss is part of the epoch

    return epoch


def reference(dataset: str, batches: int) -> Callable[[], object]:
    """The original loop over the same images, model and optimizer settings."""
    from bench.reference.dataloader_loop import make_loader, train_batches
    from ecs_core.config import RunConfig
    from ecs_core.data import load_dataset
    from ecs_core.models import build_model

    cfg = RunConfig()
    data = load_dataset(dataset, download=False)
    torch.manual_seed(cfg.seed)
    model = build_model("vgg16", data.num_classes, data.in_channels, WIDTH)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    loader = make_loader(data.train_x, data.train_y, data.mean, data.std, data.flip, BATCH)
    return lambda: train_batches(model, loader, opt, torch.device("cpu"), batches)


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """The epoch row, the mask-overhead row and the bf16 row (quick: 3 batches, 2 reps)."""
    batches, reps = (3, 2) if quick else (8, 5)
    dataset = dataset_name()
    with tempfile.TemporaryDirectory(prefix="ecs-bench-") as runs_dir:
        fns = {
            "reference": reference(dataset, batches),
            "ours": ours(dataset, batches, runs_dir),
            "masked": ours(dataset, batches, runs_dir, masked=True),
            "bf16": ours(dataset, batches, runs_dir, precision="bf16"),
        }
        times = interleaved(fns, reps, warmup=1)
    ref_s, ours_s, masked_s, bf16_s = (median(times[k]) for k in fns)
    images = batches * BATCH
    what = f"training epoch, CPU: VGG16 x{WIDTH} on {dataset}, {batches} batches of {BATCH}"
    speedup, overhead, bf16_speedup = ref_s / ours_s, masked_s / ours_s, ref_s / bf16_s
    return [
        row(
            what=what,
            reference="Dataset + PIL transforms + DataLoader(2 workers)",
            reference_s=ref_s,
            ours_s=ours_s,
            ratio=speedup,
            goal=f"≥ {SPEEDUP_GOAL:.0f}× faster per image",
            met=speedup >= SPEEDUP_GOAL,
            note=f"{images / ref_s:.0f} vs {images / ours_s:.0f} img/s; median of {reps}",
        ),
        row(
            what=f"{what}, with a 5% mask",
            reference="ours without a mask",
            reference_s=ours_s,
            ours_s=masked_s,
            ratio=overhead,
            goal=f"≤ {MASK_GOAL:.2f}× (overhead ≤ {MASK_GOAL - 1:.0%})",
            met=overhead <= MASK_GOAL,
            note=f"mask overhead {overhead - 1:+.1%} (MaskEnforcer); median of {reps}",
        ),
        row(
            what=f"{what}, bf16 autocast (`ecs run --precision bf16`)",
            reference="Dataset + PIL transforms + DataLoader(2 workers), fp32",
            reference_s=ref_s,
            ours_s=bf16_s,
            ratio=bf16_speedup,
            goal=f"≥ {SPEEDUP_GOAL:.0f}× faster per image",
            met=bf16_speedup >= SPEEDUP_GOAL,
            note=f"{images / bf16_s:.0f} img/s; on the CPU `ecs run` trains in fp32 unless "
            f"given --precision bf16; median of {reps}",
        ),
        _layout_row(batches, reps),
        *_default_threads_rows(dataset, batches, reps, what),
    ]


def _layout_row(steps: int, reps: int) -> dict[str, Any]:
    """ResNet18 x0.25 training steps on a fixed batch: channels-last against contiguous."""
    from ecs_core.models import build_model
    from ecs_core.train import model_memory_format

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    x, y = torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))

    def stepper(fmt: torch.memory_format) -> Callable[[], object]:
        model = build_model("resnet18", 10, 3, WIDTH).to(memory_format=fmt).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xf = x.contiguous(memory_format=fmt)

        def run() -> None:
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(xf), y).backward()
                opt.step()

        return run

    ours = build_model("resnet18", 10, 3, WIDTH)
    assert model_memory_format(cpu, ours) == torch.channels_last  # what `ecs run` trains in
    fns = {"contiguous": stepper(torch.contiguous_format), "cl": stepper(torch.channels_last)}
    times = interleaved(fns, reps, warmup=1)
    ref_s, ours_s = median(times["contiguous"]), median(times["cl"])
    return row(
        what=f"training steps, CPU: ResNet18 x{WIDTH}, {steps} steps on a batch of {BATCH}, "
        "channels-last (StridedPointwise shortcuts)",
        reference="the same steps, contiguous (NCHW)",
        reference_s=ref_s,
        ours_s=ours_s,
        ratio=ref_s / ours_s,
        goal="≥ 1× (not slower)",
        met=ref_s >= ours_s,
        note=f"{steps * BATCH / ref_s:.0f} vs {steps * BATCH / ours_s:.0f} img/s; median of {reps}",
    )


def _default_threads_rows(dataset: str, batches: int, reps: int, what: str) -> list[dict]:
    """The epoch row again with torch's default thread count (one per core), which is what
    `ecs run` and the original loop get when nobody sets it; none when the harness already
    uses that many. Measured in a fresh process, where torch starts with its default: changing
    the thread count of this one mid-run measured 20% slower than a process started with it.
    The reference's two DataLoader workers share the cores with it, as they would."""
    import json
    import os
    import subprocess

    cores = len(os.sched_getaffinity(0))
    if cores <= torch.get_num_threads():
        return []
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    argv = ["--default-threads", dataset, str(batches), str(reps)]
    child = subprocess.run([sys.executable, "-m", "bench.train", *argv], capture_output=True,
                           text=True, env=env, timeout=600)  # fmt: skip
    if child.returncode != 0:
        raise RuntimeError(f"bench.train --default-threads failed: {child.stderr[-500:]}")
    got = json.loads(child.stdout.splitlines()[-1])
    ref_s, ours_s, threads = got["reference"], got["ours"], got["threads"]
    images = batches * BATCH
    return [
        row(
            what=f"{what}, {threads} torch threads (the default here)",
            reference=f"Dataset + PIL transforms + DataLoader(2 workers), {threads} threads",
            reference_s=ref_s,
            ours_s=ours_s,
            ratio=ref_s / ours_s,
            goal=f"≥ {SPEEDUP_GOAL:.0f}× faster per image",
            met=ref_s / ours_s >= SPEEDUP_GOAL,
            note=f"{images / ref_s:.0f} vs {images / ours_s:.0f} img/s; what `ecs run` does on "
            f"this machine unless told otherwise; a fresh process; median of {reps}",
        )
    ]


def _measure_default_threads(dataset: str, batches: int, reps: int) -> dict[str, float]:
    """Reference vs ours, interleaved, at torch's default thread count (run in a child)."""
    with tempfile.TemporaryDirectory(prefix="ecs-bench-") as runs_dir:
        fns = {"reference": reference(dataset, batches), "ours": ours(dataset, batches, runs_dir)}
        times = interleaved(fns, reps, warmup=1)
    return {
        "reference": median(times["reference"]),
        "ours": median(times["ours"]),
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--default-threads"]:
        import json

        name, n, r = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(_measure_default_threads(name, n, r)))
    else:
        from bench.common import plain_table

        print(plain_table(rows(quick="--quick" in sys.argv)))
