"""The errors a user can cause (a missing data file, a damaged checkpoint, an impossible setting), and
:func:`user_errors`, which turns exactly those into one line on stderr and exit status 2.

Every such error is a :class:`ReferenceGanError` (or, from the scorer, an
``inception_score.errors.InceptionScoreError``). Anything else (a ``ValueError`` from a bug, say) is not
bad input and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click


class ReferenceGanError(Exception):
    """Something the user gave (a file, a setting, a folder) that reference_gan cannot work with; the
    message says what and what to do."""


class ConfigError(ReferenceGanError, ValueError):
    """A setting that is not one of its allowed values, or settings that do not fit together (a set-up,
    a variant or a label count that does not exist). Also a ``ValueError``, as such errors were before."""


class RecordError(ReferenceGanError, ValueError):
    """A run's folder or record (``config.json``, ``metrics.jsonl``, their copies beside a table) that is
    not what the trainer writes: another folder among the runs, or a damaged file."""


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A bad input (data, checkpoint, setting, Inception weights) ends the command with one line and status 2."""
    from inception_score.errors import InceptionScoreError

    try:
        yield
    except (ReferenceGanError, InceptionScoreError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
