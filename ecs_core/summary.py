"""A run's summary (summary.json) as a fold over its events: `Summary.apply(event)`.

The engine folds every event it appends to events.jsonl into the run's `Summary` (`stages.
emitter`) and writes summary.json from it; the TUI's live state folds the same events with the
same class; `ecs runs`, `ecs compare` and the stats views read summary.json back through
`Summary.from_dict`, which takes any older file (missing keys are None, unknown keys are kept
in `extra` and written back). Torch-free.

What each event sets (the JSON keys are the ones summary.json has always had):

    run_started    status running; run_dir; model, dataset, method, scope, seed, target_density
                   and device, params, unless a resumed run's summary already has them; a run
                   that does not prune: density 1.0 and its (all-kept) per-layer report
    epoch_end      epochs_done, train_/test_ loss and accuracy, best_test_acc since the mask
                   (fine-tuning epochs of the quantize stage are not the run's epochs: ignored)
    pruned         the mask's report: target_density, density, kept, total, layers,
                   collapsed_layers, overlap, budget, distribution, structure, channels, macs,
                   dense_macs
    mask_applied   the pruned model's test accuracy before training (pruned_test_acc, and the
                   run's test_acc until an epoch ends), or none (IMP); best_test_acc restarts
    mask_updated   SET, RigL: mask_updates (how many), mask_moved (connections moved, summed),
                   mask_moved_layers (the same by layer, from events that carry it)
    evaluated      test_acc and test_loss of a model no epoch evaluated
    round_done     IMP: the round's row in imp_rounds, and rounds
    quantized      quant; exported: sizes
    latency_measured  latency (dense / fp32 / int8 ms at batch 1 and 64, speed-ups, CPU)
    run_finished   status (finished | stopped), seconds (added to those the summary has: a
                   resumed run starts from its checkpoint's summary, which has none, so the
                   engine's counts the last process; a fold of the whole events.jsonl adds
                   up every process's)
    run_failed     status failed, error
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ecs_core import events as ev

LAST_ROUND = "last round"
"""IMP: what `best_test_acc` is the best of (each round starts its best again)."""


def best_label(summary: dict[str, Any]) -> str:
    """What `best_test_acc` is the best of: the epochs since the mask was applied, which for
    IMP are the last round's only."""
    return f"best epoch, {LAST_ROUND}" if summary.get("imp_rounds") else "best epoch"


def size_ratio(dense: int | None, smaller: int | None) -> float | None:
    """How many times smaller than dense fp32 a file is (None when a size is unknown or 0)."""
    return dense / smaller if dense and smaller else None


