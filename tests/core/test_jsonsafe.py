"""core.jsonsafe: the one JSON-finite helper the store, the API and `trainyard run` share (issue 11, seam 3)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np

from trainyard.core.jsonsafe import isoformat, json_safe


def test_numpy_is_made_plain_and_non_finite_numbers_null():
    value = {"a": np.float32(1.5), 2: [np.int64(3), float("nan")], "t": (np.inf, np.float64(-np.inf)),
             "m": np.array([[1.0, np.nan], [0.25, 2.0]]), "b": np.bool_(True), "s": np.str_("x")}
    safe = json_safe(value)
    assert safe == {"a": 1.5, "2": [3, None], "t": [None, None], "m": [[1.0, None], [0.25, 2.0]], "b": True, "s": "x"}
    assert [type(safe["a"]), type(safe["2"][0]), type(safe["b"]), type(safe["s"])] == [float, int, bool, str]
    assert type(json_safe(np.float64(0.1))) is float and json_safe(np.float64("nan")) is None
    assert json.dumps(safe, allow_nan=False)  # strict JSON accepts it


def test_plain_values_pass_as_they_are():
    value = {"x": 1, "y": 2.5, "z": None, "w": "text", "v": [True, False], "u": -0.0}
    assert json_safe(value) == value and json_safe(7) == 7 and json_safe(None) is None


def test_datetimes_become_iso_8601_utc():
    naive = datetime(2026, 1, 2, 3, 4, 5)
    aware = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert json_safe({"at": [naive, aware]}) == {"at": ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"]}
    assert isoformat(None) is None
