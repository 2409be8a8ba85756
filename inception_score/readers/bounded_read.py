"""Reading a stream into memory, never past a limit, whatever the limit is set to.

A size written in a header (a tar or zip member's, a file's on disk) can lie, and a limit can be raised
as far as a user likes (``INCEPTION_SCORE_MAX_FILE_BYTES=2**63``). So a stream is read in pieces, and
memory is asked for only as the stream gives bytes: reading ``limit + 1`` bytes in one call would
allocate them up front, and fail for a limit of a terabyte before reading anything. The members of a
``.tgz`` that are not images (the graph of ``--weights``, the class names of ``--labels``) are read the
same way, within limits of their own, so that a small archive cannot inflate into the machine's memory.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Collection
from pathlib import PurePosixPath
from typing import BinaryIO

PIECE_BYTES = 1 << 20  # the first piece when the size is not known; pieces then double


def read_at_most(stream: BinaryIO, limit: int, expected: int | None = None) -> bytes | None:
    """All of ``stream`` when it holds at most ``limit`` bytes, else None (having read ``limit + 1``).

    ``expected`` (a size from a header, at most ``limit``) is read in one piece when it is right; a
    wrong one costs only more pieces. Memory held is the bytes read, plus one piece at most as large.
    """
    if limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    want = min(limit, PIECE_BYTES if expected is None else max(expected, 0)) + 1
    pieces: list[bytes] = []
    total = 0
    while piece := stream.read(want):
        pieces.append(piece)
        total += len(piece)
        if total > limit:
            return None
        want = min(limit + 1 - total, max(total, PIECE_BYTES))
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def read_tar_members(path: str | os.PathLike, wanted: Collection[str], limit: int) -> dict[str, bytes | None]:
    """The regular members of the tar (optionally compressed) at ``path`` whose base name is in ``wanted``,
    by base name, read in one forward pass that stops once all are found; None for one over ``limit``
    bytes (from its header, or while it is inflated: the header can lie). Raises what ``tarfile`` raises
    for a damaged archive. Headers are dropped as they are passed, so memory does not grow with the
    number of members."""
    found: dict[str, bytes | None] = {}
    with tarfile.open(path, "r:*") as archive:
        while len(found) < len(wanted) and (member := archive.next()) is not None:
            archive.members.clear()  # TarFile keeps each header it reads
            base = PurePosixPath(member.name).name
            if base in wanted and base not in found and member.isfile():
                stream = archive.extractfile(member)  # a regular member always has one
                found[base] = None if member.size > limit else read_at_most(stream, limit, member.size)  # type: ignore[arg-type]
    return found
