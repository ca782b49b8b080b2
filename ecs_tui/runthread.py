"""The thread plumbing of the app: the run thread's body (`drive`), the default runner, the
thread's lower priority, and the off-UI-thread import of torch and the plot modules.

The run thread feeds `runmodel.RunState` and never touches a widget; the app starts it as a
Textual worker (`EcsApp._run`) and reads the state on its own timer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ecs_core import events as ev
from ecs_tui.runmodel import RunState

PLOTS_READY = threading.Event()
"""Set once `ecs_core.stats` (torch) and `ecs_tui.plots` are imported; until then views draw
no plots, so that a 2-5 s import never runs on the UI thread."""

Runner = Callable[..., Iterator[ev.Event]]
"""`pipeline.run`-like: (config, stop=...) -> events. Tests pass canned or failing runners."""


WORKER_NICE = 10
"""Niceness added to the training thread (Linux: per thread; torch's OpenMP team, created from
it, inherits it). The UI thread then wins the CPU the moment a key arrives; on a machine with
nothing else to run, training loses nothing. Numerics do not depend on it."""


def lower_priority(nice: int) -> None:
    """Renice the calling thread (not the process) where the OS allows; silently skip elsewhere."""
    import os

    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError):
        pass


def load_plots() -> None:
    """Import ecs_core.stats (torch) and the plot module in the calling thread; a worker's job."""
    import ecs_core.stats.run  # noqa: F401 - torch, and every reader the views use
    import ecs_tui.plots  # noqa: F401
    import ecs_tui.plots_maps  # noqa: F401

    PLOTS_READY.set()


def pipeline_runner(
    config: Any, stop: threading.Event, resume: Path | None = None
) -> Iterator[ev.Event]:
    """The default runner: `ecs_core.pipeline.run` (imported here, in the worker thread, so
    torch never loads on the UI thread or at start-up)."""
    from ecs_core.pipeline import run

    if resume is None:
        return run(config, stop=stop)
    from ecs_core.store import RunStore

    store = RunStore(resume)  # as `ecs run --resume DIR`: the run's own saved settings
    return run(store.read_config().validate(), store=store, stop=stop, resume=True)


def loading_line(config: Any, resume: Path | None = None) -> str:
    """What a run loads before its first event, for the screen meanwhile: `loading PyTorch,
    the digits data set and vgg16 ×0.125` (PyTorch only until it is imported)."""
    import sys

    torch = "PyTorch, " if "torch" not in sys.modules else ""
    if resume is not None:
        return f"resuming {resume.name}: loading {torch}its data set, model and last checkpoint"
    return f"loading {torch}the {config.dataset} data set and {config.model} ×{config.width:g}"


def drive(
    runner: Runner,
    config: Any,
    state: RunState,
    stop: threading.Event,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Worker-thread body: run the pipeline, feeding each event to `state`.

    Exceptions propagate (the Textual worker turns them into an error state the app shows).
    A cancelled worker sets `stop`, so the pipeline still ends at a batch boundary and writes
    its summary instead of being abandoned mid-write.
    """
    lower_priority(WORKER_NICE)
    for event in runner(config, stop=stop):
        state.ingest((event,))
        if cancelled():
            stop.set()
