"""The original's training epoch: torchvision Dataset + PIL transforms + DataLoader(2 workers).

Re-implemented for the benchmark from what the original project did (baseline.py/train.py):
`transforms.Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(),
Normalize(mean, std)])` applied image by image to PIL images in two DataLoader worker
processes (`num_workers=2`, `shuffle=True`), batches moved to the device, then the classic
loop: zero_grad, forward, cross-entropy, backward, step, and `.item()` on the loss and on the
correct count after every batch. It reads the same uint8 images our loader holds, so both
sides see the same data; digits get no flip, as in ours.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class UInt8Images(Dataset):
    """(PIL image, label) pairs from uint8 (N, C, H, W) tensors, transformed one at a time."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform: transforms.Compose) -> None:
        images = x.numpy()
        self.images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
        self.labels = y.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(np.ascontiguousarray(self.images[i]))
        return self.transform(img), int(self.labels[i])


def make_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    flip: bool,
    batch_size: int = 128,
    num_workers: int = 2,
) -> DataLoader:
    """The original's training DataLoader over our uint8 images."""
    steps = [transforms.RandomCrop(32, padding=4)]
    if flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    dataset = UInt8Images(x, y, transforms.Compose(steps))
    return DataLoader(
        dataset,
        batch_size,
        shuffle=True,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
    )


def train_batches(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    max_batches: int,
) -> tuple[float, int, int]:
    """The original loop over the first `max_batches` batches: (mean loss, correct, seen).

    A fresh iterator per call, as every epoch of the original started its workers anew.
    """
    criterion = nn.CrossEntropyLoss()
    model.train()
    train_loss, correct, total = 0.0, 0, 0
    it = iter(loader)
    for batch, (inputs, targets) in enumerate(it, start=1):
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        train_loss += loss.item()
        _, predicted = outputs.max(1)
        total += targets.size(0)
        correct += predicted.eq(targets).sum().item()
        if batch >= max_batches:
            break
    del it  # shuts the workers down, as the end of an epoch does
    return train_loss / max(1, batch), correct, total
