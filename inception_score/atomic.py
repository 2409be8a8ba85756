"""How every file of this package and of ``reference_gan`` is written: whole or not at all, and never
through a link someone planted in the output folder.

:func:`write_atomic` writes the new content to a temporary file in the target's folder, fsyncs it,
renames it over the target and fsyncs the folder. A kill, a full disk or an exception at any point
leaves the previous file as it was (and no temporary file once Python can clean up). The temporary
file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` under an unpredictable name, so nobody can have
put a link there beforehand; the rename replaces a link found at the target itself, never the file it
points to.

:func:`open_no_follow` opens an existing path for writing in place (the rows of a logits file, a
record appended to) and refuses a symbolic link with :class:`~inception_score.errors.LinkRefusedError`;
:func:`append_text` appends through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Union

from .errors import LinkRefusedError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows, where planting a link needs privileges
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_NAME_KEPT = 200  # characters of the target's name kept in the temporary name (NAME_MAX is 255)

# What a file holds: text (UTF-8), bytes, or a function that writes it to the open binary file
# (``lambda handle: torch.save(state, handle)``).
Content = Union[str, bytes, Callable[[BinaryIO], object]]


def write_atomic(path: str | os.PathLike, content: Content, *, devices: bool = False) -> Path:
    """Replace ``path`` whole by ``content``; returns ``path``.

    The folder must exist. A link at ``path`` is replaced by the new file (its target is untouched);
    an existing regular file keeps its permission bits. ``devices``: when ``path`` is a character device
    or a FIFO (``/dev/stdout``, ``/dev/full``, a named pipe), write into it instead, since there is no
    file to replace (nor anybody's file to overwrite). An ``OSError`` of the write, the fsync or the
    rename propagates, the temporary file removed.
    """
    path = Path(path)
    if devices and _write_into_device(path, content):
        return path
    folder = path.parent
    descriptor, temporary = _create_temporary(folder, path.name)
    try:
        _keep_mode(path, descriptor)
        with open(descriptor, "wb") as handle:
            _write(handle, content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_folder(folder)
    return path


def open_no_follow(path: str | os.PathLike, flags: int, mode: int = 0o666) -> int:
    """``os.open(path, flags | O_NOFOLLOW)``: a descriptor of ``path``, never of a link's target. A
    symbolic link at ``path`` raises :class:`LinkRefusedError` naming it."""
    try:
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC | _BINARY, mode)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: FreeBSD's answer
            refuse_link(path)
        raise


def refuse_link(path: str | os.PathLike, option: str = "") -> None:
    """:class:`LinkRefusedError` when ``path`` is a symbolic link (a file to be written in place, checked
    before a long run starts; :func:`open_no_follow` refuses it again when it opens the file). ``option``:
    the command-line option that named it, for the message."""
    if os.path.islink(path):
        raise LinkRefusedError(f"{option + ' ' if option else ''}{path} is a symbolic link: refusing to write through it (it may point at "
                               f"another file); remove the link, or choose another path")


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` (UTF-8) to ``path``, created when missing; a link at ``path`` is refused."""
    descriptor = open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with open(descriptor, "wb") as handle:
        handle.write(text.encode())


def fsync_folder(folder: str | os.PathLike) -> None:
    """A rename in ``folder`` on disk too, where the system allows it (not on Windows, nor on some
    network file systems: then best effort)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new file beside the target, opened for writing: exclusive and unpredictable, so it cannot be a
    link planted in advance (``tempfile.mkstemp`` does the same, but with mode 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
    for _ in range(100):
        temporary = folder / f".{name[:_NAME_KEPT]}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(temporary, flags, 0o666), temporary  # the umask applies, as for open(path, "w")
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name after 100 tries", str(folder))


def _keep_mode(path: Path, descriptor: int) -> None:
    """The permission bits of the regular file being replaced (not of a link's target)."""
    try:
        status = os.lstat(path)
    except OSError:
        return
    if stat.S_ISREG(status.st_mode) and hasattr(os, "fchmod"):
        with contextlib.suppress(OSError):
            os.fchmod(descriptor, stat.S_IMODE(status.st_mode))


def _write_into_device(path: Path, content: Content) -> bool:
    """Write ``content`` into ``path`` when it is a device or a FIFO; False (nothing written) when it
    is missing or a regular file, which :func:`write_atomic` then replaces."""
    try:
        kind = os.stat(path).st_mode
        if stat.S_ISREG(kind) or stat.S_ISDIR(kind):
            return False
        # No O_CREAT, no O_TRUNC: opening a regular file put there meanwhile changes nothing in it.
        descriptor = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | _CLOEXEC | _BINARY)
    except FileNotFoundError:
        return False
    with open(descriptor, "wb") as handle:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            return False
        _write(handle, content)
    return True


def _write(handle: BinaryIO, content: Content) -> None:
    if isinstance(content, str):
        handle.write(content.encode())
    elif isinstance(content, (bytes, bytearray, memoryview)):
        handle.write(content)
    else:
        content(handle)
