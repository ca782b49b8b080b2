"""The .ecsz file: bit-exact round trips, and a clear CodecError for every kind of bad file."""

from __future__ import annotations

import json
import lzma
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from ecs_core.models import build_model, prunable_weights
from ecs_core.quant import codec
from ecs_core.quant.bits import (
    decode_gaps,
    decode_positions,
    encode_gaps,
    encode_positions,
    pack_codes,
    unpack_codes,
)
from ecs_core.quant.codec import CodecError, load_compressed, save_compressed
from ecs_core.quant.kmeans import share_weights

META = {"model": "vgg16", "num_classes": 10, "in_channels": 1, "width": 0.125, "bits": 5}


def shared_model(density: float = 0.05, bits: int = 5) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 1, 0.125)
    for m in model.modules():  # non-trivial batch-norm state, stored raw
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.num_batches_tracked.fill_(7)
    mask = {k: torch.rand_like(w) < density for k, w in prunable_weights(model).items()}
    share_weights(model, bits, mask)
    return model.eval(), mask


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    model, mask = shared_model()
    path = tmp_path_factory.mktemp("codec") / "m.ecsz"
    save_compressed(path, model, mask, META)
    return path, model


def test_round_trip_is_bit_exact(saved: tuple[Path, torch.nn.Module]) -> None:
    """Every tensor of the decoded model equals the shared-weight model's, and so do outputs."""
    path, model = saved
    decoded, meta = load_compressed(path)
    ours, theirs = model.state_dict(), decoded.state_dict()
    assert list(ours) == list(theirs)
    for k in ours:
        assert ours[k].dtype == theirs[k].dtype and torch.equal(ours[k], theirs[k]), k
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), decoded(x))
    assert meta["bits"] == 5 and meta["lossy_tensors"] == []


@pytest.mark.parametrize("density", [0.01, 0.3, 1.0])
def test_round_trip_at_any_density(tmp_path: Path, density: float) -> None:
    """Gap coding (sparse), bitmap (denser) and "all" (dense) positions all round-trip."""
    model, mask = shared_model(density, bits=3)
    size = save_compressed(tmp_path / "m.ecsz", model, mask, META)
    decoded, _ = load_compressed(tmp_path / "m.ecsz")
    assert size == (tmp_path / "m.ecsz").stat().st_size
    for k, v in model.state_dict().items():
        assert torch.equal(v, decoded.state_dict()[k]), k


def test_smaller_than_dense_and_csr(saved: tuple[Path, torch.nn.Module]) -> None:
    from ecs_core.quant.stage import csr_bytes, dense_bytes

    path, model = saved
    size = path.stat().st_size
    assert size * 10 < dense_bytes(model)
    assert size < csr_bytes(model)


def test_unshared_weights_are_stored_int8_within_half_a_step(tmp_path: Path) -> None:
    """Weights with more than 256 values go in as per-channel int8: error <= scale/2, 0 exact."""
    torch.manual_seed(0)
    model = build_model("vgg16", 10, 1, 0.125)
    save_compressed(tmp_path / "m.ecsz", model, None, META)
    decoded, meta = load_compressed(tmp_path / "m.ecsz")
    many = {k for k, w in prunable_weights(model).items() if torch.unique(w).numel() > 256}
    assert many and set(meta["lossy_tensors"]) == many
    for name, w in prunable_weights(model).items():
        w2 = decoded.state_dict()[name]
        rows = w.detach().reshape(len(w), -1)
        span = torch.maximum(rows.max(1).values, torch.zeros(())) - torch.minimum(
            rows.min(1).values, torch.zeros(())
        )
        step = (span / 255).view(-1, *([1] * (w.dim() - 1)))
        assert torch.all((w2 - w.detach()).abs() <= step / 2 * (1 + 1e-5) + 1e-12), name


def test_mask_is_checked(tmp_path: Path) -> None:
    model, mask = shared_model()
    name = next(iter(mask))
    mask[name] = torch.zeros_like(mask[name])
    with pytest.raises(ValueError, match="outside its mask"):
        save_compressed(tmp_path / "m.ecsz", model, mask, META)


@pytest.mark.parametrize("bits", range(1, 9))
def test_pack_codes_round_trip(bits: int) -> None:
    codes = np.random.default_rng(bits).integers(0, 2**bits, 1001)
    data = pack_codes(codes, bits)
    assert len(data) == (1001 * bits + 7) // 8
    assert np.array_equal(unpack_codes(data, bits, 1001), codes)


