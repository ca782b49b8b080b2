"""IMP in the app: the status line says which round a run is in, and counts every round's
epochs."""

from __future__ import annotations

from ecs_core import events as ev
from ecs_core.config import RunConfig
from ecs_tui.runmodel import RunState
from ecs_tui.widgets.status import stage_line

CONFIG = RunConfig(method="imp", density=0.2, prune_fraction=0.5, epochs=4, rewind_epoch=1,
                   width=0.125).validate()  # fmt: skip


def test_the_status_line_shows_the_round_and_every_rounds_epochs() -> None:
    state = RunState()
    state.ingest([
        ev.RunStarted(run_dir="runs/x", config=CONFIG.to_dict(), device="cpu", params=1,
                      train_size=10, test_size=5),
        ev.StageStarted(stage="train", epochs=4, round=0, rounds=3),
    ])  # fmt: skip
    snap = state.snapshot()
    assert snap.epochs == 4 + 3 * 3  # before any batch: from the config, every round counted
    assert "IMP round 0/3" in stage_line(snap).plain
    state.ingest([ev.StageFinished(stage="train", seconds=1.0),
                  ev.StageStarted(stage="prune", round=2, rounds=3)])  # fmt: skip
    assert "IMP round 2/3" in stage_line(state.snapshot()).plain
    state.ingest([ev.StageStarted(stage="quantize")])  # after the rounds: the last one stays
    assert "IMP round 2/3" in stage_line(state.snapshot()).plain


def test_one_shot_runs_show_no_round() -> None:
    state = RunState()
    cfg = RunConfig(method="snip", epochs=4).validate()
    state.ingest([
        ev.RunStarted(run_dir="runs/y", config=cfg.to_dict(), device="cpu", params=1,
                      train_size=10, test_size=5),
        ev.StageStarted(stage="train", epochs=4),
    ])  # fmt: skip
    assert "round" not in stage_line(state.snapshot()).plain
    assert state.snapshot().epochs == 4


def test_overview_says_imp_best_is_the_last_rounds_and_lists_the_rounds() -> None:
    """IMP's best acc is the last round's (round 0 scored higher): the Overview says so, and
    lists each round's density and test accuracy (issue 30, item 7)."""
    from ecs_tui.runmodel import Snapshot
    from ecs_tui.widgets.overview import facts

    rounds = [
        {"round": 0, "density": 1.0, "epochs_done": 2, "test_acc": 33.61, "best_test_acc": 33.61},
        {"round": 1, "density": 0.2, "epochs_done": 4, "test_acc": 17.5, "best_test_acc": 17.5},
    ]
    summary = {"test_acc": 17.5, "best_test_acc": 17.5, "imp_rounds": rounds}
    rows = dict(facts(Snapshot(status="finished", summary=summary)))
    assert rows["best acc"] == "17.50% (last round)"
    assert rows["IMP rounds"] == "0: 100.0% kept 33.61%  1: 20.0% kept 17.50%"
    one_shot = dict(facts(Snapshot(status="finished", summary={"best_test_acc": 17.5})))
    assert one_shot["best acc"] == "17.50%" and "IMP rounds" not in one_shot
