"""Runs tab: every run directory under the runs folder, and the research compare table.

The rows and the table are `ecs_core.stats` (`find_runs`, `run_info`, `compare_infos`), the same
numbers `ecs runs` and `ecs compare` print, read without torch. The tab polls its folder every
`POLL_S` in a thread worker (directory and file mtimes; runs that were running are read again,
since a process can die without touching a file) and redraws only when a row changed, so runs
started from other terminals appear and states move. Keys act on the highlighted row: enter
opens, space marks for comparing, v compares, r resumes, e exports, d deletes: each posts one
of the view's messages (`Open`, `Compare`, `Resume`, `Export`, `Delete`) and the app acts on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from ecs_core.runfiles import DIED, FINISHED, INCOMPLETE, RUNNING, STATES, status
from ecs_core.slurm import QUEUED
from ecs_core.sweepplan import PLAN
from ecs_tui.fmt import pct
from ecs_tui.runmodel import Snapshot
from ecs_tui.widgets.statsview import RunSource

POLL_S = 2.0
WIDE_COLUMNS = ("", "status", "model", "method", "target", "kept", "test", "P+Q", "run")
NARROW_COLUMNS = ("", "status", "kept", "test", "P+Q", "run")
"""Below this many columns the name carries model, method and density itself."""
NARROW_BELOW = 112
SLURM_TIMEOUT_S = 5.0
MARK = "●"
COMPARE_KEYS = (
    "Runs tab: mark a run (the cursor moves down), compare the marked (curves, layers, table)"
)
RUN_KEYS = "Runs tab: resume, export (ecs export), delete (asks) the selected run"
WAITING = "waiting"
"""Sweep view: a cell not started (planned, nothing written yet, or its Slurm task queued);
else its run's `Status.in_sweep`."""


def column_widths() -> dict[str, int]:
    """Fixed widths of the columns whose words are known in advance: the mark, and the status
    (every state's word, as a run or as a sweep's cell). A DataTable sizes its other columns
    on its next idle moment, which a busy app may not have for seconds: a mark stayed
    invisible in its 0-wide column, and `running` showed as `runnin` under `status`."""
    words = [w for s in STATES.values() for w in (s.word, s.in_sweep)] + [WAITING]
    return {"": len(MARK), "status": max(map(len, words))}


def short_name(name: str) -> str:
    """`20250101-000000-vgg16-…-s0` -> `0101-0000 vgg16-…-s0`: the year and seconds go."""
    parts = name.split("-", 2)
    if len(parts) == 3 and len(parts[0]) == 8 and len(parts[1]) == 6 and parts[0].isdigit():
        return f"{parts[0][4:]}-{parts[1][:4]} {parts[2]}"
    return name


def info_row(info: Any, narrow: bool = False) -> tuple[str, ...]:
    """One `RunInfo` as table cells (the mark column first, filled in by the view)."""
    kept = "-" if info.density is None else f"{info.density:.2%}"
    tail = (pct(info.test_acc), pct(info.pq_acc))
    if narrow:
        return ("", info.status, kept, *tail, short_name(info.name))
    width = f" ×{info.width:g}" if info.width not in (None, 1.0) else ""
    return (
        "",
        info.status,
        f"{info.model}{width}",
        info.method_tag,
        "-" if info.target_density is None else f"{info.target_density:.2%}",
        kept,
        *tail,
        info.name,
    )


def compare_renderable(table: Any) -> Any:
    """The CompareTable as Rich tables, one per dataset: `ecs compare`'s rows and cells
    (`CompareTable.text_rows`), each cell with its number of runs: mean ± std (n)."""
    if not table.cells:
        return Text("no finished runs to compare yet", style="dim")
    out = Table.grid()
    for dataset in table.datasets:
        header, rows = table.text_rows(dataset, count=True)
        t = Table(title=dataset, title_justify="left", header_style="bold", box=None)
        for i, name in enumerate(header):
            t.add_column(name, justify="left" if i < 2 else "right")
        for row in rows:
            t.add_row(*row)
        out.add_row(t)
    return out


def signature(paths: list[Path]) -> tuple:
    """What changes when a run moves on: its files' mtimes and sizes (cheap: stat calls)."""
    out = []
    for p in paths:
        for name in ("events.jsonl", "summary.json", "config.json", ".lock"):
            try:
                st = os.stat(p / name)
                out.append((str(p), name, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(p), name, None, None))
    return tuple(out)


def plan_signature(folder: Path) -> tuple:
    """The sweep plan's mtime and size (a sweep run again with another grid rewrites it)."""
    try:
        st = os.stat(folder / PLAN)
    except OSError:
        return ((str(folder), PLAN, None, None),)
    return ((str(folder), PLAN, st.st_mtime_ns, st.st_size),)


