"""int8: affine storage error bounds, and the int8 CPU model's accuracy against fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecs_core.data.loader import Batches
from ecs_core.quant.int8 import (
    Int8Unavailable,
    build_int8,
    check_available,
    int8_accuracy,
    pool_2x2_uint8,
    quantize_affine,
)
from ecs_core.quant.kmeans import share_weights
from ecs_core.quant.stage import calibration_images
from ecs_core.train import evaluate


def test_affine_per_channel_error_and_exact_zero() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * rng.uniform(0.01, 1, (16, 1, 1, 1))
    x[x.__abs__() < 0.2] = 0
    x[3] = 0  # an all-zero channel
    x[5] = np.abs(x[5])  # one-signed channels still include 0 in their range
    q = quantize_affine(x, per_channel=True)
    assert q.q.dtype == np.int8 and q.scale.shape == (16,) and q.zero_point.shape == (16,)
    back = q.dequantize()
    assert np.all(back[x == 0] == 0)
    err = np.abs(back - x).reshape(16, -1).max(1)
    assert np.all(err <= q.scale / 2 * (1 + 1e-5))


def test_affine_per_tensor() -> None:
    x = np.linspace(-1, 3, 1000, dtype=np.float32)
    q = quantize_affine(x, per_channel=False)
    assert q.scale.shape == (1,)
    assert np.abs(q.dequantize() - x).max() <= q.scale[0] / 2 * (1 + 1e-5)


def _skip_without_int8() -> None:
    try:
        check_available()
    except Int8Unavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.slow
def test_int8_accuracy_within_one_point_of_fp32(
    trained_cnn: torch.nn.Module, digits_batches: tuple[Batches, Batches]
) -> None:
    """Static PTQ of a trained, weight-shared CNN keeps accuracy within 1 point of fp32."""
    _skip_without_int8()
    train, test = digits_batches
    import copy

    model = copy.deepcopy(trained_cnn)
    share_weights(model, 5)
    _, fp32 = evaluate(model, test)
    assert fp32 > 85  # a real model, or the comparison means nothing
    q = build_int8(model, calibration_images(train, 4), batch_size=64)
    int8 = int8_accuracy(q, test.epoch())
    assert abs(int8 - fp32) <= 1.0, (fp32, int8)
    x = test.normalise(test.x[:5])
    with torch.no_grad():
        ref = model.eval()(x)
    out = q(x)  # padded to the graph's batch of 64, then cut back to 5
    assert out.shape == ref.shape
    assert torch.equal(out.argmax(1), ref.argmax(1))
    assert q(torch.cat([x] * 30)).shape == (150, 10)  # split over several batches
    pools = [n for n in q.module.graph.nodes if "max_pool" in str(n.target)]
    assert pools == []  # all three pools run on the uint8 values (`_pools_on_uint8`)


@pytest.mark.parametrize("shape", [(2, 5, 8, 8), (3, 4, 7, 9), (1, 64, 2, 2)])
def test_uint8_pool_equals_the_float_round_trip(shape: tuple[int, ...]) -> None:
    """Pooling the uint8 values gives exactly dequantize -> max-pool -> quantize (odd sizes
    drop the last row/column like max_pool2d; channels-last inputs too)."""
    _skip_without_int8()
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    if shape[1] == 64:
        x = x.contiguous(memory_format=torch.channels_last)
    ops, scale, zp = torch.ops.quantized_decomposed, 0.0123, 7
    real = ops.dequantize_per_tensor(x, scale, zp, 0, 255, torch.uint8)
    pooled = torch.nn.functional.max_pool2d(real, 2, 2)
    ref = ops.quantize_per_tensor(pooled, scale, zp, 0, 255, torch.uint8)
    assert torch.equal(pool_2x2_uint8(x), ref)


@pytest.mark.parametrize(
    ("pool", "rewritten"),
    [
        (torch.nn.MaxPool2d(2), True),
        (torch.nn.MaxPool2d(2, 2, padding=1), False),
        (torch.nn.MaxPool2d(2, 2, ceil_mode=True), False),
        (torch.nn.MaxPool2d(2, 1), False),
        (torch.nn.MaxPool2d(3, 2, padding=1), False),
    ],
    ids=["2x2", "padding", "ceil", "stride1", "3x3"],
)
def test_only_plain_2x2_pools_are_rewritten(pool: torch.nn.Module, rewritten: bool) -> None:
    """Pools the uint8 rewrite does not reproduce exactly stay as they were; either way the
    int8 model's output is the same as the graph's without the rewrite."""
    _skip_without_int8()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), pool,
                                torch.nn.Conv2d(4, 2, 1), torch.nn.Flatten()).eval()  # fmt: skip
    x = torch.randn(8, 1, 9, 9)
    q = build_int8(model, [x], batch_size=8)
    pools = [n for n in q.module.graph.nodes if "max_pool" in str(n.target)]
    assert (pools == []) is rewritten
    with torch.no_grad():
        ref = model(x)
    out = q(x)
    assert out.shape == ref.shape
    assert float((out - ref).norm() / ref.norm()) < 0.1


def test_check_available_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    with pytest.raises(Int8Unavailable, match="oneDNN"):
        check_available()


def test_other_batch_sizes_are_the_same_quantized_graph() -> None:
    """`also`: calibrated and converted once, lowered per batch size: batch 1 gives what the
    batch-8 graph gives for the same image, and what a build without `also` gives; a model
    whose graph depends on its batch size is lowered at its own batch only."""
    _skip_without_int8()
    from ecs_core.models import build_model

    torch.manual_seed(0)
    model = build_model("vgg16", 10, 1, 0.125).eval()
    x = torch.randn(8, 1, 32, 32)
    q = build_int8(model, [x], batch_size=8, also=(1,))
    one = q.at(1)
    assert (one.batch_size, q.at(8)) == (1, q) and set(q.others) == {1}
    plain = build_int8(model, [x], batch_size=8)
    want = plain(x)
    torch.testing.assert_close(q(x), want, rtol=0, atol=0)
    for i in (0, 5):
        torch.testing.assert_close(one(x[i : i + 1]), want[i : i + 1], rtol=1e-5, atol=1e-5)

    class Fixed(torch.nn.Module):  # reshapes to its batch size: no dynamic batch
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.conv(t).reshape(8, -1)

    fixed = build_int8(Fixed().eval(), [x], batch_size=8, also=(1,))
    assert fixed.others == {} and fixed(x).shape == (8, 2 * 30 * 30)
