"""8-bit: affine int8 storage for the codec, and an int8 inference model for CPU.

Storage: affine quantization q = round(x / scale) + zero_point, per output channel for conv
and linear weights (Jacob et al. 2018). The range always includes 0, so 0 maps to the zero
point and decodes to exactly 0.

Inference: static post-training quantization through torchao's PT2E flow, the maintained
successor of `torch.ao.quantization` (which warns that it is deprecated in this PyTorch):
`torch.export` -> `prepare_pt2e` with the X86InductorQuantizer (per-channel symmetric int8
weights, per-tensor uint8 activations) -> calibration batches -> `convert_pt2e` -> lowering to
oneDNN int8 kernels (`lower_pt2e_quantized_to_x86`, no C++ compiler needed) or, for the
fastest model, `torch.compile` with freezing. Conv-BN-ReLU and Linear-ReLU are fused.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import operator
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

BACKEND = "torchao-pt2e-x86"


class Int8Unavailable(RuntimeError):
    """The int8 backend cannot run here (torchao missing, no x86/oneDNN int8 kernels, ...)."""


# --- affine int8 storage


@dataclass
class AffineInt8:
    """int8 values with a scale and zero point per channel (axis 0) or one for the tensor."""

    q: np.ndarray
    """int8, same shape as the input."""
    scale: np.ndarray
    """float32, one per channel (or one)."""
    zero_point: np.ndarray
    """int8, one per channel (or one)."""

    def dequantize(self) -> np.ndarray:
        """float32 values: (q - zero_point) * scale, broadcast along axis 0."""
        shape = (-1,) + (1,) * (self.q.ndim - 1) if self.q.ndim else ()
        zp = self.zero_point.astype(np.float32).reshape(shape)
        return ((self.q.astype(np.float32) - zp) * self.scale.reshape(shape)).astype(np.float32)


def quantize_affine(x: np.ndarray, per_channel: bool = True) -> AffineInt8:
    """Asymmetric int8 over [min(x, 0), max(x, 0)] per row of axis 0 (or for the whole tensor).

    Worst-case error is scale / 2 per value; 0 is exact.
    """
    x = np.asarray(x, dtype=np.float32)
    rows = x.reshape(len(x), -1) if per_channel and x.ndim >= 1 else x.reshape(1, -1)
    lo = np.minimum(rows.min(axis=1, initial=0.0), 0.0).astype(np.float64)
    hi = np.maximum(rows.max(axis=1, initial=0.0), 0.0).astype(np.float64)
    scale = (hi - lo) / 255.0
    scale[scale == 0] = 1.0
    zp = np.clip(np.round(-128.0 - lo / scale), -128, 127)
    q = np.clip(np.round(rows / scale[:, None]) + zp[:, None], -128, 127).astype(np.int8)
    return AffineInt8(q.reshape(x.shape), scale.astype(np.float32), zp.astype(np.int8))


# --- int8 inference (torchao PT2E, x86 / oneDNN)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torchao, torch.export and inductor log chatter (deprecations, "no CUDA runtime") that
    says nothing about the user's run; keep its output clean."""
    loggers = [logging.getLogger(n) for n in ("torch.utils._pytree", "torch.utils.cpp_extension")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def check_available() -> None:
    """Raise `Int8Unavailable` saying why int8 inference cannot run on this machine."""
    if "x86" not in torch.backends.quantized.supported_engines:
        raise Int8Unavailable("this PyTorch has no x86 int8 kernels (not an x86 CPU build)")
    if not torch.backends.mkldnn.is_available():
        raise Int8Unavailable("this PyTorch was built without oneDNN, which runs the int8 kernels")
    try:
        with _quiet():
            import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
    except ImportError as exc:
        raise Int8Unavailable(f"torchao is not installed ({exc}); pip install torchao") from exc


@dataclass
class Int8Model:
    """A CPU int8 model for a fixed batch size; calls pad or split other batch sizes."""

    module: Callable[[torch.Tensor], torch.Tensor]
    batch_size: int
    compiled: bool
    backend: str = BACKEND
    others: dict[int, Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=dict)
    """The same quantized graph lowered for other batch sizes (`build_int8`'s `also`)."""

    def at(self, batch_size: int) -> Int8Model:
        """This model at `batch_size` (its own, or one of `also`): the same weights, scales
        and zero points, the graph specialised to that batch."""
        if batch_size == self.batch_size:
            return self
        return Int8Model(self.others[batch_size], batch_size, self.compiled, self.backend)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to("cpu", torch.float32).contiguous()
        outs = []
        for chunk in x.split(self.batch_size):
            n = len(chunk)
            if n < self.batch_size:  # the exported graph is specialised to one batch size
                pad = chunk.new_zeros((self.batch_size - n, *chunk.shape[1:]))
                chunk = torch.cat([chunk, pad])
            outs.append(self.module(chunk)[:n])
        return torch.cat(outs)


def _views_to_reshapes(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """oneDNN int8 convs return channels-last tensors, on which the `view` that `Flatten`
    exports to fails when the map is larger than 1x1; `reshape` copies only when it must."""
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target is torch.ops.aten.view.default:
            node.target = torch.ops.aten.reshape.default
    gm.recompile()
    return gm


def pool_2x2_uint8(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pool, stride 2, of a uint8 (N, C, H, W) tensor: the max of four strided views.

    aten's max_pool2d has no usable uint8 kernel on the CPU, and the lowered graph otherwise
    dequantizes to fp32, pools, and quantizes back with the same scale and zero point.
    """
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    top = torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2])
    return torch.maximum(top, torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


def _is_plain_2x2(node: torch.fx.Node) -> bool:
    """max_pool2d(x, kernel 2, stride 2 or default, padding 0, dilation 1, ceil_mode False),
    read by position (aten's schema order); any keyword argument: not matched."""
    if node.kwargs:
        return False
    args = list(node.args[1:]) + [None] * 5
    kernel, stride, padding, dilation, ceil_mode = args[:5]

    def pair(v: Any, default: int) -> tuple[int, ...]:
        if v is None or v == []:
            return (default, default)
        return tuple(v) * (2 // len(v)) if isinstance(v, list | tuple) else (v, v)

    return (
        pair(kernel, 0) == (2, 2)
        and pair(stride, 2) == (2, 2)
        and pair(padding, 0) == (0, 0)
        and pair(dilation, 1) == (1, 1)
        and (ceil_mode is None or ceil_mode is False)
    )


def _pools_on_uint8(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Rewrite dequantize -> 2x2 max-pool -> quantize (same scale and zero point) as a pool of
    the uint8 values themselves: identical output (dequantization is increasing, so the max
    commutes with it, and re-quantizing a dequantized uint8 gives it back), a quarter of the
    memory traffic, and no float round trip. 15% of VGG16's int8 time went there."""
    ops = torch.ops
    dq, q = (
        ops.quantized_decomposed.dequantize_per_tensor,
        ops.quantized_decomposed.quantize_per_tensor,
    )
    pools = (ops.aten.max_pool2d_with_indices.default, ops.aten.max_pool2d.default)
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in pools or not _is_plain_2x2(node):
            continue
        src = node.args[0]
        if not (isinstance(src, torch.fx.Node) and src.target == dq.default):
            continue
        out = node
        if node.target == pools[0]:  # (values, indices): only values[0] may be used
            users = list(node.users)
            if len(users) != 1 or users[0].target is not operator.getitem or users[0].args[1] != 0:
                continue
            out = users[0]
        users = list(out.users)
        if len(users) != 1 or users[0].target != q.default:
            continue
        requant = users[0]
        if list(requant.args[1:]) != list(src.args[1:]) or src.args[-1] != torch.uint8:
            continue  # other scale, zero point or range: not the identity round trip
        with gm.graph.inserting_before(requant):
            pooled = gm.graph.call_function(pool_2x2_uint8, (src.args[0],))
        requant.replace_all_uses_with(pooled)
        for dead in dict.fromkeys((requant, out, node)):  # out is node for max_pool2d
            gm.graph.erase_node(dead)
        if not src.users:
            gm.graph.erase_node(src)
    gm.graph.lint()
    gm.recompile()
    return gm


def _full_batches(images: Iterable[torch.Tensor], batch_size: int) -> list[torch.Tensor]:
    """Calibration images regrouped into full batches (repeated when there are too few)."""
    x = torch.cat([b.to("cpu", torch.float32) for b in images])
    if len(x) == 0:
        raise ValueError("int8 calibration needs at least one image")
    if len(x) < batch_size:
        x = x.repeat(-(-batch_size // len(x)), 1, 1, 1)
    n = len(x) // batch_size * batch_size
    return list(x[:n].split(batch_size))


def build_int8(
    model: nn.Module,
    calib: Iterable[torch.Tensor],
    batch_size: int = 64,
    compile: bool = False,
    check: Callable[[], None] | None = None,
    also: tuple[int, ...] = (),
) -> Int8Model:
    """Static post-training int8 quantization of a copy of `model` for CPU inference.

    `calib` yields input batches (normalised images) used to calibrate activation ranges.
    `compile=True` runs inductor with freezing (fastest; needs a C++ compiler, takes seconds);
    otherwise the graph is lowered to oneDNN int8 ops directly. `check` is called after each
    calibration batch (a run's stop request raises there). `also`: other batch sizes to lower
    the same quantized graph for (`Int8Model.at`): the graph is then exported with a dynamic
    batch, calibrated and converted once, and lowered (or compiled) once per batch size.
    """
    check_available()
    with _quiet():
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

        batches = _full_batches(calib, batch_size)
        fp32 = copy.deepcopy(model).to("cpu").eval()
        example = (batches[0],)
        also = tuple(b for b in also if b != batch_size)
        with torch.no_grad():
            graph = _exported(fp32, example[0], also)
            if graph is None:  # a model whose graph depends on its batch size: no others
                also, graph = (), torch.export.export(fp32, example).module()
            quantizer = xiq.X86InductorQuantizer()
            quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
            prepared = prepare_pt2e(graph, quantizer)
            for xb in batches:
                prepared(xb)
                if check is not None:
                    check()
            converted = convert_pt2e(prepared)
            if compile:
                import torch._inductor.config as inductor_config

                # Freezing lets inductor fold the int8 weights and fuse q/dq into oneDNN's
                # qconv/qlinear (without it the convs run in fp32).
                with inductor_config.patch(freezing=True):
                    module = torch.compile(converted)
                    module(example[0])  # compile now (fixed batch size: never again)
                    for b in also:
                        module(_batch(example[0], b))
                others = dict.fromkeys(also, module)
            else:
                module = _lowered(converted, example[0])
                others = {b: _lowered(converted, _batch(example[0], b)) for b in also}
    return Int8Model(module, batch_size, compile, others=others)


def _batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """`size` images from the batch `x` (repeated when it has fewer)."""
    return x.repeat(-(-size // len(x)), 1, 1, 1)[:size].contiguous()


def _exported(fp32: nn.Module, x: torch.Tensor, also: tuple[int, ...]):
    """`fp32` exported on `x` with a dynamic batch when `also` asks for other sizes (None when
    the model's graph depends on its batch size), else with a static one."""
    if not also:
        return torch.export.export(fp32, (x,)).module()
    batch = torch.export.Dim("batch", min=1, max=max(len(x), *also))
    try:
        return torch.export.export(fp32, (x,), dynamic_shapes=({0: batch},)).module()
    except Exception:  # torch's constraint errors have no one class: any means not dynamic
        return None


def _lowered(converted: torch.fx.GraphModule, x: torch.Tensor) -> Callable:
    """The converted graph lowered to oneDNN int8 ops for the batch size of `x` (run once)."""
    from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

    lowered = lower_pt2e_quantized_to_x86(converted, (x,))
    module = _pools_on_uint8(_views_to_reshapes(lowered))
    module(x)
    return module


@torch.no_grad()
def int8_accuracy(
    model: Int8Model | nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> float:
    """Top-1 accuracy in percent of an int8 (CPU) model over (images, labels) batches."""
    correct = seen = 0
    for x, y in batches:
        with _quiet():
            out = model(x.to("cpu"))
        correct += int((out.argmax(1) == y.to("cpu")).sum())
        seen += len(y)
    return 100.0 * correct / max(1, seen)
