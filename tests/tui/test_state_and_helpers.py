"""Small pure pieces behind the app: how RunState folds a resumed run, the ETA, the Runs tab's
short names, near-collapse flags, the kernels weight page."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ecs_core import events as ev
from ecs_tui.plots import density_text, near_collapse
from ecs_tui.runmodel import RunState
from ecs_tui.widgets.runs import short_name


def test_a_resumed_run_keeps_what_came_before_its_checkpoint(tui: SimpleNamespace) -> None:
    """Events of a run stopped after epoch 2, then its resume: epochs 1-4 once each (the
    repeated epoch 3 is the resumed one), the pruning and the stages before the resume kept."""
    state = RunState()
    events = tui.canned_events()
    stop = next(i for i, e in enumerate(events) if isinstance(e, ev.EpochEnd) and e.epoch == 3)
    state.ingest(events[: stop + 1])  # it got through epoch 3 but its checkpoint is epoch 2
    state.ingest(tui.resumed_events(2))
    snap = state.snapshot()
    assert [p.epoch for p in snap.epoch_points] == [1, 2, 3, 4]
    assert snap.pruned is not None and snap.status == "finished"
    assert snap.stages_done.count("train") == 1 and "warmup" in snap.stages_done


def test_a_new_run_starts_from_nothing(tui: SimpleNamespace) -> None:
    state = RunState()
    state.ingest(tui.canned_events())
    state.ingest(tui.canned_events()[:1])
    snap = state.snapshot()
    assert snap.epoch_points == () and snap.pruned is None and snap.stages_done == ()


def test_eta_uses_the_current_stages_epochs(tui: SimpleNamespace) -> None:
    """Mid epoch 2 (train) after one slow warm-up epoch: the rest of this epoch plus two more
    at this epoch's own rate; the warm-up's 60 s does not count."""
    state = RunState()
    events = tui.canned_events()
    warm_end = next(i for i, e in enumerate(events) if isinstance(e, ev.EpochEnd))
    slow = ev.from_dict({**events[warm_end].to_dict(), "seconds": 60.0})
    state.ingest([*events[:warm_end], slow, *events[warm_end + 1 : tui.mid_epoch(events)]])
    snap = state.snapshot()
    assert snap.stage == "train" and snap.batch == 6 and snap.elapsed == 3.0
    assert snap.eta() == 3.0 + 2 * 12 * 0.5


def test_short_names() -> None:
    assert (
        short_name("20250101-000000-vgg16-digits-ecs-d0.05-s0")
        == "0101-0000 vgg16-digits-ecs-d0.05-s0"
    )
    assert short_name("vgg16-digits-snip-d0.05-s0") == "vgg16-digits-snip-d0.05-s0"  # a sweep cell


def test_near_collapse_says_the_count() -> None:
    assert near_collapse(1, 1 / 36_864) and density_text(1, 1 / 36_864) == "! 1 kept"
    assert not near_collapse(0, 0.0) and density_text(0, 0.0) == "0.00%"
    assert density_text(3_318, 0.09) == "9.00%"


def test_weight_page_keeps_every_weight_and_its_zeros() -> None:
    import torch

    from ecs_tui.widgets.maps import weight_page

    w = torch.arange(1, 2 * 4 * 9 + 1, dtype=torch.float32).view(2, 4, 3, 3)
    w[0, 1, 0, 0] = 0.0  # a pruned weight
    page = weight_page(w, "f.weight", 0, (80, 20))
    assert page.total == 2 and page.shown_in == 4 and page.tile == (7, 7)
    label, m = page.tiles[0]
    assert label == "#1" and m[0][:3] == [1.0, 2.0, 3.0] and m[0][3] is None
    assert m[0][4] == 0.0  # channel 2's first weight, exactly zero, kept as zero
    assert page.vmax == 72.0


def test_every_listing_reads_the_run_states_from_the_engine(tmp_path) -> None:
    """The strip's style and its resume hint, the Runs tab's sweep word and the resume check
    all come from `runfiles.STATES`: a state's row decides each."""
    from rich.text import Text

    from ecs_core.runfiles import STATES, status
    from ecs_tui.runmodel import Snapshot
    from ecs_tui.widgets.runs import cell_word
    from ecs_tui.widgets.status import _batch_done, render_status

    for word, state in STATES.items():
        snap = Snapshot(status=word, run_dir=str(tmp_path))
        head = render_status(snap).columns[0]._cells[0]
        assert isinstance(head, Text) and head.plain.startswith(word)
        assert [s.style for s in head.spans if s.start == 0] == (
            [state.style] if state.style else []
        )
        assert (_batch_done(snap) == "resume: r") is state.resumable
        (tmp_path / "events.jsonl").touch()
        assert cell_word(SimpleNamespace(status=word, path=str(tmp_path))) == state.in_sweep
    assert status("busy").word == "busy" and not status("busy").resumable
    assert STATES["finished"].in_sweep == "done" and STATES["finished"].final


