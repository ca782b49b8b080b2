"""Channel pruning: a method's per-weight scores lifted to groups of coupled channels.

The coupling comes from Torch-Pruning's dependency graph (Fang et al., "DepGraph: Towards Any
Structural Pruning", CVPR 2023; `torch-pruning` on PyPI): removing output channel j of a conv
also removes channel j of its batch norm, input channel j of every layer that reads it, and,
across residual additions, the same channel of every other layer whose output is added to it.
One such set is a *group*; its channels are removed together or not at all.

1) `channel_graph`: trace the model once, keep each group's prunable weights and, for each,
   which rows (dim 0) or columns (dim 1) belong to which channel of the group.
2) `lift`: a group channel's score is the MEAN of its weights' scores (every row and column it
   would remove). The budget (`--density`) counts weights, and a global ranking compares
   channels whose groups differ in size by 100x (a residual group spans ten convs): the mean
   is the score per weight removed, so the global cut is the greedy knapsack by value per
   cost; a sum would keep the big groups whatever their scores. Within one group every
   channel covers the same number of weights, so per layer the mean and the sum rank alike.
3) `select`: keep channels so that the weights left are `density` of the prunable weights
   (the smallest keep that reaches it; the achieved density is reported). Global: one
   ranking of every channel of every group. Layer: every group keeps the same fraction of
   its channels, its top ones by score. Floor: every group keeps at least one channel, so no
   layer is emptied. The model's output layer and its input are never pruned.
4) `to_mask`: the kept channels as a weight `Mask` of the dense model (rows and columns of the
   removed channels are 0), which training enforces like any mask; `compact.shrink` then
   removes them for real.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecs_core.models import prunable_weights
from ecs_core.names import ConfigError
from ecs_core.prune.mask import Mask


@dataclass(frozen=True)
class Item:
    """One prunable weight of a group: `rows` of dimension `dim` belong to channel `owner`."""

    param: str
    dim: int
    rows: torch.Tensor
    owner: torch.Tensor


@dataclass(frozen=True)
class Group:
    """Coupled channels, named by the layer whose output channels root the group."""

    name: str
    size: int
    items: tuple[Item, ...]


@dataclass(frozen=True)
class ChannelGraph:
    groups: tuple[Group, ...]
    shapes: dict[str, tuple[int, ...]]
    """Every prunable weight's shape (the dense model's)."""
    input_shape: tuple[int, ...]

    def group(self, name: str) -> Group:
        return next(g for g in self.groups if g.name == name)


def _output_layer(graph, layers: list[nn.Module]) -> nn.Module:
    """The Conv2d/Linear whose output nothing in the traced graph reads (the model's output),
    else the last one in model order."""
    ends = [m for m in layers if m in graph.module2node and not graph.module2node[m].outputs]
    return ends[-1] if ends else layers[-1]


def dependency_graph(model: nn.Module, input_shape: tuple[int, ...]):
    """(Torch-Pruning's DependencyGraph of `model`, its output layer): one line on failure."""
    import torch_pruning as tp

    grouped = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups != 1]
    if grouped:
        raise ConfigError(
            f"--structure channel: grouped convolution {grouped[0]} is not supported; "
            "use --structure weight"
        )
    w = next(model.parameters())
    x = torch.zeros((1, *input_shape), device=w.device, dtype=w.dtype)
    was_training = model.training
    model.eval()  # tracing must not move the batch-norm statistics
    try:
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(model, x, verbose=False)
    except Exception as exc:  # any failure of the tracer on a user's model is one line
        why = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]
        raise ConfigError(
            f"--structure channel: Torch-Pruning cannot trace this model ({why}); "
            "use --structure weight"
        ) from None
    finally:
        model.train(was_training)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    head = _output_layer(graph, layers)
    names = {m: n for n, m in model.named_modules()}
    missing = [
        names[m] for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear) and m not in graph.module2node
    ]  # fmt: skip
    if missing:
        raise ConfigError(
            f"--structure channel: Torch-Pruning cannot trace layer {missing[0]} from the "
            "output (detached, under no_grad, or unused); use --structure weight"
        )
    return graph, head