@dataclass
class Summary:
    """summary.json, typed. None = not known (yet); `to_dict` leaves such keys out."""

    status: str | None = None
    run_dir: str | None = None
    model: str | None = None
    dataset: str | None = None
    method: str | None = None
    scope: str | None = None
    seed: int | None = None
    target_density: float | None = None
    device: str | None = None
    params: int | None = None
    epochs_done: int | None = None
    train_loss: float | None = None
    train_acc: float | None = None
    test_loss: float | None = None
    test_acc: float | None = None
    density: float | None = None
    kept: int | None = None
    total: int | None = None
    layers: list[dict[str, Any]] | None = None
    collapsed_layers: list[str] | None = None
    overlap: dict[str, int] | None = None
    budget: str | None = None
    distribution: str | None = None
    mask_updates: int | None = None
    mask_moved: int | None = None
    mask_moved_layers: dict[str, int] | None = None
    structure: str | None = None
    channels: dict[str, int] | None = None
    macs: int | None = None
    dense_macs: int | None = None
    latency: dict[str, Any] | None = None
    pruned_test_acc: float | None = None
    best_test_acc: float | None = None
    imp_rounds: list[dict[str, Any]] | None = None
    rounds: int | None = None
    quant: dict[str, Any] | None = None
    sizes: dict[str, Any] | None = None
    seconds: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not know (a newer writer's, `ecs export`'s `onnx`): kept as is."""

    # --- reading and writing summary.json

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Summary:
        """Any summary.json's object, old or new; a value of the wrong kind (or a float that is
        not finite) reads as None."""
        out = cls()
        for key, value in (data or {}).items():
            if key in _FIELDS and key != "extra":
                setattr(out, key, value if _fits(value, _FIELDS[key]) else None)
            else:
                out.extra[key] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _FIELDS if k != "extra"}
        out = {k: v for k, v in out.items() if v is not None}
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}

    def get(self, key: str, default: Any = None) -> Any:
        """dict.get over `to_dict()`'s keys (readers written against the JSON object)."""
        value = getattr(self, key, None) if key in _FIELDS else self.extra.get(key)
        return default if value is None else value

    def copy(self) -> Summary:
        return Summary.from_dict(self.to_dict())

    # --- the fold

    def apply(self, event: ev.Event) -> Summary:
        """Fold one event in (see the module docstring); returns self."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        return self

    def _started(self, e: ev.RunStarted) -> None:
        c = e.config
        base = dict(model=c.get("model"), dataset=c.get("dataset"), method=c.get("method"),
                    scope=c.get("scope"), seed=c.get("seed"), target_density=c.get("density"),
                    device=e.device, params=e.params)  # fmt: skip
        if e.layers is not None:  # a run that does not prune: every weight is kept
            base.update(density=1.0, layers=e.layers, collapsed_layers=[])
        for key, value in base.items():  # a resumed run's own values stay
            if getattr(self, key) is None:
                setattr(self, key, value)
        self.status, self.run_dir = "running", e.run_dir

    def _epoch(self, e: ev.EpochEnd) -> None:
        if e.stage == ev.FINETUNE:
            return
        trained = not math.isnan(e.train_loss)  # NaN: the epoch took no optimizer step
        self.epochs_done = e.epoch
        self.train_loss = e.train_loss if trained else None
        self.train_acc = e.train_acc if trained else None
        self.test_loss, self.test_acc = e.test_loss, e.test_acc
        self.best_test_acc = max(-1.0 if self.best_test_acc is None else self.best_test_acc,
                                 e.test_acc)  # fmt: skip

    def _pruned(self, e: ev.Pruned) -> None:
        self.target_density, self.density, self.kept, self.total = (
            e.target_density,
            e.density,
            e.kept,
            e.total,
        )
        self.layers, self.collapsed_layers = e.layers, e.collapsed_layers
        self.overlap, self.budget = e.overlap, e.budget
        self.distribution = e.distribution
        self.structure, self.channels = e.structure, e.channels
        self.macs, self.dense_macs = e.macs, e.dense_macs

    def _latency(self, e: ev.LatencyMeasured) -> None:
        self.latency = e.latency

    def _mask_applied(self, e: ev.MaskApplied) -> None:
        self.pruned_test_acc = self.test_acc = e.test_acc
        self.test_loss = e.test_loss
        self.best_test_acc = None  # the dense training's best is not this model's

    def _mask_updated(self, e: ev.MaskUpdated) -> None:
        self.mask_updates = (self.mask_updates or 0) + 1
        self.mask_moved = (self.mask_moved or 0) + e.moved
        if e.layers is not None:
            self.mask_moved_layers = add_counts(self.mask_moved_layers, e.layers)

    def _evaluated(self, e: ev.Evaluated) -> None:
        self.test_acc, self.test_loss = e.test_acc, e.test_loss

    def _round_done(self, e: ev.RoundDone) -> None:
        rows = {row["round"]: row for row in self.imp_rounds or []}
        rows[e.round] = {
            "round": e.round, "density": 1.0 if self.density is None else self.density,
            "epochs_done": e.epochs_done, "test_acc": self.test_acc,
            "best_test_acc": self.best_test_acc,
        }  # fmt: skip
        self.imp_rounds = [rows[k] for k in sorted(rows)]
        self.rounds = e.rounds

    def _quantized(self, e: ev.Quantized) -> None:
        self.quant = {"bits": e.bits, "unique_before": e.unique_before,
                      "unique_after": e.unique_after, "test_acc": e.test_acc,
                      "int8_test_acc": e.int8_test_acc, "layers": e.layers}  # fmt: skip

    def _exported(self, e: ev.Exported) -> None:
        dense, sparse, size = e.dense_bytes, e.sparse_bytes, e.compressed_bytes
        self.sizes = {"dense_bytes": dense, "sparse_bytes": sparse, "compressed_bytes": size,
                      "ratio_dense_to_compressed": dense / size,
                      "ratio_dense_to_sparse": dense / sparse}  # fmt: skip

    def _finished(self, e: ev.RunFinished) -> None:
        self.status = e.status
        self.seconds = (self.seconds or 0.0) + e.seconds

    def _failed(self, e: ev.RunFailed) -> None:
        self.status, self.error = "failed", f"{e.error}: {e.message}"


_FIELDS = {f.name: str(f.type) for f in dataclasses.fields(Summary)}
_HANDLERS = {
    ev.RunStarted: Summary._started, ev.EpochEnd: Summary._epoch, ev.Pruned: Summary._pruned,
    ev.MaskApplied: Summary._mask_applied, ev.MaskUpdated: Summary._mask_updated,
    ev.Evaluated: Summary._evaluated,
    ev.RoundDone: Summary._round_done, ev.Quantized: Summary._quantized,
    ev.Exported: Summary._exported, ev.RunFinished: Summary._finished,
    ev.RunFailed: Summary._failed, ev.LatencyMeasured: Summary._latency,
}  # fmt: skip


def _fits(value: Any, annotation: str) -> bool:
    """A JSON value of the field's kind (`events.fits`), and no NaN or infinity: those are no
    measurement."""
    finite = not isinstance(value, float) or math.isfinite(value)
    return value is None or (finite and ev.fits(value, annotation))


def add_counts(total: dict[str, int] | None, more: dict[str, Any]) -> dict[str, int]:
    """`total` (None: none yet) plus `more`, key by key (a SET/RigL update's moves by layer);
    a value that is not a count is skipped (a summary.json may come from anyone)."""
    out = dict(total or {})
    for key, n in more.items():
        if isinstance(n, int) and not isinstance(n, bool):
            out[key] = out.get(key, 0) + n
    return out


def fold(events: list[ev.Event], start: Summary | None = None) -> Summary:
    """The summary a run's events give (`start`: a resumed run's summary so far)."""
    out = start.copy() if start is not None else Summary()
    for e in events:
        out.apply(e)
    return out
