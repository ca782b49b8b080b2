"""Faithful defaults, named choices (issue 29): IMP's optimizer at a rewind, the layers a method
leaves dense, GraSP's class-balanced samples, batch norm's mode while scoring, and config.json
files from before these options reading as what those runs did."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ecs_core import events as ev
from ecs_core.config import SCORE_BN, ConfigError, RunConfig
from ecs_core.models import build_model, prunable_weights
from ecs_core.pipeline import run
from ecs_core.prune import grasp as grasp_module
from ecs_core.prune import prune
from ecs_core.prune.grasp import balanced_batches
from ecs_core.prune.job import PruneJob
from ecs_core.prune.mask import keep_count
from ecs_core.registry import PRUNERS
from ecs_core.stats.rows import labels
from ecs_core.stats.runs import run_info
from ecs_core.store import RunStore

IMP = dict(method="imp", density=0.3, prune_fraction=0.5, epochs=3, rewind_epoch=1, width=0.125,
           max_batches=2, batch_size=16, quantize=False, device="cpu")  # fmt: skip
NEW = ("imp_optimizer", "keep_dense", "grasp_samples", "grasp_linear", "score_bn")


def _imp_after_rewind(tmp_path: Path, **kw) -> tuple[Path, dict[int, dict]]:
    """An IMP run, and the optimizer state of the checkpoint written right after each rewind
    (before any step of the round)."""
    cfg = RunConfig(**IMP, **kw, runs_dir=str(tmp_path))
    after: dict[int, dict] = {}
    events: list[ev.Event] = []
    for event in run(cfg):
        events.append(event)
        if isinstance(event, ev.StageStarted) and event.stage == "train" and event.round:
            store = RunStore(Path(events[0].run_dir))  # type: ignore[attr-defined]
            after[event.round] = store.load_checkpoint("last.pt")["optimizer"]["state"]
    assert events[-1].status == "finished"  # type: ignore[attr-defined]
    return Path(events[0].run_dir), after  # type: ignore[attr-defined]


def test_imp_fresh_optimizer_has_zero_momentum_after_each_rewind(tmp_path, small_digits) -> None:
    run_dir, after = _imp_after_rewind(tmp_path)  # the default: fresh, output layer dense
    saved = RunStore(run_dir).load_checkpoint("rewind.pt")["optimizer"]["state"]
    assert saved and all(bool(s["momentum_buffer"].any()) for s in saved.values())
    assert sorted(after) == [1, 2]
    for state in after.values():
        assert state.keys() == saved.keys()
        for s in state.values():
            assert not s["momentum_buffer"].any()
    summary = json.loads((run_dir / "summary.json").read_text())
    out = summary["layers"][-1]  # the classifier, left dense (open_lth's default)
    assert out["density"] == 1.0 and out["kept"] == out["params"]
    assert "-imp-fresh-dense-output-" in run_dir.name


def test_imp_rewound_optimizer_has_the_saved_momentum(tmp_path, small_digits) -> None:
    run_dir, after = _imp_after_rewind(tmp_path, imp_optimizer="rewound", keep_dense="none")
    store = RunStore(run_dir)
    saved = store.load_checkpoint("rewind.pt")["optimizer"]["state"]
    masks = load_file(str(run_dir / "masks.safetensors"))
    names = [k for k, _ in store.load_checkpoint("last.pt")["model"].items()]
    params = [n for n in names if "running" not in n and "num_batches" not in n]
    state = after[2]  # the last round: its mask is the saved one
    assert saved and state.keys() == saved.keys()
    for i, s in state.items():
        buf, was = s["momentum_buffer"], saved[i]["momentum_buffer"]
        mask = masks.get(params[i])
        if mask is None:
            assert torch.equal(buf, was), params[i]
        else:  # the mask applies to the momentum too
            keep = mask.bool()
            assert torch.equal(buf[keep], was[keep]) and not buf[~keep].any(), params[i]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["layers"][-1]["density"] < 1.0 and "-imp-d0.3-" in run_dir.name


@pytest.mark.parametrize(
    "method,opts",
    [("snip", {}), ("ecs", {}), ("ecs", {"budget": "union"}), ("grasp", {}), ("synflow", {}),
     ("random", {}), ("magnitude", {}), ("snip", {"scope": "layer"}),
     ("snip", {"distribution": "erk"})],
)  # fmt: skip
def test_the_output_layer_stays_dense_when_asked(method: str, opts: dict, train_batches) -> None:
    net = build_model("vgg16", 10, 1, width=0.125)
    names = list(prunable_weights(net))
    result = prune(net, method, 0.1, train_batches(), keep_dense="output", prune_iterations=3,
                   **opts)  # fmt: skip
    assert bool(result.mask[names[-1]].all())
    assert result.layers[-1]["density"] == 1.0
    rest = [r for r in result.layers if r["name"] != names[-1]]
    kept, total = sum(r["kept"] for r in rest), sum(r["params"] for r in rest)
    if opts.get("budget") == "union":
        assert keep_count(total, 0.1) <= kept <= 2 * keep_count(total, 0.1)
    elif "scope" in opts:
        assert all(r["kept"] == keep_count(r["params"], 0.1) for r in rest)
    else:
        assert abs(kept - keep_count(total, 0.1)) <= 1  # the density is over the other layers
    assert result.density == pytest.approx(result.kept / result.total)  # achieved, over all
    assert result.density > 0.1
    if "distribution" not in opts:  # (ERK keeps a layer as small as the classifier dense)
        default = prune(net, method, 0.1, train_batches(), prune_iterations=3, **opts)
        assert not bool(default.mask[names[-1]].all())  # without it the output is pruned


def test_keep_dense_is_refused_where_it_cannot_hold() -> None:
    with pytest.raises(ConfigError, match="--method set moves weights within every layer"):
        RunConfig(method="set", keep_dense="output").validate()
    with pytest.raises(ConfigError, match="unknown layer set"):
        RunConfig(keep_dense="classifier").validate()


def test_balanced_batches_count_each_class_even_from_an_uneven_dataset() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 30 + [1] * 4 + [2] * 15)[torch.randperm(49, generator=g)]
    data = [(torch.randn(len(part), 1, 2, 2), part) for part in y.split(8)]
    out = balanced_batches(data, classes=3, n=2, per_class=10)
    assert len(out) == 4  # two samples, two halves each (as the original)
    for first, second in (out[:2], out[2:]):
        labels_ = torch.cat([first[1], second[1]])
        assert torch.bincount(labels_, minlength=3).tolist() == [10, 4, 10]
        assert torch.equal(labels_, labels_.sort().values)  # class by class
        assert abs(len(first[1]) - len(second[1])) <= 1


def test_grasp_scores_on_ten_images_per_class(train_batches, monkeypatch) -> None:
    seen: list[torch.Tensor] = []
    original = grasp_module.hessian_gradient_product

    def spy(model, batches, n_batches=1, **kw):
        batches = list(batches)[:n_batches]
        seen.extend(y for _, y in batches)
        return original(model, batches, n_batches, **kw)

    monkeypatch.setattr(grasp_module, "hessian_gradient_product", spy)
    net = build_model("vgg16", 10, 1, width=0.125)
    prune(net, "grasp", 0.1, train_batches(batch_size=64, max_batches=None))
    assert torch.bincount(torch.cat(seen), minlength=10).tolist() == [10] * 10
    seen.clear()
    prune(net, "grasp", 0.1, train_batches(batch_size=64), grasp_samples="batch")
    assert len(torch.cat(seen)) == 64  # the option: one training batch, as before


def test_grasp_scores_a_copy_with_its_linear_layers_redrawn(train_batches) -> None:
    """--grasp-linear xavier (the default, as the original's reinit): θ and Hg are those of a
    copy whose Linear weights are drawn from the run's generator; the model is untouched."""
    from ecs_core.prune.grasp import grasp_scores

    net = build_model("vgg16", 10, 1, width=0.125)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    data = list(train_batches())
    drawn = grasp_scores(net, data, linear="xavier", generator=torch.Generator().manual_seed(3))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    copy = build_model("vgg16", 10, 1, width=0.125)
    copy.load_state_dict(before)
    fc = [m for m in copy.modules() if isinstance(m, nn.Linear)]
    assert fc  # the classifier is a Linear layer: the check below can fail
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in fc:
            m.weight.copy_(nn.init.xavier_normal_(torch.empty(m.weight.shape), generator=gen))
    expected = grasp_scores(copy, data)
    kept = grasp_scores(net, data)  # --grasp-linear keep: the model's own weights
    for k in drawn:
        assert torch.allclose(drawn[k], expected[k], rtol=1e-4, atol=1e-9), k
    assert any(not torch.allclose(drawn[k], kept[k]) for k in drawn)
    assert RunConfig(method="grasp", grasp_linear="keep").validate().method_tag == "grasp-balanced"


@pytest.mark.parametrize("method", ["snip", "ecs", "grasp"])
@pytest.mark.parametrize("bn", ["train", "eval"])
def test_batch_norm_mode_while_scoring(method: str, bn: str, train_batches) -> None:
    net = build_model("vgg16", 10, 1, width=0.125)
    modes: list[bool] = []
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_pre_hook(lambda mod, _: modes.append(mod.training))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    prune(net, method, 0.1, train_batches(), score_bn=bn)
    assert modes and set(modes) == {bn == "train"}
    for k, v in net.state_dict().items():  # running statistics as they were, in either mode
        assert torch.equal(v, before[k]), k


def test_batch_norm_mode_changes_the_snip_scores(train_batches) -> None:
    from ecs_core.prune.snip import snip_scores

    net = build_model("vgg16", 10, 1, width=0.125)
    with torch.no_grad():  # running statistics unlike any batch's, so the modes differ
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.fill_(0.5)
                m.running_var.fill_(4.0)
    data = list(train_batches())
    train, evaluated = snip_scores(net, data, 1, "train"), snip_scores(net, data, 1, "eval")
    x, y = data[0]
    net.eval()
    nn.functional.cross_entropy(net(x), y).backward()
    for k, w in prunable_weights(net).items():
        assert torch.allclose(evaluated[k], (w.grad * w).abs().detach())
    assert any(not torch.allclose(train[k], evaluated[k]) for k in train)


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_score_bn_is_put_back_for_a_method_that_ignores_it(method: str, train_batches) -> None:
    """--score-bn eval reaches the methods that declare it (`PrunerSpec.score_bn`: their name
    says bn-eval); for any other it reads as train, so the recipe and the name equal the
    default's, and such a method's mask is indeed the same in either mode."""
    spec = PRUNERS[method]
    cfg = RunConfig(method=method, score_bn="eval").validate()
    if spec.score_bn:
        assert cfg.score_bn == "eval" and cfg.method_tag.endswith("-bn-eval")
        return
    assert cfg == RunConfig(method=method).validate() and cfg.score_bn == "train"
    assert "bn-" not in cfg.method_tag
    if spec.target is None:  # the dense run
        return
    masks = []
    for bn in SCORE_BN:  # the option as the method would see it without `validate`
        torch.manual_seed(0)
        net = build_model("vgg16", 10, 1, width=0.125)
        job = PruneJob(net, dataclasses.replace(cfg, score_bn=bn), train_batches(),
                       torch.Generator().manual_seed(0), None)  # fmt: skip
        masks.append(spec.load()(job)[0])
    assert masks[0].keys() == masks[1].keys()
    assert all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0])


