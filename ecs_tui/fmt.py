"""How the CLI and the app write numbers: percentages, byte sizes, size ratios (the engine's
`summary.size_ratio`), durations.

One function per kind, so `ecs runs`, `ecs sweep`, the printers and every view of the app say
`95.00%`, `1.23 MiB`, `12.3x` and `1:02:03` the same way.
"""

from __future__ import annotations

from typing import Any

from ecs_core.summary import size_ratio

__all__ = ["hms", "pct", "run_time", "size", "size_ratio"]


def pct(value: Any, digits: int = 2, none: str = "-", sign: str = "%") -> str:
    """`95.00%` for an accuracy in percent; `none` for a missing (or non-numeric) value."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return none
    return f"{value:.{digits}f}{sign}"


def size(n: int | None, grouped: bool = False) -> str:
    """`1.23 MiB` from a MiB up, else `456.7 KiB`; `grouped` puts thousands separators in."""
    if n is None:
        return "-"
    comma = "," if grouped else ""
    return f"{n / 2**20:{comma}.2f} MiB" if n >= 2**20 else f"{n / 1024:{comma}.1f} KiB"


def hms(seconds: float) -> str:
    """`2:05`, or `1:02:05` from an hour up."""
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def run_time(seconds: Any, img_per_s: Any) -> str | None:
    """`0:21 wall · 1,044 img/s training (last epoch)`: a run's time and training speed (the
    Overview and `ecs report`); None when neither is known."""
    parts = []
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        parts.append(f"{hms(seconds)} wall")
    if isinstance(img_per_s, int | float) and not isinstance(img_per_s, bool) and img_per_s > 0:
        parts.append(f"{img_per_s:,.0f} img/s training (last epoch)")
    return " · ".join(parts) or None


def spread_text(c: dict[str, Any]) -> str:
    """How a config (config.json's dict) spreads the density over layers, as a line says it:
    global, layer (the scope), erk, er, or "layers as RUN" (`--distribution-from`)."""
    from ecs_core.config import spread, spread_word

    if c.get("distribution_from"):
        return f"layers as {c['distribution_from']}"
    return spread_word(spread(c["method"], c.get("scope", "global"), c.get("distribution", "auto")))
