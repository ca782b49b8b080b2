"""onnxruntime int8 (QDQ, `quantize_static`) vs onnxruntime fp32 on the same exported graph.

Speed: VGG16 and ResNet50 at full width (CIFAR shape), the 5% SNIP mask and 5-bit weight
sharing of `bench.quant`, exported with `ecs_core.quant.onnx_export` as `ecs export --format
onnx --int8` does; batch 64, one intra-op thread, timed in alternating rounds. Our own int8
path (torchao PT2E lowered to oneDNN, `ecs_core.quant.int8`) is timed in the same rounds, so
all three ratios share one reference run.

Accuracy: a full-width model cannot be trained here, so the accuracy difference is measured
on a VGG16 x0.25 trained on digits (a few epochs, the same export path), on its 360 test images.
Run alone with `python -m bench.onnx [--quick]`; the harness calls `rows()`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import interleaved, median, row
from bench.quant import BATCH, BITS, pruned_model

MODELS = ("vgg16", "resnet50")
LABELS = {"vgg16": "VGG16", "resnet50": "ResNet50"}
GOAL_SPEED, GOAL_ACC = 3.0, 0.5


def _export_pair(model: torch.nn.Module, calib: list[torch.Tensor], tmp: Path) -> tuple[Path, Path]:
    from ecs_core.quant import onnx_export as ox

    fp32, int8 = tmp / "m.onnx", tmp / "m.int8.onnx"
    ox.export_fp32(model, fp32, {"in_channels": 3, "num_classes": 10})
    ox.quantize_int8(fp32, int8, calib)
    return fp32, int8


def speed_rows(name: str, quick: bool) -> list[dict[str, Any]]:
    from ecs_core.quant import onnx_export as ox
    from ecs_core.quant.int8 import build_int8
    from ecs_core.quant.kmeans import share_weights

    model, mask, images = pruned_model(name)
    share_weights(model, BITS, mask)
    calib = list(images.split(BATCH))
    x = images[:BATCH]
    with tempfile.TemporaryDirectory() as d:
        fp32, int8 = _export_pair(model, calib, Path(d))
        sizes = fp32.stat().st_size, int8.stat().st_size
        s32, s8 = ox.session(fp32, 1), ox.session(int8, 1)
        feed = {ox.INPUT: x.numpy()}
        ours = build_int8(model, calib, BATCH)
        fns = {"ort fp32": lambda: s32.run(None, feed), "ort int8": lambda: s8.run(None, feed),
               "ours int8": lambda: ours(x)}  # fmt: skip
        with torch.no_grad():
            t = {k: median(v) for k, v in interleaved(fns, reps=3 if quick else 7).items()}
            ref, q = ox.logits(s32, images), ox.logits(s8, images)
    agree = float((ref.argmax(1) == q.argmax(1)).mean())
    err = float(np.linalg.norm(q - ref) / np.linalg.norm(ref))
    label = f"{LABELS[name]} batch {BATCH}, 1 thread"
    ratio = t["ort fp32"] / t["ort int8"]
    note = (
        f"{BATCH / t['ort int8']:.0f} vs {BATCH / t['ort fp32']:.0f} img/s; files "
        f"{sizes[1]:,} vs {sizes[0]:,} bytes; logits off fp32 by {err:.2%} (relative L2), "
        f"top-1 agreement {agree:.1%} on 256 images (untrained weights: accuracy below)"
    )
    ours_ratio = t["ort fp32"] / t["ours int8"]
    return [
        row(f"onnxruntime int8 QDQ {label}", "onnxruntime fp32, same graph", t["ort fp32"],
            t["ort int8"], ratio, f">= {GOAL_SPEED:g}x throughput", ratio >= GOAL_SPEED, note),
        row(f"our int8 (PT2E, oneDNN) {label}", "onnxruntime fp32, same rounds", t["ort fp32"],
            t["ours int8"], ours_ratio, "none (for comparison)", None,
            f"{BATCH / t['ours int8']:.0f} img/s; onnxruntime int8 is "
            f"{t['ours int8'] / t['ort int8']:.2f}x ours"),
    ]  # fmt: skip


def accuracy_row(quick: bool) -> dict[str, Any]:
    """Test accuracy of onnxruntime int8 vs fp32 on a VGG16 x0.25 trained on digits."""
    from ecs_core.config import RunConfig
    from ecs_core.data import load_dataset
    from ecs_core.pipeline import run
    from ecs_core.quant import onnx_export as ox
    from ecs_core.quant.kmeans import share_weights

    epochs = 2 if quick else 8
    with tempfile.TemporaryDirectory() as d:
        cfg = RunConfig(model="vgg16", width=0.25, dataset="digits", method="snip",
                        density=DENSITY_ACC, epochs=epochs, step_size=6, lr=0.05, device="cpu",
                        quantize=False, runs_dir=d)  # fmt: skip
        events = list(run(cfg))
        model, mask = _trained(Path(events[0].run_dir))
        share_weights(model, BITS, mask)
        data = load_dataset("digits")
        meta = {"in_channels": 1, "num_classes": 10}
        rows = ox.export_run(model, meta, Path(d) / "m.onnx", data, True, cfg.calib_batches)
    a32, a8 = rows["fp32"]["test_acc"], rows["int8"]["test_acc"]
    diff = a8 - a32
    note = (
        f"VGG16 x0.25, SNIP {DENSITY_ACC:.0%}, {epochs} epochs on digits, {BITS}-bit "
        f"sharing; int8 {a8:.2f}% vs fp32 {a32:.2f}% on 360 test images (1 image = 0.28)"
    )
    return row("onnxruntime int8 accuracy vs fp32 (digits)", "onnxruntime fp32", None, None,
               None, f"<= {GOAL_ACC:g} point lower", diff >= -GOAL_ACC, note,
               accuracy_points=diff)  # fmt: skip


DENSITY_ACC = 0.1


def _trained(path: Path) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """(trained model, its mask) of a finished run directory."""
    from ecs_core.models import build_model
    from ecs_core.store import RunStore

    store = RunStore(path)
    model = build_model("vgg16", 10, 1, 0.25)
    model.load_state_dict(store.load_tensors("model.safetensors"))
    mask = {k: v.bool() for k, v in store.load_tensors("masks.safetensors").items()}
    return model.eval(), mask


def rows(quick: bool = False) -> list[dict[str, Any]]:
    out = []
    for name in MODELS[:1] if quick else MODELS:
        out += speed_rows(name, quick)
    return out + [accuracy_row(quick)]


def main() -> None:
    torch.set_num_threads(1)
    for r in rows("--quick" in sys.argv[1:]):
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        mark = {True: "met", False: "NOT met", None: "-"}[r["met"]]
        print(f"{r['what']}: {ratio} vs {r['reference']} (goal {r['goal']}: {mark})\n"
              f"  {r['note']}")  # fmt: skip


if __name__ == "__main__":
    main()
