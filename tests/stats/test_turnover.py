"""`ecs show RUN turnover` (issue 28): the connections each SET/RigL mask update moved, from a
tiny real RigL run's events.jsonl: as text, as JSON, and saved as a PNG."""

from __future__ import annotations

import json
import shutil

import pytest
from matplotlib.image import imread

from ecs_core import events as ev
from ecs_core.config import RunConfig
from ecs_core.figures import DPI
from ecs_core.stats import load_run
from ecs_tui.cli import app
from tests.tiny import tiny


@pytest.fixture(scope="module")
def rigl_run(tmp_path_factory: pytest.TempPathFactory):
    """Digits, width 0.125, 2 epochs of 6 batches, an update every 2 steps: updates at steps 2,
    4, 6 and 8 (none in the last quarter), and the run's events."""
    from ecs_core.pipeline import run

    runs = tmp_path_factory.mktemp("turnover")
    config = RunConfig(**tiny(method="rigl", density=0.1, epochs=2, max_batches=6,
                              dst_interval=2, latency=False, runs_dir=str(runs)))  # fmt: skip
    events = list(run(config))
    assert events[-1].kind == "run_finished" and events[-1].status == "finished"
    return events[0].run_dir, [e for e in events if isinstance(e, ev.MaskUpdated)]


def test_turnover_is_each_update_in_step_order(rigl_run) -> None:
    path, updates = rigl_run
    data = load_run(path).turnover()
    assert data.step == [e.step for e in updates] == [2, 4, 6, 8]
    assert data.moved == [e.moved for e in updates] and all(m > 0 for m in data.moved)
    assert data.drop == [e.drop_fraction for e in updates]
    assert data.drop == sorted(data.drop, reverse=True)  # the cosine decay
    assert data.kept == updates[0].kept and data.total == sum(data.moved)


def test_each_update_says_which_layers_moved_and_the_summary_adds_them_up(rigl_run) -> None:
    """The per-layer moves of each update add up to its total; the turnover lists the layers
    most first, each with the weights its mask keeps; summary.json has the same sums."""
    path, updates = rigl_run
    run = load_run(path)
    for e in updates:
        assert e.layers and sum(e.layers.values()) == e.moved and min(e.layers.values()) > 0
    total: dict[str, int] = {}
    for e in updates:
        for name, n in (e.layers or {}).items():
            total[name] = total.get(name, 0) + n
    data = run.turnover()
    assert {r.name: r.moved for r in data.layers} == total == run.summary["mask_moved_layers"]
    assert [r.moved for r in data.layers] == sorted(total.values(), reverse=True)
    kept = {r["name"]: r["kept"] for r in run.summary["layers"]}
    assert all(r.kept == kept[r.name] and r.share == r.moved / r.kept for r in data.layers)


def test_events_from_before_the_per_layer_moves_still_read(rigl_run, tmp_path) -> None:
    """An events.jsonl whose `mask_updated` lines have no `layers` (written before them):
    the turnover as before, with no layers, and the summary fold leaves the sums out."""
    from ecs_core.summary import fold

    path, updates = rigl_run
    old = tmp_path / "old"
    shutil.copytree(path, old)
    lines = []
    for line in (old / "events.jsonl").read_text().splitlines():
        obj = json.loads(line)
        if obj["event"] == "mask_updated":
            del obj["layers"]
        lines.append(json.dumps(obj))
    (old / "events.jsonl").write_text("\n".join(lines) + "\n")
    run = load_run(old)
    data = run.turnover()
    assert data.moved == [e.moved for e in updates] and data.layers == []
    summary = fold(run.events)
    assert summary.mask_moved == sum(e.moved for e in updates)
    assert summary.mask_moved_layers is None and "mask_moved_layers" not in summary.to_dict()


def test_moves_by_layer_that_are_not_counts_are_refused() -> None:
    """A damaged line (a count that is a string or a bool) is refused as the event is read,
    like any field of the wrong kind, not summed into a TypeError later."""
    line = {"event": "mask_updated", "step": 2, "epoch": 1, "moved": 3, "drop_fraction": 0.3,
            "kept": 9, "t": 0.0}  # fmt: skip
    assert ev.from_dict({**line, "layers": {"a.weight": 3}}).layers == {"a.weight": 3}
    for bad in ({"a.weight": "3"}, {"a.weight": True}, {"a.weight": 1.5}):
        with pytest.raises(ValueError, match="mask_updated.layers"):
            ev.from_dict({**line, "layers": bad})


def test_ecs_show_turnover_text_json_and_png(runner, rigl_run, tmp_path) -> None:
    path, updates = rigl_run
    total = sum(e.moved for e in updates)
    text = runner.invoke(app, ["show", path, "turnover", "--width", "80", "--height", "16",
                               "--no-color"])  # fmt: skip
    assert text.exit_code == 0, text.output
    assert f"4 mask updates moved {total:,} connections" in text.output
    assert "optimizer step" in text.output
    top = load_run(path).turnover().layers[0]
    name = top.name.removesuffix(".weight")
    assert f"moved most:\n  {name} {top.moved:,} ({top.moved / top.kept:.0%} of its kept)" in (
        text.output
    )
    out = runner.invoke(app, ["show", path, "turnover", "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert (got["view"], got["step"], got["moved"]) == (
        "turnover", [2, 4, 6, 8], [e.moved for e in updates])  # fmt: skip
    assert sum(r["moved"] for r in got["layers"]) == total and {"name", "kept"} <= set(
        got["layers"][0]
    )
    png = tmp_path / "t.png"
    saved = runner.invoke(app, ["show", path, "turnover", "--save", str(png)])
    assert saved.exit_code == 0, saved.output
    pixels = imread(png)
    assert pixels.shape[:2] == (4 * DPI, 8 * DPI)
    assert ((pixels[..., :3] < 0.9).any(axis=-1).mean()) > 0.01  # something is drawn


def test_a_run_without_mask_updates_says_so_in_one_line(runner, known_run, tmp_path) -> None:
    for extra in ([], ["--save", str(tmp_path / "t.png")]):
        result = runner.invoke(app, ["show", str(known_run), "turnover", *extra])
        assert result.exit_code == 2, result.output
        assert "has no mask updates: turnover is for --method set or rigl" in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "t.png").exists()
