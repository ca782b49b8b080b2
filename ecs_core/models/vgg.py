"""VGG16 / VGG19 with batch norm for 32x32 inputs (CIFAR variant: 5 max-pools, a small
classifier). Simonyan & Zisserman 2015, configurations D (16) and E (19)."""

from __future__ import annotations

import torch
from torch import nn

# Channels per conv layer; "M" is a 2x2 max-pool. After 5 pools a 32x32 image is 1x1.
VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                              512, 512, 512, "M", 512, 512, 512, "M"]  # fmt: skip
VGG19_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]  # fmt: skip


def scaled(channels: int, width: float) -> int:
    """Channels after the width multiplier (at least 1)."""
    return max(1, int(round(channels * width)))


class VGG(nn.Module):
    """VGG-BN: conv-bn-relu blocks, then Linear-ReLU-Linear on the 1x1 feature map."""

    def __init__(
        self,
        cfg: list[int | str],
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            c_out = scaled(int(v), width)
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        hidden = scaled(512, width)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def vgg16(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> VGG:
    """VGG16-BN for 32x32 images. Example: `vgg16(num_classes=100, width=0.25)`."""
    return VGG(VGG16_CFG, num_classes, in_channels, width)


def vgg19(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> VGG:
    """VGG19-BN for 32x32 images (16 convs, the same classifier as VGG16)."""
    return VGG(VGG19_CFG, num_classes, in_channels, width)
