"""The fingerprint of the images behind a logits file's rows: one 16-byte digest per image.

For an image file: its path, size, modification time (ns) and a CRC-32 of its first and last
:data:`HASHED_BYTES` bytes, so that it is checked without decoding. For any other image (an array, an
archive member): a CRC-32 of its decoded pixels, computed as they stream to the network.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

HASHED_BYTES = 16 << 10  # of an image file, the first and last this many bytes are checksummed


def _item_files(dataset: Dataset) -> list[Path | None]:
    """The file behind each item of a reader of :mod:`.files` (None where an item is not a file of its own)."""
    from ..readers.files import ImageFiles

    if isinstance(dataset, ImageFiles):
        return list(dataset.paths)
    if isinstance(dataset, ConcatDataset):
        return [path for part in dataset.datasets for path in _item_files(part)]
    if isinstance(dataset, Subset):
        inner = _item_files(dataset.dataset)
        return [inner[index] for index in dataset.indices]
    return [None] * len(dataset)  # type: ignore[arg-type]


def _item_name(dataset: Dataset, index: int) -> str:
    if isinstance(dataset, Subset):
        return _item_name(dataset.dataset, int(dataset.indices[index]))
    name = getattr(dataset, "name", None)
    return name(index) if callable(name) else f"image {index}"


def file_identity(path: Path) -> bytes:
    """16 bytes naming one image file as it is now: path, size, mtime (ns), CRC-32 of its first and
    last :data:`HASHED_BYTES`."""
    parts = [os.fsencode(path)]
    try:
        status = os.stat(path)
        parts.append(f"{status.st_size} {status.st_mtime_ns} {stat.S_IFMT(status.st_mode)}".encode())
        if stat.S_ISREG(status.st_mode):  # never open a FIFO: it would wait for a writer
            with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
                parts.append(b"%08x" % zlib.crc32(handle.read(HASHED_BYTES)))
                if status.st_size > HASHED_BYTES:
                    handle.seek(max(HASHED_BYTES, status.st_size - HASHED_BYTES))
                    parts.append(b"%08x" % zlib.crc32(handle.read(HASHED_BYTES)))
    except OSError as error:  # gone or unreadable: a digest of its own, which no readable file has
        parts.append(f"unreadable {error.errno}".encode())
    return hashlib.blake2b(b"\0".join(parts), digest_size=16).digest()


def pixel_digest(image: torch.Tensor) -> bytes:
    """16 bytes naming one decoded ``(3, H, W)`` image: its dtype, shape and the CRC-32 of its pixels
    (a checksum, not a cryptographic hash: it tells changed images apart at 1 GB/s and more)."""
    array = np.ascontiguousarray(image.detach().cpu().numpy())
    return hashlib.blake2b(f"{array.dtype.str} {array.shape} {zlib.crc32(array):08x}".encode(),
                           digest_size=16).digest()


def block_digest(rows: list[bytes]) -> str:
    return hashlib.blake2b(b"".join(rows), digest_size=16).hexdigest()


class InputFingerprint:
    """How the first ``count`` images of a reader are fingerprinted: by their files when every one is
    an image file ("files"), else by their decoded pixels ("pixels")."""

    def __init__(self, dataset: Dataset, count: int) -> None:
        self.dataset = dataset
        self.count = count
        files = _item_files(dataset)[:count]
        self.files: list[Path] | None = files if all(path is not None for path in files) else None  # type: ignore[assignment]
        self.kind = "files" if self.files is not None else "pixels"

    def rows(self, start: int, batch: Any) -> list[bytes]:
        """The digests of images ``start .. start + len(batch)``; ``batch``: those images as streamed."""
        if self.files is not None:
            return [file_identity(path) for path in self.files[start : start + len(batch)]]
        return [pixel_digest(image) for image in batch]

    def describe(self, start: int, stop: int) -> str:
        """What changed in images ``[start, stop)``, for a message."""
        first, last = _item_name(self.dataset, start), _item_name(self.dataset, stop - 1)
        names = f"image {start}, {first}," if stop - start == 1 else f"images {start}-{stop - 1}, {first} to {last},"
        covers = "the size, modification time or bytes of a file" if self.kind == "files" else "the pixels"
        return f"{covers} of {names} changed since they were scored"
