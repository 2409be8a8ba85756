"""Exception types. Every message says what was wrong, with which file or value, and what to do next."""

from __future__ import annotations


class InceptionScoreError(Exception):
    """Base class of every error this package raises on purpose."""


class WeightsError(InceptionScoreError):
    """The Inception weights could not be found, fetched, verified or read."""


class WeightsNotFoundError(WeightsError):
    """No weights file is available locally and it could not be downloaded."""


class WeightsHashError(WeightsError):
    """A weights file exists but its sha256 is not one of the known genuine files."""


class WeightsFormatError(WeightsError):
    """A weights file could not be parsed (truncated, wrong format, missing tensors)."""


class InputError(InceptionScoreError, ValueError):
    """The images given cannot be scored as they are (shape, dtype, range, values, count)."""


class ImageDecodeError(InputError):
    """An image file could not be read or decoded."""


def one_line_message(error: BaseException) -> str:
    """The message of an error on one line; for one re-raised from a DataLoader worker (whose text holds
    the worker's traceback), the original error's own message."""
    text = str(error)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text.splitlines()[0] if text else type(error).__name__