def _old(config: RunConfig) -> dict:
    """config.json as a run from before the options wrote it."""
    data = config.validate().to_dict()
    for name in NEW:
        data.pop(name)
    return data


def test_a_config_from_before_reads_as_what_that_run_did(tmp_path: Path) -> None:
    old_imp = RunConfig.from_dict(_old(RunConfig(method="imp")))
    assert (old_imp.imp_optimizer, old_imp.dense_layers) == ("rewound", "none")
    assert old_imp.method_tag == "imp" and old_imp.validate() == old_imp  # its name as it was
    old_grasp = RunConfig.from_dict(_old(RunConfig(method="grasp")))
    assert (old_grasp.grasp_samples, old_grasp.grasp_linear) == ("batch", "keep")
    assert old_grasp.method_tag == "grasp"
    snip = RunConfig(method="snip").validate()
    assert RunConfig.from_dict(_old(snip)) == snip  # nothing changed for the others
    new_imp = RunConfig(method="imp").validate()
    assert new_imp.method_tag == "imp-fresh-dense-output" and new_imp.keep_dense == "auto"
    assert RunConfig(method="grasp").validate().method_tag == "grasp-balanced-xavier"
    assert RunConfig(method="snip", score_bn="eval").validate().method_tag == "snip-bn-eval"
    assert RunConfig(method="imp", keep_dense="output").validate() == new_imp  # auto = default

    # `ecs compare` reads the recipe the same way: old and new IMP never pool, and say why
    infos = []
    for name, data in (("old", _old(RunConfig(method="imp"))), ("new", new_imp.to_dict())):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(data))
        infos.append(run_info(tmp_path / name))
    old, new = infos
    assert dict(old.recipe)["imp_optimizer"] == "rewound" and old.method_tag == "imp"
    assert old.recipe != new.recipe and new.method_tag == "imp-fresh-dense-output"
    assert labels(old, True)[0] == "IMP" and labels(new, True)[0] == "IMP [fresh, dense-output]"


