"""ONNX models of a run: fp32 through PyTorch's exporter, int8 through onnxruntime's own
static quantization, and their accuracy and latency measured in onnxruntime.

* `export_fp32`: `torch.onnx.export(..., dynamo=True)` with a dynamic batch dimension; the
  run's facts (model, width, dataset, classes, channels) go into the graph's metadata, so
  `ecs eval model.onnx` needs nothing else.
* `quantize_int8`: `onnxruntime.quantization.quantize_static`, QDQ format, per-channel int8
  weights, uint8 activations calibrated (min/max) on training images, after onnxruntime's
  `quant_pre_process` (shape inference and graph optimisation). U8S8 is onnxruntime's fast
  path on x86: with int8 activations (S8S8) a ResNet50 x0.25 ran 3.6x slower than fp32 (21 of
  53 convolutions left unfused), with uint8 2x faster (bench/onnx.py measures full width).
* `accuracy` and `latency`: an onnxruntime CPU session with a chosen number of intra-op threads.

onnx, onnxruntime and onnxscript are imported inside the functions (`pip install
'ecs-tui[export]'`); importing this module costs nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecs_core.config import INSTALL_EXTRA as INSTALL_HINT

INPUT, OUTPUT = "images", "logits"
IMAGE_SIZE = 32
"""Every dataset is served as 32 x 32 images (digits are upscaled)."""
META_KEYS = ("model", "width", "dataset", "num_classes", "in_channels", "bits", "run", "format")


class OnnxError(ValueError):
    """An ONNX export, quantization or session failed; the message says what to do."""


def _require(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise OnnxError(f"ONNX export needs {name}: {INSTALL_HINT}") from None


def export_fp32(model: nn.Module, path: Path, meta: dict[str, Any]) -> int:
    """Write `model` (eval mode, CPU) as an fp32 ONNX graph with a dynamic batch; bytes written."""
    _require("onnxscript")
    onnx = _require("onnx")
    model = model.eval().cpu()
    x = torch.randn(2, int(meta["in_channels"]), IMAGE_SIZE, IMAGE_SIZE)
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        program = torch.onnx.export(model, (x,), None, dynamo=True, input_names=[INPUT],
                                    output_names=[OUTPUT], dynamic_shapes=({0: batch},),
                                    optimize=True, verbose=False)  # fmt: skip
    except Exception as exc:  # the exporter raises many kinds; say which
        raise OnnxError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    proto = program.model_proto
    _set_meta(proto, {**meta, "format": "fp32"})
    onnx.save_model(proto, str(path))
    return path.stat().st_size


def _set_meta(proto: Any, meta: dict[str, Any]) -> None:
    del proto.metadata_props[:]
    for key in META_KEYS:
        if meta.get(key) is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"ecs.{key}", str(meta[key])


def read_meta(path: Path) -> dict[str, str]:
    """The `ecs.*` metadata an exported graph carries (empty for someone else's model)."""
    onnx = _require("onnx")
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise OnnxError(f"{path} is not a readable ONNX model: {exc}") from None
    return {p.key[4:]: p.value for p in proto.metadata_props if p.key.startswith("ecs.")}


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over batches of normalised images."""

    def __init__(self, batches: Iterable[torch.Tensor]) -> None:
        self._it: Iterator[torch.Tensor] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {INPUT: x.detach().cpu().float().numpy()}

    def rewind(self) -> None:  # only needed by onnxruntime's per-node calibration; one pass here
        pass


def quantize_int8(fp32_path: Path, path: Path, calib: Iterable[torch.Tensor]) -> int:
    """QDQ int8 model of `fp32_path` by onnxruntime's static quantization; bytes written."""
    _require("onnxruntime")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = type("Reader", (_Calibration, CalibrationDataReader), {})(calib)
    meta = read_meta(fp32_path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(path), reader, quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8)  # fmt: skip
        except Exception as exc:
            raise OnnxError(
                f"onnxruntime quantization failed: {type(exc).__name__}: {exc}"
            ) from None
    onnx = _require("onnx")
    proto = onnx.load_model(str(path))
    _set_meta(proto, {**meta, "format": "int8 QDQ (onnxruntime quantize_static, per-channel)"})
    onnx.save_model(proto, str(path))
    return path.stat().st_size


def session(path: Path, threads: int = 0) -> Any:
    """An onnxruntime CPU session; `threads` intra-op threads (0: onnxruntime's default)."""
    ort = _require("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: no warnings about unused initializers
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise OnnxError(f"onnxruntime cannot load {path}: {exc}") from None


def logits(sess: Any, x: torch.Tensor) -> np.ndarray:
    return sess.run([OUTPUT], {INPUT: x.detach().cpu().float().numpy()})[0]


def accuracy(sess: Any, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Top-1 accuracy in percent over (images, labels) batches."""
    correct = seen = 0
    for x, y in batches:
        pred = logits(sess, x).argmax(1)
        correct += int((pred == y.cpu().numpy()).sum())
        seen += len(y)
    return 100.0 * correct / max(1, seen)


def latency(sess: Any, in_channels: int, batch: int = 64, repeats: int = 10,
            warmup: int = 2) -> float:  # fmt: skip
    """Median milliseconds of one `batch`-image forward pass (random images)."""
    x = torch.randn(batch, in_channels, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator())
    feed = {INPUT: x.numpy()}
    for _ in range(warmup):
        sess.run([OUTPUT], feed)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run([OUTPUT], feed)
        times.append(time.perf_counter() - t)
    return 1000.0 * statistics.median(times)


# --- a run's model, exported and measured (what `ecs export --format onnx` records)

LATENCY_BATCH = 64
LATENCY_THREADS = 1


def int8_path(path: Path) -> Path:
    """model.onnx -> model.int8.onnx (where `--int8` writes the quantized graph)."""
    return path.with_name(f"{path.stem}.int8{path.suffix}")


def max_relative_error(model: nn.Module, sess: Any, in_channels: int, n: int = 8) -> float:
    """max |onnxruntime - PyTorch| / max |PyTorch| over the logits of `n` random images."""
    x = torch.randn(n, in_channels, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator())
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    return float(np.abs(logits(sess, x) - ref).max() / max(1e-12, float(np.abs(ref).max())))


def measure(path: Path, data: Any, in_channels: int) -> dict[str, Any]:
    """File size, onnxruntime test accuracy and latency (batch 64, one intra-op thread)."""
    from ecs_core.data import make_batches

    test = make_batches(data.test_x, data.test_y, data.mean, data.std, 256, False, False,
                        torch.device("cpu"))  # fmt: skip
    timing = session(path, LATENCY_THREADS)
    return {
        "path": str(path), "bytes": path.stat().st_size,
        "test_acc": accuracy(session(path), test.epoch()),
        "latency_ms": latency(timing, in_channels, LATENCY_BATCH),
        "latency_batch": LATENCY_BATCH, "latency_threads": LATENCY_THREADS,
    }  # fmt: skip


def export_run(model: nn.Module, meta: dict[str, Any], out: Path, data: Any, int8: bool,
               calib_batches: int = 8, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """fp32 graph at `out` (and int8 at `int8_path(out)`), each measured: the summary's "onnx".

    The int8 model is calibrated on `calib_batches` batches of 64 training images (shuffled
    with `seed`, not augmented), as the run's own int8 model is.
    """
    from ecs_core.data import make_batches
    from ecs_core.quant.stage import INT8_BATCH, calibration_images

    export_fp32(model, out, meta)
    rows: dict[str, Any] = {"fp32": measure(out, data, meta["in_channels"])}
    rows["fp32"]["max_rel_error"] = max_relative_error(model, session(out), meta["in_channels"])
    if int8:
        train = make_batches(data.train_x, data.train_y, data.mean, data.std, INT8_BATCH, False,
                             False, torch.device("cpu"))  # fmt: skip
        quantize_int8(out, int8_path(out), calibration_images(train, calib_batches, seed))
        rows["int8"] = measure(int8_path(out), data, meta["in_channels"])
    return rows
