"""A hostile `.ecsz` manifest cannot make the decoder allocate more than the file could hold.

The manifest names the model (vgg16 x8, 100,000 classes: about 1e9 values, 4 GB) in a file of
a few hundred bytes. The decoder must refuse it from the shapes alone (built on the `meta`
device), so `ecs eval` runs here under an address-space limit of 1.5 GB above what the process
had mapped after its imports; the unbounded decoder needs about 6 GB and dies or fails.
"""

from __future__ import annotations

import json
import lzma
import struct
import sys
import zlib

import pytest
import torch

from ecs_core.models import build_model
from ecs_core.quant import codec

META = {"model": "vgg16", "num_classes": 100_000, "in_channels": 3, "width": 8,
        "dataset": "digits"}  # fmt: skip


def _file(tensors: list[dict], meta: dict = META) -> bytes:
    manifest = {"format": "ecsz", "version": codec.VERSION, "meta": meta, "tensors": tensors}
    head = json.dumps(manifest).encode()
    raw = struct.pack("<I", len(head)) + head
    body = lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, filters=codec.FILTERS)
    header = codec.HEADER.pack(codec.MAGIC, codec.VERSION, codec.LZMA, len(raw), len(body),
                               zlib.crc32(body))  # fmt: skip
    return header + body


def _full_manifest(meta: dict) -> list[dict]:
    """Every tensor of the model with its true name, shape and dtype; weights all-zero."""
    with torch.device("meta"):
        state = build_model(meta["model"], meta["num_classes"], 3, meta["width"]).state_dict()
    out = []
    for name, t in state.items():
        e = {"name": name, "shape": list(t.shape),
             "dtype": str(torch.empty(0, dtype=t.dtype).numpy().dtype)}  # fmt: skip
        if t.dtype == torch.float32 and t.dim() >= 2:
            e.update(enc="codebook", nnz=0, pos="delta", positions=[0, 0], book=[0, 0],
                     codes=[0, 0], code_bits=1)  # fmt: skip
        else:
            e.update(enc="raw", data=[0, 0])
        out.append(e)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("kind", ["empty-list", "full-list", "resnet50"])
def test_manifest_bomb_is_refused_within_a_memory_limit(proc, tmp_path, kind):
    meta = {**META, "model": "resnet50"} if kind == "resnet50" else META
    tensors = [] if kind == "empty-list" else _full_manifest(meta)
    path = tmp_path / f"{kind}.ecsz"
    path.write_bytes(_file(tensors, meta))
    r = proc.run_bounded(["eval", str(path)])  # 1.5 GB above what the imports mapped
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), r.stderr
    if kind == "empty-list":  # the unbounded decoder reports the allocator failing instead
        assert "tensors listed do not match" in lines[0], lines[0]
    else:
        assert "more than a" in lines[0] and "file can hold" in lines[0], lines[0]


def test_cap_leaves_real_files_alone(tmp_path):
    """The cap is far above what a real (pruned, shared) model stores per byte."""
    from ecs_core.quant.kmeans import share_weights

    torch.manual_seed(0)
    model = build_model("vgg16", 10, 1, 0.125)
    share_weights(model, 5)
    size = codec.save_compressed(tmp_path / "m.ecsz", model, None, {**META, "num_classes": 10,
                                 "in_channels": 1, "width": 0.125})  # fmt: skip
    values = sum(t.numel() for t in model.state_dict().values())
    assert values < codec.MAX_VALUES_PER_BYTE * size / 100
    decoded, _ = codec.load_compressed(tmp_path / "m.ecsz")
    ours, theirs = model.state_dict(), decoded.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in ours.items())
