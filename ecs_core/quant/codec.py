"""The compressed model file (`.ecsz`): sparse positions, cluster codes, codebooks, small tensors.

Layout (all little-endian)::

    header  32 bytes: magic (8) | version u16 | compressor u16 | raw length u64
                      | body length u64 | CRC-32 of body u32
    body    LZMA (xz) of: manifest length u32 | manifest (UTF-8 JSON) | blob

The manifest names the model (rebuilt with `ecs_core.models.build_model`) and lists every
state-dict tensor with its encoding and the (offset, length) of its parts in the blob:

    codebook  weights with <= 256 distinct non-zero values (after weight sharing): positions of
              the non-zeros, a code per non-zero packed `code_bits` wide, the float32 codebook.
              Decodes bit-exactly.
    int8      other conv/linear weights: positions plus per-output-channel affine int8 values
              (lossy: each weight within scale/2; the manifest says so).
    raw       everything else (biases, batch norm, counters), bytes as they are.

Positions are a bitmap or byte-coded gaps (Deep Compression stores relative indices), whichever
is smaller. LZMA, not zlib, because its adaptive range coder gets close to the entropy of the
gap and code bytes, where Deflate's Huffman codes cannot go below one bit per byte.

Loading parses JSON and raw arrays only (no pickle), checks the CRC and every size before use,
and raises `CodecError` naming the file for anything wrong.
"""

from __future__ import annotations

import json
import lzma
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecs_core.quant.bits import decode_positions, encode_positions, pack_codes, unpack_codes
from ecs_core.quant.int8 import AffineInt8, quantize_affine
from ecs_core.safeio import FileRefused, read_bytes

MAGIC = b"\x89ECSZ\r\n\x1a"
VERSION = 1
LZMA = 1
HEADER = struct.Struct("<8sHHQQI")
MAX_RAW = 1 << 34  # 16 GiB: refuse to inflate beyond this whatever the header says
MAX_EXPANSION = 1000  # and beyond 64 MiB + 1000x the compressed body (an LZMA bomb guard)
MAX_CODEBOOK = 256
# A file's model may hold at most this many values per byte of the file (with a floor for
# tiny models): checked on the `meta` device before anything is allocated, so decoding a
# hostile manifest (vgg16 x8 with 100,000 classes in 212 bytes) costs what the file does. Real
# files hold 10-300 values per byte (VGG16 at 5%: 18), so 4096 leaves a wide margin.
MAX_VALUES_PER_BYTE = 4096
MIN_VALUES_CAP = 1 << 22
# LZMA2 without literal context (lc=lp=pb=0): packed codes and gap bytes carry no useful
# byte-to-byte context; measured 0.5% smaller than the default on VGG16. Preset 6 (8 MiB
# dictionary) compresses as well as 9 on payloads this size, with a tenth of the memory.
FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "lc": 0, "lp": 0, "pb": 0}]
DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
          "int64": np.int64, "int32": np.int32, "uint8": np.uint8}  # fmt: skip
META_KEYS = ("model", "num_classes", "in_channels", "width")


class CodecError(ValueError):
    """A compressed model file cannot be read; the one-line message names the file."""


# --- encoding


class _Blob:
    """Parts appended one after another; the manifest keeps (offset, length) of each."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> list[int]:
        self.parts.append(data)
        self.size += len(data)
        return [self.size - len(data), len(data)]


def _encode_tensor(name: str, t: torch.Tensor, blob: _Blob) -> dict[str, Any]:
    arr = t.detach().to("cpu").contiguous().numpy()
    dtype = str(arr.dtype)
    if dtype not in DTYPES:
        raise ValueError(f"{name}: dtype {dtype} cannot be stored")
    entry: dict[str, Any] = {"name": name, "shape": list(arr.shape), "dtype": dtype}
    if arr.dtype != np.float32 or arr.ndim < 2:
        little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        return {**entry, "enc": "raw", "data": blob.add(little.tobytes())}
    flat = arr.ravel()
    idx = np.flatnonzero(flat)
    values = flat[idx]
    pos_kind, pos = encode_positions(idx, flat.size)
    entry.update(nnz=len(idx), pos=pos_kind, positions=blob.add(pos))
    book, codes = np.unique(values, return_inverse=True)
    if len(book) <= MAX_CODEBOOK:
        bits = max(1, int(np.ceil(np.log2(max(2, len(book))))))
        entry.update(enc="codebook", code_bits=bits, book=blob.add(book.astype("<f4").tobytes()))
        entry["codes"] = blob.add(pack_codes(codes, bits))
        return entry
    rows = arr.shape[0]
    sparse_rows = np.zeros((rows, flat.size // rows), np.float32)
    sparse_rows.flat[idx] = values
    q = quantize_affine(sparse_rows, per_channel=True)
    entry.update(enc="int8", q=blob.add(q.q.ravel()[idx].tobytes()))
    entry.update(
        scale=blob.add(q.scale.astype("<f4").tobytes()), zero_point=blob.add(q.zero_point.tobytes())
    )
    return entry


def encode(model: nn.Module, meta: dict[str, Any]) -> bytes:
    """The file's bytes for `model` (its full state dict) described by `meta`."""
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"meta is missing {', '.join(missing)}")
    blob = _Blob()
    tensors = [_encode_tensor(k, v, blob) for k, v in model.state_dict().items()]
    manifest = {"format": "ecsz", "version": VERSION, "meta": meta, "tensors": tensors}
    head = json.dumps(manifest, separators=(",", ":")).encode()
    raw = struct.pack("<I", len(head)) + head + b"".join(blob.parts)
    body = lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, filters=FILTERS)
    return HEADER.pack(MAGIC, VERSION, LZMA, len(raw), len(body), zlib.crc32(body)) + body


