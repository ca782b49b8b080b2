"""Quantization: k-means weight sharing, int8 (storage and inference), the compressed file.

Example (notebook)::

    from ecs_core.models import build_model
    from ecs_core.quant import load_compressed, save_compressed, share_weights
    net = build_model("vgg16", 10, 3, width=0.25)
    report = share_weights(net, bits=5)          # in place; zeros stay exactly 0
    meta = {"model": "vgg16", "num_classes": 10, "in_channels": 3, "width": 0.25}
    save_compressed("net.ecsz", net, None, meta)
    same, meta = load_compressed("net.ecsz")     # bit-exact weights
"""

from __future__ import annotations

from ecs_core.quant.codec import CodecError, load_compressed, save_compressed
from ecs_core.quant.kmeans import LayerShare, ShareReport, kmeans_1d, share_weights

__all__ = [
    "CodecError",
    "LayerShare",
    "ShareReport",
    "kmeans_1d",
    "load_compressed",
    "save_compressed",
    "share_weights",
]
