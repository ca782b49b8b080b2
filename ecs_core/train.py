"""One training epoch and one evaluation: model + batches in, metrics out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ecs_core.config import PRECISIONS, RunConfig
from ecs_core.data.loader import Batches
from ecs_core.models.pointwise import strided_pointwise
from ecs_core.prune.mask import MaskEnforcer

CHECK_EVERY = 32  # batches between loss checks on a GPU (each check waits for the GPU)


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, batch: int, loss: float) -> None:
        super().__init__(
            f"training loss became {loss} at epoch {epoch}, batch {batch}; "
            "try a lower --lr (for example half of it) or a smaller --batch-size"
        )
        self.epoch, self.batch = epoch, batch


class Step:
    """Running totals after one batch of an epoch.

    `loss_sum` and `correct` may be held as device tensors; they are read (one host-device
    sync) only when asked for, so a consumer that looks every few batches does not make the
    GPU wait after every batch. Construct it with plain numbers or with 0-d tensors.
    """

    __slots__ = ("batch", "batches", "seen", "_loss_sum", "_correct")

    def __init__(
        self,
        batch: int,
        batches: int,
        loss_sum: float | torch.Tensor,
        correct: int | torch.Tensor,
        seen: int,
    ) -> None:
        self.batch, self.batches, self.seen = batch, batches, seen
        self._loss_sum, self._correct = loss_sum, correct

    @property
    def loss_sum(self) -> float:
        if isinstance(self._loss_sum, torch.Tensor):
            self._loss_sum = float(self._loss_sum)
        return self._loss_sum

    @property
    def correct(self) -> int:
        if isinstance(self._correct, torch.Tensor):
            self._correct = int(self._correct)
        return self._correct

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.seen)

    @property
    def acc(self) -> float:
        return 100.0 * self.correct / max(1, self.seen)

    def __repr__(self) -> str:
        return (
            f"Step(batch={self.batch}, batches={self.batches}, loss_sum={self.loss_sum}, "
            f"correct={self.correct}, seen={self.seen})"
        )


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """The autocast context for `precision`.

    auto: bf16 on CUDA, fp32 on the CPU (fp32 keeps CPU runs exactly as they always were).
    bf16: bf16 autocast on any device; on a CPU with native bf16 (AVX512-BF16, AMX) a
    quarter-width VGG16 step runs about 1.8x faster (see bench/RESULTS.md); on one without,
    it is emulated and slower. fp32: no autocast anywhere.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def model_memory_format(device: torch.device, model: nn.Module) -> torch.memory_format:
    """The memory format `model` trains in: channels-last on CUDA, and on the CPU unless the
    model has a plain strided 1x1 convolution (then contiguous, NCHW, as on any other device).

    Channels-last is faster for these convs on CUDA and on the CPU (see bench/RESULTS.md), but
    on the CPU oneDNN 3.12 (torch 2.14.1, AVX-512, 2+ threads) corrupts the heap computing the
    weight gradient of a channels-last 1x1 stride-2 convolution with 4 or 8 input channels and
    an odd batch (an eighth-width ResNet34's first downsampling shortcut, 8 -> 16 channels, on
    a last batch of 29 died with SIGSEGV). The registered ResNets' shortcuts are
    `StridedPointwise`, which never asks for that kernel; a model of your own with a plain
    strided 1x1 Conv2d keeps the contiguous kernel, which no probe broke (README, "Memory
    format"; `tests/engine/test_conv_probe.py` probes every conv shape of the registered models).
    """
    if device.type == "cuda" or (device.type == "cpu" and not strided_pointwise(model)):
        return torch.channels_last
    return torch.contiguous_format


def input_format(model: nn.Module) -> torch.memory_format | None:
    """The memory format of the model's conv weights (None: no way to tell); inputs follow it.

    A channels-last input to a contiguous model (or the reverse) makes every convolution
    convert its weights or its input; matching the model avoids that, on CPU and GPU alike.
    """
    for p in model.parameters():
        if p.dim() == 4 and p.is_contiguous() != p.is_contiguous(memory_format=torch.channels_last):
            return torch.contiguous_format if p.is_contiguous() else torch.channels_last
    return None


class _LossCheck:
    """Finds the first batch whose loss is not finite, reading the device every `every` batches.

    On the CPU a read costs nothing, so every batch is checked as it ends; on a GPU a read
    makes the host wait for the queue to drain, so losses stay on the device and are checked
    in groups (and at the last batch), still naming the first bad batch exactly.
    """

    def __init__(self, n: int, device: torch.device, epoch: int) -> None:
        self.every = 1 if device.type == "cpu" else CHECK_EVERY
        self.losses = torch.zeros(max(1, n), device=device)
        self.checked, self.epoch = 0, epoch

    def add(self, i: int, loss: torch.Tensor, last: bool = False) -> None:
        """Record batch `i`'s loss (1-based); raise NonFiniteLoss if a check finds a bad one."""
        self.losses[i - 1] = loss.detach()
        if i - self.checked >= self.every or last:
            self.check(i)

    def check(self, i: int) -> None:
        """Look at the losses of batches checked+1 .. i."""
        bad = torch.nonzero(~torch.isfinite(self.losses[self.checked : i]))
        if len(bad):
            first = self.checked + int(bad[0, 0])
            raise NonFiniteLoss(self.epoch, first + 1, float(self.losses[first]))
        self.checked = i


def train_epoch(
    model: nn.Module,
    batches: Batches,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    enforcer: MaskEnforcer | None = None,
    epoch: int = 0,
    precision: str = "auto",
) -> Iterator[Step]:
    """Train one pass over `batches`, yielding running totals after every batch.

    The consumer may stop iterating at any batch boundary (a stop request); the model is then
    in a consistent state (the last step completed, the mask enforced). A non-finite loss
    raises `NonFiniteLoss` naming its batch: at once on the CPU, within CHECK_EVERY batches
    on a GPU. Nothing in the loop waits for the GPU otherwise. `precision`: see `autocast`.
    """
    model.train()
    device = next(model.parameters()).device
    fmt = input_format(model)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    n = len(batches)
    check = _LossCheck(n, device, epoch)
    i = 0
    for i, (x, y) in enumerate(batches.epoch(generator), start=1):
        if fmt is not None:
            x = x.contiguous(memory_format=fmt)
        with autocast(device, precision):
            out = model(x)
            loss = nn.functional.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if enforcer is not None:
            enforcer.after_backward()
        optimizer.step()
        if enforcer is not None:
            enforcer.after_step()
        # out of place, so every Step keeps its own totals (still on the device)
        loss_sum = loss_sum + loss.detach() * len(y)
        correct = correct + (out.argmax(1) == y).sum()
        seen += len(y)
        check.add(i, loss, last=i == n)
        yield Step(i, n, loss_sum, correct, seen)
    check.check(i)  # the batches after the last check, if the epoch ended early


@torch.no_grad()
def evaluate(model: nn.Module, batches: Batches, precision: str = "auto") -> tuple[float, float]:
    """(mean cross-entropy loss, top-1 accuracy in percent) over all of `batches`."""
    model.eval()
    device = next(model.parameters()).device
    fmt = input_format(model)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for x, y in batches.epoch():
        if fmt is not None:
            x = x.contiguous(memory_format=fmt)
        with autocast(device, precision):
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


def optimizer_for(
    config: RunConfig, model: nn.Module
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """`make_optimizer` with the run's hyper-parameters (the dense model's, the smaller one's)."""
    c = config
    return make_optimizer(model, c.lr, c.momentum, c.weight_decay, c.step_size, c.gamma)
