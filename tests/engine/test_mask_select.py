"""The shared top-k on arrays large enough for its sampled bracket (n >= 8 * SAMPLE), against a
stable sort: exact counts and the tie order (earlier weight first) whatever the scores look
like, including the shapes that once sent it the slow way (a mass of equal scores just under
the k-th, a lattice layout), and SynFlow's rounds against a ranking of the live weights alone."""

from __future__ import annotations

import pytest
import torch

from ecs_core.models import build_model
from ecs_core.prune.mask import SAMPLE, _bracket, keep_count, top_k
from ecs_core.prune.synflow import _Linearised, density_schedule, synflow_mask, synflow_scores_of


def sorted_top_k(flats: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """The k largest over all of `flats`, ties to the earlier entry: a stable descending sort."""
    flat = torch.cat(flats)
    order = torch.sort(flat, descending=True, stable=True).indices[:k]
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[order] = True
    return list(keep.split([f.numel() for f in flats]))


def layers(seed: int) -> list[torch.Tensor]:
    """Three layers, 1.2M scores: a (out, in, 3, 3) lattice whose kernel positions differ by
    orders of magnitude, 60% exact zeros in one layer, and a run of ties in another."""
    g = torch.Generator().manual_seed(seed)
    lattice = torch.rand(256, 256, 9, generator=g, dtype=torch.float64)
    lattice *= torch.logspace(0, 8, 9, dtype=torch.float64)  # per kernel position
    zeros = torch.rand(400_000, generator=g, dtype=torch.float64)
    zeros[torch.rand(400_000, generator=g) < 0.6] = 0.0
    tied = torch.rand(210_000, generator=g, dtype=torch.float64).mul_(1e4).round_()
    return [lattice.flatten(), zeros, tied]


@pytest.mark.parametrize("fraction", [0.97, 0.75, 0.5, 0.31, 0.05, 0.0007])
def test_top_k_is_the_stable_sorts_top_k(fraction: float) -> None:
    flats = layers(0)
    n = sum(f.numel() for f in flats)
    assert n >= 8 * SAMPLE  # the sampled bracket, not the small-input path
    k = keep_count(n, fraction)
    masks, v = top_k(flats, k)
    want = sorted_top_k(flats, k)
    assert all(torch.equal(m, w) for m, w in zip(masks, want, strict=True))
    assert sum(int(m.sum()) for m in masks) == k
    assert v == torch.cat(flats)[torch.cat(want)].min()


def test_top_k_keeps_earlier_weights_among_a_mass_of_ties() -> None:
    """k inside the run of zeros: the kept zeros are the first ones, in layer order."""
    flats = layers(1)
    positive = sum(int((f > 0).sum()) for f in flats)
    k = positive + 1000
    masks, v = top_k(flats, k)
    assert v == 0
    assert all(torch.equal(m, w) for m, w in zip(masks, sorted_top_k(flats, k), strict=True))


def test_the_bracket_steps_over_a_run_of_zeros_below_the_kth() -> None:
    """Most scores 0 and k just inside the positive ones: the bracket's low end is a positive
    score, so the band read is the scores near the k-th, not every zero."""
    g = torch.Generator().manual_seed(0)
    f = torch.rand(1_000_000, generator=g, dtype=torch.float64)
    f[:900_000] = 0.0
    k = 97_000
    lo, hi, side = _bracket([f], f.numel(), k)
    assert lo is not None and lo > 0 and hi is not None
    assert side == "top"
    assert torch.equal(top_k([f], k)[0][0], sorted_top_k([f], k)[0])


def live_ranking(scores: dict, mask: dict, d_k: float, scope: str) -> dict:
    """A round of SynFlow by the definition: the top-k over the live weights only."""
    names = list(scores)
    live = [scores[k].flatten()[mask[k].flatten()] for k in names]
    if scope == "global":
        total = sum(mask[k].numel() for k in names)
        kept = sorted_top_k(live, keep_count(total, d_k))
    else:
        kept = [sorted_top_k([v], keep_count(mask[k].numel(), d_k))[0]
                for k, v in zip(names, live, strict=True)]  # fmt: skip
    out = {}
    for k, keep in zip(names, kept, strict=True):
        new = torch.zeros(mask[k].numel(), dtype=torch.bool)
        new[mask[k].flatten()] = keep
        out[k] = new.view_as(mask[k])
    return out


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize(("density", "rounds"), [(0.5**0.25, 5), (0.02, 6)])
def test_synflow_rounds_equal_a_ranking_of_the_live_weights(
    scope: str, density: float, rounds: int, monkeypatch
) -> None:
    """Quarter-width VGG16 (0.94M weights). Its last conv sees a 2x2 map that a 2x2 max-pool
    reads at one position, so 5/9 of its weights carry no flow at init: the first rounds of
    the 5-round run keep some of those by position, later rounds keep only weights with
    flow. Every round of synflow_mask is replayed here by sorting the live scores."""
    from ecs_core.prune import synflow

    gathered = []
    live = synflow._top_live
    monkeypatch.setattr(synflow, "_top_live", lambda *a: gathered.append(a) or live(*a))
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 3, width=0.25)
    net = _Linearised(model, (3, 32, 32))
    mask = {k: torch.ones_like(net.tensors[k], dtype=torch.bool) for k in net.names}
    for d_k in density_schedule(density, rounds):
        mask = live_ranking(synflow_scores_of(net), mask, d_k, scope)
        net.prune_to(mask)
    ours = synflow_mask(model, density, scope, iterations=rounds)
    assert all(torch.equal(ours[k], mask[k]) for k in mask)
    assert not gathered  # every round ranked the full-size scores (`_top_flow`)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_synflow_invert_ranks_the_gathered_live_weights(scope: str) -> None:
    """`--ablate invert` keeps the lowest flow: pruned weights (flow 0) must not win, so
    those rounds gather the live scores; replayed by sorting them, negated."""
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 3, width=0.25)
    net = _Linearised(model, (3, 32, 32))
    mask = {k: torch.ones_like(net.tensors[k], dtype=torch.bool) for k in net.names}
    for d_k in density_schedule(0.1, 3):
        scores = {k: -s for k, s in synflow_scores_of(net).items()}
        mask = live_ranking(scores, mask, d_k, scope)
        net.prune_to(mask)
    ours = synflow_mask(model, 0.1, scope, iterations=3, lowest=True)
    assert all(torch.equal(ours[k], mask[k]) for k in mask)
