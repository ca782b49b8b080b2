"""`runfiles.read_events`: the one torch-free reader of a run's events (the app tails with it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ecs_core import events as ev
from ecs_core.runfiles import read_events


def _line(event: ev.Event) -> bytes:
    return (json.dumps(event.to_dict()) + "\n").encode()


def test_tailing_reads_complete_lines_once_skipping_damaged_ones(tmp_path: Path) -> None:
    """From an offset: only lines written since, a half-written last line left for the next
    call, a damaged line (bad JSON, bad UTF-8, unknown event) skipped, no file no error."""
    assert read_events(tmp_path, 0) == ([], 0)
    one = ev.StageStarted(stage="train")
    two = ev.StageFinished(stage="train", seconds=1.5)
    path = tmp_path / "events.jsonl"
    path.write_bytes(_line(one) + b"{not json\n" + b"\xff\xfe\n" + b'{"kind": "no_such"}\n')
    events, offset = read_events(tmp_path, 0)
    assert [e.kind for e in events] == ["stage_started"] and offset == path.stat().st_size
    half = _line(two)
    with open(path, "ab") as f:
        f.write(half[:10])
    assert read_events(tmp_path, offset) == ([], offset)  # the run is still writing it
    with open(path, "ab") as f:
        f.write(half[10:])
    events, end = read_events(tmp_path, offset)
    assert events == [two] and end == path.stat().st_size
    assert [e.kind for e in read_events(tmp_path)[0]] == ["stage_started", "stage_finished"]


def test_reading_a_run_directory_never_imports_torch() -> None:
    code = ("import sys, ecs_core.runfiles as r; r.read_events('.'); r.run_state(r.Path('.')); "
            "assert 'torch' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
