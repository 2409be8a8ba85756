"""Arrays inside a ``.npz`` file, read a few rows at a time and never whole.

A ``.npz`` is a zip archive of ``.npy`` files. ``np.load`` inflates a member whole into memory when
it is indexed, so a 10 GB file of samples would need 10 GB. Here each member is opened by its
``.npy`` header alone (dtype, shape, order), and rows are read when they are asked for:

- a member stored without compression (``np.savez``) lies in the file as it is: its data starts
  at a fixed offset (the zip's local header, then the ``.npy`` header), and rows are read there with
  seekable reads, which leave nothing in the process's memory but the rows;
- a deflated member (``np.savez_compressed``) is inflated through ``zipfile``'s stream as rows are
  asked for, in order; a later row skips forward through the stream in bounded steps, an earlier
  one starts the stream again (the readers ask in order, so that happens once per process).

What a header claims is checked against the zip's own record of the member's size before any row
is read, so a lying header cannot make a read run past the member or allocate what is not there.
"""

from __future__ import annotations

import os
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .decode import ProcessFiles, open_regular, shown
from ..errors import InputError

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # the fixed part of a zip local file header (30 bytes)
_LOCAL_SIGNATURE = b"PK\x03\x04"
# What reading a damaged .npz raises: zip and deflate errors, short reads, and a .npy header numpy cannot
# parse (it tokenizes the header's dict: TokenError and SyntaxError).
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError,
               SyntaxError, tokenize.TokenError)
# Deflate expands at most 1032 times (RFC 1951: a 258-byte match per 2 bits at best). A member claiming more
# than that from its compressed bytes is lying, and its shape must not be believed (its image count would
# size what the scorer allocates).
_DEFLATE_MAX_RATIO = 1032


