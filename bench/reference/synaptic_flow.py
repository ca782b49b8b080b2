"""Synaptic-Flow's pruners (ganguli-lab/Synaptic-Flow, `Pruners/pruners.py`, `prune.py`,
`Layers/layers.py`, `Utils/generator.py`), re-implemented for the benchmark, not copied.

What the original does, and so what this does:

- **Masked-parameter model.** Every Conv2d, Linear and BatchNorm carries `weight_mask` (and
  `bias_mask`) buffers of ones and multiplies them into its weights on every forward.
  `masked_model` turns a copy of one of our models into that (same weights). The pruner holds
  (mask, parameter) pairs of the Conv2d/Linear weights (no biases, no batch norm: the
  original's defaults) and keys its scores by `id(param)`.
- **Global mask** (`_global_mask`): already-pruned scores set to -inf, every score
  concatenated, threshold = `kthvalue(all, k)` with k = int((1 - d) * n), then
  mask = score > threshold. Equal scores at the threshold are all removed, so it can keep
  fewer than n - k; ours keeps exactly round(d * n) and breaks ties by position. With
  distinct scores the reference keeps n - int((1 - d) n), ours round(d n), which can differ by
  one: the bench passes the reference the density that makes it keep our count
  (`density_keeping`), as `bench.reference.percentile_mask.retain_keeping` does for ECS.
- **SNIP**: the mask buffers get `requires_grad`; one backward over every batch of the loader;
  score |dL/dmask| (= |g * w| at mask 1), divided by the sum of all scores.
- **GraSP**: pass 1, g = sum over the batches of dL/dw (no graph, logits / 200); pass 2, per
  batch, the gradient again with its graph, flattened and concatenated, z = gᵀ that, and
  `z.backward()` into `.grad` of every parameter (batch norm's too); score θ * Hg, divided by
  |sum| + 1e-10; the largest are kept.
- **SynFlow**: per round, |·| of every entry of `state_dict()` in place (weights, batch-norm
  parameters and running statistics, the masks), one all-ones input, `sum(output).backward()`,
  score |θ * ∂R/∂θ|, then the signs multiplied back in.
- **The loop** (`prune_loop`): `model.eval()`, then for each of `epochs` rounds
  `apply_mask` (zero the pruned weights), score, mask at sparsity ** ((round + 1) / epochs).

Where the reference differs from the paper or from the engine:

- `prune_loop` puts the model in eval mode before *every* scorer, so its SNIP and GraSP use
  the batch-norm running statistics (at init: mean 0, variance 1), not the batch's. The
  engine scores SNIP and GraSP in train mode (batch statistics, as the SNIP and GraSP papers'
  own code does; GraSP's Hessian then includes the statistics' dependence on the weights).
  The bench calls `snip_scores`/`grasp_scores` here on a model in train mode so both sides
  compute the same function; SynFlow runs in eval mode on both sides.
- SynFlow is float32 in the original (its `model.double()` and float64 input are commented
  out). R is a product over every layer: at full width a ResNet50's flows reach ~1e67, past
  float32's 3.4e38, so the published code scores with inf (and NaN where inf meets a pruned
  zero), and its masks there are not the paper's algorithm any more. The engine computes in
  float64. `synflow_scores(..., double=True)` is the authors' commented-out variant (model and
  input in float64 for the scoring, back to float32 after); only it computes the same
  numbers as ours, so the bench checks masks against it and times both variants.
- In train mode, as here, the original's forward passes move the batch-norm running
  statistics; the engine restores them. The bench gives each side its own copy of the model.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

import torch
from torch import nn

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def _masked(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight_mask * weight, bias_mask * bias): what the original's layers compute with."""
    w = module.weight_mask * module.weight
    b = None if module.bias is None else module.bias_mask * module.bias
    return w, b


class MaskedConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, *_masked(self))


class MaskedLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, *_masked(self))


class MaskedBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = _masked(self)
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        return nn.functional.batch_norm(
            x, self.running_mean, self.running_var, w, b,
            self.training or not self.track_running_stats, self.momentum or 0.0, self.eps,
        )  # fmt: skip


CLASSES = {nn.Conv2d: MaskedConv2d, nn.Linear: MaskedLinear, nn.BatchNorm2d: MaskedBatchNorm2d}


def masked_model(model: nn.Module) -> nn.Module:
    """A copy of `model` built from the original's masked layers (same weights, masks of 1)."""
    out = copy.deepcopy(model)
    for mod in out.modules():
        # by kind, not exact type: our ResNets' strided shortcuts are a Conv2d subclass
        # (`models.pointwise.StridedPointwise`), and the original masks every conv
        cls = next((c for kind, c in CLASSES.items() if isinstance(mod, kind)), None)
        if cls is None or (isinstance(mod, nn.BatchNorm2d) and not mod.affine):
            continue
        mod.__class__ = cls
        mod.register_buffer("weight_mask", torch.ones_like(mod.weight))
        if mod.bias is not None:
            mod.register_buffer("bias_mask", torch.ones_like(mod.bias))
    return out


def masked_parameters(model: nn.Module) -> Iterator[tuple[torch.Tensor, nn.Parameter]]:
    """(mask, weight) of every Conv2d/Linear: the original's defaults (no bias, no BN)."""
    for mod in model.modules():
        if isinstance(mod, MaskedConv2d | MaskedLinear):
            yield mod.weight_mask, mod.weight


