"""Fashion-MNIST from idx files: torchvision's layout, a plain folder, or Debian's package."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from ecs_core.data.base import DatasetError, ImageData, channel_stats, pad_to_32

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # package dataset-fashion-mnist
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally .gz): big-endian magic, dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
            raise ValueError("bad magic number (not a uint8 idx file)")
        dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        if data.size != int(np.prod(dims)):
            raise ValueError(f"expected {int(np.prod(dims))} values, found {data.size}")
    except (OSError, EOFError, ValueError, struct.error) as exc:
        raise DatasetError(f"{path} is not a readable idx file ({exc})") from exc
    return data.reshape(dims)


def candidate_dirs(data_dir: Path) -> list[Path]:
    return [
        data_dir / "FashionMNIST" / "raw",
        data_dir / "fashion-mnist",
        data_dir,
        DEBIAN_DIR,
    ]


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def locate(data_dir: Path) -> dict[str, Path] | None:
    for folder in candidate_dirs(data_dir):
        found = {k: _find(folder, v) for k, v in FILES.items()}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def load_fashion(data_dir: str | Path, download: bool = True) -> ImageData:
    """Fashion-MNIST, 28x28 zero-padded to 32x32, from the first folder that has all 4 files."""
    data_dir = Path(data_dir)
    files = locate(data_dir)
    if files is None and download:
        try:
            from torchvision import datasets

            datasets.FashionMNIST(str(data_dir), train=True, download=True)
            files = locate(data_dir)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
        else:
            why = "download gave no files"
    else:
        why = "downloads are off"
    if files is None:
        raise DatasetError(
            f"Fashion-MNIST is not in {data_dir} and could not be downloaded ({why}). "
            "Install it offline with `apt-get install dataset-fashion-mnist` (it lands in "
            f"{DEBIAN_DIR}), or put the four idx files (train-images-idx3-ubyte.gz, ...) in "
            f"{data_dir / 'fashion-mnist'} and pass --data-dir {data_dir}. "
            "To try without any download, use --dataset digits."
        )
    arrays = {k: read_idx(p) for k, p in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(
                f"Fashion-MNIST {split}: expected N images and N labels, got shapes "
                f"{x.shape} and {y.shape} in {files[split + '_x'].parent}"
            )
        if x.shape[1] > 32 or x.shape[2] > 32 or (y.size and int(y.max()) > 9):
            raise DatasetError(f"Fashion-MNIST {split}: images over 32x32 or labels over 9")
    train_x = pad_to_32(torch.from_numpy(arrays["train_x"].copy()).unsqueeze(1))
    test_x = pad_to_32(torch.from_numpy(arrays["test_x"].copy()).unsqueeze(1))
    train_y = torch.from_numpy(arrays["train_y"].astype(np.int64))
    test_y = torch.from_numpy(arrays["test_y"].astype(np.int64))
    mean, std = channel_stats(train_x)  # over the padded 32x32 images the model sees
    return ImageData("fashion-mnist", train_x, train_y, test_x, test_y, 10, mean, std, flip=True)
