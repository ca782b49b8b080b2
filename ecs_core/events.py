"""Events: the only contract between the engine and any front end.

`pipeline.run` yields these frozen dataclasses; the headless printer, the JSON-lines writer
(`events.jsonl`) and the TUI all consume the same stream. As JSON, each event is one object
whose `"event"` field names its kind in snake_case (`run_started`, `epoch_end`, ...).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

WARMUP, PRUNE, TRAIN, QUANTIZE, FINETUNE = "warmup", "prune", "train", "quantize", "finetune"
"""The stages, as `StageStarted.stage`, `StageFinished.stage` and `EpochEnd.stage` name them:
warmup (dense epochs before a method that prunes after them), prune, train, quantize, and
finetune (the quantize stage's centroid fine-tuning: its epochs are not the run's)."""
STAGES = (WARMUP, PRUNE, TRAIN, QUANTIZE, FINETUNE)


@dataclass(frozen=True)
class Event:
    """Base class; `kind` is derived from the class name (RunStarted -> run_started)."""

    kind: ClassVar[str] = "event"
    t: float = field(default_factory=time.time, kw_only=True)
    """Wall-clock time (seconds since the epoch) when the event was made."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict with the kind under "event"."""
        return {"event": self.kind, **dataclasses.asdict(self)}


_REGISTRY: dict[str, type[Event]] = {}


def _event(cls: type[Event]) -> type[Event]:
    cls.kind = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
    _REGISTRY[cls.kind] = cls
    return cls


@_event
@dataclass(frozen=True)
class RunStarted(Event):
    run_dir: str
    config: dict[str, Any]
    device: str
    params: int
    """Parameters of the dense model."""
    train_size: int
    test_size: int
    resumed_from_epoch: int = 0
    layers: list[dict[str, Any]] | None = None
    """A run that does not prune: its per-layer report, every weight kept (None otherwise)."""


@_event
@dataclass(frozen=True)
class StageStarted(Event):
    stage: str
    """One of `STAGES`."""
    epochs: int = 0
    """Epochs this stage will train (0 for stages that do not train)."""
    round: int = 0
    """IMP: which round this stage belongs to (0: the dense run; 1..rounds: pruned rounds)."""
    rounds: int = 0
    """IMP: prune rounds in the run (0: a one-shot method)."""


@_event
@dataclass(frozen=True)
class StageFinished(Event):
    stage: str
    seconds: float


@_event
@dataclass(frozen=True)
class BatchProgress(Event):
    stage: str
    epoch: int
    """1-based epoch number over the whole run."""
    epochs: int
    batch: int
    """Batches done in this epoch."""
    batches: int
    loss: float
    """Mean training loss over the batches done so far in this epoch."""
    img_per_s: float
    elapsed: float
    """Seconds since the epoch started."""


@_event
@dataclass(frozen=True)
class EpochEnd(Event):
    stage: str
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    """Top-1 accuracy on the test split, in percent."""
    lr: float
    """Learning rate used during this epoch."""
    seconds: float
    img_per_s: float
    density: float = 1.0
    """Fraction of prunable weights that are non-zero during this epoch."""
    round: int = 0
    """IMP: the round this epoch trains in (epochs count on across rounds)."""


@_event
@dataclass(frozen=True)
class Pruned(Event):
    method: str
    scope: str
    budget: str
    target_density: float
    density: float
    """Achieved fraction of prunable weights kept."""
    kept: int
    total: int
    layers: list[dict[str, Any]]
    """[{name, params, kept, density}] in model order."""
    collapsed_layers: list[str]
    overlap: dict[str, int] | None = None
    """ECS: {"both", "weight_only", "grad_only"} counts of kept weights."""
    seconds: float = 0.0
    ablate: str = "none"
    """Sanity-check ablation applied to the mask: none | shuffle | reinit | invert."""
    round: int = 0
    """IMP: the round this mask starts (1..rounds); 0 for one-shot methods."""
    rounds: int = 0
    distribution: str = "global"
    """Per-layer budget: global | uniform | erk | er | from (`--distribution-from`)."""
    structure: str = "weight"
    """weight | channel (whole groups of coupled channels removed)."""
    channels: dict[str, int] | None = None
    """Channel structure: channels kept per group (named by the layer rooting it)."""
    macs: int | None = None
    """Channel structure: multiply-accumulates per image of the smaller model."""
    dense_macs: int | None = None
    """... and of the dense model."""


