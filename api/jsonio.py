"""JSON in and out: responses never carry bare NaN/Infinity (non-finite numbers become null)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from flask.json.provider import DefaultJSONProvider


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, numpy scalars and arrays made plain, datetimes as ISO 8601 UTC."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, datetime):
        return isoformat(value)
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":  # numpy scalar or array
        return finite(value.tolist())
    return value


def non_finite(value: Any, loc: str = "") -> list[str]:
    """Paths (`model.layers[0].kernel_initializer.mean`) of the NaN/Infinity numbers in a parsed JSON document.

    Python's JSON parser accepts these non-standard tokens; the API refuses them rather than store them.
    """
    if isinstance(value, float):
        return [] if math.isfinite(value) else [loc]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{loc}.{k}" if loc else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{loc}[{i}]")]
    return []


def isoformat(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`; naive datetimes (SQLite) are taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def dumps(value: Any) -> str:
    """Strict JSON: raises rather than emitting NaN (finite() has already removed them)."""
    return json.dumps(finite(value), allow_nan=False, separators=(",", ":"), ensure_ascii=False)


class FiniteJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with `finite()` applied to every response body."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(finite(obj), **kwargs)
