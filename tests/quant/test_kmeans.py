"""k-means weight sharing: zeros stay zero, at most 2**bits values, SSE no worse than sklearn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from ecs_core.models import build_model, prunable_weights
from ecs_core.quant.kmeans import kmeans_1d, linear_init, share_weights


def optimal_sse(x: np.ndarray, k: int) -> float:
    """Optimal 1-D k-means SSE by dynamic programming over sorted values, O(k n^2) (small n)."""
    s = np.sort(x.astype(np.float64))
    n = len(s)
    p1 = np.concatenate(([0.0], np.cumsum(s)))
    p2 = np.concatenate(([0.0], np.cumsum(s * s)))
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    cnt = np.maximum(j - i, 1)
    cost = p2[j] - p2[i] - (p1[j] - p1[i]) ** 2 / cnt  # cost[i, j]: one cluster s[i:j]
    cost[j <= i] = np.inf
    best = cost[0].copy()  # best[j]: first j values in one cluster
    for _ in range(k - 1):
        best = np.min(best[:, None] + cost, axis=0)
    return float(best[n])


def masked_vgg(density: float = 0.1, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    model = build_model("vgg16", 10, 1, 0.125)
    mask = {}
    with torch.no_grad():
        for name, w in prunable_weights(model).items():
            mask[name] = torch.rand_like(w) < density
            w.mul_(mask[name])
    return model, mask


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_zeros_stay_zero_and_at_most_2_pow_bits_values(bits: int) -> None:
    """Pruned weights are exactly 0 afterwards; each layer has <= 2**bits non-zero values."""
    model, mask = masked_vgg()
    report = share_weights(model, bits, mask)
    for name, w in prunable_weights(model).items():
        assert torch.all(w[~mask[name]] == 0), name
        assert torch.unique(w[w != 0]).numel() <= 2**bits, name
    assert report.unique_after <= len(report.layers) * 2**bits
    assert report.unique_before > report.unique_after


def test_mask_zeroes_weights_outside_it() -> None:
    """A mask given to share_weights also forces the weights outside it to 0."""
    torch.manual_seed(1)
    model = build_model("vgg16", 10, 1, 0.125)
    weights = prunable_weights(model)
    mask = {k: torch.rand_like(w) < 0.2 for k, w in weights.items()}
    share_weights(model, 4, mask)
    for name, w in weights.items():
        assert torch.count_nonzero(w[~mask[name]]) == 0
        assert torch.count_nonzero(w[mask[name]]) > 0


def test_report_rows_and_codes_rebuild_the_weights() -> None:
    """Rows give name/unique_before/unique_after/sse; codebook[codes] at `index` is the layer."""
    model, mask = masked_vgg(0.2)
    before = {k: int(m.sum()) for k, m in mask.items()}
    report = share_weights(model, 5, mask)
    rows = report.rows()
    assert [r["name"] for r in rows] == list(prunable_weights(model))
    assert set(rows[0]) == {"name", "unique_before", "unique_after", "sse"}
    for layer in report.layers:
        w = prunable_weights(model)[layer.name].detach().reshape(-1)
        assert layer.nnz == before[layer.name] == len(layer.codes)
        assert torch.equal(w[layer.index], layer.codebook[layer.codes])
        assert (
            layer.unique_before == torch.unique(w[layer.index]).numel() or layer.unique_before > 32
        )


def test_include_bn_shares_batch_norm_weights() -> None:
    """With include_bn, batch-norm weights get <= 2**bits values too (the original did this)."""
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 1, 0.25)
    bns = {
        f"{n}.weight": m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)
    }
    for m in bns.values():
        m.weight.data.uniform_(0.5, 1.5)
    report = share_weights(model, 2, include_bn=True)
    assert set(bns) <= {r.name for r in report.layers}
    for m in bns.values():
        assert torch.unique(m.weight.data).numel() <= 4
    plain = share_weights(build_model("vgg16", 10, 1, 0.25), 2)
    assert not set(bns) & {r.name for r in plain.layers}


@pytest.mark.parametrize("seed", range(6))
def test_sse_no_worse_than_sklearn_same_init(seed: int) -> None:
    """Same data, same linear init: our SSE <= scikit-learn KMeans's (Lloyd, n_init=1)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 8_000))
    kind = seed % 3
    if kind == 0:
        x = rng.standard_normal(n) * 0.05
    elif kind == 1:
        x = rng.laplace(0, 0.02, n)
    else:  # pruned layers are bimodal: only the large-magnitude weights survive
        x = rng.standard_normal(n) * 0.05
        x = x[np.abs(x) > 0.06]
    k = 32
    init = linear_init(x, k)
    ours = kmeans_1d(x, init)
    km = KMeans(k, init=init.reshape(-1, 1), n_init=1, algorithm="lloyd").fit(x.reshape(-1, 1))
    sk = float(np.sum((x - km.cluster_centers_.ravel()[km.labels_]) ** 2))
    assert ours.sse <= sk * (1 + 1e-9)
    assert ours.sse == pytest.approx(np.sum((x - ours.centroids[ours.codes]) ** 2), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_linear_descent_alone_is_sklearns(seed: int) -> None:
    """dp=False: the same steps and stopping rule as sklearn's Lloyd, so the same clustering."""
    rng = np.random.default_rng(100 + seed)
    x = rng.laplace(0, 0.02, int(rng.integers(500, 20_000)))
    if seed % 2:
        x = x[np.abs(x) > 0.03]  # the two-signed shape a pruned layer has
    init = linear_init(x, 32)
    ours = kmeans_1d(x, init, dp=False)
    km = KMeans(32, init=init.reshape(-1, 1), n_init=1, algorithm="lloyd").fit(x.reshape(-1, 1))
    sk = float(np.sum((x - km.cluster_centers_.ravel()[km.labels_]) ** 2))
    assert ours.sse == pytest.approx(sk, rel=1e-9)
    assert np.allclose(np.sort(km.cluster_centers_.ravel()), ours.centroids, rtol=0, atol=1e-12)


def test_optimal_on_small_inputs() -> None:
    """Up to DP_BINS values the second start is the exact optimum (our own O(k n^2) DP)."""
    rng = np.random.default_rng(7)
    x = rng.laplace(0, 0.05, 250)
    for k in (4, 8, 32):
        opt = optimal_sse(x, k)
        lloyd_only = kmeans_1d(x, linear_init(x, k), dp=False).sse
        ours = kmeans_1d(x, linear_init(x, k)).sse
        assert opt <= lloyd_only * (1 + 1e-9)
        assert ours == pytest.approx(opt, rel=1e-9)


@pytest.mark.parametrize("dist", ["normal", "laplace", "bimodal"])
def test_within_half_a_percent_of_optimal_on_large_layers(dist: str) -> None:
    """On 20k values (binned start) the SSE is within 0.5% of the kmeans1d optimum."""
    kmeans1d = pytest.importorskip("kmeans1d")
    rng = np.random.default_rng(11)
    if dist == "normal":
        x = rng.standard_normal(20_000)
    elif dist == "laplace":
        x = rng.laplace(0, 1, 20_000)
    else:
        x = rng.standard_normal(60_000)
        x = x[np.abs(x) > 1.2]
    labels, centroids = kmeans1d.cluster(x, 32)
    opt = float(np.sum((x - np.asarray(centroids)[labels]) ** 2))
    ours = kmeans_1d(x, linear_init(x, 32))
    assert opt <= ours.sse * (1 + 1e-9)
    assert ours.sse <= opt * 1.005


def test_dp_matches_kmeans1d_package() -> None:
    """Our small DP and the kmeans1d package (used by the benchmark) agree on the optimum."""
    kmeans1d = pytest.importorskip("kmeans1d")
    x = np.random.default_rng(3).standard_normal(200)
    labels, centroids = kmeans1d.cluster(x, 8)
    sse = float(np.sum((x - np.asarray(centroids)[labels]) ** 2))
    assert sse == pytest.approx(optimal_sse(x, 8), rel=1e-9)


def test_few_distinct_values_are_kept_exactly() -> None:
    """A layer with <= 2**bits distinct values is left as it is (SSE 0)."""
    model = build_model("vgg16", 10, 1, 0.125)
    w = prunable_weights(model)["features.0.weight"]
    with torch.no_grad():
        w.copy_(torch.tensor([0.0, 0.5, -0.25, 1.0])[torch.randint(0, 4, w.shape)])
    before = w.detach().clone()
    report = share_weights(model, 2)
    assert torch.equal(w, before)
    assert report.layers[0].sse == 0.0 and report.layers[0].unique_after == 3


def test_bad_bits() -> None:
    with pytest.raises(ValueError, match="bits"):
        share_weights(build_model("vgg16", 10, 1, 0.125), 9)
