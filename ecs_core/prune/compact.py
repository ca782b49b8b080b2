"""The smaller dense model: a channel plan (kept channel indices per group) applied for real.

A plan is `{group: [kept channel indices]}` (`channels.kept_indices`), JSON in the run
directory and the `.ecsz` manifest. `shrink` rebuilds the smaller architecture from it on the
dense model of the same config, through Torch-Pruning's dependency graph (each group's other
channels are removed from the conv, its batch norm, the layers that read it and the layers tied
to it by residual additions); the weights then load by name. Nothing is pickled.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ecs_core.names import ConfigError
from ecs_core.prune.channels import dependency_graph

Plan = dict[str, list[int]]
IMAGE = 32
"""Every dataset's images are 32x32: the shape a rebuild traces (`rebuild_shape`)."""


def rebuild_shape(in_channels: int) -> tuple[int, int, int]:
    """The input a plan is applied with when no batch is at hand (the .ecsz file, ecs export)."""
    return (in_channels, IMAGE, IMAGE)


def shrink(model: nn.Module, plan: Plan, input_shape: tuple[int, ...]) -> nn.Module:
    """Remove every channel not in `plan` from `model`, in place (values of the kept weights
    are copied exactly); returns the model."""
    graph, _ = dependency_graph(model, input_shape)
    modules = dict(model.named_modules())
    for name, kept in plan.items():
        layer = modules.get(name)
        if layer is None:
            raise ConfigError(f"channel plan names layer {name!r}, which this model does not have")
        size = layer.weight.shape[0]
        gone = sorted(set(range(size)) - set(kept))
        if not gone:
            continue
        if len(gone) == size or min(kept, default=0) < 0 or max(kept, default=0) >= size:
            raise ConfigError(f"channel plan for {name}: kept indices do not fit {size} channels")
        fn = graph.get_pruner_of_module(layer).prune_out_channels
        graph.get_pruning_group(layer, fn, gone).prune()
    return model


def macs_and_params(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(multiply-accumulates for one image, parameters), counted by Torch-Pruning."""
    import torch_pruning as tp

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        macs, params = tp.utils.count_ops_and_params(
            model, torch.zeros((1, *input_shape), device=device)
        )
    finally:
        model.train(was_training)
    return int(macs), int(params)


def layer_channels(model: nn.Module) -> list[dict[str, Any]]:
    """[{name, out}] output channels of every Conv2d / Linear, in model order."""
    return [
        {"name": n, "out": m.weight.shape[0]}
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]


Index = tuple[torch.Tensor | None, torch.Tensor | None]
"""A smaller tensor's kept indices into the dense one along dims 0 and 1 (None: all of it)."""


class IndexMap:
    """Where every tensor of the smaller model sits in the dense model's (parameters and
    buffers, batch-norm statistics included), for one plan: `slice` a dense state to the
    smaller model's, `expand` a smaller state back into a dense one. `slice(expand(s, b)) == s`
    exactly, so a dense-shaped checkpoint of the smaller model resumes bit-for-bit."""

    def __init__(self, index: dict[str, Index]) -> None:
        self.index = index

    @classmethod
    @torch.no_grad()
    def of(cls, model: nn.Module, plan: Plan, input_shape: tuple[int, ...]) -> IndexMap:
        """Shrink a probe copy of `model` whose every tensor holds its own flat (row, column)
        position, i * columns + j (exact in float64), and read back which positions stayed."""
        probe = copy.deepcopy(model).to("cpu", torch.float64)
        dense = {k: v.shape for k, v in probe.state_dict().items()}
        for v in _probed(probe).values():
            cols = v.shape[1] if v.dim() > 1 else 1
            rows = torch.arange(v.shape[0], dtype=v.dtype).view(-1, *[1] * (v.dim() - 1))
            if v.dim() > 1:
                rows = rows * cols + torch.arange(cols, dtype=v.dtype).view(
                    1, -1, *[1] * (v.dim() - 2)
                )
            v.copy_(rows.expand_as(v))
        shrink(probe, plan, input_shape)
        index: dict[str, Index] = {}
        for name, v in _probed(probe).items():
            shape = dense[name]
            if v.shape == shape:
                continue
            if v.shape[2:] != shape[2:]:
                raise ValueError(f"channel plan shrank {name} along a dimension above 1")
            first = v.flatten(2)[..., 0] if v.dim() > 2 else v
            cols = shape[1] if v.dim() > 1 else 1
            at = (first[:, 0] if v.dim() > 1 else first).long() // cols
            across = first[0, :].long() % cols if v.dim() > 1 else None
            index[name] = (
                at if len(at) < shape[0] else None,
                across if across is not None and len(across) < shape[1] else None,
            )
        return cls(index)

    def slice(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The smaller model's part of a dense state (or mask): kept rows and columns."""
        out = dict(state)
        for name, (at, across) in self.index.items():
            if name in state:
                v = state[name]
                if at is not None:
                    v = v.index_select(0, at.to(v.device))
                if across is not None:
                    v = v.index_select(1, across.to(v.device))
                out[name] = v
        return out

    def expand(
        self, small: dict[str, torch.Tensor], base: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """A dense state: `small`'s values at their dense positions; the removed channels'
        positions keep `base`'s values (the dense state the smaller model was sliced from)."""
        out = dict(small)
        for name, (at, across) in self.index.items():
            if name in small:
                v = base[name].detach().clone()
                s = small[name].to(v.dtype)
                if at is not None and across is not None:
                    v[at.to(v.device).unsqueeze(1), across.to(v.device)] = s
                elif at is not None:
                    v[at.to(v.device)] = s
                else:
                    v[:, across.to(v.device)] = s
                out[name] = v
        return out


def _probed(model: nn.Module) -> dict[str, torch.Tensor]:
    """`model`'s floating-point tensors (parameters and buffers) with a dimension to shrink."""
    return {k: v for k, v in model.state_dict().items() if v.is_floating_point() and v.dim() > 0}


def optimizer_state(
    state: dict[str, Any], names: list[str], move: Callable[[str, int, str, torch.Tensor], Any]
) -> dict[str, Any]:
    """An optimizer's `state_dict` with every per-parameter tensor (SGD's momentum buffer)
    replaced by `move(parameter name, index, key, tensor)`; `names`: the parameters in order."""
    per = {
        i: {
            k: move(names[i], i, k, v) if isinstance(v, torch.Tensor) and v.dim() > 0 else v
            for k, v in buffers.items()
        }
        for i, buffers in state["state"].items()
    }
    return {"state": per, "param_groups": state["param_groups"]}
