"""Finding run directories and describing each in one row, without ever failing on a bad one.

A run directory is any folder holding `config.json`. Sweeps nest them (`sweep/<cell>/`), so the
search walks down, but never into a run directory itself (checkpoints live there).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecs_core import safeio
from ecs_core.runfiles import DIED, INCOMPLETE, UNREADABLE, died_reason, run_state
from ecs_core.stats.errors import StatsError
from ecs_core.stats.summary import integer, num, speedup
from ecs_core.summary import Summary

BROKEN_CONFIG = "config.json is damaged (not a readable JSON object): restore it or delete the run"
BROKEN_SUMMARY = (
    "summary.json is damaged (not a readable JSON object): restore it, or resume the run "
    "(ecs run --resume) to write it again"
)


@dataclass(frozen=True)
class RunInfo:
    """One run as a row: what it was asked to do and what it achieved so far."""

    path: str
    name: str
    status: str
    """finished | stopped | failed | running | died | incomplete | unreadable"""
    model: str
    dataset: str
    method: str
    scope: str
    budget: str
    width: float | None
    seed: int | None
    epochs: int | None
    epochs_done: int | None
    target_density: float | None
    density: float | None
    """Achieved, over prunable weights."""
    test_acc: float | None
    quant_acc: float | None
    """Test accuracy of the shared-weight (P+Q) model."""
    int8_acc: float | None
    """Test accuracy of the int8 inference model built from the shared-weight one."""
    error: str | None
    ablate: str = "none"
    """--ablate: none | shuffle | reinit | invert (a separate row in `ecs compare`)."""
    structure: str = "weight"
    """--structure: weight | channel (a separate row in `ecs compare`)."""
    fp32_speedup: float | None = None
    """Measured at the end of the run: dense fp32 latency / final fp32 latency, batch 64, one
    CPU thread (`latency.py`); None when not measured."""
    int8_speedup: float | None = None
    """... dense fp32 latency / int8 latency, batch 64."""
    collapsed: int = 0
    """Layers pruning left with no weights at all (possible with --allow-collapse)."""
    thinnest: int | None = None
    """The fewest weights any prunable layer kept (a layer of 36,864 left with 11 is a
    bottleneck even before it collapses); None without a per-layer report."""
    recipe: tuple[tuple[str, Any], ...] = ()
    """(field, value) of config.json for every `config.recipe_fields()` (a field missing from
    an older config: what the run did, `config.before_options`, else RunConfig's default):
    runs with equal recipes differ only in the seed."""
    distribution: str = "auto"
    """--distribution (auto in a run from before it); its `--distribution-from` in `source`."""
    source: str = ""
    seconds: float | None = None
    """The run's wall time, as its summary says once it ended (None: not yet)."""

    @property
    def method_tag(self) -> str:
        """The method as run names spell it: `snip`, `ecs-union`, `snip-layer`, `snip-shuffle`."""
        from ecs_core.config import method_tag

        return method_tag(
            self.method, self.budget, self.scope, self.ablate, self.distribution, self.source,
            self.structure, dict(self.recipe),
        )  # fmt: skip

    @property
    def pq_acc(self) -> float | None:
        """P+Q as the original report means it (pruned + weight sharing + 8 bits): the int8
        model's test accuracy, else the shared-weight fp32 model's (no int8 model was built)."""
        return self.int8_acc if self.int8_acc is not None else self.quant_acc


def _read(path: Path) -> Any:
    try:
        return safeio.read_json(path)
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _text(value: Any, default: str = "?") -> str:
    return value if isinstance(value, str) and value else default


def run_info(path: str | Path) -> RunInfo:
    """Describe one run directory; unreadable files give `?` fields, never an exception."""
    path = Path(path)
    config = _read(path / "config.json")
    config = config if isinstance(config, dict) else {}
    summary = _read(path / "summary.json")
    damaged = not isinstance(summary, dict) and os.path.lexists(path / "summary.json")
    summary = summary if isinstance(summary, dict) else {}
    status = UNREADABLE.word if not config else run_state(path, summary)
    if damaged and status in (DIED.word, INCOMPLETE.word):  # it wrote how it ended: unreadable
        status = UNREADABLE.word
    s = Summary.from_dict(summary)  # the one typed reading of summary.json
    q = s.quant or {}
    method = _text(s.method or config.get("method"))
    target = num(s.target_density if s.target_density is not None else config.get("density"))
    density = num(s.density)
    if method == "none":
        target, density = 1.0, density if density is not None else 1.0
    error = s.error
    if status == "died":
        error = died_reason(path)
    if status == "unreadable":
        error = BROKEN_CONFIG if not config else BROKEN_SUMMARY
    return RunInfo(
        path=str(path), name=path.name, status=status,
        model=_text(s.model or config.get("model")),
        dataset=_text(s.dataset or config.get("dataset")),
        method=method, scope=_text(config.get("scope"), "global"),
        budget=_text(s.budget or config.get("budget"), "exact"),
        width=num(config.get("width")),
        seed=s.seed if s.seed is not None else integer(config.get("seed")),
        epochs=integer(config.get("epochs")), epochs_done=s.epochs_done,
        target_density=target, density=density, test_acc=num(s.test_acc),
        quant_acc=num(q.get("test_acc")), int8_acc=num(q.get("int8_test_acc")), error=error,
        ablate=_text(config.get("ablate"), "none"),
        structure=_text(config.get("structure"), "weight"),
        fp32_speedup=speedup(s.latency, "fp32"), int8_speedup=speedup(s.latency, "int8"),
        collapsed=len(s.collapsed_layers or []), thinnest=_thinnest(s.layers),
        recipe=_recipe(config),
        distribution=_text(config.get("distribution"), "auto"),
        source=_text(config.get("distribution_from"), ""),
        seconds=num(s.seconds),
    )  # fmt: skip


def _recipe(config: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    from ecs_core.config import RunConfig, before_options, recipe_fields

    defaults = RunConfig()
    before = before_options(config)  # an option newer than the run: what the run did
    out = []
    for name in recipe_fields():
        value = config.get(name, before.get(name, getattr(defaults, name)))
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = json.dumps(value, sort_keys=True)  # hashable, whatever the file holds
        out.append((name, value))
    return tuple(out)


def _thinnest(layers: Any) -> int | None:
    rows = layers if isinstance(layers, list) else []
    kept = [integer(r.get("kept")) for r in rows if isinstance(r, dict)]
    kept = [k for k in kept if k is not None]
    return min(kept) if kept else None


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories given directly or found under the given folders, sorted, no duplicates.

    Raises `StatsError` for a path that does not exist or is a plain file.
    """
    found: dict[str, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise StatsError(f"{p} does not exist")
        if not p.is_dir():
            raise StatsError(f"{p} is not a directory")
        if os.path.lexists(p / "config.json"):  # even a damaged one (a folder, a link)
            found[str(p.resolve())] = p
            continue
        for root, dirs, files in os.walk(p, followlinks=False):
            if "config.json" in files or "config.json" in dirs:
                found[str(Path(root).resolve())] = Path(root)
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found.values())
