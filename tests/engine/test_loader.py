"""Device-resident batches: augmentation shape/dtype, test split untouched, seeded shuffles."""

from __future__ import annotations

import torch

from ecs_core.data import ImageData, augment, make_batches
from ecs_core.data.loader import PAD

CPU = torch.device("cpu")


def test_augment_keeps_shape_and_dtype(digits: ImageData) -> None:
    x = digits.train_x[:64]
    out = augment(x, flip=True, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8


def test_augment_changes_images_and_is_a_padded_crop(digits: ImageData) -> None:
    """Each output is a 32x32 window of the zero-padded input (random crop, Krizhevsky-style)."""
    x = digits.train_x[:32]
    out = augment(x, flip=False, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(out, x)
    for i in range(len(x)):
        assert any(torch.equal(out[i], w) for w in crop_windows(x[i]))


def crop_windows(image: torch.Tensor) -> list[torch.Tensor]:
    """Every 32x32 window of one zero-padded image: what a random crop may return."""
    padded = torch.nn.functional.pad(image, (PAD, PAD, PAD, PAD))
    return [
        padded[:, dy : dy + 32, dx : dx + 32]
        for dy in range(2 * PAD + 1)
        for dx in range(2 * PAD + 1)
    ]


def test_flip_mirrors_about_half_the_images(digits: ImageData) -> None:
    x = digits.train_x[:64]
    out = augment(x, flip=True, generator=torch.Generator().manual_seed(3))
    flipped = 0
    for i in range(len(x)):
        windows = crop_windows(x[i])
        if not any(torch.equal(out[i], w) for w in windows):
            assert any(torch.equal(out[i].flip(-1), w) for w in windows)
            flipped += 1
    assert 10 < flipped < 54


def test_training_batches_are_augmented_and_normalised(digits: ImageData) -> None:
    d = digits
    batches = make_batches(d.train_x, d.train_y, d.mean, d.std, 32, True, d.flip, CPU, 3)
    assert len(batches) == 3
    seen = list(batches.epoch(torch.Generator().manual_seed(0)))
    assert len(seen) == 3
    for xb, yb in seen:
        assert xb.shape == (32, 1, 32, 32) and xb.dtype == torch.float32
        assert yb.shape == (32,) and yb.dtype == torch.int64
    xb = torch.cat([b[0] for b in seen])
    assert abs(float(xb.mean())) < 0.5 and 0.5 < float(xb.std()) < 1.5


def test_training_batches_differ_from_the_plain_images(digits: ImageData) -> None:
    """32 copies of one image come out of a training batch as different crops."""
    d = digits
    x = d.train_x[:1].repeat(32, 1, 1, 1)
    y = d.train_y[:1].repeat(32)
    plain = make_batches(x, y, d.mean, d.std, 32, False, False, CPU)
    aug = make_batches(x, y, d.mean, d.std, 32, True, False, CPU)
    (xp, _), (xa, _) = next(iter(plain)), next(aug.epoch(torch.Generator().manual_seed(0)))
    assert xa.shape == xp.shape and xa.dtype == xp.dtype
    assert len({bytes(img.numpy()) for img in xa}) > 10
    assert len({bytes(img.numpy()) for img in xp}) == 1


def test_training_batches_reproducible_for_the_same_seed(digits: ImageData) -> None:
    d = digits
    batches = make_batches(d.train_x, d.train_y, d.mean, d.std, 16, True, d.flip, CPU, 2)
    a = list(batches.epoch(torch.Generator().manual_seed(7)))
    b = list(batches.epoch(torch.Generator().manual_seed(7)))
    c = list(batches.epoch(torch.Generator().manual_seed(8)))
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0], c[0][0])


def test_test_split_is_in_order_and_not_augmented(digits: ImageData) -> None:
    """The test split is the normalised images, in order, every epoch: no random crop or flip."""
    d = digits
    mean = torch.tensor(d.mean).view(1, -1, 1, 1)
    std = torch.tensor(d.std).view(1, -1, 1, 1)
    batches = make_batches(d.test_x, d.test_y, d.mean, d.std, 100, False, True, CPU)
    assert len(batches) == 4  # 360 images, the last batch partial
    first = list(batches.epoch(torch.Generator().manual_seed(0)))
    second = list(batches.epoch(torch.Generator().manual_seed(99)))
    xs = torch.cat([x for x, _ in first])
    assert torch.equal(torch.cat([y for _, y in first]), d.test_y)
    assert torch.allclose(xs, (d.test_x.float() / 255 - mean) / std, atol=1e-6)
    for (x1, _), (x2, _) in zip(first, second, strict=True):
        assert torch.equal(x1, x2)


def test_full_epoch_visits_every_training_image_once(digits: ImageData) -> None:
    d = digits
    batches = make_batches(d.train_x, d.train_y, d.mean, d.std, 500, True, d.flip, CPU)
    labels = torch.cat([y for _, y in batches.epoch(torch.Generator().manual_seed(0))])
    assert len(labels) == len(d.train_y)
    assert torch.equal(labels.bincount(minlength=10), d.train_y.bincount(minlength=10))
