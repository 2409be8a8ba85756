"""Images from files: folders, ``.npy`` / ``.npz`` arrays, ``.zip`` / ``.tar`` / ``.tar.gz`` archives.

Each reader is a map-style ``Dataset``: ``len()`` is the number of images, item ``i`` is a
``(3, H, W)`` uint8 tensor (float32 in [0, 255] for float arrays read with a declared range), and
``description`` says where the images came from. The order is fixed (names sorted), so the
contiguous splits of a score are reproducible. Readers are picklable and open their files lazily,
once per process, so ``DataLoader`` workers can decode in parallel. Each image is read and decoded
within :class:`~inception_score.readers.decode.ReadLimits` (:mod:`.decode`); the arrays are read by
:mod:`.array_files`.

Links are followed to files only: a link to a folder, a broken or looping link, and the link
members of a tar are skipped, and counted in ``description`` and a :class:`SkippedInputWarning`.
"""

from __future__ import annotations

import io
import os
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from .archive_index import index_tar, index_zip, open_zip_member, tar_member
from .array_files import ImageArray
from .decode import (
    ENV_MAX_FILE_BYTES,
    ProcessFiles,
    ReadLimits,
    check_size,
    decode_to_tensor,
    open_regular,
    read_capped,
    read_image_file,
    shown,
    undecodable,
)
from ..errors import ImageDecodeError, InputError
from ..protocol import InputRange
from ..wording import plural
from .repeated_inputs import refuse_repeated_files, refuse_repeated_paths

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
ARRAY_EXTENSIONS = (".npy", ".npz")
ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
# What zipfile and tarfile raise on a damaged archive: the last two for a zip member compressed or encrypted
# unreadably; IndexError, ValueError, OverflowError and struct.error for headers whose fields make no sense
# (a member with an empty name, a size that does not fit). Our own InputError, a ValueError, is let through.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error, IndexError, ValueError,
                   OverflowError, struct.error, NotImplementedError, RuntimeError)


class SkippedInputWarning(UserWarning):
    """Entries of a folder or archive were passed over without being read (links, special files)."""


def _skipped_note(skipped: Counter, where: str) -> str:
    """``; 2 links skipped`` for a description, and the same said as a warning; empty when nothing was."""
    skipped = +skipped  # drops the kinds counted zero times
    if not skipped:
        return ""
    counts = ", ".join(plural(count, kind) for kind, count in sorted(skipped.items()))
    warnings.warn(
        f"{where}: {counts} skipped (links are followed to files only, never to folders or out of an archive; "
        f"FIFOs, sockets and devices are never read)",
        SkippedInputWarning, stacklevel=3,
    )
    return f"; {counts} skipped"