def save_compressed(
    path: str | Path,
    model: nn.Module,
    mask: dict[str, torch.Tensor] | None,
    meta: dict[str, Any],
) -> int:
    """Write `model` to `path` (atomically); returns the file size in bytes.

    `meta` needs model, num_classes, in_channels and width (to rebuild the model), and may
    carry dataset, bits and any other JSON-able facts. `mask`, when given, is checked: every
    weight outside it must already be 0 (positions are stored from the weights themselves).
    """
    from ecs_core.store import atomic_write_bytes

    if mask is not None:
        params = dict(model.named_parameters())
        for name, m in mask.items():
            if name in params and bool(
                (params[name].detach()[~m.to(params[name].device)] != 0).any()
            ):
                raise ValueError(f"{name} has non-zero weights outside its mask")
    data = encode(model, dict(meta))
    atomic_write_bytes(Path(path), data)
    return len(data)


# --- decoding


def read_manifest(data: bytes) -> tuple[dict[str, Any], memoryview]:
    """Check header, CRC and sizes; return (manifest, blob). Raises ValueError on any defect."""
    if len(data) < HEADER.size:
        raise ValueError(
            f"truncated ({len(data)} bytes, shorter than the {HEADER.size}-byte header)"
        )
    magic, version, comp, raw_len, body_len, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("not an ecs compressed model (bad magic bytes)")
    if version != VERSION:
        raise ValueError(f"format version {version}; this ecs reads version {VERSION}")
    if comp != LZMA:
        raise ValueError(f"unknown compressor id {comp}")
    body = data[HEADER.size :]
    if len(body) != body_len:
        raise ValueError(f"truncated or padded: body is {len(body)} bytes, header says {body_len}")
    if zlib.crc32(body) != crc:
        raise ValueError("corrupted (CRC-32 mismatch)")
    limit = min(MAX_RAW, (64 << 20) + MAX_EXPANSION * body_len)
    if raw_len > limit:
        raise ValueError(f"declares {raw_len} bytes uncompressed, over the {limit} limit")
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    raw = dec.decompress(body, max_length=raw_len + 1)
    if len(raw) != raw_len or not dec.eof:
        raise ValueError("corrupted (payload length differs from the header)")
    (head_len,) = struct.unpack_from("<I", raw)
    manifest = json.loads(raw[4 : 4 + head_len].decode())
    if not isinstance(manifest, dict) or manifest.get("format") != "ecsz":
        raise ValueError("manifest is not an ecsz manifest")
    return manifest, memoryview(raw)[4 + head_len :]


def _part(blob: memoryview, span: Any) -> bytes:
    if not (isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)):
        raise ValueError(f"bad section reference {span!r}")
    off, n = span
    if off < 0 or n < 0 or off + n > len(blob):
        raise ValueError("a section points outside the payload")
    return bytes(blob[off : off + n])


def _decode_tensor(e: dict[str, Any], blob: memoryview, like: torch.Tensor) -> np.ndarray:
    shape = tuple(like.shape)
    dtype = np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")
    numel = int(np.prod(shape))
    if e["enc"] == "raw":
        data = _part(blob, e["data"])
        if len(data) != numel * dtype.itemsize:
            raise ValueError(f"{e['name']}: {len(data)} bytes for {numel} values")
        return np.frombuffer(data, dtype).reshape(shape).copy()
    nnz = int(e["nnz"])
    if not 0 <= nnz <= numel:
        raise ValueError(f"{e['name']}: {nnz} non-zeros in {numel} weights")
    idx = decode_positions(e["pos"], _part(blob, e["positions"]), nnz, numel)
    out = np.zeros(numel, np.float32)
    if e["enc"] == "codebook":
        book = np.frombuffer(_part(blob, e["book"]), "<f4")
        bits = int(e["code_bits"])
        if not 1 <= bits <= 8:
            raise ValueError(f"{e['name']}: code width {bits} bits")
        codes = unpack_codes(_part(blob, e["codes"]), bits, nnz)
        if nnz and codes.max() >= len(book):
            raise ValueError(f"{e['name']}: code beyond the codebook")
        out[idx] = book[codes]
    elif e["enc"] == "int8":
        q = np.frombuffer(_part(blob, e["q"]), np.int8)
        scale = np.frombuffer(_part(blob, e["scale"]), "<f4")
        zp = np.frombuffer(_part(blob, e["zero_point"]), np.int8)
        if len(q) != nnz or len(scale) != shape[0] or len(zp) != shape[0]:
            raise ValueError(f"{e['name']}: int8 section sizes do not match")
        rows = idx // (numel // shape[0])
        out[idx] = AffineInt8(q, scale[rows], zp[rows]).dequantize()
    else:
        raise ValueError(f"{e['name']}: unknown encoding {e['enc']!r}")
    return out.reshape(shape)


