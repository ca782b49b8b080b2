"""Loaders on small data written in the real on-disk formats; digits; dataset errors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ecs_core.config import ConfigError
from ecs_core.data import DatasetError, ImageData, load_dataset
from ecs_core.data import fashion as fashion_mod

# --- CIFAR


def expected_images(entries: list[dict]) -> torch.Tensor:
    """What the loader must return: rows of 3072 bytes as (3, 32, 32), channels first."""
    rows = np.concatenate([e[b"data"] for e in entries])
    return torch.from_numpy(rows.reshape(-1, 3, 32, 32))


def test_cifar10_real_pickle_layout(tmp_path: Path, write_cifar) -> None:
    written = write_cifar(tmp_path, "cifar10", n=6)
    d = load_dataset("CIFAR10", tmp_path, download=False)
    train = [written[f"data_batch_{i}"] for i in range(1, 6)]
    assert d.train_x.shape == (30, 3, 32, 32) and d.train_x.dtype == torch.uint8
    assert d.test_x.shape == (6, 3, 32, 32)
    assert torch.equal(d.train_x, expected_images(train))
    assert torch.equal(d.test_x, expected_images([written["test_batch"]]))
    labels = [v for e in train for v in e[b"labels"]]
    assert d.train_y.tolist() == labels and d.train_y.dtype == torch.int64
    assert d.test_y.tolist() == written["test_batch"][b"labels"]
    assert d.num_classes == 10 and d.in_channels == 3 and d.flip
    assert len(d.mean) == 3 and len(d.std) == 3


def test_cifar100_uses_fine_labels(tmp_path: Path, write_cifar) -> None:
    written = write_cifar(tmp_path, "cifar100", n=7)
    d = load_dataset("cifar-100", tmp_path, download=False)
    assert d.num_classes == 100
    assert d.train_x.shape == (7, 3, 32, 32)
    assert torch.equal(d.train_x, expected_images([written["train"]]))
    assert d.train_y.tolist() == written["train"][b"fine_labels"]
    assert d.test_y.tolist() == written["test"][b"fine_labels"]


def test_cifar_batch_pickled_with_protocol_5_loads(tmp_path: Path, write_cifar) -> None:
    written = write_cifar(tmp_path, "cifar100", n=3)
    with open(tmp_path / "cifar-100-python" / "train", "wb") as f:
        pickle.dump(written["train"], f, protocol=5)
    d = load_dataset("cifar100", tmp_path, download=False)
    assert torch.equal(d.train_x, expected_images([written["train"]]))


def test_cifar_batch_with_str_keys_loads(tmp_path: Path, write_cifar) -> None:
    """The canonical files were pickled by Python 2; read with latin1 their keys come back as
    str ("data", "labels"), so both spellings must work."""
    written = write_cifar(tmp_path, "cifar10", n=4)
    entry = {k.decode(): v for k, v in written["data_batch_2"].items()}
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_2", "wb") as f:
        pickle.dump(entry, f, protocol=2)
    d = load_dataset("cifar10", tmp_path, download=False)
    assert torch.equal(d.train_x[4:8], expected_images([written["data_batch_2"]]))
    assert d.train_y[4:8].tolist() == written["data_batch_2"][b"labels"]


def test_cifar_missing_offline_says_where_and_which_flag(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path / "nowhere", download=False)
    message = str(err.value)
    assert "cifar-10-batches-py" in message and "--data-dir" in message
    assert "\n" not in message  # one paragraph, no traceback


def test_cifar100_missing_names_its_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cifar-100-python"):
        load_dataset("cifar100", tmp_path, download=False)


class RunsCode:
    """Unpickling this would call os.system: a tampered batch file."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_cifar_batch_that_would_run_code_is_refused(
    tmp_path: Path,
    write_cifar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = write_cifar(tmp_path, "cifar10", n=2)
    entry = dict(written["data_batch_3"])
    entry[b"labels"] = RunsCode()
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump(entry, f)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path, download=False)
    assert not (tmp_path / "pwned").exists()