def is_image_name(name: str) -> bool:
    """A supported extension, and not hidden: skips ``.DS_Store``-like files and macOS ``__MACOSX/._x.png``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if any(part.startswith(".") and part not in (".", "..") for part in parts) or "__MACOSX" in parts:
        return False
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _supported_list() -> str:
    return ", ".join(extension.lstrip(".") for extension in IMAGE_EXTENSIONS)


class ImageFiles(Dataset):
    """Image files given by path, in the order given."""

    def __init__(self, paths: Sequence[Path], description: str, limits: ReadLimits | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.description = description
        self.limits = limits or ReadLimits.from_environment()

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, index: int) -> str:
        """The file behind item ``index``, for messages."""
        return shown(self.paths[index])

    def __getitem__(self, index: int) -> torch.Tensor:
        """``(3, H, W)`` uint8."""
        return read_image_file(self.paths[index], self.limits)


def _list_folder(root: Path) -> tuple[list[str], Counter]:
    """The regular files below ``root``, as sorted names relative to it, and what was passed over.

    A link to a file is followed. A link to a folder is not (it could loop, or repeat files), nor a
    broken or looping one: each counts as a ``link``. FIFOs, sockets and devices count as a
    ``special file`` (reading one could wait forever), folders that cannot be listed as an
    ``unreadable folder``.
    """
    files: list[str] = []
    skipped: Counter = Counter()
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            skipped["unreadable folder"] += 1
            continue
        for entry in entries:
            name = prefix + entry.name
            try:
                if entry.is_symlink():
                    if entry.is_file():  # follows the link
                        files.append(name)
                    else:
                        skipped["link"] += 1
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), name + "/"))
                elif entry.is_file(follow_symlinks=False):
                    files.append(name)
                else:
                    skipped["special file"] += 1
            except OSError:  # a link that loops, or a target that cannot be examined
                skipped["link" if entry.is_symlink() else "special file"] += 1
    return sorted(files), skipped


def image_folder(root: Path, limits: ReadLimits | None = None) -> ImageFiles:
    """Every supported image below ``root``, recursively, sorted by path relative to ``root``."""
    root = Path(root)
    files, skipped = _list_folder(root)
    note = _skipped_note(skipped, f"folder {shown(root)}")
    if not files:
        raise InputError(f"{shown(root)} is empty{note and f' ({note[2:]})'}: give a folder that holds images")
    images = [name for name in files if is_image_name(name)]
    if not images:
        raise InputError(
            f"{shown(root)} holds {len(files)} files but none is an image with a supported extension "
            f"({_supported_list()})"
        )
    ignored = len(files) - len(images)
    note = (f"; {ignored} other files ignored" if ignored else "") + note
    return ImageFiles([root / name for name in images], f"folder {shown(root)} ({len(images)} images{note})", limits)


def _unreadable_archive(error: BaseException) -> str:
    """Why an archive could not be indexed, and what to do, in one line (tarfile's own message for a file
    that no method reads spans five lines, one per method tried)."""
    if isinstance(error, tarfile.ReadError) and str(error).startswith("file could not be opened"):
        return ("is not a tar archive: it is none of tar, tar.gz, tar.bz2 or tar.xz; check the file (a file renamed, "
                "or a download cut short)")
    reason = " ".join(str(error).split()) or type(error).__name__
    return f"is not a readable archive ({reason}); the file may be truncated or damaged: check it"


class ImageArchive(Dataset):
    """The supported images inside a ``.zip`` or ``.tar`` (optionally compressed), sorted by name,
    read without unpacking to disk.

    The archive is indexed in a few dozen bytes a member (:mod:`.archive_index`), and refused past
    ``max_archive_members``. A compressed tar can only be read forwards cheaply: when its members are
    not stored in name order, their bytes are read into memory in one pass instead, within
    ``max_file_bytes`` in all. Links (tar symbolic and hard links, zip symbolic links) are skipped and counted.
    """

    def __init__(self, path: Path, limits: ReadLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or ReadLimits.from_environment()
        self.is_zip = self.path.name.lower().endswith(ZIP_SUFFIXES)
        self._files = ProcessFiles()  # this process's TarFile (or None for a zip), and the file it reads
        self._in_memory: list[bytes | None] | None = None
        self._sparse: dict[int, tarfile.TarInfo] = {}  # tar members that need their sparse map, by data offset
        self._zip_before = 0  # bytes before the zip (a self-extractor's program)
        skipped: Counter = Counter()
        try:
            with open_regular(self.path) as handle:
                files = self._open_zip(handle, skipped) if self.is_zip else self._open_tar(handle, skipped)
        except InputError:
            raise
        except _ARCHIVE_ERRORS as error:
            raise InputError(f"{shown(self.path)} {_unreadable_archive(error)}") from None
        note = _skipped_note(skipped, f"archive {shown(self.path)}")
        if not len(self.index):
            raise InputError(
                f"{shown(self.path)} holds {files} files but none is an image with a supported extension "
                f"({_supported_list()}){note and f' ({note[2:]})'}"
            )
        self.description = f"archive {shown(self.path)} ({len(self.index)} images{note})"

    @property
    def members(self) -> list[str]:
        """The image members' names, sorted (a list made on each call: for messages and tests)."""
        return self.index.names()

    def _open_zip(self, handle: BinaryIO, skipped: Counter) -> int:
        """Index the zip (sets ``index``); returns the count of all its files."""
        self.index, files, self._zip_before = index_zip(handle, self.path, self.limits, is_image_name, skipped)
        return files

    def _open_tar(self, handle: BinaryIO, skipped: Counter) -> int:
        """Index the tar (sets ``index``); returns the count of all its files."""
        with tarfile.open(fileobj=handle) as archive:
            self.index, files, self._sparse = index_tar(archive, self.path, self.limits, is_image_name, skipped)
            offsets = self.index.offsets
            compressed = not isinstance(archive.fileobj, io.BufferedReader)
            if compressed and bool(np.any(offsets[1:] < offsets[:-1])):
                # Backward seeks in a gzip/bz2/xz stream restart decompression from the start.
                self._in_memory = self._read_all(archive)
        return files

    def _read_all(self, archive: tarfile.TarFile) -> list[bytes | None]:
        """The bytes of every image member in one forward pass, in name order; None for those over the limit."""
        sizes = self.index.sizes
        wanted = np.flatnonzero(sizes <= self.limits.max_file_bytes)
        total = int(sizes[wanted].sum())
        if total > self.limits.max_file_bytes:
            raise InputError(
                f"{shown(self.path)} is compressed and stores its images out of name order, so they would be read "
                f"into memory: {total:,} bytes, over the limit of {self.limits.max_file_bytes:,}. Unpack it, or "
                f"re-create it in name order (tar --sort=name), or raise the limit ({ENV_MAX_FILE_BYTES}={total})"
            )
        data: list[bytes | None] = [None] * len(self.index)
        for position in wanted[np.argsort(self.index.offsets[wanted], kind="stable")].tolist():
            stream = archive.extractfile(tar_member(self.index, position, self._sparse))
            size = int(sizes[position])
            data[position] = read_capped(stream, self._member_name(position), self.limits, size)  # type: ignore[arg-type]
        return data

    def _archive(self) -> BinaryIO | tarfile.TarFile:
        """This process's open zip file, or ``TarFile``."""
        archive = self._files.current()
        if archive is None:
            raw = open_regular(self.path)  # the archive is opened again in each worker: by then it could be a FIFO
            archive = self._files.keep(raw) if self.is_zip else self._files.keep(tarfile.open(fileobj=raw), raw)
        return archive

    def close(self) -> None:
        """Close this process's handle on the archive (the next read opens it again)."""
        self._files.close()

    def __len__(self) -> int:
        return len(self.index)

    def _member_name(self, index: int) -> str:
        return f"{os.fspath(self.path)}:{self.index.name(index)}"

    def name(self, index: int) -> str:
        """``archive:member`` of item ``index``, for messages."""
        return shown(self._member_name(index))

    def _read(self, index: int) -> bytes:
        """The bytes of member ``index``, its size checked first from the header, then while reading."""
        name = self._member_name(index)
        size = int(self.index.sizes[index])
        check_size(size, name, self.limits, "uncompressed, as the archive's header says")
        if self._in_memory is not None:
            return self._in_memory[index] or b""
        archive = self._archive()
        if isinstance(archive, tarfile.TarFile):
            extracted = archive.extractfile(tar_member(self.index, index, self._sparse))
            return read_capped(extracted, name, self.limits, size) if extracted is not None else b""
        with open_zip_member(archive, int(self.index.offsets[index]), self._zip_before) as member:
            return read_capped(member, name, self.limits, size)

    def __getitem__(self, index: int) -> torch.Tensor:
        """``(3, H, W)`` uint8."""
        try:
            data = self._read(index)
        except ImageDecodeError:
            raise
        except NotImplementedError as error:  # zipfile: a compression method it lacks (deflate64, an absent lzma)
            raise undecodable(
                self._member_name(index), f"could not be read from the archive ({error})",
                "re-create the archive with deflate or no compression, or unpack it and give the folder",
            ) from None
        except _ARCHIVE_ERRORS as error:
            raise undecodable(
                self._member_name(index), f"could not be read from the archive ({' '.join(str(error).split())})",
                "the archive may be truncated or damaged",
            ) from None
        return decode_to_tensor(data, self._member_name(index), self.limits)


