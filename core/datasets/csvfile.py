"""CSV files read as a stream of checked row blocks: the header checked in linear time, samples x features
counted as rows arrive (reading stops at the first row past the limit), cells parsed a block at a time."""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from trainyard.core.datasets.limits import Limits
from trainyard.core.datasets.targets import check_finite
from trainyard.core.errors import DatasetError

# A row (one line, or several when a quoted cell holds line breaks) longer than this is refused as it is read.
MAX_ROW_CHARS = 1 << 24
# Rows are parsed in blocks of about this many cells, or this much text, whichever comes first.
BLOCK_CELLS = 1 << 16
BLOCK_CHARS = 1 << 22
_READ_BYTES = 1 << 16  # bytes decoded at a time: their lines are the most small strings held at once


class _Lines:
    """The lines of a UTF-8 byte stream (a byte-order mark dropped). `chars` counts what was decoded;
    more than MAX_ROW_CHARS past `mark` (where the reader's current block began) means one row that long."""

    def __init__(self, stream: BinaryIO):
        self.stream, self.chars, self.mark = stream, 0, 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset, started, pending = 0, False, []
        while True:
            chunk = self.stream.read(_READ_BYTES)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:  # exc.object: the decoder's held-back bytes, then this chunk
                at = offset + len(chunk) - len(exc.object) + exc.start
                raise DatasetError(f"the CSV file is not UTF-8 text (bad byte at offset {at})") from None
            offset += len(chunk)
            if text and not started:
                started, text = True, text.removeprefix("\ufeff")  # spreadsheet exports often start with one
            self.chars += len(text)
            if self.chars - self.mark > BLOCK_CHARS + MAX_ROW_CHARS:  # a block flushes at BLOCK_CHARS: one row
                raise DatasetError(f"the CSV file has a row longer than {MAX_ROW_CHARS:,} characters")
            cut = text.rfind("\n") + 1
            if cut:  # whole lines, split by StringIO at "\n" only (as csv wants), the rest kept for the next chunk
                pending.append(text[:cut])
                yield from io.StringIO("".join(pending))
                pending = [text[cut:]]
            else:
                pending.append(text)
            if not chunk:
                last = "".join(pending)
                if last:
                    yield last
                return


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _blank(row: list[str]) -> bool:
    return not any(map(str.strip, row))


@dataclass
class CsvFile:
    """A CSV file with its header read and checked; `reader` continues after the header."""

    header: list[str]
    target: str
    target_index: int
    features: list[str]
    lines: _Lines
    reader: Iterator[list[str]]
    target_defaulted: bool = False  # no target was named: the last column is it


def open_csv(stream: BinaryIO, target: str | None) -> CsvFile:
    """Read and check the header (names, duplicates, the target column); no data row is read yet."""
    lines = _Lines(stream)
    reader = csv.reader(lines)
    try:
        first = next((row for row in reader if not _blank(row)), None)
    except csv.Error as exc:
        raise DatasetError(f"cannot parse the CSV file: {exc}") from None
    if first is None:
        raise DatasetError("the CSV file is empty")
    header = [name.strip() for name in first]
    if all(_is_number(name) for name in header):
        # Without this check a headerless file silently loses its first sample to the header.
        raise DatasetError("the CSV file needs a header row of column names; its first row is all numbers")
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        raise DatasetError(f"the CSV header repeats column names: {', '.join(map(repr, duplicates))}")
    if len(header) == 1:
        for sign, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sign in header[0]:
                raise DatasetError(f"the CSV header is one column, {header[0]!r}: the file looks {name}-separated; "
                                   "trainyard reads comma-separated files (save it with commas)")
    defaulted = target is None
    target = header[-1] if target is None else target
    if target not in header:
        raise DatasetError(f"target column {target!r} is not in the CSV; its columns are: {', '.join(header)}")
    if len(header) < 2:
        raise DatasetError(f"the CSV has only the target column {target!r}; it needs feature columns too")
    t = header.index(target)
    return CsvFile(header, target, t, header[:t] + header[t + 1:], lines, reader, defaulted)