def test_the_help_screen_is_built_from_the_bindings() -> None:
    """Every key the app and its views bind carries its help; a binding added is in the help
    screen with nothing else to edit, and the view keys read as one range."""
    from textual.binding import Binding

    from ecs_core.views import VIEWS
    from ecs_tui.app import EcsApp
    from ecs_tui.screens.help import help_rows
    from ecs_tui.widgets.runs import RunsView

    for binding in [*EcsApp.BINDINGS, *RunsView.BINDINGS]:
        assert isinstance(binding, Binding) and binding.tooltip, binding
    thrown = Binding("z,f9", "bell", "Bell", tooltip="ring the bell (a throwaway key)")
    rows = help_rows([[*EcsApp.BINDINGS, thrown], RunsView.BINDINGS])
    assert ("z f9", "ring the bell (a throwaway key)") in rows
    assert (f"1-{len(VIEWS)}", " ".join(v.title for v in VIEWS)) in rows
    assert ("r e d delete", RunsView.BINDINGS[2].tooltip) in rows
    assert len({what for _, what in rows}) == len(rows)


def test_one_table_of_views_for_the_app_and_ecs_show() -> None:
    """`ecs_core.views.VIEWS` gives the app its tabs, their keys and widgets, and `ecs show`
    its names (the Quant tab is `ecs show RUN quant`; `clusters` still answers)."""
    from ecs_core.views import SHOWN, VIEWS, shown_view, view
    from ecs_tui.app import EcsApp
    from ecs_tui.runmodel import Snapshot
    from ecs_tui.widgets.status import render_status
    from ecs_tui.widgets.views import WIDGETS

    assert list(WIDGETS) == [v.name for v in VIEWS]
    actions = {b.key: b.action for b in EcsApp.BINDINGS}
    for v in VIEWS:
        assert actions[v.key] == f"show_view('{v.name}')"
    assert shown_view("clusters") is shown_view("quant") is view("quant")
    assert shown_view("runs") is None and all(shown_view(v.name) is v for v in SHOWN)
    assert f"Runs tab ({view('runs').key})" in render_status(Snapshot()).plain


def test_weights_without_colour_carry_the_sign_and_the_title_says_which_glyph_is_which() -> None:
    """NO_COLOR: a negative and a positive weight of equal size read differently, no sign glyph
    is also a brightness of the kernel maps beside them, and the legend names the glyphs."""
    import torch
    from textual_plotext.plot import Plot

    from ecs_tui.plots import RAMP
    from ecs_tui.plots_maps import draw_weights
    from ecs_tui.widgets.maps import weight_page

    rows = [[-1.0, -0.2, 0.0], [0.2, 1.0, 0.0], [-0.9, 0.9, 0.1]]
    page = weight_page(torch.tensor(rows).view(1, 1, 3, 3), "f.weight", 0, (100, 12))
    plt = Plot()
    draw_weights(plt, page, (100, 12), color=False)
    plt.plotsize(100, 12)
    plt._set_size(100, 12)  # what PlotextPlot.render does
    lines = [line.strip() for line in plt.uncolorize(plt.build()).splitlines()]
    assert [line for line in lines if line and set(line) <= set("·-=+#")] == [
        "==--··", "++##··", "==##++"
    ]  # fmt: skip
    assert not set("-=+#") & set(RAMP)
    title = lines[0]
    assert "blue" not in title and "red" not in title, title
    assert "· pruned (0) · -/= negative · +/# positive (=/#: |w| > 0.5)" in title, title


