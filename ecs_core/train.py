"""One training epoch and one evaluation: model + batches in, metrics out."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ecs_core.data.loader import Batches
from ecs_core.prune.mask import MaskEnforcer


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, batch: int, loss: float) -> None:
        super().__init__(
            f"training loss became {loss} at epoch {epoch}, batch {batch}; "
            "try a lower --lr (for example half of it) or a smaller --batch-size"
        )
        self.epoch, self.batch = epoch, batch


@dataclass
class Step:
    """Running totals after one batch of an epoch."""

    batch: int
    batches: int
    loss_sum: float
    correct: int
    seen: int

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.seen)

    @property
    def acc(self) -> float:
        return 100.0 * self.correct / max(1, self.seen)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op on CPU (fp32 keeps CPU runs exactly reproducible)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_epoch(
    model: nn.Module,
    batches: Batches,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    enforcer: MaskEnforcer | None = None,
    epoch: int = 0,
) -> Iterator[Step]:
    """Train one pass over `batches`, yielding running totals after every batch.

    The consumer may stop iterating at any batch boundary (a stop request); the model is then
    in a consistent state (the last step completed, the mask enforced).
    """
    model.train()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    n = len(batches)
    for i, (x, y) in enumerate(batches.epoch(generator), start=1):
        with autocast(device):
            out = model(x)
            loss = nn.functional.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if enforcer is not None:
            enforcer.after_backward()
        optimizer.step()
        if enforcer is not None:
            enforcer.after_step()
        loss_sum += loss.detach() * len(y)
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
        total = float(loss_sum)  # one sync per batch: needed for the live display anyway
        if not math.isfinite(total):
            raise NonFiniteLoss(epoch, i, float(loss))
        yield Step(i, n, total, int(correct), seen)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Batches) -> tuple[float, float]:
    """(mean cross-entropy loss, top-1 accuracy in percent) over all of `batches`."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for x, y in batches.epoch():
        with autocast(device):
            out = model(x)
        loss_sum += nn.functional.cross_entropy(out.float(), y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
    return float(loss_sum) / max(1, seen), 100.0 * float(correct) / max(1, seen)


def make_optimizer(
    model: nn.Module, lr: float, momentum: float, weight_decay: float, step_size: int, gamma: float
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD with momentum and weight decay, and StepLR (the original's recipe)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)
    return opt, sched
