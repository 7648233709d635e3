"""Reading IDX files (the MNIST format), gzipped or not, with strict header validation."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from mnist_models.errors import DataError

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_KINDS = {"images": (0x00000803, 3), "labels": (0x00000801, 1)}


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzip (detected by its magic bytes)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip stream ({exc})") from None


def parse_idx(content: bytes, name: str, kind: str | None = None) -> np.ndarray:
    """Parses IDX ``content``; ``kind`` (``images``/``labels``) fixes the expected magic.

    Raises:
        DataError: Naming ``name``, for a wrong magic, a wrong number of dimensions, or a
            payload whose length differs from the product of the dimensions.
    """
    if len(content) < 4:
        raise DataError(f"{name}: {len(content)} bytes, too short for an IDX header")
    magic = int.from_bytes(content[:4], "big")
    if kind is not None:
        expected_magic, ndim = _KINDS[kind]
        if magic != expected_magic:
            raise DataError(
                f"{name}: bad magic 0x{magic:08x}, expected 0x{expected_magic:08x} (IDX {kind})"
            )
    else:
        ndim = content[3]
        if content[:2] != b"\x00\x00" or content[2] != _UBYTE or ndim == 0:
            raise DataError(f"{name}: bad magic 0x{magic:08x}, expected 0x000008NN (IDX ubyte)")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{name}: truncated header ({len(content)} of {header} bytes)")
    dims = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(content) != expected:
        what = "truncated" if len(content) < expected else "trailing bytes"
        raise DataError(
            f"{name}: {what}: {len(content)} bytes, expected {expected} for dims {dims}"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str | Path, kind: str | None = None) -> np.ndarray:
    """Reads an IDX file (gzipped or raw) into a uint8 array of its dimensions."""
    path = Path(path)
    return parse_idx(read_bytes(path), str(path), kind)
