"""Numbers read from a run's JSON files: curves, ECS overlap, quantization table, sizes, stages.

Everything is read defensively: a run that stopped half-way or failed, or a summary written by
an older version, gives `None` or empty fields, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ecs_core import events as ev
from ecs_core.summary import add_counts, best_label, size_ratio


def num(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, null, NaN, a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def integer(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


# --- training curves


@dataclass(frozen=True)
class Curves:
    """Per-epoch metrics from the `epoch_end` events, downsampled to at most `max_points`."""

    epoch: list[int]
    stage: list[str]
    train_loss: list[float | None]
    test_loss: list[float | None]
    train_acc: list[float | None]
    test_acc: list[float | None]
    """Percent."""
    lr: list[float | None]
    density: list[float | None]
    points: int
    """Epochs recorded before downsampling."""


def pick(n: int, k: int) -> list[int]:
    """At most k indices spread evenly over range(n), first and last always included."""
    if n <= k:
        return list(range(n))
    if k <= 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def curves_from_events(events: list[ev.Event], max_points: int = 200) -> Curves:
    """Training curves; a resumed run's repeated epochs keep their latest values."""
    by_epoch: dict[int, ev.EpochEnd] = {}
    for e in events:
        if isinstance(e, ev.EpochEnd):
            by_epoch[e.epoch] = e
    rows = [by_epoch[k] for k in sorted(by_epoch)]
    rows = [rows[i] for i in pick(len(rows), max_points)]
    return Curves(
        epoch=[r.epoch for r in rows],
        stage=[r.stage for r in rows],
        train_loss=[num(r.train_loss) for r in rows],
        test_loss=[num(r.test_loss) for r in rows],
        train_acc=[num(r.train_acc) for r in rows],
        test_acc=[num(r.test_acc) for r in rows],
        lr=[num(r.lr) for r in rows],
        density=[num(r.density) for r in rows],
        points=len(by_epoch),
    )


# --- SET, RigL: mask turnover


@dataclass(frozen=True)
class Turnover:
    """Dynamic sparse training: the connections each mask update moved (`mask_updated`)."""

    step: list[int]
    """Optimizer steps taken when the update came, over the whole run."""
    epoch: list[int]
    moved: list[int]
    """Connections new in the mask (as many left it)."""
    drop: list[float]
    """The drop fraction of the update (cosine-decayed)."""
    kept: int
    """Weights in the mask (each layer keeps its count across updates)."""
    layers: list[LayerMoves] = field(default_factory=list)
    """The moves by layer over every update, most first; empty for events written before
    `mask_updated` carried them."""

    @property
    def total(self) -> int:
        return sum(self.moved)


@dataclass(frozen=True)
class LayerMoves:
    """One layer's part of a SET/RigL run's mask turnover."""

    name: str
    moved: int
    """Connections new in its mask, summed over the updates."""
    kept: int | None
    """Weights its mask keeps (the same at every update); None where the report lacks it."""

    @property
    def share(self) -> float | None:
        """`moved` per kept weight (1.0: as many moves as the layer keeps weights)."""
        return self.moved / self.kept if self.kept else None


def layer_moves(moved: dict[str, int], report: list[Any] | None) -> list[LayerMoves]:
    """The layers by connections moved, most first (a tie in name order); `report`: the
    mask's per-layer rows (`pruned`'s `layers`: name, kept, ...) for each layer's count."""
    kept = {r.get("name"): integer(r.get("kept")) for r in report or [] if isinstance(r, dict)}
    rows = [LayerMoves(name, n, kept.get(name)) for name, n in moved.items()]
    return sorted(rows, key=lambda r: (-r.moved, r.name))


def turnover_from_events(events: list[ev.Event]) -> Turnover | None:
    """The mask updates in step order; a resumed run's repeated steps keep their latest event.
    None for a run without any (not SET or RigL, or before its first update)."""
    by_step = {e.step: e for e in events if isinstance(e, ev.MaskUpdated)}
    if not by_step:
        return None
    rows = [by_step[k] for k in sorted(by_step)]
    moved: dict[str, int] = {}
    for r in rows:
        moved = add_counts(moved, r.layers or {})
    pruned = [e for e in events if isinstance(e, ev.Pruned)]
    return Turnover(
        step=[r.step for r in rows], epoch=[r.epoch for r in rows],
        moved=[r.moved for r in rows], drop=[r.drop_fraction for r in rows], kept=rows[-1].kept,
        layers=layer_moves(moved, pruned[-1].layers if pruned else None),
    )  # fmt: skip


# --- ECS overlap


@dataclass(frozen=True)
class Overlap:
    """ECS: how the kept weights split between the |w| set and the |g| set."""

    both: int
    weight_only: int
    grad_only: int
    kept: int
    total: int
    budget: str | None


def overlap_from(summary: dict[str, Any], events: list[ev.Event]) -> Overlap | None:
    """From summary.json, else from the `pruned` event; None for methods without one."""
    src: dict[str, Any] = summary
    if not isinstance(summary.get("overlap"), dict):
        pruned = [e for e in events if isinstance(e, ev.Pruned)]
        if not pruned or not isinstance(pruned[-1].overlap, dict):
            return None
        p = pruned[-1]
        src = {"overlap": p.overlap, "kept": p.kept, "total": p.total, "budget": p.budget}
    o = src["overlap"]
    parts = [integer(o.get(k)) for k in ("both", "weight_only", "grad_only")]
    if any(v is None for v in parts):
        return None
    both, w_only, g_only = parts
    kept = integer(src.get("kept")) or both + w_only + g_only
    budget = src.get("budget") if isinstance(src.get("budget"), str) else None
    return Overlap(both, w_only, g_only, kept, integer(src.get("total")) or 0, budget)


