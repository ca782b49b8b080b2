"""ResNet18 for 32x32 inputs (He et al. 2016; the CIFAR layout of kuangliu/pytorch-cifar).

Built from resnet.py's `BasicBlock` and `ResNet`, so the blocks are exactly ResNet34's (and
any change there, such as one ReLU module per call for the int8 quantizer, applies here too).
"""

from __future__ import annotations

from ecs_core.models.resnet import BasicBlock, ResNet


def resnet18(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> ResNet:
    """ResNet18 (basic blocks 2-2-2-2) for 32x32 images: 11.17M parameters for 10 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, width)
