"""Pilot tests: the app driven by key presses, with canned runners and with the real pipeline."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Static
from typer.testing import CliRunner

from ecs_core.config import RunConfig
from ecs_tui.app import EcsApp
from ecs_tui.screens.confirm import ConfirmScreen
from ecs_tui.screens.help import HelpScreen
from ecs_tui.widgets.configure import ConfigurePane
from tests.tui.pilot_helpers import notes, wait_for

pytestmark = pytest.mark.asyncio


async def test_start_refused_with_the_reason(tui: SimpleNamespace) -> None:
    """A bad density is marked and Start says why it will not start."""
    runner = tui.CannedRunner(tui.canned_events())
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        app.query_one("#cfg-density").focus()
        await pilot.press("ctrl+a", "ctrl+k", *"1.5", "escape")
        await pilot.press("s")
        await pilot.pause()
        assert runner.config is None and not app.running
        assert app.query_one("#cfg-density").has_class("-bad")
        assert any("--density must be in (0, 1], got 1.5" in n for n in notes(app)), notes(app)


async def test_start_events_then_stop_with_confirmation(tui: SimpleNamespace) -> None:
    """Start shows live events; Stop asks, then the run ends at the runner's next step."""
    events = tui.canned_events()
    runner = tui.CannedRunner(events, pause_at=tui.mid_epoch(events))
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("s")
        await wait_for(pilot, runner.paused.is_set)
        await wait_for(pilot, lambda: app.state.snapshot().batch == 6)
        snap = app.state.snapshot()
        assert snap.status == "running" and snap.stage == "train" and snap.epoch == 1
        assert runner.config == tui.CONFIG
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.running)
        assert app.state.snapshot().status == "stopped"
        assert not app.query_one("#start").disabled


async def test_worker_exception_is_shown_and_the_app_keeps_working(tui: SimpleNamespace) -> None:
    """A failing run: a toast with the message, the traceback in the Log tab, keys still work."""
    runner = tui.CannedRunner(tui.canned_events(), fail_at=5)
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.running and app.state.snapshot().status == "failed")
        assert any("canned failure: CUDA out of memory" in n for n in notes(app))
        snap = app.state.snapshot()
        assert "RuntimeError: canned failure" in snap.error
        assert any("Traceback" in line for line in snap.log)
        await pilot.press("8")
        assert app.visible_view() == "log"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        runner.fail_at = None
        await pilot.press("s")
        await wait_for(pilot, lambda: app.state.snapshot().status == "finished")


async def test_watch_picks_up_appended_lines(tui: SimpleNamespace, tmp_path: Path) -> None:
    """--watch: lines appended to events.jsonl show up; a half-written line waits for its end."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(tui.CONFIG.to_dict()))
    lines = [json.dumps(e.to_dict()) + "\n" for e in tui.canned_events()]
    log = run / "events.jsonl"
    log.write_text("".join(lines[:3]))
    app = EcsApp(watch=run, config=tui.CONFIG)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.state.snapshot().status == "running")
        assert app.state.snapshot().batch == 3
        with open(log, "a") as f:
            f.write("".join(lines[3:7]) + lines[7][:20])
        await wait_for(pilot, lambda: app.state.snapshot().epoch == 1)
        assert "watching" in app.sub_title
        with open(log, "a") as f:
            f.write(lines[7][20:] + "".join(lines[8:]))
        await wait_for(pilot, lambda: app.state.snapshot().status == "finished")
        snap = app.state.snapshot()
        assert [p.epoch for p in snap.epoch_points] == [1, 2, 3, 4]


async def test_watch_says_died_when_the_writer_is_gone(
    tui: SimpleNamespace, tmp_path: Path
) -> None:
    """A watched run whose process died (its lock free, no final event) is shown as died, with
    the last event and the resume command, within a poll or two; a held lock keeps it running."""
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(tui.CONFIG.to_dict()))
    lines = [json.dumps(e.to_dict()) + "\n" for e in tui.canned_events()]
    (run / "events.jsonl").write_text("".join(lines[:7]))
    with open(run / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a live `ecs run` holds it
        app = EcsApp(watch=run, config=tui.CONFIG)
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await wait_for(pilot, lambda: app.state.snapshot().epoch == 1)
            await pilot.pause(1.2)  # two polls with the lock held
            assert app.state.snapshot().status == "running"
            fcntl.flock(lock, fcntl.LOCK_UN)  # the process is gone (the kernel drops its lock)
            await wait_for(pilot, lambda: app.state.snapshot().status == "died", timeout=5)
            error = app.state.snapshot().error or ""
            assert "last event:" in error and f"ecs run --resume {run}" in error


async def test_copy_command_parses_back_to_the_same_config(
    tui: SimpleNamespace, monkeypatch
) -> None:
    """The copied `ecs run` line, given to the CLI, builds exactly the form's config."""
    from ecs_tui.commands import run as run_cmd

    app = EcsApp(config=RunConfig(runs_dir="/tmp/x y"))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        pane = app.query_one(ConfigurePane)
        for name, value in [("model", "resnet34"), ("method", "snip"), ("scope", "layer"),
                            ("density", 0.1), ("epochs", 3), ("lr", 0.05), ("batch_size", 32),
                            ("seed", 7), ("width", 0.25), ("bits", 4), ("device", "cpu"),
                            ("max_batches", 5), ("quantize", False), ("ablate", "shuffle"),
                            ("score_batches", 3), ("prune_iterations", 7),
                            ("warmup_epochs", 2)]:  # fmt: skip
            pane.set_value(name, value)
        await pilot.pause()
        await pilot.press("y")
        line = app.clipboard
    assert line.startswith("ecs run ") and "'/tmp/x y'" in line
    seen: list[RunConfig] = []
    monkeypatch.setattr(run_cmd, "execute", lambda config, store, as_json: seen.append(config) or 0)
    cli = typer.Typer()
    cli.callback()(lambda: None)
    run_cmd.register(cli)  # the real `ecs run` command, without the other command modules
    result = CliRunner().invoke(cli, shlex.split(line)[1:])
    assert result.exit_code == 0, result.output
    assert seen == [pane.config]
    assert seen[0].width == 0.25 and seen[0].quantize is False and seen[0].max_batches == 5
    assert (seen[0].ablate, seen[0].score_batches, seen[0].prune_iterations) == ("shuffle", 3, 7)
    assert seen[0].warmup_epochs == 2