def test_a_warm_up_epochs_accuracy_is_its_own_not_the_pruned_models() -> None:
    """After ECS's warm-up epoch (test 12.50%) the mask is applied (pruned model: 10.00%): the
    strip shows 12.50% beside epoch 1, as `ecs run` prints it, and the Overview gives the
    pruned model's as `pruned acc`; once the run ends, its summary's has the last word
    (issue 30, item 11)."""
    import io

    from rich.console import Console

    from ecs_core import events as ev
    from ecs_core.config import RunConfig
    from ecs_tui.runmodel import RunState
    from ecs_tui.widgets.overview import facts
    from ecs_tui.widgets.status import render_status

    config = RunConfig(width=0.125, epochs=2, warmup_epochs=1).validate()
    state = RunState()
    state.ingest([
        ev.RunStarted(run_dir="runs/x", config=config.to_dict(), device="cpu", params=1,
                      train_size=10, test_size=5),
        ev.StageStarted(stage="warmup", epochs=1),
        ev.EpochEnd(stage="warmup", epoch=1, epochs=3, train_loss=2.0, train_acc=11.0,
                    test_loss=2.2, test_acc=12.5, lr=0.1, seconds=1.0, img_per_s=9.0,
                    density=1.0),
        ev.StageFinished(stage="warmup", seconds=1.0),
        ev.MaskApplied(test_acc=10.0, test_loss=2.3),
    ])  # fmt: skip
    snap = state.snapshot()
    assert snap.test_acc == 12.5
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(render_status(snap))
    assert "1/3 test 12.50%" in console.export_text()
    rows = dict(facts(snap))
    assert rows["test acc"] == "12.50%" and rows["pruned acc"] == "10.00%"
    final = {"test_acc": 11.0}  # a stopped run is evaluated again at the stop
    state.ingest([ev.RunFinished(status="stopped", test_acc=11.0, summary=final, seconds=2.0)])
    assert state.snapshot().test_acc == 11.0


def test_a_resume_in_the_quantize_stage_keeps_train_done() -> None:
    """A run stopped while quantizing and resumed from its last epoch's checkpoint: the
    finished run's stage line still says train ✓ (it lost it; issue 30, item 12). One
    resumed mid-training has train to do again."""
    from ecs_core import events as ev
    from ecs_core.config import RunConfig
    from ecs_tui.runmodel import RunState
    from ecs_tui.widgets.status import stage_line

    config = RunConfig(width=0.125, epochs=2, warmup_epochs=0, method="snip").validate()
    started = dict(run_dir="runs/x", config=config.to_dict(), device="cpu", params=1,
                   train_size=10, test_size=5)  # fmt: skip

    def epoch(n: int) -> ev.EpochEnd:
        return ev.EpochEnd(stage="train", epoch=n, epochs=2, train_loss=2.0, train_acc=11.0,
                           test_loss=2.2, test_acc=12.5, lr=0.1, seconds=1.0, img_per_s=9.0,
                           density=0.1)  # fmt: skip

    first = [
        ev.RunStarted(**started), ev.StageStarted(stage="prune"),
        ev.StageFinished(stage="prune", seconds=0.1), ev.StageStarted(stage="train", epochs=2),
        epoch(1), epoch(2), ev.StageFinished(stage="train", seconds=2.0),
        ev.StageStarted(stage="quantize"),
        ev.RunFinished(status="stopped", test_acc=12.5, summary={}, seconds=3.0),
    ]  # fmt: skip
    state = RunState()
    state.ingest([
        *first, ev.RunStarted(**started, resumed_from_epoch=2), ev.StageStarted(stage="quantize"),
        ev.StageFinished(stage="quantize", seconds=1.0),
        ev.RunFinished(status="finished", test_acc=12.5, summary={}, seconds=1.0),
    ])  # fmt: skip
    snap = state.snapshot()
    assert snap.stages_done == ("prune", "train", "quantize")
    assert "train ✓" in stage_line(snap).plain
    mid = RunState()
    mid.ingest([*first[:5], ev.RunStarted(**started, resumed_from_epoch=1)])
    assert mid.snapshot().stages_done == ("prune",)


