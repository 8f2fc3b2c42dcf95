"""Target columns checked by one set of rules, whether whole (`make_raw`) or a chunk at a time (the API's scan).

`TargetScan` keeps what the rules need — the task, the distinct labels, the first value that is not
finite — in memory that does not grow with the number of rows, so a scan of millions of rows holds
only their classes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from trainyard.core.errors import DatasetError

TASKS = ("classification", "regression")
# Distinct labels (and their characters, for text) a scan keeps to name the classes; more is refused:
# no network this service trains has an output layer that wide.
MAX_CLASSES = 100_000
MAX_CLASS_CHARS = 1 << 24
# Values checked for finiteness at a time: the boolean mask stays this small for any array.
FINITE_CHUNK = 1 << 20
_TEXT_KINDS = ("int", "float", "text")  # what a CSV target column holds, from most to least specific


def infer_task(y: np.ndarray | np.dtype) -> str:
    """Integers, booleans and strings are class labels; any other numbers are regression targets."""
    return "classification" if np.dtype(getattr(y, "dtype", y)).kind in "biuUS" else "regression"


def first_non_finite(a: np.ndarray) -> tuple[int, int, object] | None:
    """(row, column, value) of the first NaN or infinity in `a` (rows first), or None; checked in chunks."""
    if a.dtype.kind not in "fc":
        return None  # integers and booleans are always finite
    rows = a.reshape(len(a), -1)
    step = max(1, FINITE_CHUNK // max(1, rows.shape[1]))
    for start in range(0, len(rows), step):
        bad = ~np.isfinite(rows[start:start + step])
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            return start + row, col, rows[start + row, col]
    return None


def non_finite_error(where: tuple[int, int, object], names: Sequence[str], what: str, first_row: int = 0):
    row, col, value = where
    return DatasetError(f"{what} {names[col]!r}, row {first_row + row + 1}: {value} is not a finite number "
                        "(NaN and infinity are not allowed)")


def check_finite(a: np.ndarray, names: Sequence[str], what: str, first_row: int = 0) -> None:
    """Refuse NaN and infinity, naming the column and the row (`first_row`: where `a` starts in the file)."""
    where = first_non_finite(a)
    if where is not None:
        raise non_finite_error(where, names, what, first_row)


def decode_labels(y: np.ndarray) -> np.ndarray:
    """Bytes labels as text (they would not be JSON scalars); other labels unchanged."""
    if y.dtype.kind != "S":
        return y
    try:
        return np.char.decode(y, "utf-8")
    except UnicodeDecodeError:
        raise DatasetError("class labels must be UTF-8 text") from None


def _kind_name(dtype: np.dtype) -> str:
    return "text" if dtype.kind in "US" else str(dtype)


def check_layout(shape: tuple[int, ...], dtype: np.dtype, task: str) -> None:
    """What the target's shape and type alone rule out for `task` (known from a header, before any data)."""
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    if task == "regression":
        if dtype.kind not in "biuf":
            raise DatasetError(f"regression targets must be numbers; this target holds {_kind_name(dtype)} values "
                               "(state task 'classification' for class labels)")
        return
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise DatasetError(f"classification needs one label per sample; the target has shape {shape}")
    if dtype.kind not in "biufUS":
        raise DatasetError(f"class labels must be numbers or text, not {dtype}")


