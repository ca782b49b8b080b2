"""The in-memory dataset type every loader returns: uint8 images, int64 labels, stats."""

from __future__ import annotations

from dataclasses import dataclass

import torch


class DatasetError(RuntimeError):
    """A dataset is missing or unreadable; the message says where to put it and which flag."""


@dataclass
class ImageData:
    """A train/test split held as tensors: images uint8 (N, C, 32, 32), labels int64 (N,)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    """Per-channel mean of the train images, in [0, 1]."""
    std: tuple[float, ...]
    flip: bool
    """Whether horizontal flips are a valid augmentation (not for digits)."""

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, scaled to [0, 1]."""
    xf = x.float().div_(255)
    mean = xf.mean(dim=(0, 2, 3))
    std = xf.std(dim=(0, 2, 3))
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def pad_to_32(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad (N, C, H, W) images with H, W <= 32 to 32x32, centred."""
    h, w = x.shape[-2:]
    top, left = (32 - h) // 2, (32 - w) // 2
    return torch.nn.functional.pad(x, (left, 32 - w - left, top, 32 - h - top))
