"""One process per run directory: an advisory lock (`flock`) on `<run_dir>/.lock`.

The lock file holds the holder's pid, for messages. The kernel drops a flock when its process
exits, however it exits (kill -9, OOM killer), so a lock never outlives its run and there is no
stale-lock cleanup. No torch here: `ecs runs` asks `running_pid` for every directory it lists.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = ".lock"
PATIENCE_S = 0.5
"""How long `acquire` keeps trying: `running_pid` holds a shared lock for an instant while it
looks, and a run starting in that instant must not be refused for it."""


class LockHeld(OSError):
    """Another process holds the lock; `pid` is its pid (0 if it has not written it yet)."""

    def __init__(self, pid: int) -> None:
        super().__init__(f"held by pid {pid}")
        self.pid = pid


def _holder(fd: int) -> int:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else 0


def acquire(path: str | Path) -> int:
    """Lock run directory `path` for this process; the descriptor to `release`. Raises
    `LockHeld` when another process holds it, OSError when the lock file cannot be made."""
    fd = os.open(Path(path) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + PATIENCE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            pid = _holder(fd)
            os.close(fd)
            raise LockHeld(pid) from None
        except OSError:
            os.close(fd)
            raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release(fd: int) -> None:
    """Give the lock up: forget the pid (it may be reused), close (which releases the flock);
    the file stays."""
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def running_pid(path: str | Path) -> int | None:
    """The pid of the process running in run directory `path` now (0: it has not said yet),
    or None when no process is running there."""
    try:
        fd = os.open(Path(path) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None  # never locked (a run from before locks existed), or not a run directory
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    except OSError:
        return None  # a filesystem without flock: say nothing rather than guess
    finally:
        os.close(fd)  # releases our shared lock when we got it
    return None