async def test_the_form_offers_the_sanity_checks_and_marks_a_bad_one(tui: SimpleNamespace) -> None:
    """--ablate is a choice of the four; with --method none it is refused, and the verdict
    line (docked below the fields) says why on an 80x24 terminal too."""
    from textual.widgets import Select, Static

    from ecs_core.config import ABLATIONS

    app = EcsApp(config=RunConfig(runs_dir="/tmp/x"))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ConfigurePane)  # shown at start (c hides it)
        select = app.query_one("#cfg-ablate", Select)
        assert tuple(v for _, v in select._options) == ABLATIONS
        pane.set_value("method", "none")
        pane.set_value("ablate", "shuffle")
        await pilot.pause()
        assert pane.config is None and "--ablate" in (pane.error or "")
        assert select.has_class("-bad")
        verdict = app.query_one("#cfg-error", Static)
        assert verdict.region.bottom <= app.screen.region.bottom - 1  # above the footer
        assert verdict.region.height > 0


async def test_the_form_shows_the_rows_that_apply_to_the_method(tui: SimpleNamespace) -> None:
    """The SET/RigL rows (update interval, drop fraction, end) show for a method that regrows
    its mask and hide for the others; the per-layer budget rows hide for the dense run; IMP's
    optimizer row shows for IMP only, GraSP's for GraSP, the batch-norm row for the methods
    that read it, the dense-layers row for a method that prunes and does not regrow. A value
    typed in a row reaches the config."""
    app = EcsApp(config=RunConfig(runs_dir="/tmp/x"))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ConfigurePane)

        def shown() -> set[str]:
            rows = {f.name: app.query_one(f"#cfg-{f.name}").parent for f in pane.fields}
            return {name for name, row in rows.items() if row.display}

        dynamic = {"dst_interval", "dst_drop", "dst_end"}
        spread = {"distribution", "distribution_from"}
        own = {"imp_optimizer", "grasp_samples", "grasp_linear", "score_bn", "keep_dense"}
        expect = {
            "ecs": {"score_bn", "keep_dense"},
            "grasp": {"grasp_samples", "grasp_linear", "score_bn", "keep_dense"},
            "imp": {"imp_optimizer", "keep_dense"},
            "synflow": {"keep_dense"},
            "rigl": set(),
            "none": set(),
        }
        for method, rows in expect.items():
            pane.set_value("method", method)
            await pilot.pause()
            assert own & shown() == rows, method
        pane.set_value("method", "ecs")
        await pilot.pause()
        assert spread <= shown() and not dynamic & shown()  # ecs
        pane.set_value("method", "rigl")
        await pilot.pause()
        assert dynamic | spread <= shown()
        pane.set_value("dst_interval", 7)
        pane.set_value("distribution", "er")
        await pilot.pause()
        assert pane.config is not None, pane.error
        assert (pane.config.dst_interval, pane.config.distribution) == (7, "er")
        pane.set_value("method", "none")
        await pilot.pause()
        assert not (dynamic | spread) & shown()
        pane.set_value("method", "imp")
        pane.set_value("imp_optimizer", "rewound")
        await pilot.pause()
        assert pane.config is not None and pane.config.imp_optimizer == "rewound", pane.error


