"""Runs tab: every run directory under the runs folder, and the research compare table.

The rows and the table are `ecs_core.stats` (`find_runs`, `run_info`, `compare_infos`), the same
numbers `ecs runs` and `ecs compare` print. Enter on a row opens that run in the other views.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from ecs_tui.widgets.statsview import RunSource
from ecs_tui.worker import Snapshot

COLUMNS = ("status", "model", "method", "target", "kept", "test", "P+Q", "run")


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}%"


def info_row(info: Any) -> tuple[str, ...]:
    """One `RunInfo` as table cells."""
    width = f" ×{info.width:g}" if info.width not in (None, 1.0) else ""
    return (
        info.status,
        f"{info.model}{width}",
        info.method if info.ablate == "none" else f"{info.method}-{info.ablate}",
        "-" if info.target_density is None else f"{info.target_density:.2%}",
        "-" if info.density is None else f"{info.density:.2%}",
        _pct(info.test_acc),
        _pct(info.pq_acc),
        info.name,
    )


def compare_renderable(table: Any) -> Any:
    """The CompareTable as Rich tables, one per dataset: mean ± std (n), achieved density."""
    if not table.cells:
        return Text("no finished runs to compare yet", style="dim")
    out = Table.grid()
    for dataset in table.datasets:
        t = Table(title=dataset, title_justify="left", header_style="bold", box=None)
        t.add_column("model")
        t.add_column("method")
        for d in table.densities:
            t.add_column(f"{d:.0%}" if d >= 0.01 else f"{d:.1%}", justify="right")
        for model, method in table.rows(dataset):
            cells = []
            for d in table.densities:
                c = table.cell(dataset, model, method, d)
                cells.append(_cell_text(c))
            t.add_row(model, method, *cells)
        out.add_row(t)
    return out


def _cell_text(c: Any) -> str:
    if c is None:
        return "-"
    text = f"{c.mean:.2f}" + (f" ± {c.std:.2f}" if c.std is not None else "") + f" ({c.n})"
    return text + (f" @{c.achieved:.1%}" if c.achieved_differs else "")


class RunsView(Vertical):
    """The run list (Enter opens a run) above the compare table."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._key: tuple | None = None
        self.paths: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Static(classes="view-note")
        table: DataTable = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        with VerticalScroll(id="runs-compare"):
            yield Static(id="runs-compare-table")

    @property
    def runs_dir(self) -> Path:
        return Path(self.app.base_config.runs_dir)  # type: ignore[attr-defined]

    def show(self, snap: Snapshot, source: RunSource | None) -> None:
        key = (str(self.runs_dir), snap.run_dir, snap.status)
        if key != self._key:
            self._key = key
            self._load(self.runs_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs")
    def _load(self, runs_dir: Path) -> None:
        from ecs_core.stats import compare_infos, find_runs, run_info

        if not runs_dir.is_dir():
            self.app.call_from_thread(self._draw, [], None, f"{runs_dir} does not exist yet")
            return
        paths = find_runs([runs_dir])
        infos = [run_info(p) for p in paths]
        self.app.call_from_thread(self._draw, infos, compare_infos(infos), None)

    def _draw(self, infos: list[Any], compare: Any, message: str | None) -> None:
        note = self.query_one(".view-note", Static)
        n = len(infos)
        where = f"{n} run{'' if n == 1 else 's'} in {self.runs_dir.name}/"
        shown = message or f"{where} · enter opens a run"
        note.update(Text(shown, style="dim"))
        table = self.query_one("#runs-table", DataTable)
        table.clear()
        self.paths = [Path(i.path) for i in infos]
        for info in infos:
            table.add_row(*info_row(info), key=info.path)
        body = compare_renderable(compare) if compare is not None else ""
        self.query_one("#runs-compare-table", Static).update(body)

    @on(DataTable.RowSelected, "#runs-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.open_run(Path(event.row_key.value))  # type: ignore[attr-defined]
