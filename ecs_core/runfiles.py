"""Reading a run directory's files without torch (for `ecs runs`, the app's watch, sweeps)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def last_event(path: Path) -> dict[str, Any] | None:
    """The last complete event in `path`/events.jsonl (reads only the file's tail)."""
    try:
        with open(path / "events.jsonl", "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue  # the line the process was writing when it died
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            return event
    return None


def died_reason(path: Path) -> str:
    """One line for a died run: what it did last, and the command that continues it."""
    event = last_event(path) or {}
    what = event.get("event", "nothing")
    if what in ("epoch_end", "batch_progress") and isinstance(event.get("epoch"), int):
        what = f"{what} (epoch {event['epoch']}/{event.get('epochs', '?')})"
    return (
        f"the process died without saying why (last event: {what}); "
        f"continue with: {resume_command(path)}"
    )


def resume_command(path: str | Path) -> str:
    """The command that continues a stopped, failed or died run (the CLI and the app print it)."""
    return f"ecs run --resume {path}"
