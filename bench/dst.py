"""Dynamic sparse training on the CPU: what a RigL mask update costs next to a training step,
and a training epoch with RigL next to one with a fixed mask.

1) Full-width ResNet50 (CIFAR shape, 10 classes) at 10% (ERK): one optimizer step with the mask
   enforced (the reference) vs one RigL update, the dense-gradient copy, drop and regrow of every
   layer (`DynamicMask.after_backward` + `update`); the dense gradient itself is the training
   step's own backward, so it costs nothing more.
2) Quarter-width VGG16, the engine's own batches (`pipeline.prepare`), an epoch with a fixed
   ERK mask vs the same epoch with RigL updating every `INTERVAL` steps: ten times the paper's
   rate (every 100 steps), so the row bounds the paper's overhead from above.
Both interleaved in this process. Run alone: `python -m bench.dst [--quick]`.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from typing import Any

import torch

from bench.common import interleaved, median, row

UPDATE_GOAL = 2.0  # a RigL update costs at most this many training steps
EPOCH_GOAL = 1.10  # an epoch with RigL at most this many times one with a fixed mask
INTERVAL = 10


def _rigl(model: torch.nn.Module, opt: Any, interval: int, end: int = 1 << 30) -> Any:
    from ecs_core.prune import prune
    from ecs_core.prune.dst import DynamicMask, Schedule

    mask = prune(model, "rigl", 0.1).mask
    return DynamicMask(model, mask, opt, Schedule("gradient", interval, 0.3, end, 0))


def update_vs_step(batch: int) -> dict[str, Callable[[], object]]:
    from ecs_core.models import build_model
    from ecs_core.prune.mask import MaskEnforcer

    torch.manual_seed(0)
    model = build_model("resnet50", 10, 3, 1.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    enf = _rigl(model, opt, interval=1)
    fixed = MaskEnforcer(model, dict(enf.mask))
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        fixed.after_backward()
        opt.step()
        fixed.after_step()

    def update() -> None:
        enf.after_backward()  # copies the dense gradients (an update is due at every step)
        enf.update(0.3, enf.grads)

    step()  # gradients and momentum buffers exist before either is timed
    return {"step": step, "update": update}


def epochs(batches: int, runs_dir: str) -> dict[str, Callable[[], object]]:
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import prepare
    from ecs_core.prune.mask import MaskEnforcer
    from ecs_core.train import train_epoch

    out = {}
    for name in ("fixed", "rigl"):
        config = RunConfig(
            model="vgg16", dataset="digits", width=0.25, batch_size=64, max_batches=batches,
            device="cpu", runs_dir=runs_dir, quantize=False,
        )  # fmt: skip
        ctx = prepare(config)
        st, ctx_train = ctx.state, ctx.train
        enf = _rigl(st.model, st.optimizer, INTERVAL)
        enforcer = enf if name == "rigl" else MaskEnforcer(st.model, dict(enf.mask))

        def epoch(st=st, enforcer=enforcer, train=ctx_train) -> float:
            steps = train_epoch(st.model, train, st.optimizer, st.generator, enforcer)
            return [s.loss for s in steps][-1]

        out[name] = epoch
    return out


def rows(quick: bool = False) -> list[dict[str, Any]]:
    batch, reps, batches = (8, 2, 10) if quick else (32, 5, 20)
    t = interleaved(update_vs_step(batch), reps, warmup=1)
    step_s, update_s = median(t["step"]), median(t["update"])
    with tempfile.TemporaryDirectory(prefix="ecs-bench-") as runs_dir:
        e = interleaved(epochs(batches, runs_dir), reps, warmup=1)
    fixed_s, rigl_s = median(e["fixed"]), median(e["rigl"])
    return [
        row(
            what=f"RigL mask update, CPU: ResNet50 x1 (23.5M prunable) at 10% ERK, batch {batch}",
            reference="one training step (forward, backward, SGD, mask enforced)",
            reference_s=step_s,
            ours_s=update_s,
            ratio=update_s / step_s,
            goal=f"≤ {UPDATE_GOAL:.0f}× a step",
            met=update_s / step_s <= UPDATE_GOAL,
            note=f"dense-gradient copy + drop + regrow of every layer; median of {reps}",
        ),
        row(
            what=f"training epoch, CPU: VGG16 x0.25 on digits, {batches} batches of 64, RigL "
            f"every {INTERVAL} steps",
            reference="the same epoch with the fixed ERK mask",
            reference_s=fixed_s,
            ours_s=rigl_s,
            ratio=rigl_s / fixed_s,
            goal=f"≤ {EPOCH_GOAL:.2f}× at the paper's interval (100)",
            met=rigl_s / fixed_s <= EPOCH_GOAL,
            note=f"updates 10× as often as the paper's, so an upper bound; median of {reps}",
        ),
    ]


if __name__ == "__main__":
    from bench.common import plain_table

    print(plain_table(rows(quick="--quick" in sys.argv)))
