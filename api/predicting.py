"""Predicting with a finished job's model: input checks that name the bad row/column, and a per-process predictor cache."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from trainyard.api.errors import ApiError, invalid
from trainyard.core.backends.base import Predictor
from trainyard.core.datasets.prepared import Preprocessing


def _bad_value(value: Any) -> str | None:
    """Why `value` is not a usable feature, or None if it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number" if value is not None else "null is not a number"
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer past float64's range
        return f"an integer of {len(str(abs(value)))} digits is too large for a floating-point feature"
    return None if finite else f"{value} is not a finite number (NaN and infinity are not allowed)"


def _count(n: int, noun: str) -> str:
    """`1 value`, `2 values`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _first_bad(inputs: list, n_features: int) -> dict:
    """Walk the rows (the slow path, taken only when the fast conversion failed) to name the first problem."""
    for i, row in enumerate(inputs):
        if not isinstance(row, list):
            return {"loc": f"inputs[{i}]", "msg": "each input must be a list of numbers"}
        if len(row) != n_features:
            return {"loc": f"inputs[{i}]", "msg": f"{_count(len(row), 'value')} but the model takes "
                                                  f"{_count(n_features, 'feature')}"}
        for j, value in enumerate(row):
            why = _bad_value(value)
            if why:
                return {"loc": f"inputs[{i}][{j}]", "msg": why}
    return {"loc": "inputs", "msg": "inputs must be a list of rows of numbers"}


def outputs(preprocessing: Preprocessing) -> int:
    """Values one input row adds to the answer: k class probabilities, or one number per regression target."""
    if preprocessing.task == "classification":
        return len(preprocessing.classes or ())
    return len(preprocessing.target_names or ()) or 1


def check_answer_size(rows: int, outputs: int, max_values: int) -> None:
    """422 before computing when rows × outputs is over `max_values` (the answer would be that many numbers)."""
    if rows * outputs > max_values:
        noun = "output" if outputs == 1 else "outputs"
        raise invalid([{"loc": "inputs", "msg": f"{rows:,} rows × {outputs:,} {noun} = {rows * outputs:,} values is "
                                                f"over the limit of {max_values:,} values per request "
                                                "(max_predict_values); send fewer rows at a time"}])


def parse_inputs(body: Any, *, n_features: int, max_rows: int, outputs: int = 1,
                 max_values: int | None = None) -> np.ndarray:
    """`{"inputs": [[...], ...]}` → a float64 array `(n, n_features)`, or a 422 naming the row and column.

    The answer's size (rows × `outputs` against `max_values`) is checked before any conversion.
    """
    if not isinstance(body, dict):
        raise invalid([{"loc": "", "msg": 'the body must be a JSON object {"inputs": [[...], ...]}'}])
    extra = sorted(set(body) - {"inputs"})
    if extra:
        raise invalid([{"loc": key, "msg": "unknown field"} for key in extra])
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise invalid([{"loc": "inputs", "msg": "a non-empty list of rows is required"}])
    if len(inputs) > max_rows:
        raise invalid([{"loc": "inputs", "msg": f"{len(inputs)} rows is over the limit of {max_rows} rows per "
                                                "request (max_predict_rows)"}])
    if max_values is not None:
        check_answer_size(len(inputs), outputs, max_values)
    try:
        x = np.asarray(inputs)
    except (ValueError, TypeError):  # ragged rows
        raise invalid([_first_bad(inputs, n_features)]) from None
    if x.ndim != 2 or x.shape[1] != n_features or x.dtype.kind not in "iuf":
        raise invalid([_first_bad(inputs, n_features)])
    x = x.astype(np.float64, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise invalid([{"loc": f"inputs[{i}][{j}]", "msg": _bad_value(float(x[i, j]))}])
    return x


def predict_body(predictor: Predictor, x: np.ndarray) -> dict:
    """The predict response: original labels (or numbers) and, for classification, class probabilities with
    `classes`, the labels of their columns."""
    predictions = np.asarray(predictor.predict(x))
    body: dict[str, Any] = {"predictions": predictions.tolist(), "probabilities": None, "classes": None}
    if predictor.preprocessing.task == "classification":
        body["probabilities"] = np.asarray(predictor.predict_proba(x), dtype=np.float64).tolist()
        body["classes"] = list(predictor.preprocessing.classes)
    return body


class PredictorCache:
    """Predictors by job id, loaded once per process (a job's model never changes) and kept LRU-bounded."""

    def __init__(self, size: int = 16):
        self.size = size
        self._items: OrderedDict[str, Predictor] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, job_id: str, load: Callable[[], Predictor]) -> Predictor:
        with self._lock:
            if job_id in self._items:
                self._items.move_to_end(job_id)
                return self._items[job_id]
            gate = self._loading.setdefault(job_id, threading.Lock())
        with gate:  # one thread loads a model; others for the same job wait for it
            with self._lock:
                if job_id in self._items:
                    return self._items[job_id]
            predictor = load()
            with self._lock:
                self._items[job_id] = predictor
                self._loading.pop(job_id, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return predictor

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._items.pop(job_id, None)


def no_model(status: str) -> ApiError:
    return ApiError(409, f"the job is {status}; only a succeeded job has a model", kind="no-model", job_status=status)
