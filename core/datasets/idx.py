"""The IDX format of the MNIST files: a validated header, then big-endian array data."""

from __future__ import annotations

import math

import numpy as np

from core.datasets.decompress import maybe_gunzip
from core.errors import DatasetError

# IDX type byte → big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, max_bytes: int, what: str = "IDX file") -> np.ndarray:
    """The array in one IDX file (gzip'd or not), its header checked against the bytes that follow."""
    data = maybe_gunzip(data, max_bytes, what)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{what}: not an IDX file (it must start with two zero bytes, a type byte "
                           "and a dimension count)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise DatasetError(f"{what}: unknown IDX data type 0x{code:02x}; "
                           f"valid: {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}")
    if ndim == 0:
        raise DatasetError(f"{what}: the IDX header declares 0 dimensions")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DatasetError(f"{what}: truncated IDX header ({ndim} dimensions need {start} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[code])
    # Compare in Python integers before any allocation: a lying header must not size an array.
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(data) - start:
        raise DatasetError(f"{what}: the header declares shape {shape} ({expected} data bytes) "
                           f"but the file holds {len(data) - start} data bytes")
    # frombuffer makes a view, so memory stays the size of the bytes already held.
    return np.frombuffer(data, dtype=dtype, offset=start).reshape(shape)


def idx_pair(images: bytes, labels: bytes | None, max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Features `(n, pixels)` and labels `(n,)` from an images file and its labels file."""
    if labels is None:
        raise DatasetError("an IDX dataset needs two files: the images and their labels (e.g. "
                           "train-images-idx3-ubyte and train-labels-idx1-ubyte)")
    x = parse_idx(images, max_bytes, "IDX images")
    y = parse_idx(labels, max_bytes, "IDX labels")
    if y.ndim != 1:
        raise DatasetError(f"IDX labels must be 1-D (one label per image); the labels file has shape {y.shape}")
    if len(x) != len(y):
        raise DatasetError(f"the IDX images file holds {len(x)} images but the labels file {len(y)} labels")
    # Native byte order: later arithmetic and np.unique on big-endian arrays is slower and surprising.
    # the row width from the header, not -1: a file of 0 images cannot infer it (ValueError, not a DatasetError)
    x = x.reshape(len(x), math.prod(x.shape[1:])).astype(np.float64)
    return x, y.astype(y.dtype.newbyteorder("="))