@pytest.mark.parametrize("name", ["epochs", "distribution_from", "method", "quantize"])
async def test_without_colour_the_focused_row_is_marked(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """NO_COLOR: the focused row's label is drawn in a style no other label has (only the
    shade marked it, and an empty input or a checkbox showed no bold text); with colour the
    labels are as the snapshots have them."""
    from tests.tui.svg_text import screen

    def label_styles(app: EcsApp) -> tuple[str, list[str]]:
        rows, styles = screen(app.export_screenshot())
        labels = {f.label: f.name for f in app.query_one(ConfigurePane).fields}
        found = {}
        for text, runs in zip(rows, styles, strict=True):
            word = next((w for w in labels if text.lstrip().startswith(w + " ")), None)
            if word is not None:
                col = len(text) - len(text.lstrip())  # the style of the run the label starts in
                found[labels[word]] = [cls for at, cls in runs if at <= col][-1]
        assert name in found and len(found) >= 10, found
        return found.pop(name), list(found.values())

    for no_color in (True, False):
        if no_color:
            monkeypatch.setenv("NO_COLOR", "1")  # read by the App when it is made
        else:
            monkeypatch.delenv("NO_COLOR")
        app = EcsApp(config=RunConfig(runs_dir="/tmp/x"))
        async with app.run_test(size=(120, 40)) as pilot:
            app.query_one(f"#cfg-{name}").focus()
            await pilot.pause()
            focused, others = label_styles(app)
        assert (focused not in others) == no_color, (no_color, focused, others)


async def test_quit_while_running_asks_first(tui: SimpleNamespace) -> None:
    events = tui.canned_events()
    runner = tui.CannedRunner(events, pause_at=tui.mid_epoch(events))
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("s")
        await wait_for(pilot, runner.paused.is_set)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.is_running and app.running
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.state.snapshot().status == "stopped"


async def test_command_palette_opens_a_view(tui: SimpleNamespace) -> None:
    """ctrl+p, type a view's name, enter: that view shows; esc on the form leaves it."""
    app = EcsApp(config=tui.CONFIG)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"View: Sparsity")
        await wait_for(pilot, lambda: app.screen.query_one(CommandList).option_count > 0, 20)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.visible_view() == "sparsity")
        app.query_one("#cfg-epochs").focus()
        await pilot.press("escape")
        assert app.focused is not None and app.focused.id != "cfg-epochs"


async def test_form_shows_a_run_with_a_model_of_ones_own(tui: SimpleNamespace) -> None:
    """Opening a run made with `--model pkg.mod:factory` adds that choice instead of failing."""
    app = EcsApp(config=RunConfig(runs_dir="/tmp/x"))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        pane = app.query_one(ConfigurePane)
        pane.load(RunConfig(model="tests.engine.custom_model:factory", method="synflow"))
        await pilot.pause()
        assert pane.error is None
        assert (pane.config.model, pane.config.method) == (
            "tests.engine.custom_model:factory",
            "synflow",
        )


@pytest.mark.parametrize("method", ["ecs", "rigl"])
async def test_tab_through_the_form_keeps_the_focused_row_in_view(
    tui: SimpleNamespace, method: str
) -> None:
    """At 80x24 the form has more rows than fit: Tab onto a row below the fold scrolls it into
    view, clear of the docked verdict and buttons (issue 30, item 3); Tab visits exactly the
    rows shown (ecs hides the SET/RigL rows, rigl shows them: issue 28)."""
    app = EcsApp(config=RunConfig(runs_dir="/tmp/x", method=method))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ConfigurePane)
        app.query_one("#cfg-model").focus()
        foot = app.query_one("#cfg-foot")
        shown = [f.name for f in pane.fields if app.query_one(f"#cfg-{f.name}").parent.display]
        assert ("dst_interval" in shown) == (method == "rigl")
        visited = ["model"]
        for _ in range(len(shown) - 1):
            await pilot.press("tab")
            await pilot.pause()
            row = app.focused
            assert row is not None and row.id is not None and row.id.startswith("cfg-"), row
            assert row.region.height == 1, row.id  # on screen
            assert row.region.bottom <= foot.region.y, (row.id, row.region, foot.region)
            visited.append(row.id.removeprefix("cfg-"))
        assert visited == shown


