"""summary.json is the fold of the run's own events (`ecs_core.summary.Summary`): folding a
finished run's events.jsonl gives its summary.json key for key, for every kind of run; a
stopped-and-resumed run gives the same numbers; and old or damaged summaries still load."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest

from ecs_core import events as ev
from ecs_core.config import RunConfig
from ecs_core.pipeline import run
from ecs_core.runfiles import read_events
from ecs_core.store import RunStore
from ecs_core.summary import Summary, fold

SMOKE = dict(width=0.125, max_batches=2, batch_size=8, device="cpu", quantize=False)
RUNS = {
    "dense": dict(method="none", epochs=1),
    "snip": dict(method="snip", density=0.1, epochs=1),
    "ecs+quantize": dict(
        method="ecs", density=0.1, epochs=2, quantize=True, bits=3, calib_batches=1
    ),  # fmt: skip
    "imp": dict(method="imp", density=0.4, epochs=2, rewind_epoch=1, prune_fraction=0.5),
    "no epochs": dict(method="synflow", density=0.1, epochs=0, prune_iterations=2),
    "dense, no epochs": dict(method="none", epochs=0),
}


def finished(config: RunConfig) -> tuple[list[ev.Event], Path]:
    events = list(run(config))
    assert isinstance(events[-1], ev.RunFinished) and events[-1].status == "finished"
    return events, Path(events[0].run_dir)  # type: ignore[attr-defined]


def events_on_disk(run_dir: Path) -> list[ev.Event]:
    return read_events(run_dir, 0)[0]


@pytest.mark.parametrize("name", list(RUNS))
def test_summary_json_is_the_fold_of_events_jsonl(name: str, tmp_path: Path, small_digits) -> None:
    events, run_dir = finished(RunConfig(runs_dir=str(tmp_path), **{**SMOKE, **RUNS[name]}))
    on_file = json.loads((run_dir / "summary.json").read_text())
    assert fold(events_on_disk(run_dir)).to_dict() == on_file
    assert fold(events).to_dict() == on_file  # the stream the front ends see, too
    assert events[-1].summary == on_file  # type: ignore[attr-defined]
    kinds = {e.kind for e in events}
    if name == "dense":
        assert on_file["density"] == 1.0
        assert all(r["kept"] == r["params"] for r in on_file["layers"])
    if name == "snip":  # the pruned model's own accuracy, then the trained one's
        applied = next(e for e in events if isinstance(e, ev.MaskApplied))
        assert on_file["pruned_test_acc"] == applied.test_acc
        assert on_file["test_acc"] == [e for e in events if isinstance(e, ev.EpochEnd)][-1].test_acc
    if name == "ecs+quantize":
        assert on_file["quant"]["bits"] == 3 and on_file["sizes"]["compressed_bytes"] > 0
    if name == "imp":
        assert [r["round"] for r in on_file["imp_rounds"]] == [0, 1, 2] and on_file["rounds"] == 2
        assert "pruned_test_acc" not in on_file  # IMP's rounds train next: no such test pass
    if name == "no epochs":  # nothing trained: the pruned model's test pass is the result
        assert "evaluated" not in kinds and on_file["test_acc"] == on_file["pruned_test_acc"]
        assert "epochs_done" not in on_file and "best_test_acc" not in on_file
    if name == "dense, no epochs":  # nothing pruned or trained: one test pass at the end
        evaluated = next(e for e in events if isinstance(e, ev.Evaluated))
        assert on_file["test_acc"] == evaluated.test_acc and "pruned_test_acc" not in on_file


def test_a_resumed_run_folds_to_the_same_numbers(tmp_path: Path, small_digits) -> None:
    """Stop after epoch 1 of 3, resume: the summary's numbers are those of an unbroken run, and
    the fold of the whole events.jsonl (both processes) gives them too (seconds aside: the
    resumed process counts from its checkpoint)."""
    cfg = RunConfig(runs_dir=str(tmp_path / "a"), method="snip", density=0.1, epochs=3, **SMOKE)
    stop = threading.Event()
    for e in run(cfg, stop=stop):
        if isinstance(e, ev.EpochEnd) and e.epoch == 1:
            stop.set()
        last = e
    assert isinstance(last, ev.RunFinished) and last.status == "stopped"
    run_dir = Path(last.summary["run_dir"])
    assert json.loads((run_dir / "summary.json").read_text())["epochs_done"] == 1
    resumed = list(run(cfg, store=RunStore(run_dir), resume=True))
    assert resumed[-1].status == "finished"  # type: ignore[attr-defined]
    _, whole = finished(dataclasses.replace(cfg, runs_dir=str(tmp_path / "b")))
    on_file = json.loads((run_dir / "summary.json").read_text())
    unbroken = json.loads((whole / "summary.json").read_text())
    timed = ("seconds", "run_dir", "latency")  # latency: measured times, as seconds
    same = {k: v for k, v in on_file.items() if k not in timed}
    assert same == {k: v for k, v in unbroken.items() if k not in timed}
    folded = fold(events_on_disk(run_dir)).to_dict()
    assert {k: v for k, v in folded.items() if k != "seconds"} == {
        k: v for k, v in on_file.items() if k != "seconds"
    }


def test_any_summary_json_loads_and_round_trips() -> None:
    """Older files (keys missing), newer ones (keys unknown: kept), and damaged values (wrong
    kind: read as unknown) all load; what loads is written back unchanged."""
    old = {"status": "finished", "test_acc": 91.5, "density": 0.05}
    assert Summary.from_dict(old).to_dict() == old
    newer = {**old, "onnx": {"fp32": {"bytes": 10}}, "something_new": [1, 2]}
    s = Summary.from_dict(newer)
    assert s.extra == {"onnx": {"fp32": {"bytes": 10}}, "something_new": [1, 2]}
    assert s.to_dict() == newer and s.get("onnx") == {"fp32": {"bytes": 10}}
    bad = Summary.from_dict({"test_acc": "high", "seed": 1.5, "epochs_done": True, "layers": {}})
    assert (bad.test_acc, bad.seed, bad.epochs_done, bad.layers) == (None, None, None, None)
    assert bad.get("test_acc", -1) == -1 and Summary.from_dict(None).to_dict() == {}
    assert Summary.from_dict({"seed": 3, "density": 1}).to_dict() == {"seed": 3, "density": 1}


def test_the_fold_ignores_what_is_not_the_runs() -> None:
    """Fine-tuning epochs (the quantize stage's) and progress events change no field; a failure
    says what failed."""
    s = Summary(test_acc=80.0, epochs_done=3, best_test_acc=81.0)
    tune = ev.EpochEnd(stage="finetune", epoch=1, epochs=1, train_loss=0.1, train_acc=99.0,
                       test_loss=0.2, test_acc=50.0, lr=0.01, seconds=1, img_per_s=1)  # fmt: skip
    s.apply(tune).apply(ev.BatchProgress("train", 1, 3, 1, 2, 0.5, 1.0, 1.0))
    assert (s.test_acc, s.epochs_done, s.best_test_acc) == (80.0, 3, 81.0)
    s.apply(ev.RunFailed(error="PruneError", message="layer collapse"))
    assert (s.status, s.error) == ("failed", "PruneError: layer collapse")
    no_step = ev.EpochEnd(stage="train", epoch=4, epochs=4, train_loss=float("nan"),
                          train_acc=0.0, test_loss=0.3, test_acc=82.0, lr=0.1, seconds=1.0,
                          img_per_s=0.0)  # fmt: skip
    s.apply(no_step)
    assert (s.train_loss, s.train_acc, s.test_acc, s.best_test_acc) == (None, None, 82.0, 82.0)