def test_cifar_incomplete_folder_names_the_missing_file(tmp_path: Path, write_cifar) -> None:
    write_cifar(tmp_path, "cifar10", n=2)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DatasetError, match="test_batch"):
        load_dataset("cifar10", tmp_path, download=False)


def test_cifar_labels_out_of_range_are_refused(tmp_path: Path, write_cifar) -> None:
    written = write_cifar(tmp_path, "cifar10", n=2)
    entry = {**written["test_batch"], b"labels": [3, 10]}
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump(entry, f)
    with pytest.raises(DatasetError, match="outside"):
        load_dataset("cifar10", tmp_path, download=False)


# --- Fashion-MNIST


def check_fashion(d: ImageData, arrays: dict[str, np.ndarray]) -> None:
    """28x28 images zero-padded by 2 pixels to 32x32, labels as written."""
    assert d.train_x.shape == (len(arrays["train_y"]), 1, 32, 32)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    assert torch.equal(d.train_x[:, 0, 2:30, 2:30], torch.from_numpy(arrays["train_x"]))
    assert torch.equal(d.test_x[:, 0, 2:30, 2:30], torch.from_numpy(arrays["test_x"]))
    assert int(d.train_x[:, :, :2].sum()) == 0 and int(d.train_x[:, :, :, 30:].sum()) == 0
    assert d.train_y.tolist() == arrays["train_y"].tolist()
    assert d.test_y.tolist() == arrays["test_y"].tolist()
    assert d.num_classes == 10 and d.in_channels == 1


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_idx_files(tmp_path: Path, write_fashion, gz: bool) -> None:
    arrays = write_fashion(tmp_path / "fashion-mnist", gz=gz)
    check_fashion(load_dataset("fashion-mnist", tmp_path, download=False), arrays)


def test_fashion_torchvision_layout(tmp_path: Path, write_fashion) -> None:
    arrays = write_fashion(tmp_path / "FashionMNIST" / "raw", gz=False, n_train=9, n_test=4)
    check_fashion(load_dataset("FashionMNIST", tmp_path, download=False), arrays)


def test_fashion_corrupt_idx_is_a_dataset_error(tmp_path: Path, write_fashion) -> None:
    folder = tmp_path / "fashion-mnist"
    write_fashion(folder, gz=False)
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])  # truncated
    with pytest.raises(DatasetError, match="t10k-images"):
        load_dataset("fashion-mnist", tmp_path, download=False)


def test_fashion_missing_offline_explains_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fashion_mod, "DEBIAN_DIR", tmp_path / "not-installed")
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", tmp_path, download=False)
    assert "--data-dir" in str(err.value) and "dataset-fashion-mnist" in str(err.value)


# --- digits and names


def test_digits_shapes_split_and_classes(digits: ImageData) -> None:
    assert digits.train_x.shape == (1437, 1, 32, 32) and digits.test_x.shape == (360, 1, 32, 32)
    assert digits.train_x.dtype == torch.uint8 and digits.train_y.dtype == torch.int64
    assert digits.num_classes == 10
    assert set(digits.train_y.tolist()) == set(range(10)) == set(digits.test_y.tolist())
    assert not digits.flip  # a flipped digit is another symbol
    assert int(digits.train_x.max()) > 200  # the 0..16 scale was stretched to 0..255


def test_digits_split_is_fixed(digits: ImageData) -> None:
    """The split does not depend on the global seed: load again under another seed."""
    torch.manual_seed(123)
    np.random.seed(123)
    again = load_dataset("digits")
    assert torch.equal(again.test_x, digits.test_x) and torch.equal(again.test_y, digits.test_y)
    train = {bytes(x.numpy()) for x in digits.train_x}
    assert not any(bytes(x.numpy()) in train for x in digits.test_x[:50])


def test_unknown_dataset_lists_the_valid_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_dataset("imagenet", tmp_path)
    for name in ("digits", "fashion-mnist", "cifar10", "cifar100"):
        assert name in str(err.value)
