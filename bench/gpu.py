"""GPU epoch: our full loop (device batches, augmentation, 5% mask) vs pure compute, bf16.

For VGG16, ResNet34 and ResNet50 at full width, batch 128, bf16 autocast, channels-last:
- pure: forward, cross-entropy, backward and SGD step on one synthetic batch that already
  sits on the GPU, so nothing but compute is timed;
- ours: `train_epoch` over `make_batches` on random uint8 CIFAR-shaped images held on the
  GPU (index, random crop + flip, normalise), with a `MaskEnforcer` holding a 5% mask, and
  the running loss read every 0.25 s as the pipeline's progress events do.
The model and optimizer are set up as `pipeline.prepare` does on CUDA. Goal: data + mask
overhead at most 15% of pure compute. Without CUDA the row is skipped with a note.

Run on a GPU machine: `python -m bench.gpu [--quick]` (prints the table and writes the GPU
section of bench/RESULTS.md). `--device cpu --quick` runs the same code on the CPU, tiny, as
a check of the code path only.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from bench.common import interleaved, median, row

MODELS = ("vgg16", "resnet34", "resnet50")
BATCH = 128
GOAL = 1.15
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(name: str, device: torch.device, width: float) -> tuple[torch.nn.Module, Any]:
    """Model and SGD as `pipeline.prepare` builds them (channels-last on CUDA)."""
    from ecs_core.models import build_model
    from ecs_core.train import make_optimizer

    torch.manual_seed(0)
    model = build_model(name, num_classes=10, in_channels=3, width=width).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt, _ = make_optimizer(model, 0.1, 0.9, 5e-4, 20, 0.1)
    return model, opt


def pure(name: str, device: torch.device, steps: int, width: float) -> Callable[[], None]:
    """`steps` training steps on one synthetic device batch: compute only."""
    from ecs_core.train import autocast

    model, opt = _model(name, device, width)
    x = torch.randn(BATCH, 3, 32, 32, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,), device=device)

    def run() -> None:
        model.train()
        for _ in range(steps):
            with autocast(device):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)

    return run


def ours(name: str, device: torch.device, steps: int, width: float) -> Callable[[], None]:
    """One `train_epoch` of `steps` batches with data and a 5% mask on the device."""
    from ecs_core.data import make_batches
    from ecs_core.prune import MaskEnforcer, prune
    from ecs_core.train import train_epoch

    model, opt = _model(name, device, width)
    enforcer = MaskEnforcer(model, prune(model, "magnitude", 0.05).mask)
    g = torch.Generator().manual_seed(0)
    n = BATCH * steps
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    batches = make_batches(x, y, CIFAR_MEAN, CIFAR_STD, BATCH, True, True, device, steps)

    def run() -> None:
        last = time.perf_counter()
        for step in train_epoch(model, batches, opt, g, enforcer):
            if time.perf_counter() - last >= 0.25:  # the pipeline's progress throttle
                _ = step.loss
                last = time.perf_counter()
        _sync(device)

    return run


def model_row(name: str, device: torch.device, steps: int, reps: int, width: float) -> dict:
    times = interleaved(
        {"pure": pure(name, device, steps, width), "ours": ours(name, device, steps, width)},
        reps,
        warmup=1,
    )
    pure_s, ours_s = median(times["pure"]), median(times["ours"])
    images = BATCH * steps
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (code check)"
    ratio = ours_s / pure_s
    return row(
        what=f"GPU epoch {name} x{width:g}, batch {BATCH}, bf16: data + 5% mask",
        reference="pure fwd+bwd+step on device tensors",
        reference_s=pure_s,
        ours_s=ours_s,
        ratio=ratio,
        goal=f"≤ {GOAL:.2f}× (overhead ≤ {GOAL - 1:.0%})",
        met=ratio <= GOAL,
        note=f"{images / pure_s:,.0f} img/s pure, {images / ours_s:,.0f} img/s ours "
        f"({steps} steps, median of {reps}); {gpu}",
    )


def rows(quick: bool = False, device: str = "cuda", width: float = 1.0) -> list[dict[str, Any]]:
    """One row per model, or one skipped row when CUDA is absent."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return [
            row(
                what=f"GPU epoch (VGG16/ResNet34/ResNet50, batch {BATCH}, bf16)",
                reference="pure fwd+bwd+step on device tensors",
                reference_s=None,
                ours_s=None,
                ratio=None,
                goal=f"≤ {GOAL:.2f}× (overhead ≤ {GOAL - 1:.0%})",
                met=None,
                note="skipped: no CUDA device here; run `python -m bench.gpu` on a GPU machine",
            )
        ]
    steps, reps = (10, 2) if quick else (50, 3)
    if dev.type == "cpu":
        steps, reps = 2, 1
    return [model_row(name, dev, steps, reps, width) for name in MODELS]


def main(argv: list[str] | None = None) -> int:
    from bench.common import machine, plain_table, write_results

    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 steps, 2 repetitions")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (code check)")
    parser.add_argument("--width", type=float, default=None, help="model width (default 1)")
    args = parser.parse_args(argv)
    width = args.width if args.width is not None else (0.125 if args.device == "cpu" else 1.0)
    result = rows(args.quick, args.device, width)
    print(plain_table(result))
    if args.device != "cpu" and result[0]["ours_s"] is not None and not args.quick:
        write_results({"gpu": result}, machine(), "python -m bench.gpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
