"""Checks of the counts and seeds the Python API takes, so that a wrong one is an :class:`InputError`
naming it, never a ``TypeError`` from deep inside (``splits=2.5``), nor a bool read as a count
(``splits=True``, which Python counts as 1)."""

from __future__ import annotations

import numbers
from typing import Any

from .errors import InputError


def whole_number(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` when it is a whole number (an ``int`` or a numpy integer, not a bool, a float
    or a string) within ``[minimum, maximum]``; else :class:`InputError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be a whole number, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be at most {maximum}, got {value}")
    return value
