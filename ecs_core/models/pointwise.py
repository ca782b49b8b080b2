"""A strided 1x1 convolution that never asks oneDNN for its broken weight-gradient kernel.

oneDNN 3.12 (torch 2.14.1, AVX-512 CPUs, two or more threads) corrupts the heap computing the
weight gradient of a channels-last 1x1 stride-2 convolution with few input channels (4 or 8)
and an odd batch; the README's "Memory format" holds the three-line reproduction. A 1x1
convolution with stride s is the same function as a stride-1 1x1 convolution of every s-th
pixel (`x[:, :, ::s, ::s]`: output (H - 1) // s + 1 rows either way, no padding), and that
one takes another kernel. `tests/engine/test_conv_probe.py` runs every conv shape of the
registered models under glibc's malloc checks and fails if the broken kernel comes back.
"""

from __future__ import annotations

import torch
from torch import nn


class StridedPointwise(nn.Conv2d):
    """`nn.Conv2d(c_in, c_out, 1, stride, bias=...)`: the same parameters, state-dict keys and
    exported graph; only a CPU forward that will need the weight's gradient subsamples first.

    Under `no_grad` (evaluation, int8 and ONNX export) or on a GPU it is a plain Conv2d.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, bias: bool = False) -> None:
        super().__init__(c_in, c_out, 1, stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_grad_enabled() and self.weight.requires_grad:
            sh, sw = self.stride
            return nn.functional.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias)
        return super().forward(x)


def strided_pointwise(model: nn.Module) -> list[str]:
    """Names of `model`'s plain Conv2d layers (not StridedPointwise) that are 1x1 with a
    stride: the layers whose channels-last weight gradient oneDNN 3.12 can corrupt the heap in."""
    return [
        name for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and not isinstance(m, StridedPointwise)
        and m.kernel_size == (1, 1) and m.stride != (1, 1)
    ]  # fmt: skip