class TargetScan:
    """A target column met a chunk at a time (typed arrays from NPZ or IDX, or a CSV column's text)."""

    def __init__(self, task: str | None):
        self.task = task
        self.rows = 0  # CSV cells added so far
        self.dtype: np.dtype | None = None  # typed chunks: theirs; CSV text: decided by `_TEXT_KINDS`
        self._text_kind = 0  # index in _TEXT_KINDS: the least specific kind any CSV block had
        self._classes: np.ndarray | set | None = None  # distinct labels so far; None once past MAX_CLASSES
        self._chars = 0
        self._too_many = False
        self._bad: tuple[int, int, object] | None = None  # the first non-finite value: (row, column, value)

    def add_values(self, chunk: np.ndarray, first_row: int = 0, first_col: int = 0) -> None:
        """A block of a typed target, `(rows,)` or `(rows, targets)`, that starts at `first_row`, `first_col`."""
        if self.dtype is None:
            self.dtype = chunk.dtype
        chunk = decode_labels(chunk) if self._wants_labels() else chunk
        self._note_bad(first_non_finite(chunk), first_row, first_col)
        if self._wants_labels() and not self._too_many:
            seen = np.unique(chunk) if self._classes is None else np.union1d(self._classes, chunk)
            self._classes, self._too_many = (None, True) if len(seen) > MAX_CLASSES else (seen, False)

    def add_texts(self, texts: list[str]) -> None:
        """The next cells of a CSV target column (stripped, none empty): ints, else floats, else text."""
        kind, values = _parse_texts(texts, _TEXT_KINDS[self._text_kind])
        self._text_kind = _TEXT_KINDS.index(kind)
        if values is not None:
            self._note_bad(first_non_finite(values), self.rows)
        if not self._too_many:
            labels = self._classes if isinstance(self._classes, set) else set()
            new = set(texts) - labels
            self._chars += sum(map(len, new))
            labels |= new
            self._too_many = len(labels) > MAX_CLASSES or self._chars > MAX_CLASS_CHARS
            self._classes = None if self._too_many else labels
        self.rows += len(texts)

    def finish(self, names: Sequence[str], shape: tuple[int, ...] | None = None) -> tuple[str, np.ndarray | None]:
        """The task and, for classification, the sorted classes; DatasetError where make_raw would refuse.

        Args:
            shape: a typed target's shape (a CSV column's is its row count).
        """
        if self.dtype is None:  # CSV text: now its kind is known
            self.dtype = np.dtype({"int": np.int64, "float": np.float64, "text": np.str_}[_TEXT_KINDS[self._text_kind]])
        task = self.task or infer_task(self.dtype)
        check_layout(shape or (self.rows,), self.dtype, task)
        classes = self._class_array() if task == "classification" else None
        if classes is not None and len(classes) < 2:
            only = classes[0].item() if isinstance(classes[0], np.generic) else classes[0]  # not np.str_('x')
            raise DatasetError(f"the target has only one class ({only!r}); classification needs at least 2")
        if self._bad is not None and self.dtype.kind in "fc":  # in a text column, "nan" is just a label
            raise non_finite_error(self._bad, names, "target column")
        return task, classes

    def _wants_labels(self) -> bool:
        return (self.task or infer_task(self.dtype)) == "classification"

    def _note_bad(self, where: tuple[int, int, object] | None, first_row: int, first_col: int = 0) -> None:
        if where is not None and self._bad is None:
            self._bad = (first_row + where[0], first_col + where[1], where[2])

    def _class_array(self) -> np.ndarray:
        if self._too_many:
            raise DatasetError(f"the target has more than {MAX_CLASSES:,} distinct labels (or more than "
                               f"{MAX_CLASS_CHARS >> 20} MiB of label text); classification cannot use that many")
        if not isinstance(self._classes, set):
            return self._classes
        texts = list(self._classes)
        if self.dtype.kind == "U":
            return np.unique(np.array(texts, dtype=np.str_))
        return np.unique(np.array([int(t) if self.dtype.kind == "i" else float(t) for t in texts], dtype=self.dtype))


def _parse_texts(texts: list[str], at_least: str = "int") -> tuple[str, np.ndarray | None]:
    """Target cells as ints (all integers), else floats, else text (values None); `at_least`: the least specific
    kind earlier cells of the column had, so more specific ones are not tried."""
    if at_least == "int":
        try:
            return "int", np.array([int(t) for t in texts], dtype=np.int64)
        except (ValueError, OverflowError):
            pass
    if at_least != "text":
        try:
            return "float", np.array([float(t) for t in texts], dtype=np.float64)
        except ValueError:
            pass
    return "text", None


def target_values(texts: list[str]) -> np.ndarray:
    """A whole CSV target column as loaded: ints when every value is an integer, else floats, else strings."""
    kind, values = _parse_texts(texts)
    return values if values is not None else np.array(texts, dtype=np.str_)
