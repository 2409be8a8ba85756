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


class SelfCheckError(InceptionScoreError):
    """``--self-check`` cannot run as asked: its stored data is damaged, or no bound exists for the precision."""


class InputError(InceptionScoreError, ValueError):
    """The images given cannot be scored as they are (shape, dtype, range, values, count)."""


class ImageDecodeError(InputError):
    """An image file could not be read or decoded."""


class MissingDependencyError(InceptionScoreError, ImportError):
    """An optional package a feature needs is not installed; the message names the ``pip install``."""


def one_line_message(error: BaseException) -> str:
    """An error's message on one line: its lines joined by spaces (a library's message quoted in ours can
    span several, and the first alone would end mid-sentence), or its type's name when it has none.
    (Errors met in ``DataLoader`` workers reach the reading process as themselves, :mod:`.inputs`, so
    their message is their own.)"""
    return " ".join(str(error).split()) or type(error).__name__


class LinkRefusedError(InceptionScoreError):
    """A file to be written in place is a symbolic link: writing through it could change another file."""
