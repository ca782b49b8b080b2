"""`ecs export --format onnx` and `ecs eval FILE.onnx`: the ONNX side of export and eval.

The engine part (export, onnxruntime quantization, measuring) is `ecs_core.quant.onnx_export`;
this module reads the run, prints, and records the measurements in the run's summary.json
under "onnx" (the other keys are left as they are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ecs_tui.commands.exits import fail


def _dataset(name: str, data_dir: str, download: bool) -> Any:
    from ecs_core.config import ConfigError
    from ecs_core.data import DatasetError, load_dataset

    try:
        return load_dataset(name, data_dir, download)
    except (ConfigError, DatasetError, OSError) as exc:
        raise fail(f"{exc} (pass --data-dir)") from None


def _row(label: str, r: dict[str, Any]) -> str:
    return (f"wrote {r['path']}: {r['bytes']:,} bytes, {label}; onnxruntime: test accuracy "
            f"{r['test_acc']:.2f}%, {r['latency_ms']:.1f} ms per batch of {r['latency_batch']} "
            f"on {r['latency_threads']} thread")  # fmt: skip


def export_onnx(run: Path, out: Path, model: Any, meta: dict[str, Any], source: str,
                int8: bool, data_dir: str | None) -> None:  # fmt: skip
    """Write, measure and record the ONNX model(s) of `run`; exit 2 with one line on errors."""
    from ecs_core.quant.onnx_export import OnnxError, export_run, int8_path
    from ecs_core.store import RunStore, StoreError

    store = RunStore(run)
    cfg = store.read_config()
    data = _dataset(cfg.dataset, data_dir or cfg.data_dir, False)
    if (data.num_classes, data.in_channels) != (meta["num_classes"], meta["in_channels"]):
        raise fail(f"{run}'s model does not fit {cfg.dataset} as loaded from the data folder")
    written = [out] + ([int8_path(out)] if int8 else [])
    try:
        store.lock()  # summary.json is rewritten: not while a run there is going
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = export_run(model, meta, out, data, int8, cfg.calib_batches, cfg.seed)
        if (run / "summary.json").exists():
            summary = store.read_summary()
            summary["onnx"] = {**(summary.get("onnx") or {}), **rows, "source": source}
            store.write_summary(summary)
    except (OnnxError, StoreError, OSError) as exc:
        for path in written:  # nothing half-made is left behind
            path.unlink(missing_ok=True)
        raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    finally:
        store.close()
    typer.echo(_row(f"fp32 from {source}", rows["fp32"]))
    err = rows["fp32"]["max_rel_error"]
    typer.echo(f"check: onnxruntime's logits match PyTorch's to {err:.1e} (max relative)")
    if int8:
        fp32, q = rows["fp32"], rows["int8"]
        typer.echo(_row("int8 QDQ (onnxruntime static quantization, per-channel)", q))
        typer.echo(f"int8 vs fp32: {fp32['bytes'] / q['bytes']:.1f}x smaller, "
                   f"{fp32['latency_ms'] / q['latency_ms']:.2f}x faster, accuracy "
                   f"{q['test_acc'] - fp32['test_acc']:+.2f} points")  # fmt: skip
    if (run / "summary.json").exists():
        typer.echo(f'recorded in {run / "summary.json"} under "onnx"')


def eval_onnx(
    file: Path, dataset: str | None, data_dir: str, download: bool, as_json: bool
) -> None:
    """`ecs eval FILE.onnx`: test accuracy (and latency) in onnxruntime."""
    from ecs_core.data import make_batches
    from ecs_core.quant.onnx_export import OnnxError, accuracy, read_meta, session

    if not file.is_file():
        raise fail(f"{file} does not exist")
    try:
        meta = read_meta(file)
        sess = session(file)
    except OnnxError as exc:
        raise fail(str(exc)) from None
    name = dataset or meta.get("dataset")
    if not name:
        raise fail(f"{file} does not name its dataset; pass --dataset")
    data = _dataset(name, data_dir, download)
    shape = sess.get_inputs()[0].shape
    if shape[1] != data.in_channels:
        raise fail(f"{file} takes {shape[1]}-channel images; {name} has {data.in_channels}")
    test = make_batches(data.test_x, data.test_y, data.mean, data.std, 256, False, False, "cpu")
    try:
        acc = accuracy(sess, test.epoch())
    except Exception as exc:  # onnxruntime's own errors (wrong classes, shapes)
        raise fail(f"onnxruntime could not run {file} on {name}: {exc}") from None
    result = {"file": str(file), "dataset": str(name), "test_acc": acc,
              "images": len(data.test_y), "model": meta.get("model"), "width": meta.get("width"),
              "format": meta.get("format"), "runtime": "onnxruntime"}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(result))
        return
    what = f"{meta['model']} x{float(meta['width']):g}, " if "model" in meta else ""
    typer.echo(f"{file}: {what}{meta.get('format', 'ONNX')}, onnxruntime test accuracy "
               f"{acc:.2f}% on {name}, {len(data.test_y):,} images")  # fmt: skip
