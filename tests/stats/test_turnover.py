"""`ecs show RUN turnover` (issue 28): the connections each SET/RigL mask update moved, from a
tiny real RigL run's events.jsonl: as text, as JSON, and saved as a PNG."""

from __future__ import annotations

import json

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


def test_ecs_show_turnover_text_json_and_png(runner, rigl_run, tmp_path) -> None:
    path, updates = rigl_run
    total = sum(e.moved for e in updates)
    text = runner.invoke(app, ["show", path, "turnover", "--width", "80", "--height", "16",
                               "--no-color"])  # fmt: skip
    assert text.exit_code == 0, text.output
    assert f"4 mask updates moved {total:,} connections" in text.output
    assert "optimizer step" in text.output
    out = runner.invoke(app, ["show", path, "turnover", "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert (got["view"], got["step"], got["moved"]) == (
        "turnover", [2, 4, 6, 8], [e.moved for e in updates])  # fmt: skip
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
