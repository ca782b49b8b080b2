"""Iterative magnitude pruning with rewinding: the schedule, the rewind, resume mid-round."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ecs_core import events as ev
from ecs_core.config import ConfigError, RunConfig
from ecs_core.pipeline import run
from ecs_core.rounds import imp_densities
from ecs_core.store import RunStore

IMP = dict(method="imp", density=0.3, prune_fraction=0.5, epochs=3, rewind_epoch=1, width=0.125,
           max_batches=2, batch_size=16, quantize=False, device="cpu",
           keep_dense="none")  # fmt: skip
"""Every layer pruned, so the density is over all of them (the output layer left dense, IMP's
default: tests/engine/test_faithful.py)."""


def test_schedule_removes_the_fraction_of_what_remains_and_lands_on_the_target() -> None:
    assert imp_densities(0.3, 0.5) == [0.5, 0.3]
    d = imp_densities(0.05, 0.2)
    assert len(d) == 14 and d[-1] == 0.05  # 0.8**13 = 0.055 > 0.05 >= 0.8**14 = 0.044
    assert all(b / a == pytest.approx(0.8) for a, b in zip(d[:-2], d[1:-1], strict=True))
    assert 0.8 * d[-2] <= d[-1] < d[-2]
    assert imp_densities(0.8, 0.2) == [0.8]
    assert imp_densities(1.0, 0.2) == []


def test_config_counts_every_round_and_refuses_bad_imp_options() -> None:
    cfg = RunConfig(**IMP).validate()
    assert cfg.rounds == [0.5, 0.3] and cfg.total_epochs == 3 + 2 * (3 - 1)
    assert RunConfig(method="snip", epochs=3).validate().total_epochs == 3
    for bad, field in ((dict(rewind_epoch=3), "--rewind-epoch must be below --epochs (3)"),
                       (dict(prune_fraction=1.0), "--prune-fraction must be in (0, 1)"),
                       (dict(prune_fraction=0.0), "--prune-fraction must be in (0, 1)"),
                       (dict(rewind_epoch=-1), "--rewind-epoch must be >= 0")):  # fmt: skip
        with pytest.raises(ConfigError, match=field.replace("(", r"\(").replace(")", r"\)")):
            RunConfig(**{**IMP, **bad}).validate()


def _events(cfg: RunConfig, **kw) -> list[ev.Event]:
    return list(run(cfg, **kw))


def test_rounds_prune_rewind_and_train_to_the_exact_target(tmp_path: Path, small_digits) -> None:
    cfg = RunConfig(**IMP, runs_dir=str(tmp_path))
    rewound: dict[int, dict[str, torch.Tensor]] = {}
    events = []
    for event in run(cfg):
        events.append(event)
        if isinstance(event, ev.StageStarted) and event.stage == "train" and event.round:
            run_dir = Path(events[0].run_dir)  # type: ignore[attr-defined]
            # the checkpoint written after the rewind, before any step of this round
            rewound[event.round] = RunStore(run_dir).load_checkpoint("last.pt")["model"]
    run_dir = Path(events[0].run_dir)  # type: ignore[attr-defined]
    pruned = [e for e in events if isinstance(e, ev.Pruned)]
    assert [(e.round, e.rounds) for e in pruned] == [(1, 2), (2, 2)]
    assert [round(e.density, 4) for e in pruned] == [0.5, 0.3]
    assert abs(pruned[-1].kept - 0.3 * pruned[-1].total) <= 1
    epochs = [e for e in events if isinstance(e, ev.EpochEnd)]
    assert [(e.epoch, e.round) for e in epochs] == [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1),
                                                    (6, 2), (7, 2)]  # fmt: skip
    assert all(e.epochs == 7 for e in epochs)

    rewind = RunStore(run_dir).load_checkpoint("rewind.pt")
    assert rewind["epoch"] == 1
    masks = load_file(str(run_dir / "masks.safetensors"))
    for r, state in rewound.items():
        for name, saved in rewind["model"].items():
            if name in masks and r == 2:  # the last round's mask is the saved one
                keep = masks[name].bool()
                assert torch.equal(state[name][keep], saved[keep]), name
                assert not state[name][~keep].any(), name
            elif name not in masks and "running" not in name and "num_batches" not in name:
                assert torch.equal(state[name], saved), name  # batch norm rewound too
    # the second round prunes within the first round's mask
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [row["round"] for row in summary["imp_rounds"]] == [0, 1, 2]
    assert summary["rounds"] == 2 and summary["density"] == pytest.approx(0.3, abs=1e-4)
    assert summary["epochs_done"] == 7 and summary["status"] == "finished"
    # no test pass on a round's pruned, untrained model (it was most of the work between
    # rounds); the rounds' results are their accuracies after training
    assert "pruned_test_acc" not in summary
    assert all(row["test_acc"] is not None for row in summary["imp_rounds"])


class StopAfter:
    """A stop flag set once `epochs` epoch_end events have gone by."""

    def __init__(self, epochs: int) -> None:
        self.left, self.flag = epochs, threading.Event()

    def is_set(self) -> bool:
        return self.flag.is_set()

    def see(self, event: ev.Event) -> None:
        if isinstance(event, ev.EpochEnd):
            self.left -= 1
            if self.left == 0:
                self.flag.set()


@pytest.mark.parametrize(
    ("structure", "stop_after"),
    [("weight", 1), ("weight", 3), ("weight", 4),  # before the rewind point, between, mid-round
     ("channel", 3), ("channel", 4), ("channel", 6)],  # round 0's end, mid round 1, mid round 2
)  # fmt: skip
def test_resume_at_any_point_matches_an_uninterrupted_run(
    tmp_path: Path, small_digits, structure: str, stop_after: int
) -> None:
    """A channel run's rounds train their smaller models: resumed, it compacts again."""
    whole = _events(RunConfig(**IMP, structure=structure, runs_dir=str(tmp_path / "whole")))
    whole_dir = Path(whole[0].run_dir)  # type: ignore[attr-defined]

    cfg = RunConfig(**IMP, structure=structure, runs_dir=str(tmp_path / "parts"))
    stop = StopAfter(stop_after)
    first = []
    for event in run(cfg, stop=stop):
        first.append(event)
        stop.see(event)
    assert first[-1].status == "stopped"  # type: ignore[attr-defined]
    run_dir = Path(first[0].run_dir)  # type: ignore[attr-defined]
    rest = _events(cfg, store=RunStore(run_dir), resume=True)
    assert rest[-1].status == "finished"  # type: ignore[attr-defined]

    a = load_file(str(whole_dir / "model.safetensors"))
    b = load_file(str(run_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = json.loads((whole_dir / "summary.json").read_text())
    sb = json.loads((run_dir / "summary.json").read_text())
    assert sa["imp_rounds"] == sb["imp_rounds"]


@pytest.mark.parametrize("invert", [False, True])
def test_a_round_prunes_only_among_the_weights_still_kept(invert: bool) -> None:
    from ecs_core.models import build_model, prunable_weights
    from ecs_core.prune import prune

    torch.manual_seed(0)
    net = build_model("vgg16", 10, 1, width=0.125)
    first = prune(net, "imp", 0.5, keep_dense="none").mask
    ablate = "invert" if invert else "none"
    second = prune(net, "imp", 0.3, ablate=ablate, keep=first, keep_dense="none")
    kept = sum(int(m.sum()) for m in second.mask.values())
    total = sum(w.numel() for w in prunable_weights(net).values())
    assert abs(kept - 0.3 * total) <= 1
    for k, m in second.mask.items():
        assert not (m & ~first[k]).any(), k  # nothing pruned in round 1 comes back