@_event
@dataclass(frozen=True)
class LatencyMeasured(Event):
    """The run's measured CPU latency (`latency.record`: dense, fp32, int8, speed-ups)."""

    latency: dict[str, Any]


@_event
@dataclass(frozen=True)
class MaskApplied(Event):
    """The mask is in force from here on; the pruned model's test accuracy before any
    training with it (None where it is not measured: IMP's rounds, which train next)."""

    test_acc: float | None = None
    test_loss: float | None = None
    round: int = 0


@_event
@dataclass(frozen=True)
class MaskUpdated(Event):
    """Dynamic sparse training (SET, RigL) moved connections after optimizer step `step`."""

    step: int
    """Optimizer steps taken with the mask, over the whole run."""
    epoch: int
    moved: int
    """Connections new in the mask (as many left it)."""
    drop_fraction: float
    """The fraction of each layer's kept weights this update moved (cosine-decayed)."""
    kept: int
    """Weights in the mask (every layer's count, unchanged by an update)."""
    layers: dict[str, int] | None = None
    """`moved` by layer (prunable weight name -> connections new in its mask; a layer that
    moved none is left out). None in an events.jsonl written before it was recorded."""


@_event
@dataclass(frozen=True)
class Evaluated(Event):
    """The test pass of a model no epoch evaluated (a run that ends without training)."""

    test_acc: float
    test_loss: float


@_event
@dataclass(frozen=True)
class RoundDone(Event):
    """IMP: round `round` of `rounds` is trained (round 0: the dense model); its result is the
    run's numbers now."""

    round: int
    rounds: int
    epochs_done: int


@_event
@dataclass(frozen=True)
class Quantized(Event):
    bits: int
    unique_before: int
    unique_after: int
    layers: list[dict[str, Any]]
    """[{name, unique_before, unique_after}]"""
    test_acc: float | None = None
    int8_test_acc: float | None = None
    seconds: float = 0.0


@_event
@dataclass(frozen=True)
class Exported(Event):
    path: str
    dense_bytes: int
    sparse_bytes: int
    compressed_bytes: int


@_event
@dataclass(frozen=True)
class CheckpointSaved(Event):
    path: str
    epoch: int
    best: bool = False


@_event
@dataclass(frozen=True)
class Log(Event):
    message: str
    level: str = "info"
    """info | warning | error"""


@_event
@dataclass(frozen=True)
class RunFinished(Event):
    status: str
    """finished | stopped"""
    test_acc: float | None
    summary: dict[str, Any]
    seconds: float


@_event
@dataclass(frozen=True)
class RunFailed(Event):
    error: str
    """Exception class name."""
    message: str
    """One line a user can act on."""
    traceback: str = ""


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its JSON dict (as written to events.jsonl)."""
    data = dict(data)
    kind = data.pop("event", None)
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kept = {k: v for k, v in data.items() if k in fields}
    for k, v in kept.items():
        _check_type(kind, k, v, str(fields[k].type))
    return cls(**kept)


_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
    "dict[str, Any]": (dict,), "list[dict[str, Any]]": (list,), "list[str]": (list,),
    "dict[str, int]": (dict,),
}  # fmt: skip


def fits(value: Any, annotation: str) -> bool:
    """Whether a JSON value is of a dataclass field's kind, its annotation as a string
    (`float | None`, `list[str]`, ...): None fits an optional field, a bool no number; a
    `dict[str, int]` holds counts only (its values are summed)."""
    base, optional = annotation.removesuffix(" | None"), annotation.endswith(" | None")
    types = _SCALARS.get(base)
    if types is None or (optional and value is None):
        return True
    if base == "dict[str, int]" and isinstance(value, dict):
        return all(fits(v, "int") for v in value.values())
    return isinstance(value, types) and (not isinstance(value, bool) or bool in types)


def _check_type(kind: str, name: str, value: Any, annotation: str) -> None:
    """A damaged events.jsonl ("epoch": "3") is refused here, not deep inside a plot."""
    if not fits(value, annotation):
        raise ValueError(f"{kind}.{name} must be {annotation}, got {value!r}")


def kinds() -> list[str]:
    """All event kinds, snake_case."""
    return sorted(_REGISTRY)
