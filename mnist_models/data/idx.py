"""Reading IDX files (the MNIST format), gzipped or not, with strict header validation.

An IDX file is a 4-byte magic ``0x0000TTNN`` (``TT`` the element type, ``NN`` the number of
dimensions), ``NN`` big-endian uint32 sizes, then the elements. MNIST uses ubyte (``0x08``):
images are ``0x00000803`` (n, rows, cols) and labels ``0x00000801`` (n,).
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from mnist_models.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
# kind -> (exact magic, number of dimensions)
IDX_KINDS = {"images": (0x00000803, 3), "labels": (0x00000801, 1)}


def is_gzip(content: bytes) -> bool:
    """Whether ``content`` starts with the gzip magic bytes (the suffix is not trusted)."""
    return content.startswith(GZIP_MAGIC)


def decompress(content: bytes, name: str) -> bytes:
    """``content`` decompressed when it is gzip, else unchanged.

    Raises:
        DataError: Naming ``name``, when the gzip stream is corrupt or cut short.
    """
    if not is_gzip(content):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{name}: corrupt gzip stream ({exc})") from None


def read_bytes(path: Path) -> bytes:
    """The file's content as stored (still compressed if it is gzip).

    Raises:
        DataError: When the file is missing or unreadable.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def parse_idx(content: bytes, name: str, kind: str | None = None) -> np.ndarray:
    """Parses uncompressed IDX ``content`` into a read-only uint8 array.

    Args:
        content: The whole file, already decompressed.
        name: What to call the file in errors (usually its path).
        kind: ``"images"`` or ``"labels"`` to demand the MNIST magic of that kind; ``None``
            accepts any ubyte IDX file (``0x000008NN``, ``NN`` dimensions).

    Returns:
        A uint8 array shaped by the header's dimensions.

    Raises:
        DataError: Naming ``name``, for a wrong magic, a short header, or a payload whose
            length differs from the product of the dimensions (truncated or trailing bytes).
    """
    if kind is not None and kind not in IDX_KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {sorted(IDX_KINDS)} or None")
    if len(content) < 4:
        raise DataError(f"{name}: {len(content)} bytes, too short for an IDX header")
    magic = int.from_bytes(content[:4], "big")
    if kind is not None:
        expected_magic, ndim = IDX_KINDS[kind]
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
        raise DataError(
            f"{name}: truncated header: {len(content)} bytes, expected {header} for {ndim} dims"
        )
    dims = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    # math.prod on Python ints: a garbage header cannot overflow into a plausible size.
    expected = header + math.prod(dims)
    if len(content) != expected:
        what = "truncated" if len(content) < expected else "trailing bytes"
        raise DataError(f"{name}: {what}: got {len(content)} bytes, expected {expected} for {dims}")
    # frombuffer shares the immutable bytes, so the array is read-only: loaded data is shared
    # between trials and must never be changed in place.
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str | Path, kind: str | None = None) -> np.ndarray:
    """Reads an IDX file, gzipped (detected by its magic bytes) or raw.

    Args:
        path: The file.
        kind: ``"images"`` (magic ``0x00000803``, 3 dims), ``"labels"`` (``0x00000801``,
            1 dim), or ``None`` for any ubyte IDX file.

    Returns:
        A read-only uint8 array of the header's dimensions.

    Raises:
        DataError: One line naming the file: missing, unreadable, corrupt gzip, bad magic,
            truncated, or trailing bytes.
    """
    path = Path(path)
    return parse_idx(decompress(read_bytes(path), str(path)), str(path), kind)
