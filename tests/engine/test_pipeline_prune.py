"""Pruning through `pipeline.run`: every method x scope x model end to end, the run directory
and summary it leaves, reproducibility, and the layer-collapse stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ecs_core import events as ev
from ecs_core.config import RunConfig
from ecs_core.models import build_model, prunable_weights
from ecs_core.pipeline import run
from ecs_core.prune import PruneError

SMOKE = dict(width=0.125, epochs=2, max_batches=1, batch_size=8, quantize=False, device="cpu")


def run_all(config: RunConfig) -> tuple[list[ev.Event], Path]:
    events = list(run(config))
    started = events[0]
    assert isinstance(started, ev.RunStarted)
    return events, Path(started.run_dir)


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


CASES = [
    (model, method, scope)
    for model in ("vgg16", "resnet34", "resnet50")
    for method in ("ecs", "snip", "random", "magnitude")
    for scope in ("global", "layer")
] + [(model, "none", "global") for model in ("vgg16", "resnet34", "resnet50")]


@pytest.mark.parametrize(("model", "method", "scope"), CASES)
def test_every_method_and_scope_end_to_end(
    model: str, method: str, scope: str, tmp_path: Path, small_digits
) -> None:
    # ecs and magnitude warm up for one epoch, then train one more; the others prune at init
    epochs = 2 if method in ("ecs", "magnitude") else 1
    cfg = RunConfig(
        model=model, method=method, scope=scope, density=0.05, runs_dir=str(tmp_path),
        allow_collapse=True, **{**SMOKE, "epochs": epochs},
    )  # fmt: skip
    events, run_dir = run_all(cfg)
    assert isinstance(events[-1], ev.RunFinished) and events[-1].status == "finished"
    s = summary_of(run_dir)
    assert s["status"] == "finished" and 0 <= s["test_acc"] <= 100
    for key in ("density", "target_density", "layers", "collapsed_layers"):
        assert key in s, key
    net = build_model(model, 10, 1, width=0.125)
    names = list(prunable_weights(net))
    assert [row["name"] for row in s["layers"]] == names
    if method == "none":
        assert s["density"] == 1.0 and not (run_dir / "masks.safetensors").exists()
        return
    total = sum(row["params"] for row in s["layers"])
    kept = sum(row["kept"] for row in s["layers"])
    assert s["density"] == pytest.approx(kept / total) and s["target_density"] == 0.05
    if scope == "global":
        assert abs(kept - 0.05 * total) <= 1
    else:
        assert all(abs(r["kept"] - max(1, 0.05 * r["params"])) <= 1 for r in s["layers"])
    if method == "ecs":
        o = s["overlap"]
        assert o["both"] + o["weight_only"] + o["grad_only"] == kept
    pruned = [e for e in events if isinstance(e, ev.Pruned)]
    assert len(pruned) == 1 and pruned[0].density == s["density"]
    check_saved_mask(run_dir, names)


def check_saved_mask(run_dir: Path, names: list[str]) -> None:
    """masks.safetensors covers every prunable weight, and the saved final model obeys it."""
    masks = load_file(str(run_dir / "masks.safetensors"))
    weights = load_file(str(run_dir / "model.safetensors"))
    assert sorted(masks) == sorted(names)
    for name, m in masks.items():
        assert m.dtype == torch.uint8 and set(m.unique().tolist()) <= {0, 1}
        assert m.shape == weights[name].shape
        assert int((weights[name][m == 0] != 0).sum()) == 0, name


@pytest.mark.parametrize("budget", ["union", "exact"])
def test_ecs_budget_reported_honestly(budget: str, tmp_path: Path, small_digits) -> None:
    cfg = RunConfig(method="ecs", budget=budget, density=0.05, runs_dir=str(tmp_path), **SMOKE)
    events, run_dir = run_all(cfg)
    s = summary_of(run_dir)
    assert s["budget"] == budget
    if budget == "union":
        assert 0.05 <= s["density"] <= 0.10 + 1e-3
        assert any(isinstance(e, ev.Log) and "union" in e.message for e in events)
    else:
        assert s["density"] == pytest.approx(0.05, abs=1 / s["total"])


def mask_and_first_loss(tmp_path: Path, seed: int, tag: str) -> tuple[dict, float]:
    cfg = RunConfig(
        method="ecs", seed=seed, density=0.1, runs_dir=str(tmp_path / tag),
        **{**SMOKE, "max_batches": 2},
    )  # fmt: skip
    events, run_dir = run_all(cfg)
    first = next(e for e in events if isinstance(e, ev.EpochEnd))
    return load_file(str(run_dir / "masks.safetensors")), first.train_loss


def test_same_seed_same_loss_and_mask(tmp_path: Path, small_digits) -> None:
    mask_a, loss_a = mask_and_first_loss(tmp_path, 3, "a")
    mask_b, loss_b = mask_and_first_loss(tmp_path, 3, "b")
    mask_c, loss_c = mask_and_first_loss(tmp_path, 4, "c")
    assert loss_a == loss_b
    assert all(torch.equal(mask_a[k], mask_b[k]) for k in mask_a)
    assert loss_c != loss_a
    assert not all(torch.equal(mask_a[k], mask_c[k]) for k in mask_a)


def test_layer_collapse_stops_the_run(tmp_path: Path, small_digits) -> None:
    """Keeping 2 of ~240k weights empties most layers: a clear error, recorded in the run."""
    cfg = RunConfig(method="magnitude", density=1e-5, runs_dir=str(tmp_path), **SMOKE)
    events: list[ev.Event] = []
    with pytest.raises(PruneError, match="--allow-collapse"):
        for e in run(cfg):
            events.append(e)
    run_dir = Path(events[0].run_dir)
    s = summary_of(run_dir)
    assert s["status"] == "failed" and len(s["collapsed_layers"]) >= 10
    assert any(isinstance(e, ev.Log) and e.level == "error" for e in events)
    assert isinstance(events[-1], ev.RunFailed)
    pruned = next(e for e in events if isinstance(e, ev.Pruned))
    assert pruned.collapsed_layers == s["collapsed_layers"]


def test_allow_collapse_goes_on_and_says_so(tmp_path: Path, small_digits) -> None:
    cfg = RunConfig(
        method="random", density=1e-5, allow_collapse=True, runs_dir=str(tmp_path), **SMOKE
    )
    events, run_dir = run_all(cfg)
    s = summary_of(run_dir)
    assert s["status"] == "finished" and len(s["collapsed_layers"]) >= 10
    assert any(isinstance(e, ev.Log) and "collapse" in e.message for e in events)


def test_final_test_acc_is_measured_on_the_pruned_model(tmp_path: Path, small_digits) -> None:
    """With --epochs equal to the warm-up, the run ends right after pruning: the summary's
    accuracy must be that of the pruned model it saved, not of the dense warm-up model."""
    from ecs_core.data import make_batches
    from ecs_core.train import evaluate

    cfg = RunConfig(
        method="magnitude", density=0.1, runs_dir=str(tmp_path), **{**SMOKE, "epochs": 1}
    )
    _, run_dir = run_all(cfg)
    net = build_model("vgg16", 10, 1, width=0.125)
    net.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    d = small_digits
    test = make_batches(d.test_x, d.test_y, d.mean, d.std, 512, False, False, torch.device("cpu"))
    loss, acc = evaluate(net, test)
    s = summary_of(run_dir)
    assert s["test_acc"] == pytest.approx(acc) and s["test_loss"] == pytest.approx(loss)
