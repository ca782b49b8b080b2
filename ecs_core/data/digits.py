"""scikit-learn's 8x8 handwritten digits, scaled to 32x32: the embedded dataset."""

from __future__ import annotations

import numpy as np
import torch

from ecs_core.data.base import ImageData, channel_stats

TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed: the split never depends on --seed


def load_digits_data() -> ImageData:
    """1797 real digit images (values 0..16), upscaled 4x to 32x32, fixed stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = torch.nn.functional.interpolate(images, size=32, mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(
        idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=bunch.target
    )
    train_x, test_x = images[train_idx], images[test_idx]
    mean, std = channel_stats(train_x)
    return ImageData(
        "digits",
        train_x,
        labels[train_idx],
        test_x,
        labels[test_idx],
        10,
        mean,
        std,
        flip=False,
    )


def load(data_dir: object = None, download: bool = False) -> ImageData:
    """The registry's loader: digits ship with scikit-learn (no folder, nothing to download)."""
    return load_digits_data()