def test_an_imp_channel_run_keeps_no_layer_dense_and_says_so(tmp_path: Path) -> None:
    """--keep-dense auto is the output layer for IMP on weights only: a channel run never
    removes the classes, so nothing is kept dense, and neither its name nor its compare row
    says `dense-output` (they did, while the run kept nothing dense)."""
    channel = RunConfig(method="imp", structure="channel").validate()
    assert channel.dense_layers == "none" and channel.keep_dense == "auto"
    assert channel.method_tag == "imp-fresh-layer-channel"
    assert RunConfig(method="imp", structure="channel", keep_dense="none").validate() == channel
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(channel.to_dict()))
    info = run_info(tmp_path / "run")
    assert info.method_tag == channel.method_tag
    assert labels(info, True)[0] == "IMP [layer, channel, fresh]"
    weight = RunConfig(method="imp").validate()
    assert weight.dense_layers == "output" and weight.method_tag == "imp-fresh-dense-output"


def test_an_imp_run_from_before_resumes_as_it_ran(tmp_path: Path, small_digits) -> None:
    """Stopped mid-round 1 and stripped of the options (config.json and the checkpoint's copy,
    as a run from before wrote them), its resume rewinds round 2 with the saved momentum and
    prunes the output layer: the same model as an uninterrupted run of the old recipe. Read
    with the new defaults it would zero the momentum and could not match."""
    from ecs_core.checkpoint import check_resumable

    old = dict(IMP, imp_optimizer="rewound", keep_dense="none")
    whole = list(run(RunConfig(**old, runs_dir=str(tmp_path / "whole"))))
    whole_dir = Path(whole[0].run_dir)  # type: ignore[attr-defined]
    stopped: list[ev.Event] = []
    flag = _Stop(epochs=4)
    for event in run(RunConfig(**old, runs_dir=str(tmp_path / "parts")), stop=flag):
        stopped.append(event)
        flag.see(event)
    assert stopped[-1].status == "stopped"  # type: ignore[attr-defined]
    store = RunStore(Path(stopped[0].run_dir))  # type: ignore[attr-defined]
    data = json.loads((store.path / "config.json").read_text())
    (store.path / "config.json").write_text(json.dumps(_old(RunConfig(**old))))
    state = store.load_checkpoint("last.pt")
    state["config_json"] = json.dumps({k: v for k, v in data.items() if k not in NEW})
    store.save_checkpoint(state, "last.pt")

    cfg = store.read_config()
    assert (cfg.imp_optimizer, cfg.dense_layers, cfg.method_tag) == ("rewound", "none", "imp")
    check_resumable(store, cfg)
    rest = list(run(cfg, store=store, resume=True))
    assert rest[-1].status == "finished"  # type: ignore[attr-defined]
    a = load_file(str(whole_dir / "model.safetensors"))
    b = load_file(str(store.path / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Stop:
    """A stop flag set once `epochs` epoch_end events have gone by."""

    def __init__(self, epochs: int) -> None:
        self.left, self.set_ = epochs, False

    def is_set(self) -> bool:
        return self.set_

    def see(self, event: ev.Event) -> None:
        if isinstance(event, ev.EpochEnd):
            self.left -= 1
            self.set_ = self.left <= 0