def _build(meta: dict[str, Any]) -> nn.Module:
    from ecs_core.models import build_model

    w, nc, ic = meta["width"], meta["num_classes"], meta["in_channels"]
    if not (isinstance(w, int | float) and 0 < w <= 8 and type(nc) is int and type(ic) is int):
        raise ValueError("manifest meta has a bad width, num_classes or in_channels")
    if not (1 <= nc <= 100_000 and 1 <= ic <= 64):
        raise ValueError(f"manifest meta asks for {nc} classes and {ic} input channels")
    model = build_model(str(meta["model"]), nc, ic, float(w), source="its manifest")
    plan = meta.get("channels")
    if plan is not None:  # --structure channel: the smaller model, from its kept channels
        from ecs_core.prune.compact import rebuild_shape, shrink

        ok = isinstance(plan, dict) and all(
            isinstance(v, list) and all(type(i) is int for i in v) for v in plan.values()
        )
        if not ok:
            raise ValueError("manifest meta has a bad channel plan")
        shrink(model, plan, rebuild_shape(ic))
    return model


def _check_fits(entries: dict[str, Any], shapes: dict[str, torch.Tensor], size: int) -> None:
    """Names, shapes and dtypes of the manifest against the model (built on `meta`: no memory),
    and the model's size against what a file of `size` bytes could hold; before allocating."""
    if set(entries) != set(shapes):
        raise ValueError("the tensors listed do not match the model's state dict")
    for k, like in shapes.items():
        e = entries[k]
        dtype = str(torch.empty(0, dtype=like.dtype).numpy().dtype)
        if not isinstance(e.get("shape"), list) or tuple(e["shape"]) != tuple(like.shape):
            raise ValueError(f"{k}: shape {e.get('shape')} does not fit the model")
        if e.get("dtype") != dtype or dtype not in DTYPES:
            raise ValueError(f"{k}: dtype {e.get('dtype')} does not fit the model")
    values = sum(t.numel() for t in shapes.values())
    cap = max(MIN_VALUES_CAP, MAX_VALUES_PER_BYTE * size)
    if values > cap:
        raise ValueError(
            f"the manifest describes a model of {values:,} values, more than a {size:,}-byte "
            f"file can hold ({cap:,}); the file is damaged or not ours"
        )


def decode(data: bytes) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from the file's bytes. Raises ValueError/KeyError/TypeError on defects.

    Memory is bounded by the file: the model is first built on the `meta` device and checked
    against the manifest and the file's size; only then is it allocated.
    """
    manifest, blob = read_manifest(data)
    meta = manifest["meta"]
    tensors = manifest["tensors"]
    if not (isinstance(meta, dict) and isinstance(tensors, list)):
        raise ValueError("manifest meta or tensor list is malformed")
    entries = {e["name"]: e for e in tensors}
    if len(entries) != len(tensors):
        seen: set[str] = set()
        twice = next(e["name"] for e in tensors if e["name"] in seen or seen.add(e["name"]))
        raise ValueError(f"manifest lists tensor {twice} twice; the file is damaged")
    with torch.device("meta"):
        shapes = _build(meta).state_dict()
    _check_fits(entries, shapes, len(data))
    model = _build(meta)
    state = model.state_dict()
    new = {k: torch.from_numpy(_decode_tensor(entries[k], blob, v)) for k, v in state.items()}
    model.load_state_dict(new)
    lossy = sorted(k for k, e in entries.items() if e["enc"] == "int8")
    return model.eval(), {**meta, "lossy_tensors": lossy}


def load_compressed(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode on the CPU, meta) from a `.ecsz` file; any defect -> `CodecError`.

    `meta["lossy_tensors"]` lists tensors stored as int8 (not bit-exact); empty for a model
    whose weights were shared before export.
    """
    path = Path(path)
    try:
        data = read_bytes(path)  # a regular file only: never /dev/zero or a FIFO
    except FileRefused as exc:
        raise CodecError(str(exc)) from exc
    except OSError as exc:
        raise CodecError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        return decode(data)
    except CodecError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RuntimeError,
            struct.error, lzma.LZMAError, UnicodeDecodeError) as exc:  # fmt: skip
        raise CodecError(f"{path}: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """One line for the user, whatever went wrong inside decoding."""
    if isinstance(exc, lzma.LZMAError | UnicodeDecodeError | json.JSONDecodeError | struct.error):
        return f"corrupted ({type(exc).__name__}: {exc})"
    if isinstance(exc, KeyError):
        return f"manifest is missing field {exc}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
