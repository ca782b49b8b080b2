"""Base for the views drawn from `ecs_core.stats`: numbers computed off the UI thread.

Loading weights and running a model for activation maps takes from milliseconds to seconds (and
the first call imports torch), so `compute` runs in a thread worker and only `draw` touches
widgets, on the UI thread. A view recomputes only when its key changes: another run, the same
run grown (a new epoch, a new stage), or the user's choice (layer, page, image).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.containers import Vertical
from textual.widgets import Static

from ecs_core.views import view
from ecs_tui.runmodel import Snapshot
from ecs_tui.runthread import WORKER_NICE, load_plots, lower_priority
from ecs_tui.screens.trust import ask_trust, find_untrusted

VIEW_NICE = WORKER_NICE + 5
"""Niceness added to a view's compute thread while this app trains: UI first, training second,
views third (Linux CFS weights: about 3:1 for training when both want a core)."""


class RunSource:
    """A run directory for the stats views: one `RunView`, dropped when the run has moved on.

    `RunView` caches the files it reads; while a run is live its files change, so a new key
    (status, epoch, stages done) makes the next `view()` re-open the directory.
    """

    def __init__(self, path: Path, key: tuple) -> None:
        self.path = path
        self.key = key
        self._view: Any = None
        self._lock = threading.Lock()

    def touch(self, key: tuple) -> None:
        with self._lock:
            if key != self.key:
                self.key, self._view = key, None

    def view(self) -> Any:
        """The `ecs_core.stats.RunView` (call from a worker thread: it may import torch)."""
        with self._lock:
            if self._view is None:
                from ecs_core.stats import load_run

                self._view = load_run(self.path)
            return self._view


class StatsView(Vertical):
    """Subclasses implement `compute(run_view)` (worker thread) and `draw(data)` (UI thread)."""

    EMPTY = f"No run loaded: start one (s) or open one from the Runs tab ({view('runs').key})."

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.source: RunSource | None = None
        self.snap: Snapshot | None = None
        self._key: tuple | None = None
        self._data: Any = None

    def choice(self) -> tuple:
        """The user's selections that change what `compute` returns (layer, page, ...)."""
        return ()

    def ready(self, snap: Snapshot) -> str | None:
        """None if the run has what this view needs, else a line saying what is missing."""
        return None

    def layer_picker(self) -> tuple[Any, list[str], str | None] | None:
        """(the layer `Select`, its layer names in order, the layer shown), or None: this view
        picks no layer."""
        return None

    def step_layer(self, delta: int) -> None:
        """`,` / `.`: pick the previous / next layer (the first with none picked yet); the
        picker's own change message reloads the view."""
        picker = self.layer_picker()
        if picker is None or not picker[1]:
            return
        select, names, current = picker
        if current in names:
            at = max(0, min(len(names) - 1, names.index(current) + delta))
        else:
            at = 0
        if names[at] != current:
            select.value = names[at]

    def show(self, snap: Snapshot, source: RunSource | None) -> None:
        self.snap, self.source = snap, source
        if source is None:
            self._key = self._data = None
            self.note(self.EMPTY)
            return
        missing = self.ready(snap)
        if missing:
            self._key = self._data = None
            self.note(missing)
            return
        key = (str(source.path), source.key, self.choice())
        if key == self._key:
            return
        same = self._key is not None and self._key[0] == key[0] and self._key[2] == key[2]
        self._key = key
        # the same run moved on: keep its last picture on screen while the new one computes
        self.note(None if same and self._data is not None else "loading…")
        self._load(source, self.choice())

    def reload(self) -> None:
        """Recompute now (the user changed a choice)."""
        self._key = None
        if self.snap is not None:
            self.show(self.snap, self.source)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stats")
    def _load(self, source: RunSource, choice: tuple) -> None:
        if self.app.running:  # type: ignore[attr-defined]
            # below the training thread: a view that loads must not halve training speed
            # (the thread is new for each load, so the priority ends with it)
            lower_priority(VIEW_NICE)
        try:
            load_plots()
            data = self.compute(source.view(), choice)
        except Exception as exc:  # a view that cannot load says why, the app lives
            untrusted = find_untrusted(exc)
            if untrusted is not None:  # the run's model is code from its files: ask first
                self.app.call_from_thread(self._ask_trust, untrusted)
                return
            self.app.call_from_thread(self.note, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._draw, data)

    def _ask_trust(self, exc: Any) -> None:
        self.note(str(exc))
        ask_trust(self.app, exc, self.reload)

    def _draw(self, data: Any) -> None:
        # Hiding the note changes the layout: draw once the plots have their final size.
        self.note(None)
        self._data = data
        self.call_after_refresh(self._draw_sized)

    def on_resize(self) -> None:
        """Plots are laid out for their size in characters: redraw when it changes."""
        if self._data is not None:
            self.call_after_refresh(self._draw_sized)

    def _draw_sized(self) -> None:
        if self._data is None:
            return
        try:
            self.draw(self._data)
        except Exception as exc:  # a drawing bug must not take the app down
            self.note(f"cannot draw this view: {type(exc).__name__}: {exc}")

    def compute(self, view: Any, choice: tuple) -> Any:
        raise NotImplementedError

    def draw(self, data: Any) -> None:
        raise NotImplementedError

    def note(self, message: str | None) -> None:
        """A one-line message above the view's content (missing data, load errors)."""
        widget = self.query_one(".view-note", Static)
        widget.update(Text(message or "", style="dim"))
        widget.display = bool(message)