class ImageSources(ConcatDataset):
    """Several readers one after the other, in the order given."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        super().__init__(datasets)
        self.description = " + ".join(d.description for d in datasets)

    def name(self, index: int) -> str:
        """The file (or file and index) behind item ``index``, for messages."""
        start = 0
        for dataset, stop in zip(self.datasets, self.cumulative_sizes):
            if index < stop:
                return dataset.name(index - start)
            start = stop
        raise IndexError(index)


def open_path(path: Path | str, *, input_range: InputRange | None = None, limits: ReadLimits | None = None,
              scored: int | None = None) -> Dataset:
    """The reader for one path: a folder, an array file, an archive, or a single image file.

    ``limits`` bounds what one image may cost (default: :meth:`ReadLimits.from_environment`). ``scored``:
    how many of its first images will be read, when not all (an array then checks the values of those only).
    """
    path = Path(path)
    limits = limits or ReadLimits.from_environment()
    if not path.exists():
        raise InputError(f"{shown(path)} does not exist: check the path")
    if path.is_dir():
        return image_folder(path, limits)
    if not path.is_file():  # reading a FIFO, socket or device could wait forever, or never end
        raise InputError(f"{shown(path)} is not a regular file (a FIFO, socket or device): give a file or a folder")
    lower = path.name.lower()
    if lower.endswith(ARRAY_EXTENSIONS):
        return ImageArray(path, input_range, limits, scored)
    if lower.endswith(ZIP_SUFFIXES + TAR_SUFFIXES):
        return ImageArchive(path, limits)
    if lower.endswith(IMAGE_EXTENSIONS):
        return ImageFiles([path], f"image {shown(path)}", limits)
    raise InputError(
        f"{shown(path)}: unsupported input; give a folder of images, a .npy/.npz array, or a .zip/.tar/.tar.gz archive"
    )


def dataset_labels(dataset: Dataset, count: int | None = None) -> np.ndarray | None:
    """The ``(N,)`` labels that came with the images of a reader (an ``.npz`` of samples and their
    classes), in its order, the first ``count`` of them; None unless every part of it has labels."""
    labels: np.ndarray | None = None
    if isinstance(dataset, ImageArray):
        labels = dataset.labels
    elif isinstance(dataset, ConcatDataset):
        parts = [dataset_labels(part) for part in dataset.datasets]
        labels = None if any(part is None for part in parts) else np.concatenate(parts)  # type: ignore[arg-type]
    elif isinstance(dataset, Subset):
        inner = dataset_labels(dataset.dataset)
        labels = None if inner is None else inner[np.asarray(dataset.indices, dtype=np.int64)]
    if labels is None:
        return None
    return labels if count is None else labels[:count]


def reads_files(dataset: Dataset) -> bool:
    """Whether every item of ``dataset`` comes from a reader of this module, and so is ``(3, H, W)`` by
    construction (decoded images are ``(H, W, 3)``; arrays have their layout checked at open)."""
    if isinstance(dataset, ConcatDataset):
        return all(reads_files(part) for part in dataset.datasets)
    if isinstance(dataset, Subset):
        return reads_files(dataset.dataset)
    return isinstance(dataset, (ImageFiles, ImageArchive, ImageArray))


def open_paths(
    paths: Sequence[Path | str], *, input_range: InputRange | None = None, limits: ReadLimits | None = None,
    scored: int | None = None,
) -> ImageSources:
    """One dataset of every image in ``paths``, concatenated in the order given; an input given twice
    (:mod:`.repeated_inputs`) is refused. ``scored``: how many of the first images will be read (``limit``),
    when not all: only their values are checked."""
    if not paths:
        raise InputError("no input given: name a folder, an array file or an archive")
    limits = limits or ReadLimits.from_environment()
    paths = [Path(p) for p in paths]
    if len(paths) > 1:
        refuse_repeated_paths(paths)
    readers: list[Dataset] = []
    for path in paths:
        remaining = None if scored is None else max(scored - sum(len(r) for r in readers), 0)  # type: ignore[arg-type]
        readers.append(open_path(path, input_range=input_range, limits=limits, scored=remaining))
    if len(paths) > 1:
        refuse_repeated_files((p, d.paths if isinstance(d, ImageFiles) else [p]) for p, d in zip(paths, readers))
    return ImageSources(readers)
