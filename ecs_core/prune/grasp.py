"""GraSP (Wang, Zhang & Grosse, "Picking Winning Tickets Before Training by Preserving Gradient
Flow", ICLR 2020): at initialisation, keep the weights whose removal would hurt gradient flow.

Gradient flow is gᵀg. Removing a set of weights (δ = -θ on them) changes it, to first order, by
2 δᵀHg, so the paper scores each weight by S(-θ) = -θ ⊙ Hg and removes the top fraction by S:
a large S means removing the weight *raises* gᵀg. The kept weights are therefore the ones with
the lowest -θ ⊙ Hg, i.e. the highest θ ⊙ Hg (the reference code keeps `-θ·Hg <= threshold`,
where the threshold is the smallest of the removed top scores; Synaptic-Flow scores θ·Hg and
keeps the largest). Note the sign is kept: a weight with a large *negative* θ ⊙ Hg is the first
to go, unlike SNIP's |g ⊙ θ|. We return θ ⊙ Hg so that the shared top-k keeps the highest.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from ecs_core.models import prunable_weights

SAMPLES_PER_CLASS = 10
"""`--grasp-samples balanced`: images per class in each scoring sample, as the original's
`GraSP_fetch_data` on CIFAR-10."""
TEMPERATURE = 200.0
"""Logits are divided by T before the loss, as in both reference implementations (GraSP's and
Synaptic-Flow's): at initialisation it keeps the softmax away from saturation."""


def _batches(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], n: int):
    seen = 0
    for batch in batches:
        yield batch
        seen += 1
        if seen >= n:
            return
    if seen == 0:
        raise ValueError("no batches to score connections with")


def balanced_batches(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], classes: int, n: int = 1,
    per_class: int = SAMPLES_PER_CLASS,
) -> list[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """`n` class-balanced samples as the original GraSP draws them: the first `per_class`
    images of each class from a pass over `batches` (a new pass for each sample), class by
    class, each sample split in two halves that are scored as two batches (2n batches in all).
    A class with fewer images in a pass gives what it has."""
    out = []
    for _ in range(n):
        xs: list[list[torch.Tensor]] = [[] for _ in range(classes)]
        ys: list[list[torch.Tensor]] = [[] for _ in range(classes)]
        have = [0] * classes
        for x, y in batches:
            for c in range(classes):
                if have[c] < per_class:
                    pick = (y == c).nonzero().flatten()[: per_class - have[c]]
                    xs[c].append(x[pick])
                    ys[c].append(y[pick])
                    have[c] += pick.numel()
            if min(have) >= per_class:
                break
        if sum(have) == 0:
            raise ValueError("no batches to score connections with")
        x, y = torch.cat([t for c in xs for t in c]), torch.cat([t for c in ys for t in c])
        half = x.shape[0] // 2
        out += [(x[:half], y[:half]), (x[half:], y[half:])] if half else [(x, y)]
    return out


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x) / temperature, y)


def _hvp(g_b: tuple, g: list[torch.Tensor], params: list) -> tuple[torch.Tensor, ...]:
    """H_b g, by one backward of z = g_b(θ) · g (g_b carrying its graph, g a constant)."""
    z = sum((a * b).sum() for a, b in zip(g_b, g, strict=True))
    return torch.autograd.grad(z, params)


def _add(acc: list[torch.Tensor] | None, new: tuple) -> list[torch.Tensor]:
    """acc += new, in place; the first `new` becomes the accumulator (no zero tensors)."""
    if acc is None:
        return list(new)
    return [a.add_(b) for a, b in zip(acc, new, strict=True)]


def hessian_gradient_product(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_batches: int = 1,
    temperature: float = TEMPERATURE,
    bn: str = "train",
) -> dict[str, torch.Tensor]:
    """Hg for the prunable weights, with L the sum over `n_batches` batches of the mean
    cross-entropy of logits / T: g = ∇L, H = ∇²L (both with respect to the prunable weights).

    Batch by batch, so memory is that of two backward passes whatever n is: 1) sum g over the
    batches (plain backward); 2) for each batch, z = g_bᵀ g (g_b with its graph, g a constant)
    and backward z, which accumulates H_b g; Σ_b H_b g = Hg. The last batch's gradient is
    taken with its graph in step 1 already and that graph serves step 2 too, so one batch
    (the `--score-batches 1` default) costs one forward, one backward and one double backward
    (the reference: two of each of the first). The n batches are drawn once and kept (images
    only, no graphs), so both passes see the same images.
    Batch norm in `bn` mode (train: batch statistics; eval: running ones); restores the
    batch-norm statistics, and never touches `.grad`.
    """
    weights = prunable_weights(model)
    names, params = list(weights), list(weights.values())
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    was_training = model.training
    model.train(bn == "train")
    *first, last = list(_batches(batches, n_batches))
    try:
        g = None
        for x, y in first:  # 1) g = sum of the batch gradients
            g = _add(g, torch.autograd.grad(_loss(model, x, y, temperature), params))
        g_last = torch.autograd.grad(_loss(model, *last, temperature), params, create_graph=True)
        g = _add(g, tuple(t.detach() for t in g_last))  # one batch: g is g_last's values
        hg = _add(None, _hvp(g_last, g, params))  # 2) d/dθ (g_b(θ) · g) = H_b g
        del g_last
        for x, y in first:
            gb = torch.autograd.grad(_loss(model, x, y, temperature), params, create_graph=True)
            hg = _add(hg, _hvp(gb, g, params))
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        model.train(was_training)
    return dict(zip(names, hg, strict=True))


def grasp_scores(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_batches: int = 1,
    bn: str = "train",
    samples: str = "batch",
    linear: str = "keep",
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """θ ⊙ Hg: higher = keep (= the paper's S(-θ) = -θ ⊙ Hg, lower = keep; see the module doc).
    `samples` (`--grasp-samples`): batch (the first `n_batches` batches) | balanced (`n_batches`
    class-balanced samples, `balanced_batches`; the classes: the last layer's outputs).
    `linear` (`--grasp-linear`): keep | xavier: score a copy of the model whose `nn.Linear`
    weights are re-drawn with Xavier normal (from `generator`), as the original GraSP's
    `reinit`; θ and Hg are then the copy's (the caller's mask applies to the model's own)."""
    if samples == "balanced":
        classes = list(prunable_weights(model).values())[-1].shape[0]
        batches = balanced_batches(batches, classes, n_batches)
        n_batches = len(batches)
    if linear == "xavier":
        model = reinit_linear(model, generator)
    hg = hessian_gradient_product(model, batches, n_batches, bn=bn)
    weights = prunable_weights(model)
    return {k: hg[k].mul_(weights[k].detach()) for k in weights}  # hg is ours: in place


def reinit_linear(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """A copy of `model` with every `nn.Linear` weight re-drawn, Xavier normal (the original
    GraSP scores such a copy); `model` itself is untouched."""
    scored = copy.deepcopy(model)
    with torch.no_grad():
        for module in scored.modules():
            if isinstance(module, nn.Linear):  # drawn on the CPU, as the generator is
                w = torch.empty(module.weight.shape)
                module.weight.copy_(nn.init.xavier_normal_(w, generator=generator))
    return scored
