"""The image members of a tar or zip archive, indexed in a few dozen bytes each, and read one by one.

ImageNet's training set is one tar of 1.28 million images. Python's own indexes keep an object per
member (``TarInfo``, ``ZipInfo``: about 380 bytes each with their names and lists), which is 0.5 GB
for ImageNet, held by every process that reads. :class:`MemberIndex` keeps numpy arrays instead: a
member's offset and uncompressed size and the end of its name in one blob of UTF-8, 4 bytes each where
every value fits in 32 bits and 8 where not: 12 to 24 bytes a member plus its name (ImageNet's 147 GB
tar: 16 plus 30). The headers are read one at a time and dropped.

An archive with more members than ``ReadLimits.max_archive_members`` is refused, before its headers
are all read: the index would grow without bound, and reading so many headers takes as long as its
count. A member is read back from its offset: a tar member through ``tarfile`` from a header made from
the index, a zip member from its central directory entry, decompressed by ``zipfile.ZipExtFile``
(which checks its CRC).
"""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .decode import ENV_MAX_ARCHIVE_MEMBERS, ReadLimits, shown
from ..errors import InputError

_NAME_ENCODING = "utf-8", "surrogatepass"  # any str round-trips; byte order is the str's order


class MemberIndex:
    """Members sorted by name: ``offsets`` and ``sizes`` ``(N,)`` (uint32 where all fit, else int64), and
    names: member ``i``'s is ``blob[ends[i - 1]:ends[i]]`` in UTF-8. Built by :meth:`append` in archive order, then :meth:`finish`."""

    _BATCH = 65536  # members whose Python ints (28 bytes each, and a pointer) are held before going to arrays

    def __init__(self) -> None:
        self._names = bytearray()
        self._pending: tuple[list[int], list[int], list[int]] = ([], [], [])  # ends, offsets, sizes
        self._batches: list[np.ndarray] = []  # (3, batch) int64 each
        self.blob = b""
        self.ends = self.offsets = self.sizes = np.zeros(0, dtype=np.int64)

    def append(self, name: str, offset: int, size: int) -> None:
        self._names += name.encode(*_NAME_ENCODING)
        for values, value in zip(self._pending, (len(self._names), offset, size)):
            values.append(value)
        if len(self._pending[0]) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending[0]:
            self._batches.append(np.array(self._pending, dtype=np.int64))
            self._pending = ([], [], [])

    def finish(self, path: Path | None = None) -> MemberIndex:
        """Sort by name. Two members of one name are refused (with ``path``, the archive's, for the message):
        a reader by name would get one of them only, and the set scored would lack the other without a
        word; without ``path``, the later in the archive wins (as tar and zip do). An archive stored in name
        order (``tar --sort=name``) needs no sort, and costs nothing more."""
        self._flush()
        ends, offsets, sizes = np.concatenate(self._batches, axis=1) if self._batches else np.zeros((3, 0), np.int64)
        self._batches = []
        blob, self._names = self._names, bytearray()
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        view = memoryview(blob)
        if self._in_order(view, starts, ends):
            kept = None
        else:
            # UTF-8 bytes sort as their text does, surrogates included; the sort is stable, so of equal
            # names the last is the later member.
            names = self._sortable(view, starts, ends)
            order = np.argsort(names, kind="stable")
            names = names[order]
            last = np.ones(len(names), dtype=bool)
            last[:-1] = names[:-1] != names[1:]
            if path is not None and not last.all():
                raise repeated_names(path, names, last)
            del names
            kept = order[last]
            del order, last
            starts, ends, offsets, sizes = starts[kept], ends[kept], offsets[kept], sizes[kept]
        lengths = ends - starts
        new_ends = np.cumsum(lengths, dtype=np.int64)
        if kept is None:
            self.blob = bytes(view)  # without the slack a growing bytearray keeps
        else:
            rebuilt = bytearray(int(new_ends[-1]) if len(new_ends) else 0)
            for first in range(0, len(kept), self._BATCH):  # never a list of all the names as Python objects
                chunk = slice(first, first + self._BATCH)
                for start, stop, to in zip(starts[chunk].tolist(), ends[chunk].tolist(),
                                           (new_ends - lengths)[chunk].tolist()):
                    rebuilt[to : to + stop - start] = view[start:stop]
            self.blob = bytes(rebuilt)
        view.release()
        self.ends, self.offsets, self.sizes = _narrow(new_ends), _narrow(offsets), _narrow(sizes)
        return self

    @classmethod
    def _names_of(cls, view: memoryview, starts: np.ndarray, ends: np.ndarray):
        """The names as ``bytes``, a batch at a time: ``(first, [names])``."""
        for first in range(0, len(ends), cls._BATCH):
            stop = first + cls._BATCH
            yield first, [view[a:b].tobytes() for a, b in zip(starts[first:stop].tolist(), ends[first:stop].tolist())]

    @classmethod
    def _in_order(cls, view: memoryview, starts: np.ndarray, ends: np.ndarray) -> bool:
        """Whether every name is after the one before it (so sorted, and no two alike)."""
        previous: list[bytes] = []
        for _, names in cls._names_of(view, starts, ends):
            names = previous + names
            if any(a >= b for a, b in zip(names, names[1:])):
                return False
            previous = names[-1:]
        return True

    @classmethod
    def _sortable(cls, view: memoryview, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The names as an array numpy sorts: fixed-width bytes (a name holds no NUL, so its padding
        changes no order) where that costs at most a few times the names, else Python bytes objects."""
        count = len(ends)
        width = int((ends - starts).max()) if count else 1
        fixed = width * count <= 4 * len(view) + 64 * count
        names = np.empty(count, dtype=f"S{width}" if fixed else object)
        for first, batch in cls._names_of(view, starts, ends):
            names[first : first + len(batch)] = batch
        return names

    def __len__(self) -> int:
        return len(self.ends)

    def name(self, index: int) -> str:
        start = int(self.ends[index - 1]) if index > 0 else 0
        return self.blob[start : int(self.ends[index])].decode(*_NAME_ENCODING)

    def names(self) -> list[str]:
        """Every name, in order (a list of ``str``: for tests and small archives)."""
        return [self.name(i) for i in range(len(self))]

    def nbytes(self) -> int:
        """The bytes the index holds."""
        return len(self.blob) + self.ends.nbytes + self.offsets.nbytes + self.sizes.nbytes


def repeated_names(path: Path, names: np.ndarray, last: np.ndarray) -> InputError:
    """The refusal of an archive whose sorted member ``names`` repeat (``last`` False where the next is the same)."""
    repeated = np.unique(names[~last])
    first = repeated[0]
    count = int((names == first).sum())
    name = first.decode(*_NAME_ENCODING) if isinstance(first, bytes) else str(first)
    more = f" (and {len(repeated) - 1} more names held twice or more)" if len(repeated) > 1 else ""
    return InputError(f"{shown(path)} holds {count} members named {shown(name)!r}{more}: only one of them would be "
                      "scored; re-create the archive with a unique name for each image")


def _narrow(values: np.ndarray) -> np.ndarray:
    """``values`` (int64, none negative) as uint32 when they fit: 4 bytes a member instead of 8."""
    return values.astype(np.uint32) if not len(values) or int(values.max()) < 2**32 else values


def too_many_members(path: Path, limits: ReadLimits, count: str) -> InputError:
    return InputError(
        f"{shown(path)} holds {count} members, over the limit of {limits.max_archive_members:,} for one archive "
        f"(each costs memory while it is read); split it, or if it is genuine raise the limit "
        f"({ENV_MAX_ARCHIVE_MEMBERS})"
    )


def index_tar(archive: tarfile.TarFile, path: Path, limits: ReadLimits, wanted: Callable[[str], bool],
              skipped: Counter) -> tuple[MemberIndex, int, dict[int, tarfile.TarInfo]]:
    """The regular files of ``archive`` whose name is ``wanted``, the count of all its regular files, and
    the headers of the sparse ones (which need their map to be read), by their data offset."""
    index, files, sparse = MemberIndex(), 0, {}
    count = 0
    while (member := archive.next()) is not None:
        archive.members.clear()  # TarFile keeps each header it reads; the index keeps what it needs
        count += 1
        if count > limits.max_archive_members:
            raise too_many_members(path, limits, f"more than {limits.max_archive_members:,}")
        if member.issym() or member.islnk():
            skipped["link"] += 1
        elif member.ischr() or member.isblk() or member.isfifo():
            skipped["special file"] += 1
        elif member.isfile():
            files += 1
            if wanted(member.name):
                index.append(member.name, member.offset_data, member.size)
                if member.issparse():
                    sparse[member.offset_data] = member
    return index.finish(path), files, sparse


def tar_member(index: MemberIndex, position: int, sparse: dict[int, tarfile.TarInfo]) -> tarfile.TarInfo:
    """A header for ``TarFile.extractfile``, made from the index."""
    offset = int(index.offsets[position])
    if offset in sparse:
        return sparse[offset]
    member = tarfile.TarInfo(index.name(position))
    member.type, member.size, member.offset_data = tarfile.REGTYPE, int(index.sizes[position]), offset
    return member


# The zip format (APPNOTE.TXT): end of central directory record, its zip64 form and locator, and the
# central directory's entries (46 bytes, then the name, extra fields and comment) and local headers (30 bytes).
_END = struct.Struct("<4s4H2LH")
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_ENTRY = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1


def _zip_directory(handle: BinaryIO) -> tuple[int, int, int]:
    """Where the central directory starts, its entry count, and what precedes the zip (a self-extractor's
    program) that offsets in it do not count."""
    handle.seek(0, io.SEEK_END)
    size = handle.tell()
    tail_start = max(0, size - _END.size - 65535)
    handle.seek(tail_start)
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise zipfile.BadZipFile("File is not a zip file")
    end = tail_start + at
    _, _, _, _, entries, directory_size, directory_offset, _ = _END.unpack_from(tail, at)
    records = 0
    if at >= _END64_LOCATOR.size and tail[at - _END64_LOCATOR.size : at - _END64_LOCATOR.size + 4] == b"PK\x06\x07":
        _, _, end64_offset, _ = _END64_LOCATOR.unpack_from(tail, at - _END64_LOCATOR.size)
        handle.seek(end64_offset)
        fields = _END64.unpack(handle.read(_END64.size))
        if fields[0] != b"PK\x06\x06":
            raise zipfile.BadZipFile("corrupt zip64 end of central directory")
        entries, directory_size, directory_offset = fields[7], fields[8], fields[9]
        records = _END64.size + _END64_LOCATOR.size
    before = end - records - directory_size - directory_offset
    if before < 0:
        raise zipfile.BadZipFile("the central directory's size or offset is wrong")
    return directory_offset + before, entries, before


def _zip_entry(handle: BinaryIO) -> tuple[zipfile.ZipInfo, int, bytes]:
    """The central directory entry at the handle's position (the handle is left after it): its
    ``ZipInfo`` (sizes, method, flags, CRC), its local header's offset and its name as stored."""
    raw = handle.read(_ENTRY.size)
    if len(raw) != _ENTRY.size or raw[:4] != b"PK\x01\x02":
        raise zipfile.BadZipFile("bad magic number for a central directory entry")
    (_, _, _, flags, method, _, _, crc, compressed, size, name_length, extra_length, comment_length,
     _, _, external, local) = _ENTRY.unpack(raw)
    name = handle.read(name_length)
    extra = handle.read(extra_length)
    handle.seek(comment_length, io.SEEK_CUR)
    info = zipfile.ZipInfo(name.decode("utf-8" if flags & _UTF8_FLAG else "cp437"))
    wide = [field for field, value in (("size", size), ("compressed", compressed), ("local", local))
            if value == 0xFFFFFFFF]
    while wide and len(extra) >= 4:  # zip64: the 8-byte values of the fields that did not fit, in that order
        kind, length = struct.unpack_from("<2H", extra)
        if kind == 1:
            values = struct.unpack_from(f"<{min(len(wide), length // 8)}Q", extra, 4)
            found = dict(zip(wide, values))
            size, compressed, local = (found.get("size", size), found.get("compressed", compressed),
                                       found.get("local", local))
            break
        extra = extra[4 + length:]
    info.flag_bits, info.compress_type, info.CRC = flags, method, crc
    info.compress_size, info.file_size, info.external_attr = compressed, size, external
    return info, local, name


def index_zip(handle: BinaryIO, path: Path, limits: ReadLimits, wanted: Callable[[str], bool],
              skipped: Counter) -> tuple[MemberIndex, int, int]:
    """The files of the zip whose name is ``wanted`` (offsets: of their central directory entries), the
    count of all its files (folders are not files; links are skipped), and the bytes before the zip."""
    start, entries, before = _zip_directory(handle)
    if entries > limits.max_archive_members:
        raise too_many_members(path, limits, f"{entries:,}")
    index, files = MemberIndex(), 0
    reader = io.BufferedReader(handle, 1 << 16) if isinstance(handle, io.RawIOBase) else handle
    reader.seek(start)
    images, encrypted, first_encrypted = 0, 0, ""
    for _ in range(entries):
        offset = reader.tell()
        info, _, _ = _zip_entry(reader)
        if info.is_dir():
            continue
        files += 1
        if stat.S_ISLNK(info.external_attr >> 16):  # a Unix zip's link: its mode in the high bits
            skipped["link"] += 1
        elif wanted(info.filename):
            images += 1
            if info.flag_bits & _ENCRYPTED_FLAG:
                encrypted += 1
                first_encrypted = first_encrypted or info.filename
            index.append(info.filename, offset, info.file_size)
    if encrypted:  # never readable without the password, which the command never asks for
        raise InputError(f"{shown(path)} is encrypted ({encrypted} of its {images} image files need a password, "
                         f"the first {shown(first_encrypted)!r}): unpack it with its password and give the folder")
    return index.finish(path), files, before


def open_zip_member(handle: BinaryIO, entry_offset: int, before: int) -> zipfile.ZipExtFile:
    """A stream of the uncompressed bytes of the member whose central directory entry is at ``entry_offset``
    (``before``: the bytes before the zip, from :func:`index_zip`)."""
    handle.seek(entry_offset)
    info, local, stored_name = _zip_entry(handle)
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise zipfile.BadZipFile("it is encrypted, and encrypted members are not read")
    handle.seek(local + before)
    header = handle.read(_LOCAL.size)
    if len(header) != _LOCAL.size or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad magic number for a local file header")
    name_length, extra_length = _LOCAL.unpack(header)[-2:]
    name = handle.read(name_length)
    if name != stored_name:
        raise zipfile.BadZipFile(f"file name in the directory {stored_name!r} and in the header {name!r} differ")
    handle.seek(extra_length, io.SEEK_CUR)
    return zipfile.ZipExtFile(handle, "r", info)
