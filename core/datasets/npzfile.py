"""NPZ files (`X.npy` and `y.npy` in a zip): headers checked against the limits before any array is read,
then the arrays read whole (`read_npz`) or streamed a block at a time (`npz_blocks`); never unpickled."""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from trainyard.core.datasets.decompress import read_exactly
from trainyard.core.datasets.limits import Limits
from trainyard.core.datasets.raw import check_shapes
from trainyard.core.errors import ZIP_READ_ERRORS, DatasetError

NPZ_MEMBERS = ("X.npy", "y.npy")
# Version 3.0 only adds UTF-8 field names (structured dtypes), which no dataset array needs.
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
# Array bytes read at a time when a member is streamed rather than kept.
CHUNK_BYTES = 1 << 20


@dataclass
class NpyHeader:
    """One member's array header: enough to check it against the limits before reading its data."""

    name: str
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype


def _read_header(archive: zipfile.ZipFile, name: str) -> tuple[NpyHeader, BinaryIO]:
    """The member's header and its stream, left at the first data byte."""
    info = archive.getinfo(name)
    try:
        f = archive.open(info)
        version = np.lib.format.read_magic(f)
        read_header = _HEADER_READERS.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = read_header(f)
    # A zip whose entry sizes or CRC lie, whose compression method or stream is bad, or whose header is garbage
    # fails here, with whatever zipfile, zlib or numpy's header parser (even tokenize) raises: all mean the same.
    except Exception as exc:
        raise DatasetError(f"NPZ member {name}: not a valid .npy array ({exc})") from None
    if dtype.hasobject:
        raise DatasetError(f"NPZ member {name} holds Python objects; only numeric or text arrays are accepted")
    if dtype.names is not None or dtype.subdtype is not None:
        raise DatasetError(f"NPZ member {name} holds a structured array ({dtype}); give plain numbers or text")
    # np.load allocates from the header's shape before reading, so a lying header must stop here.
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise DatasetError(f"NPZ member {name}: its header declares shape {shape} of {dtype}, "
                           f"more than the {info.file_size} bytes it holds")
    return NpyHeader(name, shape, fortran, dtype), f


def open_npz(data: bytes, limits: Limits) -> tuple[zipfile.ZipFile, NpyHeader, NpyHeader]:
    """The archive and its X and y headers, checked (members, sizes, types, shapes, samples x features)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DatasetError("not an NPZ file (an NPZ is a zip archive of X.npy and y.npy)") from None
    names = archive.namelist()
    missing = [m for m in NPZ_MEMBERS if m not in names]
    if missing:
        found = ", ".join(n.removesuffix(".npy") for n in names) or "none"
        raise DatasetError(f"the NPZ file needs arrays X and y; it has: {found}")
    # zipfile stops each member at its declared size, so the declared sizes bound the work.
    total = sum(archive.getinfo(m).file_size for m in NPZ_MEMBERS)
    if total > limits.max_bytes:
        raise DatasetError(f"the NPZ arrays decompress to {total} bytes, more than {limits.bytes_limit()}")
    x, fx = _read_header(archive, "X.npy")
    y, fy = _read_header(archive, "y.npy")
    fx.close()
    fy.close()
    check_shapes(x.shape, x.dtype, y.shape)
    limits.check_cells(x.shape[0], x.shape[1])
    return archive, x, y


def read_npz(data: bytes, limits: Limits) -> tuple[np.ndarray, np.ndarray]:
    """`X` and `y` whole (as stored: uint8 stays uint8), after their headers passed `open_npz`."""
    archive, _, _ = open_npz(data, limits)
    with archive:
        try:
            return tuple(np.lib.format.read_array(archive.open(m), allow_pickle=False) for m in NPZ_MEMBERS)
        except (ValueError, KeyError, *ZIP_READ_ERRORS) as exc:
            raise DatasetError(f"cannot read the NPZ file: {exc}") from None


def member_blocks(archive: zipfile.ZipFile, header: NpyHeader) -> Iterator[tuple[int, int, np.ndarray]]:
    """`(first row, first column, block)` pieces of a member's array, read in the order stored (rows of a
    C-order array, columns of a Fortran-order one), a few MB at a time; then its CRC is checked."""
    n = header.shape[0]
    cols = math.prod(header.shape[1:])
    by_column = header.fortran and cols > 1
    width = 1 if by_column else cols
    step = max(1, CHUNK_BYTES // max(1, width * header.dtype.itemsize))
    try:
        with archive.open(header.name) as f:
            _skip_header(f)
            for col in range(cols if by_column else 1):
                for row in range(0, n, step):
                    rows = min(step, n - row)
                    raw = read_exactly(f, rows * width * header.dtype.itemsize)
                    if len(raw) < rows * width * header.dtype.itemsize:
                        raise DatasetError(f"NPZ member {header.name}: its data ends before its header's shape")
                    yield row, col, np.frombuffer(raw, dtype=header.dtype).reshape(rows, width)
            while f.read(CHUNK_BYTES):  # read to the end, where zipfile checks the CRC
                pass
    except ZIP_READ_ERRORS as exc:
        raise DatasetError(f"cannot read the NPZ file: {exc}") from None


def _skip_header(f: BinaryIO) -> None:
    version = np.lib.format.read_magic(f)
    _HEADER_READERS[version](f)
