"""The quantize stage inside a real (tiny) run: summary fields, events, files, failure path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ecs_core.quant.codec import load_compressed


@pytest.mark.slow
def test_summary_has_quant_and_sizes(quant_run: tuple[Path, list]) -> None:
    run_dir, _ = quant_run
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "finished"
    q, sizes = s["quant"], s["sizes"]
    assert set(q) >= {
        "bits",
        "unique_before",
        "unique_after",
        "test_acc",
        "int8_test_acc",
        "layers",
    }
    assert q["bits"] == 5 and q["unique_after"] <= len(q["layers"]) * 32 < q["unique_before"]
    assert q["int8_test_acc"] is not None and 0 <= q["int8_test_acc"] <= 100
    assert sizes["compressed_bytes"] == (run_dir / "model.ecsz").stat().st_size
    assert sizes["dense_bytes"] > sizes["sparse_bytes"] > sizes["compressed_bytes"]
    assert sizes["ratio_dense_to_compressed"] == pytest.approx(
        sizes["dense_bytes"] / sizes["compressed_bytes"]
    )


def test_finetune_reports_like_training(quant_run: tuple[Path, list]) -> None:
    """Centroid fine-tuning goes through the training epochs' progress loop: its batch_progress
    events carry a real rate (they said 0 img/s), and its epoch's train numbers are the last
    step's, as a training epoch's are."""
    from ecs_core import events as ev

    _, events = quant_run
    tune = [e for e in events if isinstance(e, ev.BatchProgress) and e.stage == "finetune"]
    end = [e for e in events if isinstance(e, ev.EpochEnd) and e.stage == "finetune"]
    assert tune and all(e.img_per_s > 0 for e in tune) and tune[-1].batch == tune[-1].batches
    assert len(end) == 1 and end[0].train_loss == pytest.approx(tune[-1].loss)


@pytest.mark.slow
def test_events_in_order(quant_run: tuple[Path, list]) -> None:
    _, events = quant_run
    kinds = [e.kind for e in events]
    assert kinds.index("quantized") < kinds.index("exported") < kinds.index("run_finished")
    stages = [e.stage for e in events if e.kind == "stage_started"]
    assert stages[-2:] == ["quantize", "finetune"]
    assert any(e.kind == "epoch_end" and e.stage == "finetune" for e in events)


@pytest.mark.slow
def test_files_agree_and_mask_holds(quant_run: tuple[Path, list]) -> None:
    """model.ecsz decodes to exactly quantized.safetensors; pruned weights are still 0."""
    from safetensors.torch import load_file

    run_dir, _ = quant_run
    shared = load_file(run_dir / "quantized.safetensors")
    masks = load_file(run_dir / "masks.safetensors")
    decoded, meta = load_compressed(run_dir / "model.ecsz")
    assert meta["dataset"] == "digits" and meta["lossy_tensors"] == []
    for k, v in decoded.state_dict().items():
        assert torch.equal(v, shared[k]), k
    for k, m in masks.items():
        assert torch.count_nonzero(shared[k][m == 0]) == 0, k
        assert torch.unique(shared[k][shared[k] != 0]).numel() <= 32


@pytest.mark.slow
def test_int8_failure_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No int8 backend: int8_test_acc is null, a warning says why, the export still happens."""
    from ecs_core import events as ev
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import prepare
    from ecs_core.quant import int8
    from ecs_core.quant.stage import quantize_stage
    from ecs_core.stages import emitter

    def unavailable() -> None:
        raise int8.Int8Unavailable("no int8 kernels on this test machine")

    monkeypatch.setattr(int8, "check_available", unavailable)
    cfg = RunConfig(width=0.125, epochs=0, device="cpu", download=False, runs_dir=str(tmp_path))
    ctx = prepare(cfg.validate())
    emit = emitter(ctx)  # each event appended and folded into ctx.summary, as in a run
    out = [emit(e) for e in quantize_stage(ctx)]
    warnings = [e for e in out if isinstance(e, ev.Log) and e.level == "warning"]
    assert warnings and "no int8 kernels" in warnings[0].message
    quantized = next(e for e in out if isinstance(e, ev.Quantized))
    assert quantized.int8_test_acc is None and quantized.test_acc is not None
    assert ctx.summary.quant["int8_test_acc"] is None and ctx.summary.sizes["compressed_bytes"]
    assert (ctx.store.path / "model.ecsz").exists()
    ctx.store.close()


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_centroid_finetuning_recovers_accuracy(
    trained_cnn: torch.nn.Module, digits_batches, precision: str
) -> None:
    """Deep Compression's trained quantization: after 1-bit sharing wrecks the model, one epoch
    of centroid updates brings accuracy back, with the codes and the zeros unchanged (under
    bf16 autocast too: the weights and centroids stay fp32)."""
    import copy

    from ecs_core.quant.kmeans import share_weights
    from ecs_core.quant.stage import finetune_centroids
    from ecs_core.train import evaluate

    train, test = digits_batches
    model = copy.deepcopy(trained_cnn)
    report = share_weights(model, 1)
    _, before = evaluate(model, test)
    zeros = {n: p.detach() == 0 for n, p in model.named_parameters() if p.dim() > 1}
    books = {r.name: r.codebook.clone() for r in report.layers}
    steps = list(
        finetune_centroids(
            model, report, train, torch.Generator().manual_seed(0), lr=1e-3, precision=precision
        )
    )
    assert steps[-1].batch == steps[-1].batches == len(train)
    _, after = evaluate(model, test)
    assert after > before + 20, (before, after)
    for r in report.layers:
        w = dict(model.named_parameters())[r.name].detach()
        assert torch.equal(w == 0, zeros[r.name])
        assert torch.equal(w.reshape(-1)[r.index], r.codebook[r.codes])
        assert not torch.equal(r.codebook, books[r.name])  # the centroids moved