def test_the_eta_leaves_out_the_first_batch_of_an_epoch() -> None:
    """The first batch of a run pays for warming up (3 s here, then 0.5 s a batch): the ETA's
    rate is measured from the epoch's first reported batch, so it says 2.5 s at batch 3 of 8
    (it said 6.7 s, and 21 s at batch 1; issue 30, item 13), and nothing at one point."""
    from ecs_core import events as ev
    from ecs_core.config import RunConfig
    from ecs_tui.runmodel import RunState

    config = RunConfig(width=0.125, epochs=1, warmup_epochs=0, method="snip").validate()
    state = RunState()
    state.ingest([ev.RunStarted(run_dir="runs/x", config=config.to_dict(), device="cpu",
                                params=1, train_size=10, test_size=5)])  # fmt: skip

    def batch(n: int, elapsed: float, epoch: int = 1) -> ev.BatchProgress:
        return ev.BatchProgress(stage="train", epoch=epoch, epochs=2, batch=n, batches=8,
                                loss=1.0, img_per_s=1.0, elapsed=elapsed)  # fmt: skip

    state.ingest([batch(1, 3.0)])
    assert state.snapshot().eta() is None
    state.ingest([batch(2, 3.5), batch(3, 4.0)])
    assert state.snapshot().eta() == pytest.approx(0.5 * 5 + 0.5 * 8)  # this epoch, the next
    state.ingest([ev.EpochEnd(stage="train", epoch=1, epochs=2, train_loss=1.0, train_acc=1.0,
                              test_loss=1.0, test_acc=1.0, lr=0.1, seconds=7.0, img_per_s=1.0,
                              density=0.1), batch(1, 0.4, epoch=2)])  # fmt: skip
    assert state.snapshot().rate_from == (1, 0.4) and state.snapshot().eta() is None


def test_the_machine_line_puts_the_wall_time_first() -> None:
    """The strip cuts its end at 80 columns: the run's wall time comes first (issue 30,
    item 14)."""
    import os
    import time

    from ecs_tui.widgets.machine import MachineLine

    line = MachineLine().line(os.getpid(), time.time() - 65, cuda=False)
    assert line is not None and line.startswith("1:05"), line


def test_the_overview_shows_a_finished_runs_time_and_speed() -> None:
    """Wall time and training img/s in the Overview once the run has ended (issue 30,
    item 6); while it runs the strip has them."""
    from ecs_tui.runmodel import EpochPoint, Snapshot
    from ecs_tui.widgets.overview import facts

    last = EpochPoint(2, "train", 1.0, 50.0, 1.1, 49.0, 0.1, 0.05, 7.0, img_per_s=1044.0)
    summary = {"seconds": 81.0}
    done = dict(facts(Snapshot(status="finished", summary=summary, epoch_points=(last,))))
    assert done["time"] == "1:21 wall · 1,044 img/s training (last epoch)"
    assert "time" not in dict(facts(Snapshot(status="running", summary={}, img_per_s=900.0)))


def test_the_setup_line_says_how_the_density_is_spread() -> None:
    """The Overview's setup line says the spread the run uses, as `ecs run` prints it: erk for
    RigL (its auto default), not the scope field's global."""
    from ecs_core.config import RunConfig
    from ecs_tui.widgets.status import describe_config

    def line(**kw) -> str:
        return describe_config(RunConfig(width=0.125, **kw).validate().to_dict())

    assert line(method="rigl", density=0.1).endswith("rigl d=0.1 erk")
    assert line(method="snip").endswith("snip d=0.05 global")
    assert line(method="snip", scope="layer").endswith("snip d=0.05 layer")
    assert line(method="random", distribution="er").endswith("random d=0.05 er")
    assert line(method="snip", structure="channel").endswith("snip d=0.05 layer")
    assert line(method="none").endswith("dense")
