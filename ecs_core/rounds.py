"""Iterative magnitude pruning's schedule: how many rounds, and the density after each.

Frankle & Carbin (ICLR 2019) remove a fixed fraction p of the remaining weights per round, so
round r keeps (1 - p)^r; here the last round lands on the target density exactly (it removes
less than p when (1 - p)^R would overshoot). Torch-free: the config derives the run's length
(`RunConfig.total_epochs`) from it.
"""

from __future__ import annotations

import math


def imp_densities(density: float, fraction: float) -> list[float]:
    """[(1-p), (1-p)^2, ..., density]: the density after each round (empty at density 1)."""
    if density >= 1:
        return []
    rounds = max(1, math.ceil(math.log(density) / math.log(1 - fraction) - 1e-9))
    return [(1 - fraction) ** r for r in range(1, rounds)] + [density]
