"""The refusal of an input given twice in one score: the same path twice, a file and a link to it (a
symbolic or a hard one), a folder and a folder or file inside it, or a folder holding a link to a file
given too. Its images would be counted twice, and the score would be of a set that holds them twice,
without a word.

Files are told apart by device and inode (what ``os.stat`` gives through any link), folders also by
the resolved path, since one may hold another.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .decode import shown
from ..errors import InputError

FileKey = tuple[int, int]  # (st_dev, st_ino)


def _key(path: Path) -> FileKey | None:
    try:
        status = os.stat(path)
    except OSError:  # missing or unreadable: the reader says so
        return None
    return status.st_dev, status.st_ino


def _inside(inner: Path, outer: Path) -> bool:
    return inner != outer and inner.is_relative_to(outer)


def refuse_repeated_paths(paths: Sequence[Path]) -> None:
    """Refuse, naming both, two of ``paths`` that are one file or folder, or one inside the other
    (checked before anything is opened)."""
    seen: list[tuple[Path, Path, FileKey, bool]] = []  # given, resolved, key, is a folder
    for given in paths:
        key = _key(given)
        if key is None:
            continue
        resolved, folder = Path(os.path.realpath(given)), given.is_dir()
        for other, other_resolved, other_key, other_folder in seen:
            if key == other_key:
                kind = "folder" if folder else "file"
                raise InputError(f"{shown(other)} and {shown(given)} are the same {kind}, given twice: its images "
                                 "would be counted twice; give each input once")
            outer, inner = (other, given) if other_folder and _inside(resolved, other_resolved) else \
                (given, other) if folder and _inside(other_resolved, resolved) else (None, None)
            if outer is not None:
                raise InputError(f"{shown(inner)} is inside the folder {shown(outer)}, given too: its images would "
                                 "be counted twice; give the folder or what is inside it, not both")
        seen.append((given, resolved, key, folder))


def refuse_repeated_files(inputs: Iterable[tuple[Path, Sequence[Path]]]) -> None:
    """Refuse one file that two inputs both read: ``inputs`` pairs each path given with the files read
    for it (a folder: its images, links followed; anything else: itself). Called only when several
    paths are given, as it examines every file once more."""
    owner: dict[FileKey, tuple[Path, Path]] = {}
    for given, files in inputs:
        for file in files:
            key = _key(file)
            if key is None:
                continue
            first = owner.setdefault(key, (given, file))
            if first[0] != given:
                raise InputError(f"{shown(first[1])} (of {shown(first[0])}) and {shown(file)} (of {shown(given)}) are "
                                 "the same file: its images would be counted twice; give each input once")