def channel_graph(model: nn.Module, input_shape: tuple[int, ...]) -> ChannelGraph:
    """The groups of coupled channels of `model` (traced on a zero input of `input_shape`)."""
    import torch_pruning as tp

    graph, head = dependency_graph(model, input_shape)
    names = {m: n for n, m in model.named_modules()}
    weights = prunable_weights(model)
    groups = []
    for g in graph.get_all_groups(ignored_layers=[head], root_module_types=(nn.Conv2d, nn.Linear)):
        items = []
        for it in g.items:
            mod = it.dep.target.module
            param = f"{names.get(mod)}.weight"
            if param not in weights:
                continue  # batch norm, activations: they follow the convs' channels
            out = graph.is_out_channel_pruning_fn(it.dep.handler)
            rows = torch.as_tensor(tp._helpers.to_plain_idxs(it.idxs), dtype=torch.long)
            owner = torch.as_tensor(it.root_idxs, dtype=torch.long)
            items.append(Item(param, 0 if out else 1, rows, owner))
        root = names[g.items[0].dep.target.module]
        size = len(g.items[0].idxs)
        groups.append(Group(root, size, tuple(items)))
    shapes = {k: tuple(w.shape) for k, w in weights.items()}
    return ChannelGraph(tuple(groups), shapes, tuple(input_shape))