def test_gap_coding_round_trip_with_long_gaps() -> None:
    idx = np.array([0, 1, 255, 256, 1000, 70_000, 70_001, 199_999])
    data = encode_gaps(idx)
    assert np.array_equal(decode_gaps(data, len(idx), 200_000), idx)
    assert decode_gaps(encode_gaps(np.zeros(0, np.int64)), 0, 10).size == 0
    for n in (0, 5, 10):
        kind, data = encode_positions(np.arange(n), 10)
        assert np.array_equal(decode_positions(kind, data, n, 10), np.arange(n))
    with pytest.raises(ValueError):
        decode_gaps(data + b"\xff", 8, 200_000)
    with pytest.raises(ValueError):
        decode_gaps(encode_gaps(idx), len(idx), 1000)  # beyond the end


# --- bad files


def assert_codec_error(path: Path, *fragments: str) -> None:
    with pytest.raises(CodecError) as info:
        load_compressed(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("keep", [0, 10, 31, 32, 100, -1])
def test_truncated(saved: tuple[Path, torch.nn.Module], tmp_path: Path, keep: int) -> None:
    data = saved[0].read_bytes()
    cut = tmp_path / "cut.ecsz"
    cut.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    assert_codec_error(cut, "truncated")


@pytest.mark.parametrize("where", [40, 500, -3])
def test_corrupted_byte(saved: tuple[Path, torch.nn.Module], tmp_path: Path, where: int) -> None:
    data = bytearray(saved[0].read_bytes())
    data[where] ^= 0x5A
    bad = tmp_path / "bad.ecsz"
    bad.write_bytes(bytes(data))
    assert_codec_error(bad, "CRC")


def test_garbage_and_bad_magic(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.ecsz"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_codec_error(bad, "bad magic")
    empty = tmp_path / "empty.ecsz"
    empty.write_bytes(b"")
    assert_codec_error(empty, "truncated")
    assert_codec_error(tmp_path / "missing.ecsz", "cannot read")


def test_wrong_version(saved: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    data = bytearray(saved[0].read_bytes())
    struct.pack_into("<H", data, 8, 99)
    bad = tmp_path / "v99.ecsz"
    bad.write_bytes(bytes(data))
    assert_codec_error(bad, "version 99")


class _Boom:
    """Unpickling this would create a file: loading must never get that far."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_pickle_files_are_refused_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    for i, data in enumerate([pickle.dumps(_Boom(str(marker))), _torch_save(marker)]):
        bad = tmp_path / f"p{i}.ecsz"
        bad.write_bytes(data)
        assert_codec_error(bad)
    assert not marker.exists()


def _torch_save(marker: Path) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save({"x": _Boom(str(marker))}, buf)
    return buf.getvalue()


def rewrite(data: bytes, edit) -> bytes:
    """Re-pack a file after `edit(manifest)`, with a valid CRC: only the manifest is wrong."""
    manifest, blob = codec.read_manifest(data)
    edit(manifest)
    head = json.dumps(manifest).encode()
    raw = struct.pack("<I", len(head)) + head + bytes(blob)
    body = lzma.compress(raw, format=lzma.FORMAT_XZ)
    return codec.HEADER.pack(codec.MAGIC, 1, 1, len(raw), len(body), zlib.crc32(body)) + body


def _bad_section(m: dict) -> None:
    m["tensors"][0]["codes"] = [10**9, 5]


def _bad_shape(m: dict) -> None:
    m["tensors"][0]["shape"] = [1, 2, 3]


def _huge_model(m: dict) -> None:
    m["meta"]["width"] = 1e9


def _unknown_model(m: dict) -> None:
    m["meta"]["model"] = "alexnet"


def _missing_tensor(m: dict) -> None:
    m["tensors"].pop()


def _code_out_of_range(m: dict) -> None:
    e = next(t for t in m["tensors"] if t["enc"] == "codebook")
    e["book"] = [e["book"][0], 4]  # a one-entry codebook for codes up to 31


@pytest.mark.parametrize(
    "edit",
    [_bad_section, _bad_shape, _huge_model, _unknown_model, _missing_tensor, _code_out_of_range],
)
def test_inconsistent_manifest(saved: tuple[Path, torch.nn.Module], tmp_path: Path, edit) -> None:
    bad = tmp_path / "m.ecsz"
    bad.write_bytes(rewrite(saved[0].read_bytes(), edit))
    assert_codec_error(bad)


def test_rewrite_helper_makes_valid_files(
    saved: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    """The tampering helper itself produces loadable files (so the tests above test the edit)."""
    ok = tmp_path / "same.ecsz"
    ok.write_bytes(rewrite(saved[0].read_bytes(), lambda m: None))
    load_compressed(ok)
