"""Is a difference between two compare cells beyond seed noise? Its standard error, and a mark.

Two cells of `ecs compare` are two samples of test accuracy over seeds. Their difference in
means has the standard error of Welch's unequal-variance form, √(s₁²/n₁ + s₂²/n₂) (sample
variances, n - 1). Where both cells hold the same runs (a P+Q row and its P row) or runs paired
by seed (a method's `--ablate` check against the method: same seed, same initial weights, the
ablation of the same mask), the difference is taken per seed, and its standard error is that of
a mean of the per-seed differences, s_d/√n: the seed-to-seed noise both share cancels.

A difference is *beyond* a threshold k when |difference| > k·SE (default k = 2). With 3 seeds
this is a rough screen, not a test at a known error rate: see the README ("Reading `ecs compare
--baseline`") for what it means over many cells.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

THRESHOLD = 2.0
"""Default: a difference beyond 2 standard errors is marked."""


@dataclass(frozen=True)
class Difference:
    """A cell's mean minus its baseline's, in points, with its standard error."""

    diff: float
    se: float | None
    """None where a side has a single run (no spread to estimate)."""
    n: int
    """Seed pairs when paired; else the baseline's number of runs (the cell's own is its n)."""
    paired: bool

    def beyond(self, threshold: float = THRESHOLD) -> bool:
        """|diff| > threshold · SE (False without an SE; an SE of 0 with a nonzero diff: True)."""
        return self.se is not None and abs(self.diff) > threshold * self.se

    @property
    def z(self) -> float | None:
        """The difference in standard errors (None without an SE or with an SE of 0)."""
        return self.diff / self.se if self.se else None


def welch_se(a: list[float], b: list[float]) -> float | None:
    """√(s_a²/n_a + s_b²/n_b), Welch's standard error of mean(a) - mean(b); None if a side
    has fewer than 2 values."""
    if len(a) < 2 or len(b) < 2:
        return None
    return math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))


def unpaired(a: list[float], b: list[float]) -> Difference:
    """mean(a) - mean(b) with Welch's standard error."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    return Difference(diff, welch_se(a, b), len(b), paired=False)


def paired(a: dict[int, float], b: dict[int, float]) -> Difference:
    """The mean of a[s] - b[s] over the seeds s both have, SE = s_d/√n (None under 2 pairs)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("no seed in common: nothing to pair")
    d = [a[s] - b[s] for s in seeds]
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else None
    return Difference(statistics.fmean(d), se, len(d), paired=True)
