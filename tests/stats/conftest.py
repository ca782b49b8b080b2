"""Run directories for the stats tests: one real tiny run, one hand-made with known weights,
and fake finished/unfinished/broken runs written as JSON by hand for `ecs compare`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ecs_core import events as ev
from ecs_core.config import RunConfig
from ecs_core.models import build_model, prunable_weights
from ecs_core.prune.mask import layer_report
from ecs_core.store import RunStore


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ECS run on digits made by the pipeline (quantized if the quantize stage exists)."""
    from ecs_core.pipeline import run

    quantize = importlib.util.find_spec("ecs_core.quant.stage") is not None
    cfg = RunConfig(model="vgg16", dataset="digits", width=0.125, method="ecs", density=0.1,
                    epochs=2, warmup_epochs=1, max_batches=2, batch_size=32, device="cpu",
                    quantize=quantize, calib_batches=1,
                    runs_dir=str(tmp_path_factory.mktemp("runs")))  # fmt: skip
    events = list(run(cfg))
    assert events[-1].kind == "run_finished", events[-1]
    return Path(events[0].run_dir)


def known_weights() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(state dict, mask) of a width-0.125 VGG16 on 1-channel input with hand-set weights.

    features.0: filter 7 pruned, others kept (63/72). features.3: w[o, i] = (o+1)(i+1)/8, input
    channels 4..7 pruned, so the kernel mean of filter o is (o+1)*10/64. features.7: 1000
    evenly spaced values (k + 0.5)/1000, the other 152 pruned. classifier.3: -1, 0, 1, 2 repeated.
    Every other prunable layer is all ones, fully kept.
    """
    model = build_model("vgg16", 10, 1, 0.125)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    mask = {}
    for name, w in prunable_weights(model).items():
        state[name] = torch.ones_like(w)
        mask[name] = torch.ones_like(w, dtype=torch.bool)
    mask["features.0.weight"][7] = False
    o = torch.arange(1, 9, dtype=torch.float32).view(8, 1, 1, 1)
    i = torch.arange(1, 9, dtype=torch.float32).view(1, 8, 1, 1)
    state["features.3.weight"] = ((o * i) / 8).expand(8, 8, 3, 3).clone()
    mask["features.3.weight"][:, 4:] = False
    flat = torch.zeros(1152)
    flat[:1000] = (torch.arange(1000, dtype=torch.float64) + 0.5).div(1000).float()
    state["features.7.weight"] = flat.view(16, 8, 3, 3)
    state["classifier.3.weight"] = torch.tensor([-1.0, 0.0, 1.0, 2.0]).repeat(160).view(10, 64)
    mask["features.7.weight"] = state["features.7.weight"] != 0
    mask["classifier.3.weight"] = state["classifier.3.weight"] != 0
    for name, m in mask.items():
        state[name] = state[name] * m
    return state, mask


def write_known_run(root: Path, quantized: bool = True) -> Path:
    """A run directory written through RunStore from `known_weights`, with 300 epochs of curves."""
    cfg = RunConfig(model="vgg16", dataset="digits", width=0.125, method="magnitude",
                    density=0.5, runs_dir=str(root))  # fmt: skip
    store = RunStore.create(root, cfg)
    state, mask = known_weights()
    store.save_tensors("model.safetensors", state)
    store.save_tensors("masks.safetensors", {k: v.to(torch.uint8) for k, v in mask.items()})
    if quantized:  # features.7 shared into 4 values (250 weights each), the rest unchanged
        shared = dict(state)
        w = state["features.7.weight"]
        shared["features.7.weight"] = torch.where(w != 0, torch.ceil(w * 4) / 4, w)
        store.save_tensors("quantized.safetensors", shared)
    for epoch in range(1, 301):
        stage = "warmup" if epoch == 1 else "train"
        store.append_event(ev.EpochEnd(stage=stage, epoch=epoch, epochs=300, train_loss=1 / epoch,
                                       train_acc=epoch / 4, test_loss=2 / epoch,
                                       test_acc=epoch / 3, lr=0.1, seconds=1.0,
                                       img_per_s=10.0))  # fmt: skip
    store.close()
    store.write_summary({
        "status": "finished", "model": "vgg16", "dataset": "digits", "method": "magnitude",
        "seed": 0, "target_density": 0.5, "density": 0.9, "test_acc": 100.0,
        "layers": layer_report(mask),
        "overlap": {"both": 5, "weight_only": 3, "grad_only": 2}, "kept": 10, "total": 20,
        "budget": "union",
    })  # fmt: skip
    return store.path


@pytest.fixture
def known_run(tmp_path: Path) -> Path:
    return write_known_run(tmp_path / "runs")


@pytest.fixture
def make_known_run():
    """`write_known_run` itself, for tests that need a variant (importlib mode: no imports)."""
    return write_known_run


def fake_run(root: Path, name: str, summary: dict[str, Any] | None, **config: Any) -> Path:
    """A run directory holding only config.json and (optionally) summary.json."""
    path = root / name
    path.mkdir(parents=True)
    cfg = RunConfig(**config).validate()
    (path / "config.json").write_text(json.dumps(cfg.to_dict()))
    if summary is not None:
        base = {"status": "finished", "model": cfg.model, "dataset": cfg.dataset,
                "method": cfg.method, "seed": cfg.seed, "target_density": cfg.density}  # fmt: skip
        (path / "summary.json").write_text(json.dumps({**base, **summary}))
    return path


@pytest.fixture
def make_fake_run():
    """`fake_run` itself, for tests that need their own runs (importlib mode: no imports)."""
    return fake_run


@pytest.fixture
def fake_runs(tmp_path: Path) -> Path:
    """SNIP at 10% over seeds 0-2 (90, 91, 95), ECS union at 10% with P+Q, dense, plus runs
    that must be left out (stopped, no summary, unreadable config, broken summary)."""
    root = tmp_path / "sweep"
    for seed, acc in zip((0, 1, 2), (90.0, 91.0, 95.0), strict=True):
        fake_run(root / "snip", f"s{seed}", {"test_acc": acc, "density": 0.1},
                 method="snip", density=0.1, seed=seed)  # fmt: skip
    for seed, (acc, q, d) in enumerate([(88.0, 87.0, 0.17), (90.0, 88.0, 0.19)]):
        fake_run(root / "ecs", f"s{seed}", {"test_acc": acc, "density": d,
                 "quant": {"bits": 5, "test_acc": q}},
                 method="ecs", budget="union", density=0.1, seed=seed)  # fmt: skip
    fake_run(root, "dense", {"test_acc": 97.5, "density": 1.0}, method="none")
    fake_run(root, "stopped", {"status": "stopped", "test_acc": 50.0, "density": 0.1},
             method="snip", density=0.1, seed=7)  # fmt: skip
    fake_run(root, "nosummary", None, method="snip", density=0.05)
    bad = root / "garbage"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    broken = fake_run(root, "broken", {}, method="random", density=0.1)
    (broken / "summary.json").write_text('{"status": "fini')
    return root
