"""Fast exact 1-D k-means: Lloyd steps on sorted values, from two starts.

1-D k-means has structure a general k-means does not use: once the values are sorted, every
cluster of a Lloyd step is a contiguous run, bounded by the midpoints between neighbouring
centroids. So we sort once; each Lloyd step is then `searchsorted` of the k-1 midpoints plus
prefix sums for the means: O(k log n) per step instead of sklearn's O(n k) distance matrix.

Lloyd only finds a local optimum, and from Deep Compression's linear initialisation it often
leaves too many centroids in the sparse tails (3-10% above the optimal SSE on a layer, ~20%
where sklearn's tolerance stops it). So we also run Lloyd from a second start, the optimal
clustering of the values grouped into at most 256 contiguous bins (an O(k B^2) dynamic
program, Bellman 1973 / Wang and Song 2011 for the 1-D case), and keep whichever of the two
ends with the lower SSE. The first descent is exactly sklearn's (same steps, same stopping
rule), so the result is never worse than sklearn's; the second lands within ~0.05% of the
optimum in practice (VGG16 at 5%: 1.0004x; 512 bins gave 1.0001x for three times the time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ITER = 300  # Lloyd steps per descent, as sklearn's KMeans default
TOL = 1e-4  # sklearn's KMeans default: stop when the centroids move < TOL * var(x) in total
DP_BINS = 256  # bins for the optimal-clustering start (exact when n <= DP_BINS)


@dataclass
class KMeans1D:
    """Result of `kmeans_1d`: sorted centroids, a code per input value, and the SSE."""

    centroids: np.ndarray
    """float64, ascending, length k."""
    codes: np.ndarray
    """int64 index into `centroids` for every input value, in input order."""
    sse: float
    """Sum of squared distances of the values to their centroid (float64)."""
    iterations: int
    """Lloyd steps taken, over both descents."""
    start: str = "linear"
    """Which start gave the result: "linear" or "dp"."""


def linear_init(values: np.ndarray, k: int) -> np.ndarray:
    """k centroids evenly spaced between min and max (Deep Compression's linear init)."""
    return np.linspace(float(np.min(values)), float(np.max(values)), k)


def kmeans_1d(
    values: np.ndarray, init: np.ndarray, max_iter: int = MAX_ITER, dp: bool = True
) -> KMeans1D:
    """Cluster 1-D `values` by Lloyd from `init` and (if `dp`) from the binned optimum too.

    The descent from `init` is sklearn's (same assignment, same mean update, same empty-cluster
    rule, same stopping rule), so with `dp=False` the result is sklearn
    KMeans(init=init, n_init=1)'s, and with `dp` the SSE is never worse than it. (Values lying
    exactly on a midpoint between two centroids may be assigned differently: sklearn's float
    distances break such ties by rounding. Real weights almost never tie.)
    """
    x = np.asarray(values).ravel()
    order = np.argsort(x)
    return kmeans_sorted(x[order].astype(np.float64), order, init, max_iter, dp)


class _Sorted:
    """Sorted values with prefix sums of x and x**2: any run's sum, mean and SSE in O(1)."""

    def __init__(self, s: np.ndarray) -> None:
        self.s = s
        self.p1 = np.concatenate(([0.0], np.cumsum(s)))
        self.p2 = np.concatenate(([0.0], np.cumsum(s * s)))

    def cost(self, lo: np.ndarray, hi: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Sum of (x - a)**2 over s[lo:hi] (vectorised)."""
        n = hi - lo
        return self.p2[hi] - self.p2[lo] - 2 * a * (self.p1[hi] - self.p1[lo]) + n * a * a

    def sse(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Within-run SSE around the run's own mean (0 for empty runs)."""
        n = np.maximum(hi - lo, 1)
        t = self.p1[hi] - self.p1[lo]
        return np.maximum(self.p2[hi] - self.p2[lo] - t * t / n, 0.0)

    def bounds(self, c: np.ndarray) -> np.ndarray:
        """Cluster j is s[b[j]:b[j+1]]; a point on a midpoint goes to the lower cluster, as
        argmin over distances does (sklearn breaks ties the same way)."""
        inner = np.searchsorted(self.s, (c[:-1] + c[1:]) * 0.5, side="right")
        return np.concatenate(([0], inner, [len(self.s)]))


def _relocate_empty(
    d: _Sorted, c_old: np.ndarray, b: np.ndarray, sums: np.ndarray, counts: np.ndarray
) -> None:
    """Re-seed empty clusters on the points farthest from their centroid, as sklearn's Lloyd
    does (`_relocate_empty_clusters_dense`): each such point leaves its cluster's sum and count
    and becomes a one-point cluster. Same rule, same trajectory."""
    empty = np.flatnonzero(counts == 0)
    dist = (d.s - np.repeat(c_old, np.diff(b))) ** 2
    far = np.argpartition(dist, -len(empty))[-len(empty) :]
    owner = np.searchsorted(b, far, side="right") - 1
    np.subtract.at(sums, owner, d.s[far])
    np.subtract.at(counts, owner, 1)
    sums[empty] = d.s[far]
    counts[empty] = 1


def lloyd(
    d: _Sorted, c: np.ndarray, max_iter: int, tol: float = 0.0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Lloyd steps from centroids `c`: (c, bounds, steps).

    Stops when the assignment is a fixed point or, as sklearn's `_kmeans_single_lloyd` does,
    when the centroids moved by at most `tol` in total squared distance in one step (the
    bounds returned are then those of the final centroids, sklearn's last E-step).
    """
    c = np.sort(np.asarray(c, dtype=np.float64))
    k = len(c)
    b = d.bounds(c)
    it = 0
    while it < max_iter:
        it += 1
        counts = np.diff(b)
        sums = d.p1[b[1:]] - d.p1[b[:-1]]
        if len(d.s) >= k and (counts == 0).any():
            _relocate_empty(d, c, b, sums, counts)
        live = counts > 0
        old = c.copy()
        c[live] = sums[live] / counts[live]
        shift = float(np.sum((c - old) ** 2))
        c.sort()  # a permutation of cluster ids: same clustering, sorted for the midpoints
        new_b = d.bounds(c)
        if np.array_equal(new_b, b):
            break
        b = new_b
        if shift <= tol:
            break
    return c, b, it


def dp_start(d: _Sorted, k: int, bins: int = DP_BINS) -> np.ndarray:
    """Centroids of the optimal k-clustering of the sorted values grouped into contiguous bins.

    Bin edges are the union of equal-count and equal-width cuts, so neither the dense centre
    nor a gap between the two signs of a pruned layer is lumped together. Exact when n <= bins.
    """
    n = len(d.s)
    if n <= bins:
        edges = np.arange(n + 1)
    else:
        by_count = np.round(np.linspace(0, n, bins // 2 + 1)).astype(np.int64)
        by_value = np.searchsorted(d.s, np.linspace(d.s[0], d.s[-1], bins // 2 + 1)[1:-1])
        edges = np.unique(np.concatenate((by_count, by_value, [0, n])))
    m = len(edges) - 1
    i, j = np.arange(m + 1)[:, None], np.arange(m + 1)[None, :]
    cost = np.where(j > i, d.sse(edges[i], edges[j]), np.inf)  # cost[i, j]: bins i..j-1
    best = cost[0].copy()  # best[j]: bins 0..j-1 in one cluster
    arg = np.zeros((k, m + 1), np.int64)
    for r in range(1, min(k, m)):
        total = best[:, None] + cost
        arg[r] = np.argmin(total, axis=0)
        best = total[arg[r], np.arange(m + 1)]
    cuts = [m]
    for r in range(min(k, m) - 1, 0, -1):
        cuts.append(int(arg[r][cuts[-1]]))
    lo, hi = edges[np.array([0, *cuts[:0:-1]])], edges[np.array(cuts[::-1])]
    c = (d.p1[hi] - d.p1[lo]) / (hi - lo)
    if len(c) < k:  # fewer bins than clusters: pad with the largest values
        c = np.concatenate((c, d.s[-(k - len(c)) :]))
    return c


def kmeans_sorted(
    s: np.ndarray, order: np.ndarray, init: np.ndarray, max_iter: int, dp: bool = True
) -> KMeans1D:
    """`kmeans_1d` on sorted float64 values `s`; `order` maps them back to input order."""
    d = _Sorted(s)
    c, b, steps = lloyd(d, init, max_iter, TOL * float(np.var(s)))
    # SSE around the centroids returned (a descent stopped by tolerance has not moved them to
    # its clusters' means), so the comparison below is between what each start would store
    sse, start = float(d.cost(b[:-1], b[1:], c).sum()), "linear"
    if dp and len(c) > 1:
        c2, b2, it = lloyd(d, dp_start(d, len(c)), max_iter)
        steps += it
        sse2 = float(d.cost(b2[:-1], b2[1:], c2).sum())
        if sse2 < sse:
            c, b, sse, start = c2, b2, sse2, "dp"
    codes_sorted = np.repeat(np.arange(len(c)), np.diff(b))
    codes = np.empty_like(codes_sorted)
    codes[order] = codes_sorted
    exact = float(np.sum((s - c[codes_sorted]) ** 2))
    return KMeans1D(c, codes, exact, steps, start)
