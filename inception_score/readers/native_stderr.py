"""What a C library writes to the process's stderr itself, captured instead of shown.

libtiff, which Pillow decodes compressed TIFFs with, prints its warnings and errors on file descriptor
2 past Python (``ZIPDecode: Decoding error at scanline 0, ...``), so a damaged TIFF put a line of
libtiff's beside the command's own. :func:`captured_native_stderr` points descriptor 2 at a temporary
file for a block, and gives what was written there, so the caller can put it in its own message.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

_MOST_KEPT = 4096  # bytes of the library's text kept: its first lines say what went wrong
_ONE_AT_A_TIME = threading.Lock()  # descriptor 2 is the process's: two threads must not swap it at once


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Yields a list that holds, once the block ends, the lines written to descriptor 2 inside it.
    Where descriptor 2 cannot be duplicated (closed: ``2>&-``), nothing is captured, and nothing shown."""
    lines: list[str] = []
    with _ONE_AT_A_TIME:
        with contextlib.suppress(Exception):  # Python's own buffered text goes out before the swap
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            yield lines
            return
        try:
            with tempfile.TemporaryFile() as sink:
                os.dup2(sink.fileno(), 2)
                try:
                    yield lines
                finally:
                    os.dup2(saved, 2)
                    sink.seek(0)
                    text = sink.read(_MOST_KEPT).decode("utf-8", errors="replace")
                    lines.extend(line.strip() for line in text.splitlines() if line.strip())
        finally:
            os.close(saved)
