"""Values made plain JSON: the one helper the store, the API and `trainyard run` write JSON through.

`json_safe` turns numpy scalars and arrays into Python numbers and lists, every non-finite float into None
(JSON has no NaN or Infinity), datetimes into ISO 8601 UTC text and mapping keys into strings. A leaf: it
imports nothing from trainyard.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import numpy as np

_PLAIN = frozenset({str, int, bool, type(None)})  # JSON as they are (exact types: a subclass takes the long way)


def json_safe(value: Any) -> Any:
    """`value` as plain JSON data: numpy made plain, non-finite floats None (never bare NaN), datetimes ISO 8601."""
    kind = type(value)
    if kind is float:  # the common leaves first: history rows and metrics are mostly floats
        return value if math.isfinite(value) else None
    if kind in _PLAIN:
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):  # before float: np.float64 is a float subclass
        return json_safe(value.tolist())
    if isinstance(value, float):
        return json_safe(float(value))
    if isinstance(value, datetime):
        return isoformat(value)
    return value


def isoformat(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`; naive datetimes (SQLite) are taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
