"""Opening a run reads and folds its events.jsonl in a thread, a slice at a time, so a long
file never holds up the app: `q` leaves while it is read, and the reader stops at its next look
(issue 25: a 10-million-line events.jsonl froze the app for 44 s after `q`)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from ecs_core import safeio
from ecs_tui import follow
from ecs_tui.app import EcsApp


@pytest.mark.asyncio
async def test_q_leaves_while_a_long_run_is_read_and_the_reader_stops(
    finished_run: Path, tmp_path: Path, tui: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tui.copy_run(finished_run, tmp_path / "long")
    lines = (run / "events.jsonl").read_text().splitlines()
    progress = next(x for x in lines if json.loads(x)["event"] == "batch_progress")
    with open(run / "events.jsonl", "a") as f:  # as many lines as the reader takes at most
        f.write((progress + "\n") * safeio.MAX_EVENT_LINES)
    seen: dict[str, object] = {"stopped": False}

    def reading(path, offset, stop):  # the app's reader, watched
        seen["thread"] = threading.current_thread()

        def asked() -> bool:
            seen["stopped"] = seen["stopped"] or stop()
            return bool(seen["stopped"])

        return follow_read(path, offset, stop=asked)

    follow_read = follow.read_events
    monkeypatch.setattr(follow, "read_events", reading)
    app = EcsApp(run_dir=run, config=tui.CONFIG)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("q")
    assert seen["thread"] is not threading.main_thread()
    assert seen["stopped"], "the reader went on after q"
    assert app.state.snapshot().status != "finished"  # it never finished reading


@pytest.mark.asyncio
async def test_an_opened_run_is_on_screen_once_read(
    finished_run: Path, tui: SimpleNamespace
) -> None:
    app = EcsApp(run_dir=finished_run, config=tui.CONFIG)
    async with app.run_test(size=(120, 40)) as pilot:
        await tui.settle(pilot)
        snap = app.state.snapshot()
        assert snap.status == "finished" and app.run_path == finished_run
