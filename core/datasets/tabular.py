"""CSV and NPZ parsing into feature and target arrays, with errors that point at the offending cell."""

from __future__ import annotations

import csv
import io
import math
import zipfile
import zlib

import numpy as np

from core.errors import DatasetError

NPZ_MEMBERS = ("X.npy", "y.npy")
# Version 3.0 only adds UTF-8 field names (structured dtypes), which no dataset array needs.
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # -sig: spreadsheet exports often start with a byte-order mark
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the CSV file is not UTF-8 text (bad byte at offset {exc.start})") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows; blank lines skipped, ragged rows refused by row number."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise DatasetError(f"cannot parse the CSV file: {exc}") from None
    if not rows:
        raise DatasetError("the CSV file is empty")
    header = [name.strip() for name in rows[0]]
    if all(_is_number(name) for name in header):
        # Without this check a headerless file silently loses its first sample to the header.
        raise DatasetError("the CSV file needs a header row of column names; its first row is all numbers")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DatasetError(f"the CSV header repeats column names: {', '.join(map(repr, duplicates))}")
    body = rows[1:]
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise DatasetError(f"row {i + 1} (after the header) has {len(row)} values but the header has "
                               f"{len(header)} columns")
    return header, body


def _column_floats(cells: list[str], name: str) -> np.ndarray:
    """One column as float64, or a DatasetError naming the first cell that is not a number."""
    try:
        return np.array(cells, dtype=np.str_).astype(np.float64)
    except ValueError:
        pass  # find the bad cell with Python's parser, which is slower but says which one
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        if not cell.strip():
            raise DatasetError(f"column {name!r}, row {i + 1}: missing value")
        try:
            values[i] = float(cell)
        except ValueError:
            raise DatasetError(f"column {name!r}, row {i + 1}: {cell.strip()!r} is not a number") from None
    return values


def _target_values(cells: list[str], name: str) -> np.ndarray:
    """The target column as loaded: ints when every value is an integer, else floats, else strings."""
    cells = [cell.strip() for cell in cells]
    for i, cell in enumerate(cells):
        if not cell:
            raise DatasetError(f"column {name!r}, row {i + 1}: missing target value")
    try:
        return np.array([int(cell) for cell in cells], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        return np.array([float(cell) for cell in cells], dtype=np.float64)
    except ValueError:
        return np.array(cells, dtype=np.str_)


def parse_csv(data: bytes, target: str | None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Features, targets, feature names and target names from CSV bytes with a header row."""
    header, body = _read_rows(_decode(data))
    target = header[-1] if target is None else target
    if target not in header:
        raise DatasetError(f"target column {target!r} is not in the CSV; its columns are: {', '.join(header)}")
    if len(header) < 2:
        raise DatasetError(f"the CSV has only the target column {target!r}; it needs feature columns too")
    if not body:
        raise DatasetError("the CSV file has a header but no data rows")
    columns = list(zip(*body))
    t = header.index(target)
    features = [name for j, name in enumerate(header) if j != t]
    x = np.empty((len(body), len(features)))
    for k, j in enumerate(j for j in range(len(header)) if j != t):
        x[:, k] = _column_floats(list(columns[j]), header[j])
    return x, _target_values(list(columns[t]), target), features, [target]


def _check_npy_member(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse object arrays and headers that declare more data than the member holds."""
    info = archive.getinfo(name)
    try:
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = read_header(f)
    # A zip whose entry sizes or CRC lie, whose compression method or stream is bad, or whose header is garbage
    # fails here, with whatever zipfile, zlib or numpy's header parser (even tokenize) raises: all mean the same.
    except Exception as exc:
        raise DatasetError(f"NPZ member {name}: not a valid .npy array ({exc})") from None
    if dtype.hasobject:
        raise DatasetError(f"NPZ member {name} holds Python objects; only numeric or text arrays are accepted")
    # np.load allocates from the header's shape before reading, so a lying header must stop here.
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise DatasetError(f"NPZ member {name}: its header declares shape {shape} of {dtype}, "
                           f"more than the {info.file_size} bytes it holds")


def parse_npz(data: bytes, max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """`X` and `y` from NPZ bytes, never unpickling, never decompressing past `max_bytes`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DatasetError("not an NPZ file (an NPZ is a zip archive of X.npy and y.npy)") from None
    with archive:
        names = archive.namelist()
        missing = [m for m in NPZ_MEMBERS if m not in names]
        if missing:
            found = ", ".join(n.removesuffix(".npy") for n in names) or "none"
            raise DatasetError(f"the NPZ file needs arrays X and y; it has: {found}")
        # zipfile stops each member at its declared size, so the declared sizes bound the work.
        total = sum(archive.getinfo(m).file_size for m in NPZ_MEMBERS)
        if total > max_bytes:
            raise DatasetError(f"the NPZ arrays decompress to {total} bytes, more than the {max_bytes} byte limit")
        for member in NPZ_MEMBERS:
            _check_npy_member(archive, member)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return npz["X"], npz["y"]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, NotImplementedError, zlib.error) as exc:
        raise DatasetError(f"cannot read the NPZ file: {exc}") from None
