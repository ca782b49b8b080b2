"""Channel pruning: the smaller model computes what the dense model computes with the removed
groups masked out, for every registered model; plans rebuild it bit-exactly; floors hold."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load, save
from torch import nn

from ecs_core.models import build_model, prunable_weights
from ecs_core.names import ConfigError
from ecs_core.prune import prune
from ecs_core.prune.channels import channel_graph, dependency_graph
from ecs_core.prune.compact import macs_and_params, shrink
from ecs_core.registry import MODELS

SHAPE = (1, 32, 32)  # the digits images


def _model(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, 10, SHAPE[0], 0.125)
    with torch.no_grad():  # batch norm that is not the identity, so a missed channel shows
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model


def _masked(model: nn.Module, result) -> nn.Module:
    """The dense model with the removed groups zeroed: conv/linear rows and the next layers'
    columns (the mask), and the batch norms' scale and shift, found in the library's groups."""
    out = copy.deepcopy(model)
    graph, _ = dependency_graph(out, SHAPE)
    modules = dict(out.named_modules())
    with torch.no_grad():
        for name, w in prunable_weights(out).items():
            w.mul_(result.mask[name])
        for name, kept in result.channels.items():
            layer = modules[name]
            gone = sorted(set(range(layer.weight.shape[0])) - set(kept))
            if not gone:
                continue
            fn = graph.get_pruner_of_module(layer).prune_out_channels
            for it in graph.get_pruning_group(layer, fn, gone).items:
                bn = it.dep.target.module
                if isinstance(bn, nn.BatchNorm2d):
                    bn.weight[it.idxs] = 0
                    bn.bias[it.idxs] = 0
    return out


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("method", ["snip", "ecs", "magnitude"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_smaller_model_equals_masked_dense(name, method, scope, train_batches):
    """Logits of the shrunk model == the masked dense model's; the achieved density reaches
    the target, counts the smaller model's weights, and no group is emptied."""
    model = _model(name)
    r = prune(model, method, 0.3, train_batches(), scope=scope, structure="channel")
    assert r.structure == "channel" and r.density >= 0.3 and not r.collapsed_layers
    assert all(kept for kept in r.channels.values())  # the floor: one channel per group
    small = shrink(copy.deepcopy(model), r.channels, SHAPE).eval()
    assert sum(w.numel() for w in prunable_weights(small).values()) == r.kept
    x = torch.randn(5, *SHAPE)
    with torch.no_grad():
        want = _masked(model, r).eval()(x)
        got = small(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert macs_and_params(small, SHAPE)[0] < macs_and_params(model, SHAPE)[0]


def test_plan_rebuilds_bit_exact(train_batches):
    """JSON plan + safetensors of the smaller model -> the same model on a fresh dense one."""
    model = _model("resnet18")
    r = prune(model, "magnitude", 0.2, None, structure="channel")
    small = shrink(copy.deepcopy(model), r.channels, SHAPE).eval()
    plan, blob = json.dumps(r.channels), save(small.state_dict())
    again = shrink(build_model("resnet18", 10, SHAPE[0], 0.125), json.loads(plan), SHAPE)
    again.load_state_dict(load(blob))
    x = torch.randn(3, *SHAPE)
    with torch.no_grad():
        assert torch.equal(again.eval()(x), small(x))


def test_output_and_input_never_pruned():
    model = _model("vgg16")
    r = prune(model, "random", 0.05, None, structure="channel")
    small = shrink(copy.deepcopy(model), r.channels, SHAPE)
    assert small.features[0].in_channels == SHAPE[0]
    assert small.classifier[-1].out_features == 10
    assert "classifier.3" not in r.channels


def test_iterative_rounds_never_restore_a_channel():
    """IMP's next round prunes within the previous mask: removed channels stay removed."""
    model = _model("resnet34")
    first = prune(model, "magnitude", 0.5, None, structure="channel")
    second = prune(model, "magnitude", 0.25, None, structure="channel", keep=first.mask)
    for name, kept in second.channels.items():
        assert set(kept) <= set(first.channels[name])
    assert 0.25 <= second.density < first.density


def test_layer_scope_keeps_one_fraction_per_group():
    model = _model("vgg16")
    r = prune(model, "magnitude", 0.25, None, scope="layer", structure="channel")
    graph = channel_graph(model, SHAPE)
    fractions = {len(r.channels[g.name]) / g.size for g in graph.groups}
    assert max(fractions) - min(fractions) < 0.2  # rounding of small groups only


def test_untraceable_model_is_one_config_error():
    from tests.engine.custom_model import detached

    with pytest.raises(ConfigError, match="cannot trace layer conv"):
        prune(detached(10, 1, 1.0), "magnitude", 0.5, None, structure="channel")


def test_ecsz_rebuilds_the_smaller_model_bit_exact(tmp_path):
    """The .ecsz manifest's channel plan rebuilds the smaller architecture (no pickle)."""
    from ecs_core.quant.codec import load_compressed, save_compressed
    from ecs_core.quant.kmeans import share_weights

    model = _model("resnet34")
    r = prune(model, "magnitude", 0.25, None, structure="channel")
    small = shrink(copy.deepcopy(model), r.channels, SHAPE).eval()
    share_weights(small, 5, None, True)  # as the quantize stage does: then the file is exact
    meta = {"model": "resnet34", "width": 0.125, "num_classes": 10, "in_channels": SHAPE[0],
            "channels": r.channels}  # fmt: skip
    save_compressed(tmp_path / "m.ecsz", small, None, meta)
    again, _ = load_compressed(tmp_path / "m.ecsz")
    ours, theirs = small.state_dict(), again.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert sum(t.numel() for t in theirs.values()) < sum(
        t.numel() for t in model.state_dict().values()
    )


def test_latency_record_times_every_model_at_its_batches():
    """`latency.measure` in turns: every model, every batch it has; speed-ups x dense."""
    from ecs_core.latency import eager, measure, record

    model = _model("vgg16")
    r = prune(model, "magnitude", 0.25, None, scope="layer", structure="channel")
    small = shrink(copy.deepcopy(model), r.channels, SHAPE)
    ms = measure({"dense": eager(model), "fp32": eager(small), "one": {1: small}}, SHAPE)
    assert set(ms["dense"]) == set(ms["fp32"]) == {"b1", "b64"} and set(ms["one"]) == {"b1"}
    rec = record(ms["dense"], ms["fp32"], None)
    assert rec["int8_speedup"] is None and rec["threads"] == 1 and rec["cpu"]
    assert rec["fp32_speedup"]["b64"] == pytest.approx(ms["dense"]["b64"] / ms["fp32"]["b64"])


def test_channel_run_shares_weights_and_times_int8_at_both_batches(tmp_path):
    """A channel run through the pipeline with weight sharing (--bits 4) and int8: every
    layer of the smaller model keeps at most 16 values, the .ecsz file is the smaller model,
    and the latency step times the run's int8 model at batch 1 and 64."""
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import run
    from ecs_core.quant.codec import load_compressed
    from tests.tiny import tiny

    cfg = RunConfig(
        **tiny(
            quantize=True,
            bits=4,
            calib_batches=1,
            structure="channel",
            method="snip",
            density=0.25,
            device="cpu",
            runs_dir=str(tmp_path),
        )
    )
    events = list(run(cfg.validate()))
    run_dir = tmp_path / events[0].run_dir
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "finished" and s["scope"] == "layer" and s["macs"] < s["dense_macs"]
    q = s["quant"]
    assert q["bits"] == 4 and all(row["unique_after"] <= 16 for row in q["layers"])
    assert q["unique_after"] < q["unique_before"] and 0 <= q["int8_test_acc"] <= 100
    lat = s["latency"]
    assert set(lat["int8_ms"]) == set(lat["int8_speedup"]) == {"b1", "b64"}
    model, meta = load_compressed(run_dir / "model.ecsz")
    assert meta["channels"] == json.loads((run_dir / "channels.json").read_text())
    assert macs_and_params(model, SHAPE)[0] == s["macs"]
