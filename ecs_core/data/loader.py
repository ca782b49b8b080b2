"""Batches from device-resident uint8 tensors, augmented on the device (as airbench does).

The whole split lives on the training device as uint8; each batch is indexed, converted to
float, normalised and (for training) randomly cropped with 4-pixel padding and flipped, all as
batched tensor ops. No per-image Python, no worker processes, and no host-device sync per
batch: the random draws come from a CPU generator and travel to the device without a stall.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

PAD = 4  # random-crop padding, as the original (transforms.RandomCrop(32, padding=4))


@dataclass
class Batches:
    """An iterable over (images float NCHW, labels) batches of one split."""

    x: torch.Tensor
    y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    batch_size: int
    train: bool
    flip: bool
    max_batches: int | None = None
    channels_last: bool = False

    def __len__(self) -> int:
        n = -(-len(self.y) // self.batch_size)
        return min(n, self.max_batches) if self.max_batches else n

    @property
    def num_images(self) -> int:
        return min(len(self.y), len(self) * self.batch_size)

    def epoch(
        self, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass: shuffled and augmented when `train`, in order and untouched otherwise."""
        n = len(self.y)
        if self.train:
            order = to_device(torch.randperm(n, generator=generator), self.x.device)
        else:
            order = None
        for b in range(len(self)):
            sl = slice(b * self.batch_size, min(n, (b + 1) * self.batch_size))
            idx = order[sl] if order is not None else sl
            xb = self.x[idx]
            if self.train:
                xb = augment(xb, self.flip, generator)
            xb = self.normalise(xb)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, self.y[idx]

    __iter__ = epoch

    def normalise(self, xb: torch.Tensor) -> torch.Tensor:
        return xb.float().div_(255).sub_(self.mean).div_(self.std)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small CPU tensor to `device` without waiting for the device.

    A copy from ordinary (pageable) host memory makes CUDA finish all queued work first; from
    pinned memory it is queued like a kernel. The caching host allocator keeps the pinned
    buffer alive until the copy is done.
    """
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def augment(x: torch.Tensor, flip: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with zero padding of PAD pixels, then (if `flip`) a random horizontal flip.

    Works on the uint8 images (before normalisation), so the border is black, as the original's
    RandomCrop-then-Normalize gives. Random draws come from `generator` on the CPU so the result
    does not depend on the device. The crop and the flip are one gather: a flipped image reads
    its window's columns right to left.
    """
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD))
    dy = torch.randint(0, 2 * PAD + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * PAD + 1, (b,), generator=generator)
    cols = torch.arange(w).expand(b, w)
    if flip:
        do = torch.rand(b, generator=generator) < 0.5
        cols = torch.where(do[:, None], cols.flip(1), cols)
    # rows and columns to read, per image: (b, h) and (b, w) on the CPU, one copy to the device
    index = to_device(torch.cat([dy[:, None] + torch.arange(h), dx[:, None] + cols], 1), x.device)
    rows = index[:, None, :h, None].expand(b, c, h, w + 2 * PAD)
    out = padded.gather(2, rows)
    return out.gather(3, index[:, None, None, h:].expand(b, c, h, w))


def make_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int,
    train: bool,
    flip: bool,
    device: torch.device,
    max_batches: int | None = None,
) -> Batches:
    """Move a split to `device` once and wrap it; channels-last on CUDA."""
    device = torch.device(device)
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    return Batches(
        x.to(device),
        y.to(device),
        m,
        s,
        batch_size,
        train,
        flip,
        max_batches,
        channels_last=device.type == "cuda",
    )
