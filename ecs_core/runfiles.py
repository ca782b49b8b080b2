"""Reading a run directory's files without torch (for `ecs runs`, the app's watch, sweeps),
and the one vocabulary for a run's state (`Status`, `STATES`, computed by `run_state`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ecs_core import safeio
from ecs_core.runlock import LOCK_NAME, running_pid


@dataclass(frozen=True)
class Status:
    """One word of a run directory's state, and what every front end does with it."""

    word: str
    final: bool = False
    """The run writes it itself, into summary.json, when it ends (`recorded_status`)."""
    resumable: bool = False
    """`ecs run --resume DIR` (the app's r) continues a run in this state."""
    style: str = ""
    """Rich style of the word in the app's status strip."""
    cell: str = ""
    """What a sweep's cell says in this state ('' : the word itself)."""

    @property
    def in_sweep(self) -> str:
        """The word a sweep's cell shows."""
        return self.cell or self.word


NEW = Status("new")
"""No config.json yet."""
RUNNING = Status("running", style="bold green")
"""A process holds its lock (or, for a run from before locks, it wrote events in the last
`RUNNING_WITHIN_S`)."""
FINISHED = Status("finished", final=True, style="bold", cell="done")
STOPPED = Status("stopped", final=True, resumable=True, style="bold yellow")
FAILED = Status("failed", final=True, resumable=True, style="bold red")
DIED = Status("died", resumable=True, style="bold red")
"""It took the lock, nobody holds it now, and it never wrote how it ended: SIGKILL, a native
crash, the OOM killer, power loss."""
INCOMPLETE = Status("incomplete", resumable=True)
"""A run from before locks that stopped writing without a final status."""
UNREADABLE = Status("unreadable")
"""config.json is damaged, or the summary.json of a run that is not running: only a listing
shows it."""
STATES = {s.word: s for s in (NEW, RUNNING, FINISHED, STOPPED, FAILED, DIED, INCOMPLETE,
                              UNREADABLE)}  # fmt: skip
"""A run directory's state by its word, as `ecs runs`, sweeps, the app and `ecs compare` say it
(`run_state` computes it)."""
FINAL = tuple(w for w, s in STATES.items() if s.final)
"""The states a run writes itself, into summary.json, when it ends."""


def status(word: str) -> Status:
    """The `Status` of `word`; a word that names no run directory's state (the app's idle, a
    sweep's busy) is neither final nor resumable, and has no style."""
    return STATES.get(word) or Status(word)


RUNNING_WITHIN_S = 120.0
EVENTS = "events.jsonl"
STOP_EVERY = 4096
"""Lines parsed between two looks at `read_event_log`'s stop."""


class EventLog(NamedTuple):
    events: list[Any]
    offset: int
    """Where the next read starts: after the last complete line."""
    tail_only: bool
    """Older lines were left out (`safeio.MAX_EVENT_BYTES` / `MAX_EVENT_LINES`)."""


def read_event_log(
    run_dir: str | Path, offset: int = 0, stop: Callable[[], bool] | None = None
) -> EventLog:
    """The events written to `run_dir`'s events.jsonl from byte `offset` on: at most its last
    `safeio.MAX_EVENT_LINES` lines and `MAX_EVENT_BYTES` bytes (`tail_only` says so).

    A half-written last line (the run is still writing it) is left for the next call; a line
    that does not parse (damaged, bad UTF-8, an unknown event) is skipped. No file: nothing;
    one that is not a regular file: `safeio.FileRefused`. `stop` (asked every `STOP_EVERY`
    lines) ends the parse early, for a reader that is told to quit: what it returns then is
    partial.
    """
    from ecs_core.events import from_dict

    try:
        lines, end, tail_only = safeio.read_tail(Path(run_dir) / EVENTS, offset)
    except FileNotFoundError:
        return EventLog([], offset, False)
    out = []
    for i, line in enumerate(lines):
        if stop is not None and i % STOP_EVERY == 0 and stop():
            break
        try:
            out.append(from_dict(json.loads(line.decode("utf-8"))))
        except (TypeError, ValueError, RecursionError):  # JSON and UTF-8 errors too
            continue
    return EventLog(out, end, tail_only)


def read_events(
    run_dir: str | Path, offset: int = 0, stop: Callable[[], bool] | None = None
) -> tuple[list[Any], int]:
    """`read_event_log`'s (events, offset) (for the app's tail: the next call starts at the
    offset); a file that is not a regular file reads as none."""
    try:
        log = read_event_log(run_dir, offset, stop)
    except safeio.FileRefused:
        return [], offset
    return log.events, log.offset


def recorded_status(path: Path, summary: dict[str, Any] | None = None) -> str | None:
    """The final status summary.json records (`FINAL`), or None (none yet, or unreadable)."""
    if summary is None:
        try:
            summary = safeio.read_json(path / "summary.json")
        except (OSError, ValueError, RecursionError):
            return None
    status = summary.get("status") if isinstance(summary, dict) else None
    return status if status in FINAL else None


def run_state(path: Path, summary: dict[str, Any] | None = None) -> str:
    """A word of `STATES` but unreadable (`summary`: summary.json when the caller has read it)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        return NEW.word
    if running_pid(path) is not None:
        return RUNNING.word  # also a stopped run being resumed: its summary says stopped until done
    status = recorded_status(path, summary)
    if status is not None:
        return status
    if (path / LOCK_NAME).is_file():
        return DIED.word
    try:
        recent = time.time() - (path / "events.jsonl").stat().st_mtime < RUNNING_WITHIN_S
    except OSError:
        recent = False
    return RUNNING.word if recent else INCOMPLETE.word


def last_event(path: Path) -> dict[str, Any] | None:
    """The last complete event in `path`/events.jsonl (reads only the file's tail)."""
    try:
        with safeio.open_regular(path / "events.jsonl") as f:
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
