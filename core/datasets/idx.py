"""The IDX format of the MNIST files: a header checked (shape, type, limits) before any data, then big-endian data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from trainyard.core.datasets.decompress import GunzipStream, open_capped, read_exactly
from trainyard.core.datasets.limits import Limits
from trainyard.core.errors import DatasetError

# IDX type byte → big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Data bytes read at a time when an IDX file is streamed rather than kept.
CHUNK_BYTES = 1 << 20


@dataclass
class IdxFile:
    """An IDX file with its header read and checked; `stream` stands at the first data byte."""

    what: str
    shape: tuple[int, ...]
    dtype: np.dtype  # big-endian, as stored
    stream: BinaryIO
    plain: bytes | None  # the file itself when not gzip'd (its data can be viewed without a copy)
    start: int  # header bytes

    @property
    def data_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def open_idx(data: bytes, limits: Limits, what: str = "IDX file") -> IdxFile:
    """Read and check an IDX header (gzip'd or not); nothing past the header is read or sized yet."""
    stream = open_capped(data, limits, what)
    head = read_exactly(stream, 4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DatasetError(f"{what}: not an IDX file (it must start with two zero bytes, a type byte "
                           "and a dimension count)")
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        raise DatasetError(f"{what}: unknown IDX data type 0x{code:02x}; "
                           f"valid: {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}")
    if ndim == 0:
        raise DatasetError(f"{what}: the IDX header declares 0 dimensions")
    dims = read_exactly(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise DatasetError(f"{what}: truncated IDX header ({ndim} dimensions need {4 + 4 * ndim} bytes)")
    shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    plain = None if isinstance(stream, GunzipStream) else data
    f = IdxFile(what, shape, np.dtype(IDX_DTYPES[code]), stream, plain, 4 + 4 * ndim)
    # Compared in Python integers before any allocation: a lying header must not size an array.
    if f.plain is not None and f.data_bytes != len(data) - f.start:
        raise DatasetError(f"{what}: the header declares shape {shape} ({f.data_bytes} data bytes) "
                           f"but the file holds {len(data) - f.start} data bytes")
    if f.start + f.data_bytes > limits.max_bytes:
        raise DatasetError(f"{what}: the header declares shape {shape} ({f.data_bytes} data bytes), so it "
                           f"decompresses to more than {limits.bytes_limit()}")
    return f


def _end_of_data(f: IdxFile, got: int) -> None:
    """A gzip'd file must hold exactly the bytes its header declares."""
    if got < f.data_bytes or f.stream.read(1):
        holds = f"only {got}" if got < f.data_bytes else f"more than {f.data_bytes}"
        raise DatasetError(f"{f.what}: the header declares shape {f.shape} ({f.data_bytes} data bytes) "
                           f"but the file holds {holds} data bytes")


def read_array(f: IdxFile) -> np.ndarray:
    """The whole array, in native byte order: a view of the bytes when not gzip'd, else one allocation."""
    native = f.dtype.newbyteorder("=")
    if f.plain is not None:
        return np.frombuffer(f.plain, dtype=f.dtype, offset=f.start).reshape(f.shape).astype(native, copy=False)
    out = np.empty(math.prod(f.shape), dtype=f.dtype)
    view, got = memoryview(out).cast("B"), 0
    while got < f.data_bytes:
        n = f.stream.readinto(view[got:])
        if not n:
            break
        got += n
    _end_of_data(f, got)
    return out.reshape(f.shape).astype(native, copy=False)


def read_rows(f: IdxFile) -> Iterator[np.ndarray]:
    """The array a block of rows at a time (`(rows, items per row)`, native byte order): bounded memory."""
    row_items = math.prod(f.shape[1:])
    row_bytes = max(1, row_items * f.dtype.itemsize)
    rows = max(1, CHUNK_BYTES // row_bytes)
    native = f.dtype.newbyteorder("=")
    got = 0
    for start in range(0, f.shape[0], rows):
        want = min(rows, f.shape[0] - start) * row_items * f.dtype.itemsize
        block = read_exactly(f.stream, want)
        got += len(block)
        if len(block) < want:
            break
        yield np.frombuffer(block, dtype=f.dtype).reshape(-1, row_items).astype(native, copy=False)
    _end_of_data(f, got)


def open_pair(images: bytes, labels: bytes | None, limits: Limits) -> tuple[IdxFile, IdxFile]:
    """The images and labels files, their headers checked against each other and `limits` before any data."""
    if labels is None:
        raise DatasetError("an IDX dataset needs two files: the images and their labels (e.g. "
                           "train-images-idx3-ubyte and train-labels-idx1-ubyte)")
    x = open_idx(images, limits, "IDX images")
    y = open_idx(labels, limits, "IDX labels")
    if len(y.shape) != 1:
        raise DatasetError(f"IDX labels must be 1-D (one label per image); the labels file has shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DatasetError(f"the IDX images file holds {x.shape[0]} images but the labels file {y.shape[0]} labels")
    limits.check_cells(x.shape[0], math.prod(x.shape[1:]))
    return x, y


def idx_pair(images: bytes, labels: bytes | None, limits: Limits) -> tuple[np.ndarray, np.ndarray]:
    """Features `(n, pixels)` in the file's own type (uint8 for MNIST) and labels `(n,)`, both native order."""
    x, y = open_pair(images, labels, limits)
    # the row width from the header, not -1: a file of 0 images cannot infer it (ValueError, not a DatasetError)
    pixels = read_array(x).reshape(x.shape[0], math.prod(x.shape[1:]))
    return pixels, read_array(y)
