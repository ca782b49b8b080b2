"""Every registered model, end to end, at small widths, on a dataset with a partial last batch.

One cell = `ecs run` in a subprocess (a native crash then fails the cell instead of killing
pytest): SNIP at initialisation, one masked training epoch over 95 images in batches of 16
(the last one holds 15), weight sharing, the int8 model built and evaluated, the `.ecsz`
written. Then, in this process: the file decodes bit-exactly to the shared-weight model, and
an int8 model built from the decoded one gives the float logits back closely.

The model list is the registry's, so a model registered later is covered without editing this.

Why the odd last batch: on torch 2.14.1 (oneDNN 3.12, AVX-512 CPU) the channels-last weight
gradient of a 1x1 stride-2 convolution with few channels and an odd batch corrupts the heap (an
eighth-width ResNet34 died on its last batch); the reproduction, and the guard that training
never asks for that kernel, are in `tests/engine/test_conv_probe.py`.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecs_core.data import load_dataset, make_batches
from ecs_core.quant.codec import load_compressed
from ecs_core.registry import MODELS
from ecs_core.store import RunStore

TRAIN, TEST, BATCH = 95, 40, 16  # 5 full batches + one of 15 (odd: the case that crashed)
WIDTHS = (0.125, 0.25)


def _as_cifar(images: np.ndarray) -> np.ndarray:
    """(n, 32, 32) grey uint8 -> CIFAR rows: (n, 3072) uint8, three equal planes."""
    return np.repeat(images[:, None], 3, axis=1).reshape(len(images), -1)


@pytest.fixture(scope="module")
def cifar_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real images (scikit-learn's digits) in CIFAR-10's real pickle layout: 95 train, 40 test."""
    d = load_dataset("digits")
    grey = lambda x: (x[:, 0] if x.ndim == 4 else x).numpy().astype(np.uint8)  # noqa: E731
    train_x, test_x = grey(d.train_x)[:TRAIN], grey(d.test_x)[:TEST]
    train_y, test_y = d.train_y[:TRAIN].tolist(), d.test_y[:TEST].tolist()
    root = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py"
    root.mkdir()
    per = TRAIN // 5
    files = {
        f"data_batch_{i + 1}": (train_x[i * per : (i + 1) * per], train_y[i * per : (i + 1) * per])
        for i in range(5)
    }
    files["test_batch"] = (test_x, test_y)
    for name, (x, y) in files.items():
        entry = {
            b"batch_label": name.encode(), b"data": _as_cifar(x), b"labels": [int(v) for v in y],
            b"filenames": [f"{i}.png".encode() for i in range(len(y))],
        }  # fmt: skip
        with open(root / name, "wb") as f:
            pickle.dump(entry, f)
    return root.parent


def _run_cell(model: str, width: float, data_dir: Path, runs: Path) -> tuple[Path, str]:
    cmd = [
        sys.executable, "-m", "ecs_tui.cli", "run", "--model", model, "--width", str(width),
        "--dataset", "cifar10", "--data-dir", str(data_dir), "--no-download", "--method", "snip",
        "--density", "0.2", "--epochs", "1", "--batch-size", str(BATCH), "--calib-batches", "2",
        "--device", "cpu", "--runs-dir", str(runs), "--json",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, (
        f"{model} x{width}: exit {proc.returncode} (negative = killed by that signal)\n"
        f"{proc.stderr[-3000:]}"
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    run_dir = Path(next(e["run_dir"] for e in events if e["event"] == "run_started"))
    return run_dir, proc.stderr + proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_prunes_quantizes_and_exports(
    model: str, width: float, cifar_digits: Path, tmp_path: Path
) -> None:
    run_dir, output = _run_cell(model, width, cifar_digits, tmp_path)
    assert "warning" not in output.lower(), output[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert abs(summary["density"] - 0.2) < 1e-3
    # epoch metrics count exactly the 95 images seen (a dropped or padded batch would not)
    epoch = next(
        json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()
        if '"epoch_end"' in line
    )  # fmt: skip
    correct = epoch["train_acc"] * TRAIN / 100
    assert abs(correct - round(correct)) < 1e-6, epoch["train_acc"]
    quant = summary["quant"]
    assert isinstance(quant["int8_test_acc"], float), quant
    assert quant["unique_after"] <= 32 * len(quant["layers"])

    # the compressed file decodes bit-exactly to the shared-weight model
    decoded, meta = load_compressed(run_dir / "model.ecsz")
    assert meta["model"] == model and meta["lossy_tensors"] == []
    shared = RunStore(run_dir).load_tensors("quantized.safetensors")
    for name, value in decoded.state_dict().items():
        assert torch.equal(value, shared[name]), name

    # int8 from the decoded model tracks its float logits on the test images
    from ecs_core.quant.int8 import build_int8

    d = load_dataset("cifar10", str(cifar_digits), download=False)
    test = make_batches(d.test_x, d.test_y, d.mean, d.std, 16, False, False, torch.device("cpu"))
    x = torch.cat([xb for xb, _ in test.epoch()])
    int8 = build_int8(decoded, [x[:16], x[16:32]], batch_size=16)
    with torch.no_grad():
        ref, out = decoded(x), int8(x)
    rel = float((out - ref).norm() / ref.norm())
    agree = float((out.argmax(1) == ref.argmax(1)).float().mean())
    assert rel < 0.15 and agree >= 0.8, (rel, agree)