# --- quantization and sizes


@dataclass(frozen=True)
class QuantLayer:
    name: str
    unique_before: int
    unique_after: int


@dataclass(frozen=True)
class QuantTable:
    """Distinct weight values per layer before and after weight sharing (the original's table)."""

    bits: int | None
    layers: list[QuantLayer]
    unique_before: int
    unique_after: int
    test_acc: float | None
    int8_test_acc: float | None
    source: str
    """summary (what the quantize stage recorded) | tensors (counted from the two files)."""


def quant_from_summary(summary: dict[str, Any]) -> QuantTable | None:
    q = summary.get("quant")
    if not isinstance(q, dict):
        return None
    layers = []
    for row in q.get("layers") or []:
        if not isinstance(row, dict):
            continue
        before, after = integer(row.get("unique_before")), integer(row.get("unique_after"))
        if isinstance(row.get("name"), str) and before is not None and after is not None:
            layers.append(QuantLayer(row["name"], before, after))
    total_b = integer(q.get("unique_before"))
    total_a = integer(q.get("unique_after"))
    return QuantTable(
        bits=integer(q.get("bits")),
        layers=layers,
        unique_before=total_b if total_b is not None else sum(r.unique_before for r in layers),
        unique_after=total_a if total_a is not None else sum(r.unique_after for r in layers),
        test_acc=num(q.get("test_acc")),
        int8_test_acc=num(q.get("int8_test_acc")),
        source="summary",
    )


@dataclass(frozen=True)
class Sizes:
    """Bytes on disk: dense fp32, naive sparse (CSR, fp32) and our compressed file."""

    dense_bytes: int | None
    sparse_bytes: int | None
    compressed_bytes: int | None

    @property
    def ratio_compressed(self) -> float | None:
        return size_ratio(self.dense_bytes, self.compressed_bytes)

    @property
    def ratio_sparse(self) -> float | None:
        return size_ratio(self.dense_bytes, self.sparse_bytes)


def sizes_from(summary: dict[str, Any]) -> Sizes | None:
    s = summary.get("sizes")
    if not isinstance(s, dict):
        return None
    keys = ("dense_bytes", "sparse_bytes", "compressed_bytes")
    return Sizes(*(integer(s.get(k)) for k in keys))


# --- speed (`--structure channel`, `latency.py`)


def speedup(latency: Any, kind: str, batch: str = "b64") -> float | None:
    """The measured speed-up x dense of the `kind` (fp32 | int8) model, or None."""
    if not isinstance(latency, dict) or not isinstance(latency.get(f"{kind}_speedup"), dict):
        return None
    return num(latency[f"{kind}_speedup"].get(batch))


def training_speed(events: list[ev.Event]) -> float | None:
    """Images per second of the last epoch that trained (None: no epoch ended)."""
    ends = [e for e in events if isinstance(e, ev.EpochEnd) and num(e.img_per_s)]
    return float(ends[-1].img_per_s) if ends else None


def speed_lines(summary: dict[str, Any]) -> list[str]:
    """What a run says about its speed: MACs of the smaller model, measured latency."""
    lines = []
    macs, dense = integer(summary.get("macs")), integer(summary.get("dense_macs"))
    if macs and dense:
        lines.append(f"MACs per image {macs / 1e6:,.1f}M of {dense / 1e6:,.1f}M dense "
                     f"({dense / macs:.2f}x fewer)")  # fmt: skip
    lat = summary.get("latency")
    if not isinstance(lat, dict) or not isinstance(lat.get("dense_ms"), dict):
        return lines
    again = f", measured again {lat['measured_again']}" if lat.get("measured_again") else ""
    lines.append(f"latency, 1 thread, {lat.get('cpu', '?')}, torch {lat.get('torch', '?')}{again}:")
    for b in ("b1", "b64"):
        dense_ms = num(lat["dense_ms"].get(b))
        row = [f"  batch {b[1:]:>2}: dense fp32 {dense_ms:.2f} ms"] if dense_ms else []
        for kind in ("fp32", "int8"):
            ms = lat.get(f"{kind}_ms") if isinstance(lat.get(f"{kind}_ms"), dict) else {}
            x = speedup(lat, kind, b)
            if num(ms.get(b)) is not None and x is not None:
                row.append(f"{kind} {num(ms.get(b)):.2f} ms ({x:.2f}x)")
        if row:
            lines.append(", ".join(row))
    return lines


# --- accuracy at each stage


@dataclass(frozen=True)
class StageAccuracy:
    stage: str
    test_acc: float


def stage_accuracies(summary: dict[str, Any], events: list[ev.Event]) -> list[StageAccuracy]:
    """Test accuracy after warm-up (just before pruning), after training, shared, int8."""
    out = []
    warm = [e for e in events if isinstance(e, ev.EpochEnd) and e.stage == ev.WARMUP]
    if warm and num(warm[-1].test_acc) is not None:
        out.append(StageAccuracy("warm-up (dense, before pruning)", warm[-1].test_acc))
    label = "trained (dense)" if summary.get("method") == "none" else "pruned + trained (P)"
    if num(summary.get("test_acc")) is not None:
        out.append(StageAccuracy(label, summary["test_acc"]))
    if num(summary.get("best_test_acc")) is not None:
        out.append(StageAccuracy(best_label(summary), summary["best_test_acc"]))
    q = summary.get("quant") if isinstance(summary.get("quant"), dict) else {}
    if num(q.get("test_acc")) is not None:
        out.append(StageAccuracy("weight sharing (P+Q)", q["test_acc"]))
    if num(q.get("int8_test_acc")) is not None:
        out.append(StageAccuracy("int8 inference", q["int8_test_acc"]))
    return out