def _bad_cell(rows: list[list[str]], names: list[str], first_row: int) -> DatasetError:
    """The first cell of a block that is not a number, named by column and row."""
    for i, row in enumerate(rows):
        for name, cell in zip(names, row):
            if not cell.strip():
                return DatasetError(f"column {name!r}, row {first_row + i + 1}: missing value")
            if not _is_number(cell):
                return DatasetError(f"column {name!r}, row {first_row + i + 1}: {cell.strip()!r} is not a number")
    return DatasetError("the CSV file holds a value that is not a number")  # not reached: numpy refused one


def _features(f: CsvFile, rows: list[list[str]], first_row: int) -> np.ndarray:
    """A block's features as checked float64 `(rows, features)`."""
    t = f.target_index
    cells = [row[:t] + row[t + 1:] for row in rows]
    try:
        x = np.array(cells, dtype=np.float64)  # numpy parses text as float() does, value for value
    except ValueError:
        error = _bad_cell(cells, f.features, first_row)
        if f.target_defaulted:  # a label column that is not the last one reads as "'x' is not a number"
            error = DatasetError(f"{error}; with no target named, the target is the last column, {f.target!r}: "
                                 "name the label column with target (trainyard datasets upload --target COLUMN)")
        raise error from None
    check_finite(x, f.features, "column", first_row)
    return x


def _block(f: CsvFile, rows: list[list[str]], first_row: int) -> tuple[list[list[str]], np.ndarray, list[str]]:
    """The block's rows (rows of blank cells dropped), their features and their target cells (stripped, present)."""
    try:
        x = _features(f, rows, first_row)
    except DatasetError:
        kept = [row for row in rows if not _blank(row)]  # rarely there: only then looked for
        if len(kept) == len(rows):
            raise
        if not kept:
            return [], np.empty((0, len(f.features))), []
        rows, x = kept, _features(f, kept, first_row)
    texts = [row[f.target_index].strip() for row in rows]
    if not all(texts):
        raise DatasetError(f"column {f.target!r}, row {first_row + texts.index('') + 1}: missing target value")
    return rows, x, texts


def csv_blocks(f: CsvFile, limits: Limits) -> Iterator[tuple[int, np.ndarray, list[str]]]:
    """`(first row, features, target cells)` for each block of data rows. Rows are counted against
    `limits.max_cells` as they arrive: no block reaches past the first row over the limit, where reading stops."""
    width, lines = len(f.header), f.lines
    max_rows = None if limits.max_cells is None else limits.max_cells // len(f.features)
    per_block = max(1, BLOCK_CELLS // width)
    block: list[list[str]] = []
    done, lines.mark = 0, lines.chars
    room = per_block if max_rows is None else min(per_block, max_rows + 1)
    try:
        for row in f.reader:
            if len(row) != width:
                if _blank(row):
                    continue
                row_number = done + sum(not _blank(r) for r in block) + 1  # blank rows are not counted
                raise DatasetError(f"row {row_number} (after the header) has {len(row)} values but the header has "
                                   f"{width} columns")
            block.append(row)
            if len(block) >= room or lines.chars - lines.mark >= BLOCK_CHARS:
                rows, x, texts = _block(f, block, done)
                if max_rows is not None and done + len(rows) > max_rows:
                    limits.check_cells(done + len(rows), len(f.features), so_far=True)
                if rows:
                    yield done, x, texts
                done, block, lines.mark = done + len(rows), [], lines.chars
                room = per_block if max_rows is None else min(per_block, max_rows + 1 - done)
    except csv.Error as exc:
        raise DatasetError(f"cannot parse the CSV file: {exc}") from None
    if block:
        rows, x, texts = _block(f, block, done)
        done += len(rows)
        if rows:
            yield done - len(rows), x, texts
    if not done:
        raise DatasetError("the CSV file has a header but no data rows")
