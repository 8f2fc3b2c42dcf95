"""Size-capped reading and gunzipping of dataset bytes, so a small upload can't expand without bound."""

from __future__ import annotations

import os
import zlib

from core.errors import DatasetError

# Decompressed bytes one dataset file may expand to. MNIST's training images are 47 MB
# uncompressed; DESIGN §7 caps uploads at 256 MB compressed. Callers pass their own limit.
DEFAULT_MAX_BYTES = 1 << 30

GZIP_MAGIC = b"\x1f\x8b"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


def gunzip_capped(data: bytes, max_bytes: int, what: str) -> bytes:
    """Decompress gzip `data`, refusing output beyond `max_bytes` before producing it."""
    chunks: list[bytes] = []
    size, rest = 0, data
    # A gzip file may hold several members back to back (e.g. concatenated with cat).
    while rest[:2] == GZIP_MAGIC:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # max_length bounds what zlib produces, so a bomb is stopped after limit+1 bytes.
            chunk = d.decompress(rest, max_bytes - size + 1)
        except zlib.error as exc:
            raise DatasetError(f"{what}: corrupt gzip data ({exc})") from None
        size += len(chunk)
        if size > max_bytes:
            raise DatasetError(f"{what}: decompresses to more than the {_mib(max_bytes)} limit")
        if not d.eof:
            raise DatasetError(f"{what}: truncated gzip data")
        chunks.append(chunk)
        rest = d.unused_data
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def maybe_gunzip(data: bytes, max_bytes: int, what: str) -> bytes:
    """`data` itself, or its decompressed content when it is gzip'd; either way at most `max_bytes`."""
    if data[:2] == GZIP_MAGIC:
        return gunzip_capped(data, max_bytes, what)
    if len(data) > max_bytes:
        raise DatasetError(f"{what}: {len(data)} bytes is more than the {_mib(max_bytes)} limit")
    return data


def read_capped(path: str, max_bytes: int) -> bytes:
    """A file's bytes, refusing files larger than `max_bytes` without reading them."""
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise DatasetError(f"{path}: {size} bytes is more than the {_mib(max_bytes)} limit")
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)
    except FileNotFoundError:
        raise DatasetError(f"dataset file not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"dataset path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read dataset file {path}: {exc.strerror or exc}") from None