def _read_into(handle, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``handle`` (a read may return less than asked); the bytes read."""
    view, filled = memoryview(buffer), 0
    while filled < len(buffer):
        count = handle.readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled


@dataclass(frozen=True)
class _Layout:
    """Where a member's array is: its dtype and shape, where its data starts in the member's
    uncompressed bytes, and for a stored member where that is in the file."""

    dtype: np.dtype
    shape: tuple[int, ...]
    header_bytes: int  # the .npy magic and header, before the data
    compressed: bool
    file_offset: int | None  # of the data in the .npz file (stored members only)


class NpzMember:
    """One array of a ``.npz``, as ``np.load(path)[key]`` would give it, read by rows.

    ``shape``, ``dtype`` and ``ndim`` as an array's; ``rows(start, stop)`` is ``array[start:stop]`` (a
    fresh ``ndarray``), and basic slices and integers index it the same way. Picklable: each process
    opens its own file handle on first read.
    """

    def __init__(self, path: Path | str, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self.member = f"{key}.npy"
        self._layout = self._read_layout()
        self._files = ProcessFiles()  # the open file (stored) or zip stream (deflated) of this process

    @property
    def shape(self) -> tuple[int, ...]:
        return self._layout.shape

    @property
    def dtype(self) -> np.dtype:
        return self._layout.dtype

    @property
    def ndim(self) -> int:
        return len(self._layout.shape)

    @property
    def compressed(self) -> bool:
        return self._layout.compressed

    def __len__(self) -> int:
        return self._layout.shape[0]

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (one image of an image array)."""
        return int(np.prod(self._layout.shape[1:], dtype=np.int64)) * self._layout.dtype.itemsize

    def _read_layout(self) -> _Layout:
        where = f"{shown(self.path)}: array {self.key!r}"
        with zipfile.ZipFile(self.path) as archive:
            info = archive.getinfo(self.member)
            if info.flag_bits & 0x1:
                raise InputError(f"{where} is encrypted; save the samples with np.savez")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise InputError(f"{where} is compressed with zip method {info.compress_type}; only stored "
                                 "(np.savez) and deflated (np.savez_compressed) members are read")
            self._check_sizes(info, where)
            with archive.open(info) as stream:
                version = npy_format.read_magic(stream)
                if version == (1, 0):
                    shape, fortran_order, dtype = npy_format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, fortran_order, dtype = npy_format.read_array_header_2_0(stream)
                else:
                    raise InputError(f"{where} is a .npy of format version {version}; save plain arrays "
                                     "(np.savez writes version 1.0)")
                header_bytes = stream.tell()
        if dtype.hasobject:
            raise InputError(f"{where} holds Python objects, which are never read (they would run code); "
                             "save numeric arrays")
        data_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(shape) > 1 and fortran_order:
            raise InputError(f"{where} is stored in Fortran order, so its rows are not contiguous; save it in C "
                             "order (np.savez(path, np.ascontiguousarray(images)))")
        if info.file_size != header_bytes + data_bytes:
            raise InputError(
                f"{where}: its header says shape {shape} {dtype} ({data_bytes:,} bytes), but the archive records "
                f"{info.file_size - header_bytes:,} bytes of data; the file is damaged or was not written by numpy")
        offset = None
        if info.compress_type == zipfile.ZIP_STORED:
            offset = self._data_offset(info) + header_bytes
        return _Layout(dtype=dtype, shape=tuple(int(n) for n in shape), header_bytes=header_bytes,
                       compressed=info.compress_type != zipfile.ZIP_STORED, file_offset=offset)

    def _check_sizes(self, info: zipfile.ZipInfo, where: str) -> None:
        """The zip's record of the member fits the file: its bytes lie inside it, and a deflated member
        claims no more than deflate can expand them to. A header claiming terabytes ends here."""
        file_bytes = os.path.getsize(self.path)
        damaged = "the file is damaged or truncated, or was not written by numpy"
        if info.header_offset + info.compress_size > file_bytes:
            raise InputError(f"{where}: the archive records {info.compress_size:,} bytes at offset "
                             f"{info.header_offset:,}, past the end of the {file_bytes:,}-byte file; {damaged}")
        stored = info.compress_type == zipfile.ZIP_STORED
        if (stored and info.file_size != info.compress_size) or (
                info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 64):
            raise InputError(f"{where}: the archive records {info.file_size:,} bytes of data from "
                             f"{info.compress_size:,} {'stored' if stored else 'compressed'} bytes, more than "
                             f"{'storing' if stored else 'deflate'} can give; {damaged}")

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where a stored member's bytes start: after its local header, whose name and extra field
        may differ in length from the central directory's."""
        with open(self.path, "rb") as handle:
            handle.seek(info.header_offset)
            fixed = handle.read(_LOCAL_HEADER.size)
        if len(fixed) != _LOCAL_HEADER.size or fixed[:4] != _LOCAL_SIGNATURE:
            raise InputError(f"{shown(self.path)}: the zip entry of {self.member!r} is damaged")
        fields = _LOCAL_HEADER.unpack(fixed)
        name_length, extra_length = fields[9], fields[10]
        return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length

    def _opened(self):
        handle = self._files.current()
        if handle is None:
            raw = open_regular(self.path)  # opened again in each worker: by then the path could be a FIFO
            if self._layout.compressed:
                archive = zipfile.ZipFile(raw)
                handle = self._files.keep(archive.open(self.member), archive, raw)
            else:
                handle = self._files.keep(raw)
        return handle

    def close(self) -> None:
        """Close the handles of this process (the next read opens them again)."""
        self._files.close()

    def rows(self, start: int, stop: int) -> np.ndarray:
        """``array[start:stop]`` as a new ``ndarray`` (only these rows' bytes are read)."""
        count = len(self)
        start, stop = max(0, min(start, count)), max(0, min(stop, count))
        stop = max(start, stop)
        size = (stop - start) * self.row_bytes
        where = self._layout.header_bytes + start * self.row_bytes
        data = bytearray(size)
        try:
            handle = self._opened()
            if self._layout.compressed:
                handle.seek(where)  # forward: inflates and drops, 16 MiB at a time; backward: starts again
            else:
                assert self._layout.file_offset is not None
                handle.seek(self._layout.file_offset + start * self.row_bytes)
            read = _read_into(handle, data)
        except READ_ERRORS as error:
            self.close()
            raise InputError(f"{shown(self.path)}: rows {start}..{stop} of array {self.key!r} could not be read "
                             f"({error}); the file may be truncated or damaged") from None
        if read != size:
            self.close()
            raise InputError(f"{shown(self.path)}: array {self.key!r} ends before row {stop} (read {read:,} "
                             f"of {size:,} bytes); the file is truncated")
        return np.frombuffer(data, dtype=self._layout.dtype).reshape((stop - start,) + self._layout.shape[1:])

    def __getitem__(self, index: int | slice) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise IndexError("NpzMember reads contiguous rows only (step 1)")
            return self.rows(start, stop)
        if isinstance(index, (int, np.integer)):
            position = int(index) + len(self) if index < 0 else int(index)
            if not 0 <= position < len(self):
                raise IndexError(f"row {index} of {len(self)}")
            return self.rows(position, position + 1)[0]
        raise TypeError(f"NpzMember takes an integer or a slice, not {type(index).__name__}")


def npz_keys(path: Path | str) -> list[str]:
    """The names of the arrays in a ``.npz``, in the archive's order, as ``np.load(path).files``."""
    with zipfile.ZipFile(path) as archive:
        return [name[:-4] if name.endswith(".npy") else name for name in archive.namelist()]
