"""Cells in parallel: worker processes (one per GPU, or `jobs` on the CPU), each taking the
next waiting cell.

A worker is `python -m ecs_core.sweep.parallel RUN_DIR` with its slot's environment: its GPU in
`CUDA_VISIBLE_DEVICES`, or its share of the CPU cores in `OMP_NUM_THREADS`. It prints the run's
events as JSON lines, which the sweep relays as `CellUpdate`s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from typing import Any

from ecs_core import events as ev
from ecs_core import trust
from ecs_core.runfiles import FINISHED
from ecs_core.store import RunInUse, RunStore
from ecs_core.sweep.cells import Cell, CellUpdate, Report, busy, cell_status, open_run_dir

EXIT_BUSY = 75  # a worker found its cell's directory locked by another process (EX_TEMPFAIL)


def worker_threads(jobs: int) -> int:
    """Torch threads each of `jobs` CPU workers gets: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // jobs)


def gpu_slots(gpus: list[str]) -> list[dict[str, str]]:
    """A worker per GPU id, seeing only that GPU."""
    return [{"CUDA_VISIBLE_DEVICES": g} for g in gpus]


def cpu_slots(jobs: int) -> list[dict[str, str]]:
    """`jobs` workers, each with its share of the cores (so they do not fight for them)."""
    threads = str(worker_threads(jobs))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} for _ in range(jobs)]


def run_parallel(cells: list[Cell], slots: list[dict[str, str]], stop: Any, report: Report) -> None:
    """One thread per slot takes the next waiting cell and runs it in a worker process with the
    slot's environment (`gpu_slots`, `cpu_slots`)."""
    lock = threading.Lock()
    procs: dict[int, subprocess.Popen] = {}
    waiting: deque[tuple[int, Cell]] = deque()

    def tell(update: CellUpdate) -> None:
        with lock:
            report(update)

    for index, cell in enumerate(cells, start=1):
        if cell_status(cell.path) == FINISHED.word:
            tell(CellUpdate(index, len(cells), cell, "skipped", status=FINISHED.word))
        else:
            waiting.append((index, cell))

    def work(slot: int) -> None:
        while True:
            with lock:
                if not waiting or (stop is not None and stop.is_set()):
                    return
                index, cell = waiting.popleft()
            try:
                _run_in_worker(index, len(cells), cell, slot, slots[slot], procs, tell)
            except RunInUse as exc:  # another sweep is running this cell
                error = busy(exc.pid)
                tell(CellUpdate(index, len(cells), cell, "done", status="busy", error=error))
            except Exception as exc:  # e.g. an unwritable cell directory
                error = f"{type(exc).__name__}: {exc}"
                tell(CellUpdate(index, len(cells), cell, "done", status="failed", error=error))

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(slots))]
    for t in threads:
        t.start()
    try:
        _wait(threads, procs, stop)
    except KeyboardInterrupt:  # a second Ctrl-C: stop the workers at once
        for proc in list(procs.values()):
            proc.kill()
        raise


def _wait(threads: list[threading.Thread], procs: dict, stop: Any) -> None:
    """Wait for the threads; pass a stop request on to each worker once (as SIGTERM)."""
    told: set[int] = set()
    while any(t.is_alive() for t in threads):
        if stop is not None and stop.is_set():
            for proc in list(procs.values()):
                if proc.pid not in told:
                    told.add(proc.pid)
                    proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=0.2)


def _run_in_worker(
    index: int, total: int, cell: Cell, slot: int, env: dict[str, str], procs: dict, tell: Report
) -> None:
    """Run one cell as `python -m ecs_core.sweep.parallel DIR` in one slot, relaying its events."""
    opened = open_run_dir(cell.path, cell.config)  # writes config.json for a new cell
    if opened is None:
        tell(CellUpdate(index, total, cell, "skipped", status=FINISHED.word))
        return
    tell(CellUpdate(index, total, cell, "resumed" if opened[1] else "started"))
    env = {**os.environ, **trust.child_env(), **env}  # the models the user typed or trusts
    # A session of its own: a Ctrl-C in the terminal reaches the sweep, which passes it on once.
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecs_core.sweep.parallel", str(cell.path)],
        stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    procs[slot] = proc
    final, error = "failed", None
    for line in proc.stdout or ():
        try:
            event = ev.from_dict(json.loads(line))
        except (ValueError, TypeError):
            continue  # not an event line
        tell(CellUpdate(index, total, cell, "event", event))
        if isinstance(event, ev.RunFinished):
            final = event.status
        elif isinstance(event, ev.RunFailed):
            error = f"{event.error}: {event.message}"
    code = proc.wait()
    procs.pop(slot, None)
    if code == EXIT_BUSY:
        final, error = "busy", busy(None)  # taken between our look and the worker's lock
    elif code == 0 and final == "failed" and error is None:
        final = cell_status(cell.path)  # no events: another process finished it meanwhile
    if final == "failed" and error is None:
        error = f"worker process exited with code {code}"
    tell(CellUpdate(index, total, cell, "done", status=final, error=error))


def _worker_main(path: str) -> int:
    """`python -m ecs_core.sweep.parallel RUN_DIR`: run or resume the run whose config.json is
    there, printing its events as JSON lines (batch progress left out) for the sweep that started
    it. First SIGTERM/SIGINT: stop at the next batch boundary and save; a second: stop at once."""
    from ecs_core.pipeline import run

    store = RunStore(path)
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    try:
        for event in run(store.read_config(), store=store, stop=stop, resume=True):
            if not isinstance(event, ev.BatchProgress):
                print(json.dumps(event.to_dict()), flush=True)
    except KeyboardInterrupt:
        return 130
    except RunInUse:
        return EXIT_BUSY
    except Exception:  # the run_failed event printed above says why
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1]))
