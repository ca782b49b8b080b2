"""The live strip above the views: stage, epoch and batch bars, loss, accuracy, lr, img/s, ETA.

Everything shown comes from the last `Snapshot` (event data), never from the wall clock, so a
screenshot of a canned run is the same every time.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ecs_core import events as ev
from ecs_core.registry import PRUNERS
from ecs_core.runfiles import FINISHED, status
from ecs_core.views import view
from ecs_tui.fmt import hms, spread_text
from ecs_tui.runmodel import IDLE, Snapshot

EXPORT = "export"
"""The strip's last step: the quantize stage's sizes written (no stage of its own)."""
STAGES = (ev.WARMUP, ev.PRUNE, ev.TRAIN, ev.QUANTIZE, EXPORT)


def describe_config(config: dict | None) -> str:
    """One short line: `vgg16 ×0.25 · digits · ecs d=0.05 global`."""
    if not config:
        return ""
    c = config
    prune = (
        "dense" if c["method"] == "none" else f"{c['method']} d={c['density']:g} {spread_text(c)}"
    )
    return f"{c['model']} ×{c['width']:g} · {c['dataset']} · {prune}"


def stage_line(snap: Snapshot) -> Text:
    """`warmup ✓  prune ✓  train ▸  quantize  export` for the stages this run has."""
    out = Text()
    for name in STAGES:
        if name in snap.stages_done or (name == EXPORT and (snap.summary or {}).get("sizes")):
            out.append(f"{name} ✓  ", style="green")
        elif name == snap.stage:
            out.append(f"{name} ▸  ", style="bold reverse")
        elif snap.config and _expected(name, snap.config):
            out.append(f"{name}  ", style="dim")
    if snap.rounds:
        out.append(f"IMP round {snap.round}/{snap.rounds}", style="bold")
    return out


def _expected(stage: str, c: dict) -> bool:
    """Whether a run of config `c` goes through `stage` (the method's spec says when it prunes)."""
    spec = PRUNERS.get(c.get("method", ""))
    when = spec.when if spec is not None else "init"
    if stage == ev.WARMUP:
        return when == "warmup" and c.get("warmup_epochs", 0) > 0
    if stage == ev.PRUNE:
        return when != "never"
    if stage in (ev.QUANTIZE, EXPORT):
        return when != "never" and bool(c.get("quantize"))
    return True


class LiveStatus(Static):
    """Three lines of run status; `show(snapshot, gpu)` redraws it."""

    def show(self, snap: Snapshot, gpu: str | None = None) -> None:
        self.update(render_status(snap, gpu), layout=False)  # fixed height: no relayout


def render_status(snap: Snapshot, gpu: str | None = None) -> RenderableType:
    if snap.status == IDLE and snap.starting:
        return Text.assemble(("starting… ", "bold"), snap.starting)
    if snap.status == IDLE:
        return Text.from_markup(
            "[b]no run[/]  configure it (c) and start it (s), or open a run from the Runs tab "
            f"({view('runs').key})"
        )
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f"{snap.status:<9}", style=status(snap.status).style)
    head.append_text(stage_line(snap))
    if gpu:
        head.append(f"  {gpu}", style="cyan")
    grid = Table.grid(expand=True, padding=(0, 1))
    grid.add_column(width=5, no_wrap=True)
    grid.add_column(ratio=1)
    # fixed widths: the bars keep their length while the numbers beside them change
    grid.add_column(no_wrap=True, justify="right", width=2 * len(str(max(snap.batches, 1))) + 2)
    grid.add_column(no_wrap=True, width=34)
    last = snap.epoch_points[-1] if snap.epoch_points else None
    acc = snap.test_acc
    epoch_info = f"test {acc:.2f}%" if acc is not None else ""
    epoch_info += f"  lr {last.lr:.4g}" if last else ""
    grid.add_row("epoch", _bar(snap.epoch, snap.epochs), f"{snap.epoch}/{snap.epochs}", epoch_info)
    if not snap.active:  # no batch is going: an empty bar, not a full one beside 0/12
        grid.add_row("batch", _bar(0, 1), "", _batch_done(snap))
        return _two_rows(head, grid)
    batch_info = []
    if snap.loss is not None and snap.active:
        batch_info.append(f"loss {snap.loss:.4f}")
    if snap.img_per_s:
        batch_info.append(f"{snap.img_per_s:,.0f} img/s")
    eta = snap.eta()
    if eta is not None:
        batch_info.append(f"ETA {hms(eta)}")
    grid.add_row(
        "batch", _bar(snap.batch, snap.batches), f"{snap.batch}/{snap.batches}",
        "  ".join(batch_info),
    )  # fmt: skip
    return _two_rows(head, grid)


def _batch_done(snap: Snapshot) -> str:
    """What the batch row says once no batch is going."""
    if snap.status == FINISHED.word:
        return "training done"
    if status(snap.status).resumable and snap.run_dir:
        return "resume: r"
    return ""


def _two_rows(head: Text, grid: Table) -> Table:
    table = Table.grid(expand=True)
    table.add_row(head)
    table.add_row(grid)
    return table


def _bar(done: int, total: int) -> ProgressBar:
    return ProgressBar(total=max(1, total), completed=min(done, max(1, total)), width=None)


_gpu_cache: dict[str, Any] = {"t": -1.0, "line": None}


def gpu_line(snap: Snapshot, every_s: float = 1.0) -> str | None:
    """`GPU 87% · 3.1/79.6 GiB` for an in-process CUDA run, at most once a second."""
    if not (snap.device or "").startswith("cuda") or "torch" not in sys.modules:
        return None
    now = time.monotonic()
    if now - _gpu_cache["t"] < every_s:
        return _gpu_cache["line"]
    torch = sys.modules["torch"]
    try:
        free, total = torch.cuda.mem_get_info()
        line = f"GPU {(total - free) / 2**30:.1f}/{total / 2**30:.1f} GiB"
        try:
            line = f"GPU {torch.cuda.utilization()}% · " + line[4:]
        except Exception:  # utilisation needs pynvml; memory alone still helps
            pass
    except Exception:  # a GPU query must never break the UI
        line = None
    _gpu_cache.update(t=now, line=line)
    return line
