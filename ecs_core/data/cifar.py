"""CIFAR-10 / CIFAR-100 from their python pickle batches, read by our own code.

torchvision's CIFAR classes check the md5 of the canonical files on every load, so they reject
the small real-format files tests write; we use torchvision only to download (it verifies the
archive's md5 then) and read the batches ourselves with an unpickler that allows only numpy
arrays and plain containers, so a tampered batch file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ecs_core.data.base import DatasetError, ImageData

_LAYOUT = {
    # name: (folder, train files, test files, label key, classes)
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "labels",
        10,
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100),
}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
    # pickle protocol 5 stores arrays as (buffer, dtype, shape): numpy rebuilds them with this
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch -> images uint8 (N, 3, 32, 32), labels int64 (N,)."""
    try:
        with open(path, "rb") as f:
            entry = _SafeUnpickler(f, encoding="latin1").load()
        data = np.asarray(entry["data"] if "data" in entry else entry[b"data"], dtype=np.uint8)
        labels = entry.get(label_key, entry.get(label_key.encode()))
        images = data.reshape(-1, 3, 32, 32)
        labels = np.asarray(labels, dtype=np.int64)
    except Exception as exc:
        raise DatasetError(
            f"{path} is not a readable CIFAR batch ({exc}); delete it and run again to "
            "re-download, or replace it with the original file"
        ) from exc
    if len(labels) != len(images):
        raise DatasetError(f"{path}: {len(images)} images but {len(labels)} labels")
    return images, labels


def missing_message(name: str, data_dir: Path, why: str) -> str:
    folder = _LAYOUT[name][0]
    url = "https://www.cs.toronto.edu/~kriz/" + folder.replace("-batches-py", "-python") + ".tar.gz"
    if name == "cifar100":
        url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    return (
        f"{name.upper()} is not in {data_dir} and could not be downloaded ({why}). "
        f"Download {url} on a machine with network access, extract it so that the folder "
        f"{data_dir / folder} exists, then run again with --data-dir {data_dir} "
        "(or pass --data-dir pointing to the folder that contains "
        f"{folder}). To try without any download, use --dataset digits."
    )


def load_cifar(name: str, data_dir: str | Path, download: bool = True) -> ImageData:
    """Load cifar10 or cifar100 from `data_dir/<folder>`, downloading it first if allowed."""
    data_dir = Path(data_dir)
    folder, train_files, test_files, label_key, classes = _LAYOUT[name]
    root = data_dir / folder
    if not root.is_dir():
        if not download:
            raise DatasetError(missing_message(name, data_dir, "downloads are off"))
        _download(name, data_dir)
    missing = [f for f in train_files + test_files if not (root / f).is_file()]
    if missing:
        raise DatasetError(
            f"{root} is incomplete (missing {', '.join(missing)}); delete the folder and run "
            "again to re-download, or copy the complete folder there"
        )
    tr = [read_batch(root / f, label_key) for f in train_files]
    te = [read_batch(root / f, label_key) for f in test_files]
    train_x = torch.from_numpy(np.concatenate([x for x, _ in tr]))
    train_y = torch.from_numpy(np.concatenate([y for _, y in tr]))
    test_x = torch.from_numpy(np.concatenate([x for x, _ in te]))
    test_y = torch.from_numpy(np.concatenate([y for _, y in te]))
    bad = int(
        ((train_y < 0) | (train_y >= classes)).sum() + ((test_y < 0) | (test_y >= classes)).sum()
    )
    if bad:
        raise DatasetError(f"{root}: {bad} labels outside 0..{classes - 1}")
    mean, std = _STATS[name]
    return ImageData(name, train_x, train_y, test_x, test_y, classes, mean, std, flip=True)


# Standard per-dataset normalisation (train-set statistics).
_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def _download(name: str, data_dir: Path) -> None:
    """Fetch through torchvision, which checks the archive's md5 before extracting."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        cls(str(data_dir), train=True, download=True)
    except Exception as exc:  # network down, DNS, md5 mismatch, disk
        raise DatasetError(missing_message(name, data_dir, f"{type(exc).__name__}: {exc}")) from exc


def load_cifar10(data_dir: str | Path, download: bool = True) -> ImageData:
    return load_cifar("cifar10", data_dir, download)


def load_cifar100(data_dir: str | Path, download: bool = True) -> ImageData:
    return load_cifar("cifar100", data_dir, download)