def cell_word(info: Any, slurm: str | None = None) -> str:
    """A sweep cell's state: done | running | waiting (nothing written yet, or its Slurm task
    queued) | died | ...; `slurm`: its words with its task's (`slurm.cell_state`), if any."""
    first = slurm.split()[0] if slurm else None
    if first == QUEUED:
        return WAITING
    if first == RUNNING.word:
        return RUNNING.word
    if info.status == INCOMPLETE.word and not (Path(info.path) / "events.jsonl").exists():
        return WAITING
    return status(info.status).in_sweep


def sweep_line(
    infos: list[Any], planned: list[str] | None = None, slurm: dict[str, str] | None = None
) -> str:
    """`3 done · 1 running · 2 waiting · 0 died`: the cells found, with their Slurm tasks'
    words (`slurm`, by run path), and the planned cells (`sweepplan`) with no run directory yet,
    which are waiting."""
    slurm = slurm or {}
    counts: dict[str, int] = {}
    for i in infos:
        word = cell_word(i, slurm.get(i.path))
        counts[word] = counts.get(word, 0) + 1
    found = {Path(i.path).name for i in infos}
    unseen = sum(name not in found for name in planned or ())
    counts[WAITING] = counts.get(WAITING, 0) + unseen
    words = [FINISHED.in_sweep, RUNNING.word, WAITING, DIED.word]
    words += sorted(w for w in counts if w not in words)
    return " · ".join(f"{counts.get(w, 0)} {w}" for w in words)