async def test_start_says_starting_and_what_loads_at_once(tui: SimpleNamespace) -> None:
    """`s`: the strip, the title and the Overview say "starting…" and what loads before the
    run's first event comes (torch, the data set and the model take seconds); a second `s`
    says it is starting; the first event replaces it (issue 30, item 4)."""
    from textual.widgets import Static

    from ecs_tui.widgets.status import render_status

    runner = tui.CannedRunner(tui.canned_events(), pause_at=0)  # holds before its first event
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("s")
        await wait_for(pilot, runner.paused.is_set)
        await pilot.pause()
        strip = render_status(app.state.snapshot()).plain
        assert strip.startswith("starting…") and "digits data set and vgg16 ×0.125" in strip
        assert app.sub_title == "starting…"
        overview = str(app.query_one("#overview-table", Static).content)
        assert "Starting…" in overview and "vgg16 ×0.125" in overview, overview
        await pilot.press("s")
        assert any(n.startswith("a run is starting (loading") for n in notes(app)), notes(app)
        await pilot.press("x", "y")
        await wait_for(pilot, lambda: not app.running)
        snap = app.state.snapshot()
        assert snap.starting is None and snap.status == "stopped"


async def test_comma_and_full_stop_pick_the_previous_and_next_layer(
    tui: SimpleNamespace, finished_run: Path
) -> None:
    """`.` / `,` step the layer picker of Quant, Kernels and Activations (the help lists
    them, from their bindings) and the view redraws that layer (issue 30, item 2)."""
    from ecs_core.views import view
    from ecs_tui.screens.help import HelpScreen, help_rows

    app = EcsApp(run_dir=finished_run)
    async with app.run_test(size=(120, 40)) as pilot:
        for name in ("quant", "kernels", "activations"):
            await pilot.press(view(name).key)
            await tui.settle(pilot)
            shown = app.query_one(f"#view-{name}")
            _, names, first = shown.layer_picker()
            assert len(names) > 1, (name, names)
            start = names.index(first) if first in names else -1
            await pilot.press("full_stop")
            await tui.settle(pilot)
            assert shown.sel_layer == names[start + 1], name
            assert shown.layer_picker()[0].value == names[start + 1]
            await pilot.press("comma")
            await tui.settle(pilot)
            assert shown.sel_layer == names[max(start, 0)], name
        rows = dict(help_rows([app.BINDINGS]))
        assert rows[", ."] == "Quant, Kernels, Activations: previous / next layer"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)


async def test_at_80_columns_the_title_keeps_the_runs_status(tui: SimpleNamespace) -> None:
    """The title's run name drops its time stamp below 120 columns, so `· running` is not
    cut to `· runn…` (issue 30, item 14)."""
    from tests.tui.svg_text import screen

    events = tui.canned_events()
    runner = tui.CannedRunner(events, pause_at=tui.mid_epoch(events))
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, runner.paused.is_set)
        app.pull(force=True)
        await pilot.pause()
        rows, _ = screen(app.export_screenshot())
        assert rows[0].rstrip().endswith("— vgg16-digits-ecs-d0.05-s0 · running"), rows[0]
        await pilot.press("x", "y")
        await wait_for(pilot, lambda: not app.running)


