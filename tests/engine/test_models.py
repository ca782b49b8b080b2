"""Models: forward shapes, width multiplier, names, and what a mask covers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecs_core.config import ConfigError
from ecs_core.models import build_model, prunable_weights

MODELS = ["vgg16", "vgg19", "resnet18", "resnet34", "resnet50"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("channels", "classes"), [(1, 10), (3, 10), (3, 100), (1, 100)])
def test_forward_shape(name: str, channels: int, classes: int) -> None:
    """A 32x32 batch with 1 or 3 channels gives one logit per class."""
    torch.manual_seed(0)
    net = build_model(name, num_classes=classes, in_channels=channels, width=0.125).eval()
    with torch.no_grad():
        out = net(torch.randn(2, channels, 32, 32))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_width_multiplier_scales_channels(name: str) -> None:
    """Half width has about a quarter of the parameters (conv weights scale with c_in * c_out)."""
    small = build_model(name, 10, 3, width=0.125)
    half = build_model(name, 10, 3, width=0.25)
    ratio = count(half) / count(small)
    assert 3.0 < ratio < 4.5
    first = next(m for m in small.modules() if isinstance(m, nn.Conv2d))
    assert first.out_channels == 8  # 64 * 0.125
    assert first.in_channels == 3


def test_full_width_sizes_match_the_reference_architectures() -> None:
    """Full-width parameter counts are those of CIFAR VGG16-BN / ResNet34 / ResNet50."""
    # Reference counts of the usual CIFAR variants (kuangliu/pytorch-cifar layout): ResNet34
    # 21.28M, ResNet50 23.52M; VGG16-BN features 14.72M plus our 512-512-10 classifier.
    assert round(count(build_model("resnet34", 10)) / 1e6, 2) == 21.28
    assert round(count(build_model("resnet50", 10)) / 1e6, 2) == 23.52
    assert round(count(build_model("vgg16", 10)) / 1e6, 2) == 14.99


def test_resnet18_and_vgg19_sizes_match_the_reference_architectures() -> None:
    """ResNet18 (CIFAR, kuangliu layout): 11,173,962 parameters for 10 classes. VGG19-BN:
    16 bias-free 3x3 convs with batch norm (configuration E; 20.03M, as the usual CIFAR
    VGG19-BN features), then our 512-512-10 classifier (0.27M)."""
    assert count(build_model("resnet18", 10)) == 11_173_962
    cfg = [64, 64, 128, 128, 256, 256, 256, 256] + [512] * 8
    convs = sum(
        9 * c_in * c_out + 2 * c_out for c_in, c_out in zip([3, *cfg[:-1]], cfg, strict=True)
    )
    classifier = 512 * 512 + 512 + 512 * 10 + 10
    assert count(build_model("vgg19", 10)) == convs + classifier == 20_297_674
    net = build_model("vgg19", 10)
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 16
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 16
    r18 = build_model("resnet18", 10)
    assert [len(getattr(r18, f"layer{i}")) for i in (1, 2, 3, 4)] == [2, 2, 2, 2]
    assert build_model("VGG19_BN", 10, width=0.125).__class__ is net.__class__  # aliases


def test_resnet_has_cifar_stem() -> None:
    """3x3 stride-1 stem and no initial max-pool: a 32x32 input keeps 32x32 after the stem."""
    net = build_model("resnet50", 10, 3, width=0.125)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())


def test_vgg_has_five_pools_and_batch_norm() -> None:
    net = build_model("vgg16", 10, 3, width=0.125)
    mods = list(net.modules())
    assert sum(isinstance(m, nn.MaxPool2d) for m in mods) == 5
    assert sum(isinstance(m, nn.BatchNorm2d) for m in mods) == 13
    assert sum(isinstance(m, nn.Conv2d) for m in mods) == 13


@pytest.mark.parametrize("spelling", ["VGG16", "vgg16", "Vgg16", " vgg16 "])
def test_names_are_case_insensitive(spelling: str) -> None:
    net = build_model(spelling, 10, 3, width=0.125)
    assert type(net).__name__ == "VGG"


@pytest.mark.parametrize("spelling", ["ResNet34", "RESNET50"])
def test_resnet_names_are_case_insensitive(spelling: str) -> None:
    assert type(build_model(spelling, 10, 3, width=0.125)).__name__ == "ResNet"


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        build_model("alexnet", 10)
    message = str(err.value)
    assert "alexnet" in message
    for name in MODELS:
        assert name in message


def test_prunable_weights_are_conv_and_linear_weights_in_order() -> None:
    net = build_model("resnet34", 10, 3, width=0.125)
    weights = prunable_weights(net)
    expected = [
        f"{n}.weight" for n, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    assert list(weights) == expected
    params = dict(net.named_parameters())
    assert all(weights[k] is params[k] for k in weights)
    assert "fc.weight" in weights and "conv1.weight" in weights
    assert not any("bn" in k or k.endswith("bias") for k in weights)


@pytest.mark.parametrize("name", ["vgg19", "resnet18"])
def test_new_models_run_end_to_end(name: str, tmp_path, small_digits) -> None:
    from ecs_core.config import RunConfig
    from ecs_core.pipeline import run

    cfg = RunConfig(model=name, method="snip", density=0.1, width=0.125, epochs=1, max_batches=1,
                    batch_size=8, quantize=False, device="cpu", runs_dir=str(tmp_path))  # fmt: skip
    events = list(run(cfg))
    assert events[-1].kind == "run_finished" and events[-1].status == "finished"
    pruned = next(e for e in events if e.kind == "pruned")
    assert [r["name"] for r in pruned.layers] == list(
        prunable_weights(build_model(name, 10, 1, 0.125))
    )
