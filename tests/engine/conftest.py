"""Fixtures for the engine tests: tiny data in the real on-disk formats, tiny models, batches.

Everything here runs on the CPU in well under a second; nothing touches the network.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ecs_core.data import ImageData, load_dataset, make_batches
from ecs_core.data.loader import Batches

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run each engine test on one intra-op thread, then restore the setting.

    These models are tiny, so extra threads buy nothing; on a shared 2-core machine they made
    the end-to-end runs 10-20x slower (threads spinning against other processes).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits() -> ImageData:
    """The embedded digits data, loaded once for the whole session."""
    return load_dataset("digits")


@pytest.fixture
def train_batches(digits: ImageData) -> Callable[..., Batches]:
    """Factory for augmented digits training batches on the CPU."""

    def make(batch_size: int = 16, max_batches: int | None = 2) -> Batches:
        d = digits
        return make_batches(
            d.train_x, d.train_y, d.mean, d.std, batch_size, True, d.flip, CPU, max_batches
        )

    return make


def cifar_dict(n: int, label_key: bytes, classes: int, seed: int) -> dict[bytes, object]:
    """A batch dict shaped like the real files: uint8 (n, 3072) rows, a list of int labels."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"testing batch",
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        label_key: [int(v) for v in rng.integers(0, classes, size=n)],
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


@pytest.fixture
def write_cifar() -> Callable[[Path, str, int], dict[str, dict]]:
    """Write a small CIFAR-10 or CIFAR-100 folder in the real pickle layout; return the dicts."""

    def write(root: Path, name: str, n: int = 6) -> dict[str, dict]:
        if name == "cifar10":
            folder = root / "cifar-10-batches-py"
            files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
            key, classes = b"labels", 10
        else:
            folder = root / "cifar-100-python"
            files, key, classes = ["train", "test"], b"fine_labels", 100
        folder.mkdir(parents=True)
        out = {}
        for seed, fname in enumerate(files):
            entry = cifar_dict(n, key, classes, seed)
            if name == "cifar100":
                entry[b"coarse_labels"] = [v // 5 for v in entry[key]]
            with open(folder / fname, "wb") as f:
                pickle.dump(entry, f)
            out[fname] = entry
        return out

    return write


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the idx format: 0, 0, type 0x08, ndim, big-endian dims, data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@pytest.fixture
def write_fashion() -> Callable[..., dict[str, np.ndarray]]:
    """Write four small Fashion-MNIST idx files (gzipped or raw) into `folder`."""

    def write(folder: Path, gz: bool, n_train: int = 12, n_test: int = 5) -> dict:
        rng = np.random.default_rng(1)
        arrays = {
            "train_x": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
            "train_y": rng.integers(0, 10, size=n_train, dtype=np.uint8),
            "test_x": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
            "test_y": rng.integers(0, 10, size=n_test, dtype=np.uint8),
        }
        folder.mkdir(parents=True, exist_ok=True)
        for key, stem in FASHION_FILES.items():
            raw = idx_bytes(arrays[key])
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / stem).write_bytes(raw)
        return arrays

    return write


@pytest.fixture
def small_digits(digits: ImageData, monkeypatch: pytest.MonkeyPatch) -> ImageData:
    """Make `pipeline.run` see a 64/32-image slice of digits, so end-to-end runs stay fast.

    Only the amount of data changes; the run goes through every real stage.
    """
    import dataclasses

    from ecs_core import pipeline

    small = dataclasses.replace(
        digits,
        train_x=digits.train_x[:64],
        train_y=digits.train_y[:64],
        test_x=digits.test_x[:32],
        test_y=digits.test_y[:32],
    )

    def load(name: str, data_dir: object = None, download: bool = True) -> ImageData:
        assert name == "digits", name
        return small

    monkeypatch.setattr(pipeline, "load_dataset", load)
    return small
