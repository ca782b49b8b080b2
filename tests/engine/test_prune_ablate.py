"""`--ablate shuffle|reinit|invert` (Frankle et al. 2021; Su et al. 2020): shuffle keeps each
layer's count at new positions, invert keeps the complement ordering, reinit keeps the mask
with fresh weights; and the ablation is part of the run's identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ecs_core.config import ConfigError, RunConfig
from ecs_core.models import build_model, prunable_weights
from ecs_core.pipeline import run
from ecs_core.prune import prune
from ecs_core.prune.ablate import shuffle_mask
from ecs_core.prune.ecs import ecs_mask
from ecs_core.prune.mask import keep_count, mask_from_scores

METHODS = ["ecs", "snip", "grasp", "synflow", "random", "magnitude"]


def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("vgg16", 10, 1, width=0.125)


@pytest.mark.parametrize("method", METHODS)
def test_shuffle_keeps_every_layers_count_and_moves_the_weights(method: str, train_batches) -> None:
    model = net()
    kw = dict(batches=list(train_batches()), prune_iterations=3, seed=1)
    plain = prune(model, method, 0.1, **kw)
    shuffled = prune(model, method, 0.1, ablate="shuffle", **kw)
    assert shuffled.ablate == "shuffle"
    assert [r["kept"] for r in shuffled.layers] == [r["kept"] for r in plain.layers]
    for k, m in plain.mask.items():
        if 0 < int(m.sum()) < m.numel():
            assert not torch.equal(m, shuffled.mask[k]), k
    again = prune(model, method, 0.1, ablate="shuffle", **kw)
    assert all(torch.equal(again.mask[k], shuffled.mask[k]) for k in again.mask)  # seeded


def test_shuffle_mask_is_a_per_layer_permutation() -> None:
    g = torch.Generator().manual_seed(0)
    mask = {
        "a": torch.tensor([True, True, False, False, False, False]),
        "b": torch.ones(3, 2).bool(),
    }
    out = shuffle_mask(mask, g)
    assert int(out["a"].sum()) == 2 and torch.equal(out["b"], mask["b"])
    assert out["a"].shape == mask["a"].shape and out["b"].shape == (3, 2)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_invert_keeps_the_complement_ordering(scope: str) -> None:
    """Distinct scores: inverted at d keeps exactly what the plain top-k at 1 - d drops."""
    torch.manual_seed(0)
    scores = {"a": torch.rand(40), "b": torch.rand(4, 15)}
    for d in (0.1, 0.25, 0.5):
        inv = mask_from_scores(scores, d, scope, lowest=True)
        top = mask_from_scores(scores, 1 - d, scope)
        assert all(torch.equal(inv[k], ~top[k]) for k in scores), d
        s = torch.cat([v.flatten() for v in scores.values()])
        m = torch.cat([v.flatten() for v in inv.values()])
        if scope == "global":
            assert float(s[m].max()) < float(s[~m].min())


def test_invert_magnitude_keeps_the_smallest_weights() -> None:
    model = net()
    result = prune(model, "magnitude", 0.2, ablate="invert")
    w = torch.cat([p.detach().abs().flatten() for p in prunable_weights(model).values()])
    m = torch.cat([v.flatten() for v in result.mask.values()])
    assert float(w[m].max()) <= float(w[~m].min())
    assert result.kept == keep_count(result.total, 0.2)


def test_invert_ecs_exact_keeps_what_ecs_removes_first() -> None:
    """8 weights, keep 2: max ranks are 7, 6, 5, 4, 4, 5, 6, 7 -> the middle two (3, 4)."""
    w = {"a": torch.tensor([8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])}
    g = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])}
    mask, _ = ecs_mask(w, g, 0.25, "global", "exact", lowest=True)
    assert mask["a"].tolist() == [False, False, False, True, True, False, False, False]


@pytest.mark.parametrize("method", METHODS)
def test_invert_hits_the_budget_for_every_method(method: str, train_batches) -> None:
    model = net()
    data = list(train_batches())
    plain = prune(model, method, 0.1, data, prune_iterations=3)
    inv = prune(model, method, 0.1, data, prune_iterations=3, ablate="invert")
    assert inv.kept == plain.kept == keep_count(plain.total, 0.1)
    if method != "random":  # random scores have no order to invert (both are random draws)
        overlap = sum(int((inv.mask[k] & plain.mask[k]).sum()) for k in inv.mask)
        assert overlap < 0.05 * inv.kept, overlap


SMOKE = dict(width=0.125, epochs=0, batch_size=8, max_batches=1, quantize=False, device="cpu")


def _run(tmp_path: Path, **kw) -> Path:
    events = list(
        run(RunConfig(method="snip", density=0.1, runs_dir=str(tmp_path), **{**SMOKE, **kw}))
    )
    return Path(events[0].run_dir)


def test_reinit_keeps_the_mask_and_redraws_the_kept_weights(tmp_path, small_digits) -> None:
    plain = _run(tmp_path / "a")
    reinit = _run(tmp_path / "b", ablate="reinit")
    assert plain.name.split("-", 2)[2].startswith("vgg16-digits-snip-d0.1")
    assert reinit.name.split("-", 2)[2].startswith("vgg16-digits-snip-reinit-d0.1")
    masks = load_file(plain / "masks.safetensors"), load_file(reinit / "masks.safetensors")
    assert all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0])
    w0, w1 = load_file(plain / "model.safetensors"), load_file(reinit / "model.safetensors")
    for k, m in masks[0].items():
        kept = m.bool()
        assert bool((w1[k][~kept] == 0).all()), k  # pruned weights stay pruned
        assert not torch.equal(w0[k][kept], w1[k][kept]), k  # kept weights redrawn
        if kept.sum() > 200:  # the same initialisation: a similar spread
            ratio = float(w1[k][kept].std() / w0[k][kept].std())
            assert 0.5 < ratio < 2.0, (k, ratio)
    bn = [k for k in w0 if k not in masks[0]]
    assert bn and all(torch.equal(w0[k], w1[k]) for k in bn)  # only the pruned layers' weights
    summary = json.loads((reinit / "summary.json").read_text())
    assert summary["status"] == "finished"
    events = [json.loads(line) for line in (reinit / "events.jsonl").open()]
    assert next(e for e in events if e["event"] == "pruned")["ablate"] == "reinit"


def test_ablation_is_its_own_row_in_compare(tmp_path, small_digits) -> None:
    from ecs_core.stats.compare import compare_runs

    _run(tmp_path, epochs=1)
    _run(tmp_path, epochs=1, ablate="shuffle")
    table = compare_runs([tmp_path])
    assert [m for _, m in table.rows("digits")] == ["SNIP", "SNIP [shuffle]"]
    from typer.testing import CliRunner

    from ecs_tui.cli import app

    listed = CliRunner().invoke(app, ["runs", str(tmp_path)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and " snip-shuffle " in listed.output, listed.output


def test_ablate_needs_a_pruning_method() -> None:
    with pytest.raises(ConfigError, match="--ablate shuffle needs a pruning method"):
        RunConfig(method="none", ablate="shuffle").validate()
    with pytest.raises(ConfigError, match="none, shuffle, reinit, invert"):
        RunConfig(ablate="flip").validate()
    assert RunConfig(ablate="Invert").validate().method_tag == "ecs-invert"