async def test_the_quant_table_shows_every_column_at_80x24(
    tui: SimpleNamespace, finished_run: Path
) -> None:
    """A ResNet's layer names (`layer3.0.shortcut.0`) widen the narrow Quant table to its
    columns; a fixed 32 columns cut `shared` (issue 30, item 14)."""
    from textual.widgets import DataTable

    from ecs_core.views import view

    app = EcsApp(run_dir=finished_run)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(view("quant").key)
        await tui.settle(pilot)
        quant = app.query_one("#view-quant")
        layers = [SimpleNamespace(name=f"layer{i}.0.shortcut.0.weight", unique_before=9216,
                                  unique_after=32) for i in range(2, 5)]  # fmt: skip
        quant._fill_table(SimpleNamespace(layers=layers, unique_before=27648, unique_after=96,
                                          test_acc=None, int8_test_acc=None))  # fmt: skip
        await tui.settle(pilot)
        table = app.query_one("#quant-table", DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert table.scroll_offset.x == 0 and table.region.right <= 80


async def test_the_sparsity_view_follows_the_mask_updates_of_a_rigl_run(
    tui: SimpleNamespace,
) -> None:
    """A RigL run's `mask_updated` events reach the Sparsity view as they come: paused after
    two of three updates it says 2 updates and the second's numbers; at the end all three
    (issue 28); and the layers that moved most, with the share of the weights each keeps."""
    import dataclasses

    from ecs_core import events as ev

    events = tui.canned_events()
    rigl = RunConfig(**{**tui.CONFIG.to_dict(), "method": "rigl"}).validate()
    events[0] = dataclasses.replace(events[0], config=rigl.to_dict())
    train = next(i for i, e in enumerate(events)
                 if isinstance(e, ev.BatchProgress) and e.stage == "train")  # fmt: skip
    moves = ({"features.0.weight": 20, "classifier.weight": 1}, {"features.0.weight": 12},
             {"features.0.weight": 2, "classifier.weight": 1})  # fmt: skip
    updates = [ev.MaskUpdated(step=s, epoch=2, moved=sum(n.values()), drop_fraction=d, kept=72,
                              layers=n, t=0.0)
               for s, n, d in zip((2, 4, 6), moves, (0.3, 0.2, 0.05), strict=True)]  # fmt: skip
    events[train + 1 : train + 1] = updates
    runner = tui.CannedRunner(events, pause_at=train + 3)
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, runner.paused.is_set)
        await pilot.press("3")
        await wait_for(pilot, lambda: app.visible_view() == "sparsity")
        line = app.query_one("#sparsity-moves", Static)
        await says_in(pilot, app, line, "mask: 2 updates moved 33 connections; the last, after "
                      "step 4 (epoch 2), 12 at drop 0.200")  # fmt: skip
        await says_in(pilot, app, line, "moved most: features.0 32 (46% of its kept), "
                      "classifier 1 (50% of its kept)")  # fmt: skip
        runner.pause_at = None
        await pilot.press("x", "y")  # stop: the run ends where it paused
        await wait_for(pilot, lambda: not app.running)
        await says_in(pilot, app, line, "mask: 2 updates moved 33 connections")
    runner = tui.CannedRunner(events)
    app = EcsApp(config=tui.CONFIG, runner=runner)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.running)
        await pilot.press("3")
        line = app.query_one("#sparsity-moves", Static)
        await says_in(pilot, app, line, "mask: 3 updates moved 36 connections; the last, after "
                      "step 6 (epoch 2), 3 at drop 0.050")  # fmt: skip
        await says_in(pilot, app, line, "moved most: features.0 34 (49% of its kept), "
                      "classifier 2 (100% of its kept)")  # fmt: skip
        assert app.state.snapshot().summary["mask_moved_layers"] == {
            "features.0.weight": 34, "classifier.weight": 2}  # fmt: skip


async def says_in(pilot: Pilot, app: EcsApp, line: Static, text: str) -> None:
    """Wait until the Static `line` is shown and says `text` (the app pulls its snapshot)."""

    def shown() -> bool:
        app.pull(force=True)
        return line.display and text in str(line.render())

    await wait_for(pilot, shown)


async def test_the_overview_shows_a_speed_up_measured_again(
    tui: SimpleNamespace, finished_run: Path, tmp_path: Path
) -> None:
    """`ecs latency RUN --write` rewrites summary.json only (the events keep the record made at
    the run's end): the Overview of the opened run shows the record measured again, and when,
    as `ecs report` and `ecs compare` do; a run never timed again shows its own."""
    from ecs_tui.widgets.overview import facts

    at_end = {"fp32_speedup": {"b1": 1.9, "b64": 3.1}, "int8_speedup": {"b1": 1.5, "b64": 5.7}}
    again = {"fp32_speedup": {"b1": 1.96, "b64": 2.56}, "int8_speedup": None,
             "measured_again": "2026-12-07 03:19 UTC"}  # fmt: skip
    for name, latency, said in (
        ("own", at_end, "fp32 3.10x, int8 5.70x vs dense (batch 64, 1 CPU thread)"),
        ("again", again, "fp32 2.56x vs dense (batch 64, 1 CPU thread), measured again "
         "2026-12-07 03:19 UTC"),
    ):  # fmt: skip
        run = tui.copy_run(finished_run, tmp_path / name, latency=latency)
        lines = (run / "events.jsonl").read_text().splitlines()
        end = json.loads(lines[-1])  # the record made at the end, in the events
        end["summary"]["latency"] = at_end
        (run / "events.jsonl").write_text("\n".join([*lines[:-1], json.dumps(end)]) + "\n")
        app = EcsApp(run_dir=run)
        async with app.run_test(size=(120, 40)) as pilot:
            await tui.settle(pilot)
            rows = dict(facts(app.state.snapshot()))
            assert rows["speed-up"] == said, name
