"""ONNX export: every registered model runs in onnxruntime with PyTorch's outputs, a dynamic
batch, and an int8 QDQ twin from onnxruntime's quantizer; `ecs export --format onnx` and
`ecs eval FILE.onnx` on a trained run, sizes and accuracy recorded in summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ecs_core.config import RunConfig
from ecs_core.models import build_model
from ecs_core.quant import onnx_export as ox
from ecs_core.registry import MODELS
from ecs_tui.cli import app


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_exports_and_matches_pytorch_in_onnxruntime(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, 10, 3, 0.125).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so BN folding is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    meta = {"model": name, "width": 0.125, "in_channels": 3, "num_classes": 10}
    path = tmp_path / "m.onnx"
    ox.export_fp32(model, path, meta)
    sess = ox.session(path, 1)
    assert isinstance(sess.get_inputs()[0].shape[0], str)  # the batch dimension is symbolic
    for batch in (1, 5):  # neither is the example batch (2) the graph was traced with
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            ref = model(x).numpy()
        out = ox.logits(sess, x)
        assert out.shape == (batch, 10)
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
    assert ox.read_meta(path)["model"] == name
    q = tmp_path / "m.int8.onnx"
    ox.quantize_int8(path, q, [torch.randn(8, 3, 32, 32) for _ in range(2)])
    ops = {n.op_type for n in __import__("onnx").load_model(str(q)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert ox.logits(ox.session(q, 1), torch.randn(3, 3, 32, 32)).shape == (3, 10)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VGG16 x0.125 SNIP run on digits trained far enough that int8 rounding could show."""
    from ecs_core.pipeline import run

    cfg = RunConfig(model="vgg16", width=0.125, dataset="digits", method="snip", density=0.2,
                    epochs=3, lr=0.03, batch_size=32, max_batches=25, device="cpu",
                    quantize=False, runs_dir=str(tmp_path_factory.mktemp("runs")))  # fmt: skip
    events = list(run(cfg))
    assert events[-1].kind == "run_finished"
    return Path(events[0].run_dir)


def _shared_weight_accuracy(run: Path) -> float:
    """Test accuracy of the run's model after 5-bit weight sharing, as `ecs export` makes it."""
    from ecs_core.data import load_dataset, make_batches
    from ecs_core.train import evaluate
    from ecs_tui.commands.quant import _load_run

    model, *_ = _load_run(run, None)
    d = load_dataset("digits")
    test = make_batches(d.test_x, d.test_y, d.mean, d.std, 256, False, False, "cpu")
    return evaluate(model, test)[1]


def test_export_onnx_int8_records_sizes_accuracy_latency(runner, trained_run, tmp_path):
    before = json.loads((trained_run / "summary.json").read_text())
    out = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", str(trained_run), "--format", "onnx", "--int8",
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    after = json.loads((trained_run / "summary.json").read_text())
    assert {k: v for k, v in after.items() if k != "onnx"} == before  # other keys untouched
    fp32, int8 = after["onnx"]["fp32"], after["onnx"]["int8"]
    assert fp32["bytes"] == out.stat().st_size
    assert int8["bytes"] == (tmp_path / "model.int8.onnx").stat().st_size < fp32["bytes"]
    assert fp32["latency_ms"] > 0 and int8["latency_ms"] > 0 and fp32["latency_threads"] == 1
    assert fp32["max_rel_error"] <= 1e-4
    shared = _shared_weight_accuracy(trained_run)  # in PyTorch
    assert shared > 20  # trained (chance: 10%), not a constant guess: the comparison counts
    assert fp32["test_acc"] == pytest.approx(shared, abs=0.3)  # 360 images: one is 0.28
    assert abs(int8["test_acc"] - shared) <= 1.0
    assert "int8 vs fp32" in result.output and "onnx" in result.output

    ev = runner.invoke(app, ["eval", str(tmp_path / "model.int8.onnx"), "--json"])
    assert ev.exit_code == 0, ev.output
    got = json.loads(ev.output)
    assert got["test_acc"] == pytest.approx(int8["test_acc"]) and got["dataset"] == "digits"
    text = runner.invoke(app, ["eval", str(out)]).output
    assert f"{fp32['test_acc']:.2f}%" in text and "vgg16 x0.125" in text


def test_onnx_option_errors_are_one_line_exit_2(runner, trained_run, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    for args in (["export", str(trained_run), "--int8"],
                 ["export", str(trained_run), "--format", "tflite"],
                 ["export", str(trained_run), "--format", "onnx", "-o", str(tmp_path / "m.pt")],
                 ["eval", str(junk)], ["eval", str(tmp_path / "missing.onnx")]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.onnx"]
