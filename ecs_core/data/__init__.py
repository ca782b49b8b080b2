"""Datasets as device-ready tensors. `load_dataset("digits")` works anywhere, offline."""

from __future__ import annotations

from pathlib import Path

from ecs_core.data.base import DatasetError, ImageData
from ecs_core.data.loader import Batches, augment, make_batches

__all__ = ["Batches", "DatasetError", "ImageData", "augment", "load_dataset", "make_batches"]


def load_dataset(name: str, data_dir: str | Path = "./data", download: bool = True) -> ImageData:
    """Load a dataset by (case-insensitive) name: digits, fashion-mnist, cifar10, cifar100."""
    from ecs_core.registry import DATASETS, lookup

    return lookup(DATASETS, name, "dataset").load()(Path(data_dir), download)
