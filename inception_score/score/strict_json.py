"""JSON as RFC 8259 defines it: no NaN or Infinity, which Python's ``json`` writes by default and
JavaScript's ``JSON.parse`` and many other readers refuse. A measure that is undefined (an image rate
with no time spent, an order ratio of one split) is written as ``null``."""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(value: float) -> float | None:
    """``value``, or None when it is NaN or infinite."""
    return value if math.isfinite(value) else None


def without_non_finite(data: Any) -> Any:
    """``data`` with every NaN or infinite float, at any depth of dicts, lists and tuples, made None."""
    if isinstance(data, float):
        return finite_or_none(data)
    if isinstance(data, dict):
        return {key: without_non_finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [without_non_finite(value) for value in data]
    return data


def dumps(data: Any, **options: Any) -> str:
    """:func:`json.dumps` of ``data`` with non-finite floats as null; raises on anything else JSON lacks."""
    return json.dumps(without_non_finite(data), allow_nan=False, **options)
