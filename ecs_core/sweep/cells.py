"""One cell of a sweep: its fixed run directory, what state it is in, how to start or resume it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecs_core import events as ev
from ecs_core.config import ConfigError, RunConfig
from ecs_core.runfiles import FINISHED, NEW, RUNNING, run_state
from ecs_core.runlock import running_pid
from ecs_core.store import RunInUse, RunStore, StoreError

IGNORED_DIFFERENCES = ("runs_dir", "data_dir", "device", "download", "extra")
"""Fields a cell may change between runs of a sweep (where it runs, not what it computes)."""


class SweepError(ValueError):
    """A grid file or a cell directory that the sweep cannot use; the message says what to do."""


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: its config and its fixed directory."""

    name: str
    config: RunConfig
    path: Path


def cell_status(path: Path) -> str:
    """The cell's `runfiles.run_state` (new, running, finished, stopped, failed, died, ...)."""
    return run_state(path)


def _ours(name: str) -> bool:
    """What a run leaves before its config.json: its lock, a temp file of a killed write."""
    return name == ".lock" or (name.startswith(".") and name.endswith(".tmp"))


def check_run_dir(path: Path, config: RunConfig) -> None:
    """Refuse a directory that holds a run of another config (it would be skipped or resumed),
    or files that are not a run's (a run would write over them)."""
    if not (path / "config.json").is_file():
        if path.exists() and not path.is_dir():
            raise SweepError(f"{path} is a file, not a run directory; give another --run-dir")
        theirs = (
            sorted(p.name for p in path.iterdir() if not _ours(p.name)) if path.exists() else []
        )
        if theirs:
            shown = ", ".join(theirs[:3]) + (", ..." if len(theirs) > 3 else "")
            raise SweepError(
                f"{path} is not empty and is not a run directory (it holds {shown}); "
                "give a new or empty --run-dir"
            )
        return
    try:
        saved = RunStore(path).read_config().validate()
    except (StoreError, ConfigError) as exc:
        raise SweepError(f"{path} holds an unreadable run ({exc}); delete it to redo it") from exc
    # both as validate writes them: auto resolved (--scope auto is what config.json never holds)
    diff = saved.differences(config.validate(), ignore=IGNORED_DIFFERENCES)
    if diff:
        raise SweepError(
            f"{path} holds a run with other settings (differs in: {', '.join(diff)}); "
            "use another sweep --name, or delete that directory"
        )


def open_run_dir(path: str | Path, config: RunConfig) -> tuple[RunStore, bool] | None:
    """The run directory at exactly `path`, for `pipeline.run(config, store, resume=...)`.

    None when the run there has finished; (store, True) to resume one that stopped, failed or
    was killed; (store, False) for a new run (the directory and config.json are made here).
    Raises `RunInUse` when another process is running there now.
    """
    path = Path(path)
    check_run_dir(path, config)
    status = cell_status(path)
    if status == FINISHED.word:
        return None
    if status == RUNNING.word:
        raise RunInUse(path, running_pid(path))
    if status != NEW.word:
        return RunStore(path), True
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from exc
    store = RunStore(path)
    store.write_config(config)
    return store, False


def run_cell(cell: Cell, stop: Any = None) -> Iterator[ev.Event]:
    """Start or resume one cell in this process, yielding its events (nothing if finished)."""
    from ecs_core.pipeline import run

    opened = open_run_dir(cell.path, cell.config)
    if opened is not None:
        store, resume = opened
        yield from run(cell.config, store=store, stop=stop, resume=resume)


# --- what a sweep reports


def busy(pid: int | None) -> str:
    """Why a cell was left alone: another process (another sweep, say) is running it."""
    who = f"pid {pid}" if pid else "another process"
    return f"{who} is running it (another sweep?); left to it: run this sweep again later"


@dataclass(frozen=True)
class CellUpdate:
    """What a sweep reports about one cell, as it happens.

    state: skipped (finished earlier) | started | resumed | event (one of its run's events) |
    done (status: finished, stopped, failed, or busy: another process is running that cell;
    error says why).
    """

    index: int
    """1-based position in the sweep."""
    total: int
    cell: Cell
    state: str
    event: ev.Event | None = None
    status: str | None = None
    error: str | None = None


@dataclass
class CellResult:
    """A cell at the end of a sweep: its status and summary.json (empty if it never ran)."""

    cell: Cell
    status: str
    summary: dict[str, Any] = field(default_factory=dict)


Report = Callable[[CellUpdate], None]


def collect(cell: Cell) -> CellResult:
    """A cell's status and summary as they are on disk."""
    status = cell_status(cell.path)
    summary: dict[str, Any] = {}
    if (cell.path / "summary.json").is_file():
        try:
            summary = RunStore(cell.path).read_summary()
        except StoreError:
            summary = {}
    return CellResult(cell, status, summary)