class Pruner:
    """Scores by `id(param)`, the global kthvalue mask, apply_mask and stats."""

    def __init__(self, pairs: Iterable[tuple[torch.Tensor, nn.Parameter]]) -> None:
        self.masked_parameters = list(pairs)
        self.scores: dict[int, torch.Tensor] = {}

    def score(self, model: nn.Module, loss, batches: Batches) -> None:
        raise NotImplementedError

    def global_mask(self, density: float) -> None:
        for mask, p in self.masked_parameters:  # pruned weights never come back
            self.scores[id(p)][mask == 0.0] = -float("inf")
        everything = torch.cat([s.flatten() for s in self.scores.values()])
        k = int((1.0 - density) * everything.numel())
        if k < 1:
            return
        threshold, _ = torch.kthvalue(everything, k)
        for mask, p in self.masked_parameters:
            score = self.scores[id(p)]
            zero, one = torch.tensor([0.0]), torch.tensor([1.0])
            mask.copy_(torch.where(score <= threshold, zero, one))

    @torch.no_grad()
    def apply_mask(self) -> None:
        for mask, p in self.masked_parameters:
            p.mul_(mask)

    def stats(self) -> tuple[float, int]:
        kept = sum(float(m.detach().cpu().numpy().sum()) for m, _ in self.masked_parameters)
        return kept, sum(m.numel() for m, _ in self.masked_parameters)

    def _normalise(self, norm: torch.Tensor) -> None:
        for _, p in self.masked_parameters:
            self.scores[id(p)].div_(norm)

    def _all_scores(self) -> torch.Tensor:
        return torch.cat([s.flatten() for s in self.scores.values()])


class SNIP(Pruner):
    def score(self, model: nn.Module, loss, batches: Batches) -> None:
        for m, _ in self.masked_parameters:
            m.requires_grad = True
        for x, y in batches:
            loss(model(x), y).backward()
        for m, p in self.masked_parameters:
            self.scores[id(p)] = m.grad.detach().clone().abs_()
            p.grad.data.zero_()
            m.grad.data.zero_()
            m.requires_grad = False
        self._normalise(self._all_scores().sum())


class GraSP(Pruner):
    temp, eps = 200.0, 1e-10

    def _flat_grad(self, model: nn.Module, loss, x, y, graph: bool) -> torch.Tensor:
        params = [p for _, p in self.masked_parameters]
        grads = torch.autograd.grad(loss(model(x) / self.temp, y), params, create_graph=graph)
        return torch.cat([g.reshape(-1) for g in grads if g is not None])

    def score(self, model: nn.Module, loss, batches: Batches) -> None:
        stopped = 0
        for x, y in batches:
            stopped = stopped + self._flat_grad(model, loss, x, y, graph=False)
        for x, y in batches:
            (stopped * self._flat_grad(model, loss, x, y, graph=True)).sum().backward()
        for _, p in self.masked_parameters:
            self.scores[id(p)] = (p.grad * p.data).detach().clone()
            p.grad.data.zero_()
        self._normalise(self._all_scores().sum().abs() + self.eps)


class SynFlow(Pruner):
    def __init__(self, pairs: Iterable, double: bool = False) -> None:
        super().__init__(pairs)
        self.double = double  # the authors' commented-out float64 variant (module docstring)

    @torch.no_grad()
    def _linearise(self, model: nn.Module) -> dict[str, torch.Tensor]:
        if self.double:
            model.double()
        signs = {}
        for name, t in model.state_dict().items():
            signs[name] = torch.sign(t)
            t.abs_()
        return signs

    @torch.no_grad()
    def _restore(self, model: nn.Module, signs: dict[str, torch.Tensor]) -> None:
        if self.double:
            model.float()
        for name, t in model.state_dict().items():
            t.mul_(signs[name])

    def score(self, model: nn.Module, loss, batches: Batches) -> None:
        signs = self._linearise(model)
        x, _ = next(iter(batches))
        dtype = torch.float64 if self.double else torch.float32
        model(torch.ones([1, *x.shape[1:]], dtype=dtype)).sum().backward()
        for _, p in self.masked_parameters:
            self.scores[id(p)] = (p.grad * p).detach().clone().abs_()
            p.grad.data.zero_()
        self._restore(model, signs)


def prune_loop(model: nn.Module, pruner: Pruner, batches: Batches, densities: list[float]) -> None:
    """The original's loop: eval mode, then per round apply_mask, score, global mask.

    `densities`: the round's kept fraction, sparsity ** ((round + 1) / rounds) in the original
    (`exponential_schedule`); the bench passes the fractions that keep our counts.
    """
    model.eval()
    loss = nn.CrossEntropyLoss()
    for d in densities:
        pruner.apply_mask()
        pruner.score(model, loss, batches)
        pruner.global_mask(d)


def exponential_schedule(density: float, rounds: int) -> list[float]:
    """The original's schedule: density ** ((round + 1) / rounds), round = 0..rounds-1."""
    return [density ** ((r + 1) / rounds) for r in range(rounds)]


def density_keeping(total: int, keep: int) -> float:
    """The fraction for which `global_mask` keeps exactly `keep` of `total` distinct scores.

    It removes k = int((1 - d) * total); (1 - d) * total = total - keep + 0.5 lands half-way
    between integers, so rounding in the product cannot move int() off total - keep.
    """
    return 1.0 - (total - keep + 0.5) / total


def masks_by_name(model: nn.Module, pruner: Pruner) -> dict[str, torch.Tensor]:
    """The pruner's masks keyed by our parameter names (bool)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: m.detach().bool() for m, p in pruner.masked_parameters}