class RunsView(Vertical):
    """The run list above the compare table; keys manage the highlighted run."""

    BINDINGS = [
        Binding("space", "mark", "Mark", tooltip=COMPARE_KEYS),
        Binding("v", "compare", "Compare", tooltip=COMPARE_KEYS),
        Binding("r", "resume", "Resume", tooltip=RUN_KEYS),
        Binding("e", "export", "Export", tooltip=RUN_KEYS),
        Binding("d,delete", "delete", "Delete", tooltip=RUN_KEYS),
    ]

    @dataclass
    class Open(Message):
        """enter: show this run directory."""

        path: Path

    @dataclass
    class Compare(Message):
        """v: compare these runs (two or more)."""

        paths: list[Path]

    @dataclass
    class Resume(Message):
        """r: resume this run (a `RunInfo`)."""

        info: Any

    @dataclass
    class Export(Message):
        """e: export this run (a `RunInfo`)."""

        info: Any

    @dataclass
    class Delete(Message):
        """d: delete this run (a `RunInfo`), once the user says yes."""

        info: Any

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.runs_dir = Path("runs")
        """The folder listed: the app sets it (`EcsApp.runs_root`) before each draw."""
        self._sig: tuple | None = None
        self._shown: tuple | None = None
        self.infos: list[Any] = []
        self.marked: set[str] = set()
        self._narrow: bool | None = None
        self._loading: Any = None
        self.planned: list[str] | None = None
        """The folder's sweep plan (`sweepplan.planned_cells`): None when it has none."""
        self.slurm: dict[str, str] = {}
        """A sweep submitted to Slurm: run path -> its cell's words with its task's (squeue is
        asked in the load worker, never on the UI thread, with a timeout)."""
        """The load in flight: a poll tick waits for it rather than cancelling it."""

    def compose(self) -> ComposeResult:
        yield Static(classes="view-note")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="runs-compare"):
            yield Static(id="runs-compare-table")

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self._tick)

    @property
    def sweep(self) -> bool:
        """The folder is one sweep: it has a plan, or every run in it is a cell directory
        right under it."""
        if self.planned is not None:
            return True
        return bool(self.infos) and all(
            Path(i.path).parent == self.runs_dir and "-" in i.name and not i.name[:8].isdigit()
            for i in self.infos
        )

    def show(self, snap: Snapshot, source: RunSource | None) -> None:
        key = (str(self.runs_dir), snap.run_dir, snap.status)
        if key != self._shown:
            self._shown, self._sig = key, None
            self._poll()

    def refresh_now(self) -> None:
        self._sig = None
        self._poll()

    def _tick(self) -> None:
        if self._loading is None or self._loading.is_finished:
            self._poll()

    @property
    def tab_shown(self) -> bool:
        """Its tab is the one shown (only then is the folder read)."""
        pane = next((a for a in self.ancestors if isinstance(a, TabPane)), None)
        tabs = next((a for a in self.ancestors if isinstance(a, TabbedContent)), None)
        return pane is not None and tabs is not None and tabs.active == pane.id

    def _poll(self) -> None:
        if self.tab_shown:
            rows = tuple((i.path, i.status) for i in self.infos)
            self._loading = self._load(self.runs_dir, self._sig, rows)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs")
    def _load(self, runs_dir: Path, last: tuple | None, rows: tuple) -> None:
        from ecs_core.slurm import slurm_words
        from ecs_core.stats.compare import compare_infos
        from ecs_core.stats.runs import find_runs, run_info
        from ecs_core.sweepplan import planned_cells

        if not runs_dir.is_dir():
            self.app.call_from_thread(self._draw, [], None, f"{runs_dir} does not exist yet", None)
            return
        paths = find_runs([runs_dir])
        sig = signature(paths) + plan_signature(runs_dir)
        if sig == last and all(word != RUNNING.word for _, word in rows) and not self.slurm:
            return  # nothing written, no process that could have died since, no Slurm task
        infos = [run_info(p) for p in paths]
        slurm = slurm_words([(i.path, i.status) for i in infos], SLURM_TIMEOUT_S)[0]
        if sig == last and tuple((i.path, i.status) for i in infos) == rows and slurm == self.slurm:
            return
        self.slurm = slurm
        self.planned = planned_cells(runs_dir)
        self.app.call_from_thread(self._draw, infos, compare_infos(infos), None, sig)

    def _draw(self, infos: list[Any], compare: Any, message: str | None, sig: tuple | None) -> None:
        self._sig = sig
        self.infos = infos
        self.marked &= {i.path for i in infos}
        self._note(message)
        table = self.query_one("#runs-table", DataTable)
        narrow = self.size.width < NARROW_BELOW
        current = self.highlighted
        table.clear(columns=narrow != self._narrow)
        if narrow != self._narrow:
            fixed = column_widths()
            for name in NARROW_COLUMNS if narrow else WIDE_COLUMNS:
                table.add_column(name, width=fixed.get(name))
            self._narrow = narrow
        for info in infos:
            cells = list(info_row(info, narrow))
            cells[0] = MARK if info.path in self.marked else ""
            if self.sweep:
                cells[1] = self.slurm.get(info.path) or cell_word(info)
            table.add_row(*cells, key=info.path)
        found = {Path(i.path).name for i in infos}
        for name in self.planned or ():  # a planned cell with no directory yet: it waits
            if name not in found:
                blank = ["-"] * (len(table.columns) - 3)
                shown = short_name(name) if narrow else name
                table.add_row("", WAITING, *blank, shown, key=str(self.runs_dir / name))
        if current is not None and current.path in {i.path for i in infos}:
            table.move_cursor(row=table.get_row_index(current.path))
        body = compare_renderable(compare) if compare is not None else ""
        self.query_one("#runs-compare-table", Static).update(body)

    def _note(self, message: str | None) -> None:
        n = len(self.infos)
        where = f"{n} run{'' if n == 1 else 's'} in {self.runs_dir.name}/"
        keys = " · enter opens · space marks · v compares"
        if self.sweep:
            line = sweep_line(self.infos, self.planned, self.slurm)
            where, keys = f"sweep {self.runs_dir.name}/: {line}", ""
        marked = f" · {len(self.marked)} marked" if self.marked else ""
        self.query_one(".view-note", Static).update(
            Text(message or f"{where}{marked}{keys}", style="dim")
        )

    def on_resize(self) -> None:
        if self.infos and (self.size.width < NARROW_BELOW) != self._narrow:
            self.refresh_now()

    @property
    def highlighted(self) -> Any:
        """The RunInfo under the cursor, or None."""
        table = self.query_one("#runs-table", DataTable)
        if not self.infos or table.row_count == 0:
            return None
        row = max(table.cursor_row, 0)
        return self.infos[row] if row < len(self.infos) else None  # below: a waiting cell

    def focus_table(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        if self.app.focused is not table:  # once: each focus posts a message that shows the tab
            table.focus()

    @on(DataTable.RowSelected, "#runs-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        path = event.row_key.value
        if path is not None and path not in {i.path for i in self.infos}:
            self.app.notify(f"{Path(path).name} has not started yet", timeout=4)
        elif path is not None:
            self.post_message(self.Open(Path(path)))

    def action_mark(self) -> None:
        info = self.highlighted
        if info is None:
            return
        self.marked ^= {info.path}
        table = self.query_one("#runs-table", DataTable)
        mark = MARK if info.path in self.marked else ""
        table.update_cell(info.path, table.ordered_columns[0].key, mark)
        self._note(None)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        chosen = [i for i in self.infos if i.path in self.marked]
        if len(chosen) < 2:
            self.app.notify(
                "mark two or more runs with space, then press v", severity="warning", timeout=4
            )
            return
        self.post_message(self.Compare([Path(i.path) for i in chosen]))

    def action_resume(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.Resume(self.highlighted))

    def action_export(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.Export(self.highlighted))

    def action_delete(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.Delete(self.highlighted))
