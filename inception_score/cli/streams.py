"""The command's standard streams when they are closed: a score is still computed and its files
still written.

* ``2>&-`` (or ``>&-``): Python starts with ``sys.stderr`` (``sys.stdout``) set to ``None``, and the next
  file opened would get descriptor 2 (1), so that anything writing to "stderr" (a C library's warning)
  would write into it. :func:`guard_standard_streams` points every closed one at the null device.
* ``... --json --output p.json | head -0``: the reader is gone before the result is printed.
  :func:`show` says so by returning False instead of raising ``BrokenPipeError``, and later writes to
  stdout (Python's own flush at exit included) go to the null device, so that ``--output`` is written
  and the exit status is the run's.
"""

from __future__ import annotations

import os
import sys

import click


def guard_standard_streams() -> None:
    """Give every closed standard stream (descriptors 0 to 2, ``sys.stdout``, ``sys.stderr``) the null
    device, so that no file this run opens takes a standard descriptor and no write to one fails."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            _null_onto(descriptor)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")


def show(text: str) -> bool:
    """``text`` and a newline on stdout; False, and stdout sent to the null device from then on, when
    its reader has gone (a closed pipe)."""
    try:
        click.echo(text)
        return True
    except BrokenPipeError:
        try:
            descriptor = sys.stdout.fileno()
        except (OSError, ValueError):  # not a file (a test's capture): nothing is flushed at exit
            return False
        _null_onto(descriptor)  # what Python flushes at exit goes nowhere rather than failing
        return False


def _null_onto(descriptor: int) -> None:
    opened = os.open(os.devnull, os.O_RDWR)
    if opened != descriptor:
        os.dup2(opened, descriptor)
        os.close(opened)
