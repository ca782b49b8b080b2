"""The machine line: CPU and memory of the run's process, its GPU, and the wall time so far.

CPU and memory come from /proc (Linux; psutil is not a dependency): the process's utime+stime
between two samples over the wall time between them (100% = one core busy), and its VmRSS.
The GPU comes from nvidia-ml-py (`pynvml`) when it is importable and the run uses CUDA; an
in-process CUDA run without it still shows torch's memory figures (`status.gpu_line`).
Sampled at most once a second, on the UI thread: a few small file reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

EVERY_S = 1.0


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _nvml_line() -> str | None:
    """`GPU 87% 3.1/79.6 GiB` of GPU 0 through NVML, or None (no pynvml, no driver)."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
    except Exception:  # a GPU query must never break the UI
        return None
    return f"GPU {util}% {mem.used / 2**30:.1f}/{mem.total / 2**30:.1f} GiB"


class MachineLine:
    """Remembers the last CPU sample of one process; `line()` gives the text to show."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._last: tuple[float, float] | None = None
        self._at = -1.0
        self._text: str | None = None

    def line(self, pid: int | None, started: float | None, cuda: bool) -> str | None:
        """`4:05 · cpu 187% · 1.2 GiB · GPU 87% 3.1/79.6 GiB` for process `pid` (the wall
        time first: the status strip cuts what does not fit at its end)."""
        now = time.monotonic()
        if pid != self._pid:
            self._pid, self._last, self._at = pid, None, -1.0
        if now - self._at < EVERY_S:
            return self._text
        self._at = now
        parts = []
        if started is not None:  # first: the strip cuts its end at 80 columns
            from ecs_tui.fmt import hms

            parts.append(hms(max(0.0, time.time() - started)))
        if pid is not None:
            cpu, rss = _cpu_seconds(pid), _rss_bytes(pid)
            if cpu is not None and self._last is not None and now > self._last[0]:
                parts.append(f"cpu {100 * (cpu - self._last[1]) / (now - self._last[0]):.0f}%")
            if cpu is not None:
                self._last = (now, cpu)
            if rss is not None:
                parts.append(f"{rss / 2**30:.1f} GiB")
        gpu = _nvml_line() if cuda else None
        if gpu:
            parts.append(gpu)
        self._text = " · ".join(parts) or None
        return self._text


def run_pid(app: Any) -> int | None:
    """The process that runs the shown run: this one, or the watched run's lock holder."""
    if app.running:
        return os.getpid()
    tail = getattr(app, "_tail", None)
    if tail is not None:
        from ecs_core.runlock import running_pid

        return running_pid(tail.run_dir)
    return None
