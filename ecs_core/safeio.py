"""Bounded reads of a run's files: what a damaged or hostile run directory can make us read.

A run directory may come from anyone (a colleague's archive, a download), and any of its files
can be a link to /dev/zero, a FIFO that never ends, or gigabytes of JSON. Reads of a run's files
go through here: only regular files are opened (a link to a regular file is fine), JSON files
up to `MAX_JSON` bytes, and events.jsonl through `read_tail`: its last `MAX_EVENT_BYTES` bytes
and `MAX_EVENT_LINES` lines, saying when it kept only a tail. Every refusal is a `FileRefused`
(an `OSError`, so callers that treat an unreadable file as absent keep doing so) whose message
is one line naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

MAX_JSON = 32 << 20
"""config.json and summary.json: real ones are a few KiB (a ResNet50's summary, 40 KiB)."""
MAX_EVENT_BYTES = 64 << 20
"""How much of events.jsonl is read (its end): training writes a ~210-byte batch_progress line
every 0.25 s at most (`stages.PROGRESS_EVERY_S`), so this holds about 20 hours of training."""
MAX_EVENT_LINES = 400_000
"""How many of its lines are parsed (the last ones): about what 64 MiB of real events holds; a
file of millions of tiny lines is cut here instead."""


class FileRefused(OSError):
    """A run's file that is not read: not a regular file, or larger than such a file can be."""


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file (after links), else `FileRefused`.

    Opened non-blocking, so a FIFO with no writer is refused instead of hanging the open."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
            raise FileRefused(f"{path} is {kind}, not a regular file; refusing to read it")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(
    path: str | Path, cap: int | None = None, what: str = "file",
    fix: str = "restore it or delete the run",
) -> bytes:  # fmt: skip
    """The whole regular file, if it holds at most `cap` bytes (None: any size, the file's
    own); else `FileRefused`, whose message ends with `fix` (what the user can do)."""
    with open_regular(path) as f:
        data = f.read() if cap is None else f.read(cap + 1)
    if cap is not None and len(data) > cap:
        raise FileRefused(
            f"{path} is larger than a {what} can be ({cap >> 20} MiB); "
            f"it is damaged or not one: {fix}"
        )
    return data


def read_json(path: str | Path, cap: int = MAX_JSON) -> Any:
    """JSON from a regular file of at most `cap` bytes (`FileRefused`, `ValueError` on bad JSON)."""
    return json.loads(read_bytes(path, cap, "JSON file").decode("utf-8"))


def read_tail(
    path: str | Path,
    offset: int = 0,
    max_bytes: int = MAX_EVENT_BYTES,
    max_lines: int = MAX_EVENT_LINES,
) -> tuple[list[bytes], int, bool]:
    """(complete lines from `offset` on, the offset after the last one, whether older lines
    were left out): at most the last `max_bytes` bytes and `max_lines` lines. A half-written
    last line is left for the next call; a single line longer than `max_bytes` is skipped."""
    with open_regular(path) as f:
        end_of_file = f.seek(0, os.SEEK_END)
        start = max(offset, end_of_file - max_bytes)
        f.seek(start)
        data = f.read(end_of_file - start)
    cut = start > offset
    if cut:  # began mid-line: drop the partial first line
        first = data.find(b"\n") + 1
        data = data[first:] if first else b""
        start += first
    end = data.rfind(b"\n") + 1
    first = 0
    if data.count(b"\n", 0, end) > max_lines:  # keep the last lines, never split them all
        first, cut = end - 1, True
        for _ in range(max_lines):
            first = data.rfind(b"\n", 0, first)
        first += 1
    lines = data[first:end].splitlines()
    if not end and cut:  # one line longer than the cap: skip past what was read
        return [], start + len(data), True
    return lines, start + end, cut
