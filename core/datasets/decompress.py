"""Dataset bytes as a stream that inflates gzip on demand under a cap, so a small upload can't expand without bound."""

from __future__ import annotations

import io
import os
import zlib
from typing import BinaryIO

from trainyard.core.datasets.limits import Limits, mib
from trainyard.core.errors import DatasetError

GZIP_MAGIC = b"\x1f\x8b"
# Compressed bytes handed to zlib at a time: what zlib keeps as unconsumed input stays this small.
_INPUT_CHUNK = 1 << 16


class GunzipStream(io.RawIOBase):
    """The decompressed content of gzip bytes (members back to back), produced only as it is read.

    Never more than `limits.max_bytes` + 1 bytes come out in all: one byte past the cap is an error.
    `tell()` is the count of bytes read so far (for error offsets).
    """

    def __init__(self, data: bytes, limits: Limits, what: str):
        super().__init__()
        self._data, self._limits, self._what = memoryview(data), limits, what
        self._next = 0  # offset in `data` of the first compressed byte not yet handed to zlib
        self._pending = b""  # compressed bytes handed over but not consumed yet
        self._inflater: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._out = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._out

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        while view.nbytes and self._inflater is not None:
            out = self._inflate(view.nbytes)
            if out:
                view[:len(out)] = out
                return len(out)
        return 0

    def _input(self) -> bytes:
        if self._pending:
            return self._pending
        chunk = self._data[self._next:self._next + _INPUT_CHUNK]
        self._next += len(chunk)
        return bytes(chunk)

    def _inflate(self, size: int) -> bytes:
        """Up to `size` bytes (b"" when zlib needs more input or a member ended), raising past the cap."""
        inflater = self._inflater
        if inflater.eof:
            self._next_member(inflater.unused_data + self._pending)
            return b""
        src = self._input()
        if not src:
            raise DatasetError(f"{self._what}: truncated gzip data")
        try:
            # max_length bounds what zlib produces: one byte past the cap is enough to refuse.
            out = inflater.decompress(src, min(size, self._limits.max_bytes - self._out + 1))
        except zlib.error as exc:
            raise DatasetError(f"{self._what}: corrupt gzip data ({exc})") from None
        self._pending = inflater.unconsumed_tail
        self._out += len(out)
        if self._out > self._limits.max_bytes:
            raise DatasetError(f"{self._what}: decompresses to more than {self._limits.bytes_limit()}")
        return out

    def _next_member(self, rest: bytes) -> None:
        """After a member's end: another member (files concatenated with cat), or the end; trailing bytes ignored."""
        if len(rest) < len(GZIP_MAGIC):
            rest += bytes(self._data[self._next:self._next + len(GZIP_MAGIC)])
            self._next += len(GZIP_MAGIC)
        if rest[:len(GZIP_MAGIC)] != GZIP_MAGIC:
            self._inflater = None
            return
        self._pending, self._inflater = rest, zlib.decompressobj(16 + zlib.MAX_WBITS)


def open_capped(data: bytes, limits: Limits, what: str) -> BinaryIO:
    """A stream of `data`, inflated as it is read when gzip'd; either way at most `limits.max_bytes` come out."""
    if data[:len(GZIP_MAGIC)] == GZIP_MAGIC:
        return GunzipStream(data, limits, what)
    if len(data) > limits.max_bytes:
        raise DatasetError(f"{what}: {len(data)} bytes is more than {limits.bytes_limit()}")
    return io.BytesIO(data)  # shares `data`'s buffer until written to: no copy


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    """`size` bytes, or fewer only where the stream ends (a gzip stream may return short reads)."""
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_capped(path: str, max_bytes: int) -> bytes:
    """A file's bytes, refusing files larger than `max_bytes` without reading them."""
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise DatasetError(f"{path}: {size} bytes is more than the {mib(max_bytes)} limit")
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)
    except FileNotFoundError:
        raise DatasetError(f"dataset file not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"dataset path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read dataset file {path}: {exc.strerror or exc}") from None
