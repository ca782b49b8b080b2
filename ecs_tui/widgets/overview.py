"""Overview tab: what the run is, how far it got, and what it achieved, in one table.

Numbers come from the event stream (live) and from `summary.json` once the run has one, so the
same view serves a run in progress, a watched headless run and a finished run directory.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ecs_core.summary import LAST_ROUND
from ecs_tui.fmt import pct, run_time, size, size_ratio
from ecs_tui.runmodel import Snapshot
from ecs_tui.widgets.status import describe_config


def facts(snap: Snapshot) -> list[tuple[str, str]]:
    """(label, value) rows for the overview table, in reading order."""
    s: dict[str, Any] = snap.summary or {}
    c = snap.config or {}
    rows = [
        ("run", snap.run_name or "-"),
        ("status", snap.status + (f"  ({snap.error})" if snap.error else "")),
        ("setup", describe_config(c) or "-"),
        ("device", snap.device or "-"),
        ("params", f"{snap.params:,}" if snap.params else "-"),
        ("epochs", f"{snap.epoch}/{snap.epochs}" if snap.epochs else "-"),
    ]
    rows.append(("test acc", pct(snap.test_acc)))
    if s.get("pruned_test_acc") is not None:  # the mask applied, before training with it
        rows.append(("pruned acc", pct(s["pruned_test_acc"])))
    if s.get("best_test_acc") is not None:
        within = f" ({LAST_ROUND})" if s.get("imp_rounds") else ""
        rows.append(("best acc", pct(s["best_test_acc"]) + within))
    if s.get("imp_rounds"):
        rows.append(("IMP rounds", "  ".join(_round(r) for r in s["imp_rounds"])))
    rows += _prune_rows(s)
    rows += _quant_rows(s)
    if s.get("seconds") is not None and not snap.active:  # the run ended (a resumed one: later)
        speed = snap.epoch_points[-1].img_per_s if snap.epoch_points else None
        rows.append(("time", run_time(s["seconds"], speed) or "-"))
    rows += _speed_rows(s)
    return rows


def _speed_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """MACs of a channel run and the measured speed-up x dense (batch 64, one CPU thread)."""
    from ecs_core.stats.summary import speedup

    rows = []
    if s.get("macs") and s.get("dense_macs"):
        rows.append(("MACs", f"{s['macs'] / 1e6:,.1f}M vs {s['dense_macs'] / 1e6:,.1f}M dense "
                             f"({s['dense_macs'] / s['macs']:.2f}x fewer)"))  # fmt: skip
    fp32, int8 = speedup(s.get("latency"), "fp32"), speedup(s.get("latency"), "int8")
    if fp32 is not None:
        said = f"fp32 {fp32:.2f}x" + (f", int8 {int8:.2f}x" if int8 is not None else "")
        again = (s.get("latency") or {}).get("measured_again")
        when = f", measured again {again}" if again else ""
        rows.append(("speed-up", f"{said} vs dense (batch 64, 1 CPU thread){when}"))
    return rows


def _round(r: dict[str, Any]) -> str:
    """`1: 20.0% kept 17.50%`: an IMP round's density and test accuracy."""
    density = r.get("density")
    kept = f"{density:.1%}" if isinstance(density, int | float) else "-"
    return f"{r.get('round', '?')}: {kept} kept {pct(r.get('test_acc'))}"


def _prune_rows(p: dict[str, Any]) -> list[tuple[str, str]]:
    if "density" not in p or p.get("kept") is None:
        return []
    rows = [
        ("density", f"{p['density']:.2%} kept ({p['kept']:,}/{p['total']:,}), "
         f"target {p.get('target_density', 0):.2%}"),
    ]  # fmt: skip
    if p.get("collapsed_layers"):
        rows.append(("collapsed", ", ".join(p["collapsed_layers"])))
    o = p.get("overlap")
    if o:
        rows.append(
            ("ECS sets", f"|w|&|g| {o['both']:,}  |w| only {o['weight_only']:,}  "
             f"|g| only {o['grad_only']:,}")
        )  # fmt: skip
    return rows


def _quant_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    q = s.get("quant")
    rows = []
    if q:
        rows.append(
            ("quantized", f"{2 ** q['bits']} clusters/layer: unique weights "
             f"{q['unique_before']:,} -> {q['unique_after']:,}")
        )  # fmt: skip
        if q.get("test_acc") is not None:
            rows.append(("shared acc", pct(q["test_acc"])))
        if q.get("int8_test_acc") is not None:
            rows.append(("int8 acc", pct(q["int8_test_acc"])))
    sizes = s.get("sizes")
    if sizes and sizes.get("compressed_bytes"):
        dense, compressed = sizes["dense_bytes"], sizes["compressed_bytes"]
        ratio = size_ratio(dense, compressed) or 0.0
        rows.append(
            ("size", f"{size(compressed, True)} vs {size(dense, True)} dense "
             f"({ratio:.1f}x smaller)")
        )  # fmt: skip
    return rows


def facts_table(snap: Snapshot) -> RenderableType:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for label, value in facts(snap):
        table.add_row(label, value)
    return table


def epoch_table(snap: Snapshot, last: int = 8) -> RenderableType:
    """The last few epochs as a table (the wide layout's second pane)."""
    if not snap.epoch_points:
        return Text("no epoch finished yet", style="dim")
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for name in ("epoch", "stage", "loss", "train", "test", "lr", "density"):
        table.add_column(name, justify="right" if name != "stage" else "left", no_wrap=True)
    for p in snap.epoch_points[-last:]:
        table.add_row(
            str(p.epoch), p.stage, f"{p.train_loss:.4f}", f"{p.train_acc:.2f}%",
            f"{p.test_acc:.2f}%", f"{p.lr:.4g}", f"{p.density:.2%}",
        )  # fmt: skip
    return Group(Text("recent epochs", style="bold"), table)


class OverviewView(VerticalScroll):
    """The facts; at >= 120 columns the recent-epoch table shows below them."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="overview-table")
        yield Static(id="overview-epoch-table", classes="wide-only")

    def show(self, snap: Snapshot, source: object = None) -> None:
        if snap.status == "idle" and snap.starting:
            self._shown = None
            self.query_one("#overview-table", Static).update(
                Text.assemble(
                    ("Starting…\n\n", "bold"),
                    snap.starting,
                    "\n\nThe run's facts appear here once it has loaded; x stops it.",
                )  # fmt: skip
            )
            self.query_one("#overview-epoch-table", Static).update("")
            return
        if snap.status == "idle":
            self._shown = None
            self.query_one("#overview-table", Static).update(
                Text.from_markup(
                    "[b]No run loaded.[/]\n\n"
                    "Set up a run in the configure pane ([b]c[/]) and press [b]s[/] to start it,\n"
                    "open a finished run from the Runs tab ([b]7[/]), or start one headless:\n\n"
                    "  ecs run --width 0.25 --epochs 2 --max-batches 5\n"
                    "  ecs-tui --watch runs/<run>\n\n"
                    "Press [b]?[/] for every key, [b]ctrl+p[/] for the command palette."
                )
            )
            self.query_one("#overview-epoch-table", Static).update("")
            return
        key = (tuple(facts(snap)), len(snap.epoch_points))
        if key == self._shown:  # batch progress changes nothing here: skip the relayout
            return
        self._shown = key
        self.query_one("#overview-table", Static).update(facts_table(snap))
        self.query_one("#overview-epoch-table", Static).update(epoch_table(snap))