def lift(graph: ChannelGraph, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each group channel's score: the mean score of the weights it would remove (float64).

    Each weight tensor is first summed down to one value per row (or column), in its own
    dtype and device: one pass, no copy of the scores."""
    out = {}
    for g in graph.groups:
        total = torch.zeros(g.size, dtype=torch.float64)
        count = torch.zeros(g.size, dtype=torch.float64)
        for it in g.items:
            s = scores[it.param].detach()
            per_row = s.sum(dim=[d for d in range(s.dim()) if d != it.dim])
            per_row = per_row.to("cpu", torch.float64)[it.rows]
            total.index_add_(0, it.owner, per_row)
            width = float(s.numel() // s.shape[it.dim])
            count.index_add_(0, it.owner, torch.full_like(per_row, width))
        out[g.name] = total / count.clamp(min=1)
    return out


def _removed_rows(graph: ChannelGraph, cut: dict[str, torch.Tensor]) -> dict[tuple, int]:
    """{(param, dim): rows removed} for the removed channels `cut` (bool per group channel)."""
    rows: dict[tuple, int] = {}
    for g in graph.groups:
        for it in g.items:
            n = int(torch.count_nonzero(cut[g.name][it.owner]))
            rows[(it.param, it.dim)] = rows.get((it.param, it.dim), 0) + n
    return rows


def kept_weights(graph: ChannelGraph, keep: dict[str, torch.Tensor]) -> int:
    """How many prunable weights the smaller model has (rows x columns x kernel, per layer)."""
    rows = _removed_rows(graph, {k: ~v for k, v in keep.items()})
    total = 0
    for p, shape in graph.shapes.items():
        rest = 1
        for s in shape[2:]:
            rest *= s
        total += (shape[0] - rows.get((p, 0), 0)) * (shape[1] - rows.get((p, 1), 0)) * rest
    return total


def total_weights(graph: ChannelGraph) -> int:
    return sum(int(torch.tensor(s).prod()) for s in graph.shapes.values())


def select(
    graph: ChannelGraph,
    scores: dict[str, torch.Tensor],
    density: float,
    scope: str,
    removed: dict[str, torch.Tensor] | None = None,
    lowest: bool = False,
) -> dict[str, torch.Tensor]:
    """Kept channels per group (bool), the fewest whose weights reach `density` of the total.

    Higher score = kept first; ties keep the earlier channel. `removed`: channels already gone
    (iterative pruning), never kept again. `lowest`: keep the lowest scores instead."""
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    ranked = {}
    for g in graph.groups:
        s = -scores[g.name] if lowest else scores[g.name].clone()
        if removed is not None:
            s[removed[g.name]] = -torch.inf
        # rank within the group: 0 = best; stable, so ties keep the earlier channel
        order = torch.argsort(-s, stable=True)
        ranked[g.name] = (s, order)
    target = density * total_weights(graph)
    keep_of = _global_keep if scope == "global" else _layer_keep
    return keep_of(graph, ranked, target)


def _keep_from_counts(ranked: dict, counts: dict[str, int]) -> dict[str, torch.Tensor]:
    keep = {}
    for name, (s, order) in ranked.items():
        m = torch.zeros(len(s), dtype=torch.bool)
        m[order[: counts[name]]] = True
        keep[name] = m
    return keep


def _smallest(lo: int, hi: int, reaches) -> int:
    """The smallest n in [lo, hi] with reaches(n) (hi when none below does)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _layer_keep(graph: ChannelGraph, ranked: dict, target: float) -> dict[str, torch.Tensor]:
    """Every group keeps the same fraction of its channels (at least one)."""
    steps = 4096

    def counts(i: int) -> dict[str, int]:
        return {n: max(1, round(i / steps * len(s))) for n, (s, _) in ranked.items()}

    def reaches(i: int) -> bool:
        return kept_weights(graph, _keep_from_counts(ranked, counts(i))) >= target

    return _keep_from_counts(ranked, counts(_smallest(0, steps, reaches)))


def _global_keep(graph: ChannelGraph, ranked: dict, target: float) -> dict[str, torch.Tensor]:
    """One ranking of every channel past each group's best (the floor), cut at a count."""
    names = list(ranked)
    owner, rank, value = [], [], []
    for i, (s, order) in enumerate(ranked.values()):
        owner.append(torch.full((len(s) - 1,), i))
        rank.append(torch.arange(1, len(s)))
        value.append(s[order[1:]])
    owner, rank, value = torch.cat(owner), torch.cat(rank), torch.cat(value)
    # best first; ties by model order then position (stable sort over the concatenation)
    by = torch.argsort(-value, stable=True)
    owner = owner[by]

    def counts(n: int) -> dict[str, int]:
        extra = torch.bincount(owner[:n], minlength=len(names))
        return {name: 1 + int(extra[i]) for i, name in enumerate(names)}

    def reaches(n: int) -> bool:
        return kept_weights(graph, _keep_from_counts(ranked, counts(n))) >= target

    return _keep_from_counts(ranked, counts(_smallest(0, len(owner), reaches)))


def to_mask(graph: ChannelGraph, keep: dict[str, torch.Tensor], device=None) -> Mask:
    """The weight mask of the dense model that removes every channel not in `keep`."""
    mask = {p: torch.ones(s, dtype=torch.bool, device=device) for p, s in graph.shapes.items()}
    for g in graph.groups:
        cut = ~keep[g.name]
        for it in g.items:
            rows = it.rows[cut[it.owner]].to(device)
            if rows.numel():
                mask[it.param].index_fill_(it.dim, rows, False)
    return mask


def removed_in(graph: ChannelGraph, mask: Mask) -> dict[str, torch.Tensor]:
    """Channels a weight mask has already removed: every weight of theirs is 0 in `mask`."""
    out = {}
    for g in graph.groups:
        alive = torch.zeros(g.size, dtype=torch.long)
        for it in g.items:
            m = mask[it.param].to("cpu").index_select(it.dim, it.rows)
            alive.index_add_(0, it.owner, m.transpose(0, it.dim).flatten(1).any(1).long())
        out[g.name] = alive == 0
    return out


def kept_indices(keep: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    """{group: sorted kept channel indices}: what rebuilds the smaller model (JSON)."""
    return {k: torch.nonzero(v).flatten().tolist() for k, v in keep.items()}
