"""CPU training is channels-last without the oneDNN 3.12 kernel that corrupts the heap.

The bug (torch 2.14.1, oneDNN 3.12, AVX-512 CPU, 2+ threads; no ecs code): the weight gradient
of a channels-last 1x1 stride-2 convolution with 4 or 8 input channels and an odd batch of 3 or
more. This dies with SIGSEGV in every process (with or without malloc checks):

    cl = torch.channels_last
    w = torch.randn(8, 8, 1, 1).contiguous(memory_format=cl).requires_grad_()
    x = torch.randn(3, 8, 16, 16).contiguous(memory_format=cl)
    torch.nn.functional.conv2d(x, w, stride=2).sum().backward()

The registered ResNets' strided shortcuts are `StridedPointwise`, which subsamples and runs a
stride-1 conv whenever the weight's gradient is wanted on the CPU. These tests check, on any
CPU, that training never asks for that kernel, and probe conv shapes under glibc's malloc
checks, one process per shape (tests/engine/conv_probe.py). The cheap probe runs the shapes
that broke; the full sweep, every conv shape of every registered model at widths 0.125 to 1
with batches 1, 3, 16, 29 and 128 (about 10 minutes on 2 cores), is opt-in:

    ECS_CONV_PROBE=full python -m pytest -q tests/engine/test_conv_probe.py
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ecs_core.models import build_model
from ecs_core.models.pointwise import StridedPointwise, strided_pointwise
from ecs_core.registry import MODELS
from ecs_core.train import model_memory_format
from tests.engine import conv_probe

FULL = os.environ.get("ECS_CONV_PROBE") == "full"
CPU = torch.device("cpu")


class _WeightGradients(TorchDispatchMode):
    """Records (weight shape, stride, input channels-last) of every conv weight gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[tuple[int, ...], tuple[int, ...], bool]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default and args[-1][1]:
            x, w, stride = args[1], args[2], tuple(args[4])
            cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
            self.calls.append((tuple(w.shape), stride, cl))
        return func(*args, **(kwargs or {}))


def _bad(call: tuple[tuple[int, ...], tuple[int, ...], bool]) -> bool:
    shape, stride, channels_last = call
    return shape[-2:] == (1, 1) and stride != (1, 1) and channels_last


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_cpu_training_is_channels_last_and_never_asks_for_the_broken_kernel(
    model_name: str,
) -> None:
    """A channels-last training step and a SynFlow-like eval-mode gradient on an odd batch: no
    weight gradient of a strided 1x1 conv on channels-last input (on any CPU: it records calls)."""
    model = build_model(model_name, 10, 3, 0.125)
    assert strided_pointwise(model) == []
    assert model_memory_format(CPU, model) == torch.channels_last
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(3, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    record = _WeightGradients()
    for train in (True, False):
        with record:
            nn.functional.cross_entropy(model.train(train)(x), torch.tensor([0, 1, 2])).backward()
    assert record.calls, "no conv weight gradient seen: the recorder is broken"
    bad = [c for c in record.calls if _bad(c)]
    assert not bad, f"weight gradients of strided 1x1 convs on channels-last input: {bad}"


def test_the_recorder_sees_the_broken_call_in_a_plain_conv() -> None:
    """The check above can fail: a plain strided 1x1 Conv2d asks for the kernel (not run)."""
    conv = nn.Conv2d(8, 8, 1, 2, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(2, 8, 16, 16).contiguous(memory_format=torch.channels_last)  # even: safe
    with _WeightGradients() as record:
        conv(x).sum().backward()
    assert [c for c in record.calls if _bad(c)] == [((8, 8, 1, 1), (2, 2), True)]


def test_a_model_with_a_plain_strided_1x1_conv_trains_contiguous_on_the_cpu() -> None:
    plain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 1, 2))
    assert strided_pointwise(plain) == ["1"]
    assert model_memory_format(CPU, plain) == torch.contiguous_format
    assert model_memory_format(torch.device("cuda"), plain) == torch.channels_last
    safe = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), StridedPointwise(8, 16, 2))
    assert model_memory_format(CPU, safe) == torch.channels_last
    assert model_memory_format(torch.device("meta"), safe) == torch.contiguous_format


def test_strided_pointwise_is_a_conv2d_with_the_same_parameters_and_function() -> None:
    torch.manual_seed(0)
    plain, ours = nn.Conv2d(8, 16, 1, 2, bias=True), StridedPointwise(8, 16, 2, bias=True)
    ours.load_state_dict(plain.state_dict())
    assert list(ours.state_dict()) == list(plain.state_dict())
    assert (ours.kernel_size, ours.stride, ours.padding) == (plain.kernel_size, (2, 2), (0, 0))
    for hw in (15, 16):  # odd maps too: ceil(hw / 2) rows either way
        x = torch.randn(3, 8, hw, hw)
        torch.testing.assert_close(ours(x), plain(x))
        with torch.no_grad():
            torch.testing.assert_close(ours(x), plain(x))


def _assert_all_ok(results: dict) -> None:
    bad = {s: v for s, v in results.items() if v != "ok"}
    assert not bad, f"{len(bad)} of {len(results)} conv shapes failed: {bad}"


# The shortcuts that crashed before (eighth-width ResNets: 8 -> 16 on 32x32 maps; 4 -> 8 and
# 8 -> 8 broke as plain convs), and the 3x3 stride-2 conv beside them.
BROKE = [("StridedPointwise", 8, 16, 1, 2, 0, 32), ("StridedPointwise", 8, 8, 1, 2, 0, 16),
         ("StridedPointwise", 4, 8, 1, 2, 0, 32), ("Conv2d", 8, 16, 3, 2, 1, 32)]  # fmt: skip


def test_the_shapes_that_broke_run_clean_under_malloc_checks() -> None:
    assert set(BROKE[:1] + BROKE[-1:]) <= set(conv_probe.shapes((0.125,), (3,)))
    _assert_all_ok(conv_probe.probe(BROKE, (3, 16, 29), timeout=300))


@pytest.mark.skipif(not FULL, reason="the full conv-shape sweep: set ECS_CONV_PROBE=full")
def test_every_conv_shape_of_every_model_runs_clean_under_malloc_checks() -> None:
    _assert_all_ok(conv_probe.probe(conv_probe.shapes((0.125, 0.25, 0.5, 1.0))))
