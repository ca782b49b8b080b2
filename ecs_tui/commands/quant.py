"""`ecs export` (a run -> one compressed .ecsz file) and `ecs eval` (a .ecsz file -> accuracy).

The engine is imported inside the commands, so `ecs --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_tui.commands.exits import EXIT_FAILED, fail


def _read_run(run: Path, fp32: bool) -> tuple[Any, dict, dict | None, str, dict]:
    """(config, state dict, mask or None, file name, summary) of a run directory."""
    from ecs_core.config import ConfigError
    from ecs_core.store import RunStore, StoreError

    if not (run / "config.json").is_file():
        raise fail(f"{run} is not a run directory (no config.json)")
    store = RunStore(run)
    names = ["model.safetensors"] if fp32 else ["quantized.safetensors", "model.safetensors"]
    name = next((n for n in names if (run / n).exists()), None)
    if name is None:
        raise fail(f"{run} has no model.safetensors yet (the run has not trained)")
    try:
        cfg = store.read_config().validate()
        state = store.load_tensors(name)
        has_mask = (run / "masks.safetensors").exists()
        mask = store.load_tensors("masks.safetensors") if has_mask else None
        summary = store.read_summary() if (run / "summary.json").exists() else {}
    except (StoreError, ConfigError) as exc:
        raise fail(str(exc)) from None
    from ecs_core.prune.mask import not_binary

    why = not_binary(mask, run / "masks.safetensors") if mask is not None else None
    if why:
        raise fail(why)
    mask = {k: v.bool() for k, v in mask.items()} if mask is not None else None
    for k, m in (mask or {}).items():
        if k not in state or tuple(m.shape) != tuple(state[k].shape):
            fits = f"has shape {list(state[k].shape)}" if k in state else "is missing"
            raise fail(
                f"{run / 'masks.safetensors'} does not fit {name} ({k}: mask {list(m.shape)}, "
                f"the weight {fits}); it is damaged: restore it, or delete it to export without"
            )
    return cfg, state, mask, name, summary


def _model_from_state(cfg: Any, state: dict, where: Path) -> tuple[Any, int, int]:
    """(model, num_classes, in_channels): classes and channels read off the saved shapes."""
    from ecs_core.config import ConfigError
    from ecs_core.models import build_model, prunable_weights

    try:  # a model of the user's own: built only if trusted (`ecs_core.trust`), else one line
        probe = build_model(cfg.model, 1, 1, cfg.width, source=str(where.parent / "config.json"))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    first, *_, last = prunable_weights(probe)
    if first not in state or last not in state or state[first].dim() < 2:
        raise fail(f"{where} does not hold a {cfg.model} state dict")
    num_classes, in_channels = int(state[last].shape[0]), int(state[first].shape[1])
    model = build_model(cfg.model, num_classes, in_channels, cfg.width)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first_line = str(exc).splitlines()[0]
        raise fail(f"{where} does not fit {cfg.model} x{cfg.width:g}: {first_line}") from None
    return model.eval(), num_classes, in_channels


def _load_run(run: Path, bits: int | None) -> tuple[Any, dict[str, Any], Any, str]:
    """(model with the run's shared weights, meta, mask or None, where the weights came from).

    A run that has no quantized.safetensors (it ran with --no-quantize), or an explicit
    `bits`, gets weight sharing here, from its trained fp32 weights.
    """
    from ecs_core.quant.kmeans import share_weights

    cfg, state, mask, name, summary = _read_run(run, fp32=bits is not None)
    model, num_classes, in_channels = _model_from_state(cfg, state, run / name)
    bits_used = cfg.bits if bits is None else bits
    source = name
    if name == "model.safetensors":
        share_weights(model, bits_used, mask, cfg.quantize_bn)
        source = f"{name} + weight sharing ({bits_used} bits)"
    quant = summary.get("quant") or {}
    meta = {
        "model": cfg.model, "width": cfg.width, "num_classes": num_classes,
        "in_channels": in_channels, "dataset": cfg.dataset, "bits": bits_used,
        "method": cfg.method, "density": summary.get("density"),
        "test_acc": quant.get("test_acc") if name != "model.safetensors" else None,
        "run": run.name,
    }  # fmt: skip
    model, plan = _smaller(run, model, in_channels)
    if plan is not None:  # --structure channel: export the smaller model and what rebuilds it
        meta, mask = {**meta, "channels": plan}, None
    return model, meta, mask, source


def _smaller(run: Path, model: Any, in_channels: int) -> tuple[Any, dict | None]:
    """(the model with the run's channel plan applied, the plan); as it is without one."""
    from ecs_core.store import RunStore, StoreError

    try:
        plan = RunStore(run).read_channels()
    except StoreError as exc:
        raise fail(str(exc)) from None
    if plan is None:
        return model, None
    from ecs_core.prune.compact import rebuild_shape, shrink

    return shrink(model, plan, rebuild_shape(in_channels)), plan


def final_fp32(run: Path) -> tuple[Any, Any, int, int, dict]:
    """(config, the run's final fp32 model, smaller for --structure channel, classes, input
    channels, summary): model.safetensors rebuilt as `ecs export` does; one line if it cannot."""
    cfg, state, _, name, summary = _read_run(run, fp32=True)
    model, num_classes, in_channels = _model_from_state(cfg, state, run / name)
    model, _ = _smaller(run, model, in_channels)
    return cfg, model, num_classes, in_channels, summary


def _check(path: Path, model: Any, meta: dict[str, Any]) -> str:
    """Decode `path` and compare with the in-memory model: weights, then outputs on a batch."""
    import torch

    from ecs_core.quant.codec import load_compressed

    decoded, _ = load_compressed(path)
    ours, theirs = model.state_dict(), decoded.state_dict()
    differ = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    if differ:
        raise fail(f"{path}: decoded tensors differ from the model: {', '.join(differ[:5])}", 1)
    x = torch.randn(8, meta["in_channels"], 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        same = torch.equal(model(x), decoded(x))
    if not same:
        raise fail(f"{path}: decoded model's outputs differ from the in-memory model's", 1)
    return f"check: {len(ours)} tensors bit-identical; outputs on a batch of 8 equal"


def export_command(
    run: Annotated[Path, typer.Argument(help="Run directory to export.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default RUN/model.ecsz).")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Decode the file and verify it equals the in-memory model.")
    ] = False,
    bits: Annotated[
        int | None,
        typer.Option(
            help="Re-share the trained weights with 2**bits clusters.", show_default=False
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="ecsz (compressed file) | onnx (onnxruntime).")
    ] = "ecsz",
    int8: Annotated[
        bool,
        typer.Option(
            "--int8", help="ONNX: also write FILE.int8.onnx (onnxruntime static quantization)."
        ),
    ] = False,
    data_dir: Annotated[
        str | None,
        typer.Option(help="ONNX: dataset folder if not the run's.", show_default=False),
    ] = None,
) -> None:
    """Write a run's quantized model into one compressed .ecsz file, or an ONNX graph."""
    from ecs_core.quant.codec import CodecError, save_compressed
    from ecs_core.quant.stage import dense_bytes
    from ecs_core.store import RunStore, StoreError

    if bits is not None and not 1 <= bits <= 8:
        raise fail(f"--bits must be in 1..8, got {bits}")
    if fmt not in ("ecsz", "onnx"):
        raise fail(f"--format must be ecsz or onnx, got {fmt!r}")
    if int8 and fmt != "onnx":
        raise fail("--int8 is for --format onnx (the .ecsz file holds the shared weights)")
    if fmt == "onnx":
        from ecs_tui.commands.onnx_export import export_onnx

        if output is not None and output.suffix != ".onnx":
            raise fail(f"{output}: an ONNX file name must end in .onnx")
        model, meta, _, source = _load_run(run, bits)
        export_onnx(run, output or run / "model.onnx", model, meta, source, int8, data_dir)
        return
    model, meta, mask, source = _load_run(run, bits)
    out = output if output is not None else run / "model.ecsz"
    # into the run directory: not while a run there is going (its export stage writes it too)
    store = RunStore(run) if out.resolve().parent == run.resolve() else None
    try:
        if store is not None:
            store.lock()
        size = save_compressed(out, model, mask, meta)
    except StoreError as exc:  # says "cannot write PATH" (or who holds the run) itself
        raise fail(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise fail(f"cannot write {out}: {exc}") from None
    finally:
        if store is not None:
            store.close()
    dense = dense_bytes(model)
    typer.echo(f"wrote {out}: {size:,} bytes from {source} ({dense / size:.1f}x smaller than "
               f"dense fp32 {dense:,})")  # fmt: skip
    if check:
        try:
            typer.echo(_check(out, model, meta))
        except CodecError as exc:
            raise fail(str(exc), EXIT_FAILED) from None


def eval_command(
    file: Annotated[
        Path,
        typer.Argument(help="A .ecsz file written by `ecs export` or `ecs run`, or a .onnx file."),
    ],
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset to test on (default: the file's).", show_default=False),
    ] = None,
    data_dir: Annotated[str, typer.Option(help="Dataset folder.")] = "./data",
    download: Annotated[bool, typer.Option(help="Download a missing dataset.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Decode a compressed model (.ecsz) and print its test accuracy; a .onnx file runs in
    onnxruntime."""
    import torch

    from ecs_core.config import ConfigError
    from ecs_core.data import DatasetError, load_dataset, make_batches
    from ecs_core.quant.codec import CodecError, load_compressed
    from ecs_core.train import evaluate

    if file.suffix.lower() == ".onnx":
        from ecs_tui.commands.onnx_export import eval_onnx

        eval_onnx(file, dataset, data_dir, download, json_out)
        return
    try:
        model, meta = load_compressed(file)
    except CodecError as exc:
        raise fail(str(exc)) from None
    name = dataset or meta.get("dataset")
    if not name:
        raise fail(f"{file} does not name its dataset; pass --dataset")
    try:
        data = load_dataset(str(name), data_dir, download)
    except (ConfigError, DatasetError, OSError) as exc:
        raise fail(str(exc)) from None
    if (data.num_classes, data.in_channels) != (meta["num_classes"], meta["in_channels"]):
        raise fail(
            f"{file} is a {meta['num_classes']}-class, {meta['in_channels']}-channel model; "
            f"{name} has {data.num_classes} classes and {data.in_channels} channels"
        )
    test = make_batches(
        data.test_x, data.test_y, data.mean, data.std, 512, False, False, torch.device("cpu")
    )
    loss, acc = evaluate(model, test)
    result = {"file": str(file), "dataset": str(name), "test_acc": acc, "test_loss": loss,
              "images": len(data.test_y), "model": meta["model"], "width": meta["width"],
              "bits": meta.get("bits"), "lossy_tensors": meta.get("lossy_tensors", [])}  # fmt: skip
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{file}: {meta['model']} x{meta['width']:g}, test accuracy {acc:.2f}% "
               f"(loss {loss:.4f}) on {name}, {len(data.test_y):,} images")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add `ecs export` and `ecs eval`."""
    app.command("export")(export_command)
    app.command("eval")(eval_command)
