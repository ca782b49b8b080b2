"""Bit-level pieces of the .ecsz format: packed cluster codes and sparse positions.

Positions are either a bitmap (one bit per weight) or the gaps between successive non-zeros,
one byte each with 255 meaning "add 255 and read on" (Deep Compression's relative indices with
filler entries, here without the filler zeros in the code stream). Whichever is smaller wins;
LZMA then entropy-codes the bytes.
"""

from __future__ import annotations

import numpy as np


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack small non-negative ints `bits` wide, least significant bit first."""
    c = np.ascontiguousarray(codes, dtype=np.uint8)
    planes = np.unpackbits(c[:, None], axis=1, bitorder="little")[:, :bits]
    return np.packbits(planes.ravel(), bitorder="little").tobytes()


def unpack_codes(data: bytes, bits: int, n: int) -> np.ndarray:
    """Inverse of `pack_codes` for `n` codes (int64)."""
    flat = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
    if len(flat) < n * bits:
        raise ValueError("code section too short")
    planes = flat[: n * bits].reshape(n, bits)
    return (planes.astype(np.uint16) << np.arange(bits, dtype=np.uint16)).sum(1).astype(np.int64)


def encode_gaps(idx: np.ndarray) -> bytes:
    """Gaps between sorted flat indices, one byte each; 255 means "add 255 and read on"."""
    gaps = np.diff(idx, prepend=-1) - 1
    full, rest = np.divmod(gaps, 255)
    lengths = full + 1
    out = np.full(int(lengths.sum()), 255, dtype=np.uint8)
    out[np.cumsum(lengths) - 1] = rest
    return out.tobytes()


def decode_gaps(data: bytes, nnz: int, numel: int) -> np.ndarray:
    """Inverse of `encode_gaps`: every byte below 255 ends one entry, whose gap is the sum of
    its bytes (so a cumulative sum read at the ends gives all of them at once)."""
    b = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(b != 255)
    if len(ends) != nnz or (len(b) and b[-1] == 255):
        raise ValueError("position section does not hold the stated number of entries")
    total = np.cumsum(b, dtype=np.int64)[ends] if nnz else np.zeros(0, np.int64)
    gaps = np.diff(total, prepend=0)
    idx = np.cumsum(gaps + 1) - 1
    if nnz and idx[-1] >= numel:
        raise ValueError("position beyond the end of the tensor")
    return idx


def encode_positions(idx: np.ndarray, numel: int) -> tuple[str, bytes]:
    """("all" | "delta" | "bitmap", bytes) for sorted flat indices: the smaller coding."""
    if len(idx) == numel:
        return "all", b""
    gaps = encode_gaps(idx)
    if len(gaps) <= (numel + 7) // 8:
        return "delta", gaps
    bitmap = np.zeros(numel, dtype=np.uint8)
    bitmap[idx] = 1
    return "bitmap", np.packbits(bitmap, bitorder="little").tobytes()


def decode_positions(kind: str, data: bytes, nnz: int, numel: int) -> np.ndarray:
    """Sorted flat indices back; ValueError when the bytes do not fit `nnz` and `numel`."""
    if kind == "all":
        return np.arange(numel)
    if kind == "delta":
        return decode_gaps(data, nnz, numel)
    if kind == "bitmap":
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
        if len(bits) < numel or bits[numel:].any():
            raise ValueError("bitmap size does not match the tensor")
        idx = np.flatnonzero(bits[:numel])
        if len(idx) != nnz:
            raise ValueError("bitmap does not hold the stated number of entries")
        return idx
    raise ValueError(f"unknown position coding {kind!r}")
