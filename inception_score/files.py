"""Images from files: folders, ``.npy`` / ``.npz`` arrays, ``.zip`` / ``.tar`` / ``.tar.gz`` archives.

Each reader is a map-style ``Dataset``: ``len()`` is the number of images, item ``i`` is a
``(3, H, W)`` uint8 tensor (float32 in [0, 255] for float arrays read with a declared range), and
``description`` says where the images came from. The order is fixed (names sorted), so the
contiguous splits of a score are reproducible. Readers are picklable and open their files lazily,
once per process, so ``DataLoader`` workers can decode in parallel.

A hostile or broken file must not take the machine's memory (:class:`ReadLimits`). Each image file
and archive member is checked against ``max_file_bytes`` before it is read (its size on disk, or the
uncompressed size in the archive's header) and read by a stream that stops at the limit, since a
header can lie. Each image's ``width * height`` is checked against ``max_image_pixels`` from its
header, before its pixels are decoded, and each PNG chunk other than pixel data against
``MAX_PNG_CHUNK_BYTES`` from its header, before a file on disk is read. An image over a limit raises :class:`ImageDecodeError`, so
``--skip-invalid`` skips and counts it like any undecodable image.

Links are followed to files only: a link to a folder, a broken or looping link, and the link
members of a tar are skipped, and counted in ``description`` and a :class:`SkippedInputWarning`.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
import unicodedata
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from .errors import ImageDecodeError, InputError
from .npz import READ_ERRORS as NPZ_READ_ERRORS
from .npz import NpzMember, npz_keys
from .pixels import InputRange, channels_axis, standardize_batch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
# The Pillow decoders of those extensions (JPEG opens cameras' MPO files too). Naming them keeps
# Pillow from trying its other decoders on a renamed file (EPS, for one, runs Ghostscript).
PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF")
ARRAY_EXTENSIONS = (".npy", ".npz")
ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ITEM_RANGE: InputRange = (0.0, 255.0)  # float items of every reader are already mapped to this range
_VALIDATION_CHUNK = 1024  # images per chunk when a float array is checked at open,
_VALIDATION_BYTES = 64 * 2**20  # and at most this many bytes

# 40 MP (8000x5000) is above the 24-36 MP of most camera photos and 40 times a 1024x1024 sample; the
# network sees 299x299 of it. Decoding costs about 13 bytes a pixel (Pillow's RGBX, the array, the
# (3, H, W) tensor; measured: a 40 MP PNG adds 0.53 GB to the reader, and takes the command from
# 0.85 GB to 1.4 GB). Pillow's own limits (89 MP: a warning; 179 MP: an error) would allow 2.4 GB.
MAX_IMAGE_PIXELS = 40_000_000
# 40 MP is at most 240 MB on disk, as uncompressed 16-bit RGB TIFF: 256 MiB fits every image of the
# pixel limit, and bounds what one archive member read into memory costs.
MAX_FILE_BYTES = 256 * 2**20
# A PNG chunk other than pixel data (IDAT, fdAT) is metadata: text, an ICC profile, EXIF. Pillow reads such a
# chunk whole before it judges it (a 200 MB iTXt chunk took the command to 2.0 GB before being refused), so
# its length, from its header, is checked first. 16 MiB is far above real metadata (Pillow itself keeps at
# most 1 MB of text a chunk) and costs little.
MAX_PNG_CHUNK_BYTES = 16 * 2**20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PIXEL_CHUNKS = (b"IDAT", b"fdAT")
ENV_MAX_PIXELS = "INCEPTION_SCORE_MAX_PIXELS"
ENV_MAX_FILE_BYTES = "INCEPTION_SCORE_MAX_FILE_BYTES"
_SKIP_ADVICE = ", or pass --skip-invalid"  # ends every ImageDecodeError message; dropped once skipping is on
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error,
                   NotImplementedError, RuntimeError)  # the last two: a zip member compressed or encrypted unreadably


class SkippedInputWarning(UserWarning):
    """Entries of a folder or archive were passed over without being read (links, special files)."""


def _positive_limit(value: int | str, source: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        raise InputError(f"{source} is {value!r}, not a whole number; give a count such as 100000000") from None
    if limit < 1:
        raise InputError(f"{source} is {limit}; give a positive count")
    return limit


@dataclass(frozen=True)
class ReadLimits:
    """The most one image may cost before it is decoded: bytes read (one file, one archive member, or
    all the images of a compressed tar read out of order), and pixels (``width * height``)."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        _positive_limit(self.max_file_bytes, "max_file_bytes")
        _positive_limit(self.max_image_pixels, "max_image_pixels")

    @classmethod
    def from_environment(cls) -> ReadLimits:
        """The defaults, or ``$INCEPTION_SCORE_MAX_FILE_BYTES`` and ``$INCEPTION_SCORE_MAX_PIXELS`` where set."""
        values = {}
        for field_name, variable in (("max_file_bytes", ENV_MAX_FILE_BYTES), ("max_image_pixels", ENV_MAX_PIXELS)):
            if os.environ.get(variable):
                values[field_name] = _positive_limit(os.environ[variable], f"${variable}")
        return cls(**values)


def shown(name: str | os.PathLike) -> str:
    """A file name as messages print it: control characters (a newline would cut a one-line error
    short), line separators and undecodable bytes escaped as ``repr`` writes them; the rest unchanged."""
    return "".join(
        char.encode("unicode_escape").decode("ascii") if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp")
        else char
        for char in os.fspath(name)
    )


def _undecodable(name: str, problem: str, fix: str) -> ImageDecodeError:
    """``name problem; fix, or pass --skip-invalid``: the error of one image that cannot be used."""
    return ImageDecodeError(f"{shown(name)} {problem}; {fix}{_SKIP_ADVICE}")


def _check_size(size: int, name: str, limits: ReadLimits, where: str) -> None:
    if size > limits.max_file_bytes:
        raise _undecodable(
            name, f"is {size:,} bytes ({where}), over the limit of {limits.max_file_bytes:,} bytes for one image",
            f"if it is genuine, raise the limit ({ENV_MAX_FILE_BYTES}={size})",
        )


def _read_capped(stream: BinaryIO, name: str, limits: ReadLimits) -> bytes:
    """All of ``stream``, but never more than the limit plus one byte: a size in a header can lie."""
    data = stream.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise _undecodable(
            name, f"holds more than {limits.max_file_bytes:,} bytes, though its recorded size was less",
            f"if it is genuine, raise the limit ({ENV_MAX_FILE_BYTES})",
        )
    return data


def _check_png_chunks(stream: BinaryIO, name: str) -> None:
    """For a PNG, every chunk's length from its 8-byte header, seeking past its data (never reading it):
    a chunk other than pixel data longer than ``MAX_PNG_CHUNK_BYTES`` is refused. Other files pass, and
    so does a PNG whose chunks are not well formed (its first not IHDR, a type not four letters): Pillow
    says what is wrong with it. The stream is left at its start."""
    try:
        if stream.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
            return
        first = True
        while len(header := stream.read(8)) == 8:
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind == b"IEND" or not kind.isalpha() or (first and kind != b"IHDR"):
                return
            first = False
            if length > MAX_PNG_CHUNK_BYTES and kind not in _PNG_PIXEL_CHUNKS:
                raise _undecodable(
                    name, f"has a PNG {kind.decode('ascii')} chunk of {length:,} bytes (its header says), over the limit of "
                    f"{MAX_PNG_CHUNK_BYTES:,} bytes for a chunk that is not pixel data",
                    "strip its metadata (save the pixels again without text or profile chunks)",
                )
            stream.seek(length + 4, io.SEEK_CUR)  # the data and its CRC
    finally:
        stream.seek(0)


def _check_pixels(size: tuple[int, int], name: str, limits: ReadLimits) -> None:
    width, height = size
    if width * height > limits.max_image_pixels:
        raise _undecodable(
            name, f"is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), over the limit of "
            f"{limits.max_image_pixels:,} pixels",
            f"if it is genuine, raise the limit ({ENV_MAX_PIXELS}={width * height})",
        )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _skipped_note(skipped: Counter, where: str) -> str:
    """``; 2 links skipped`` for a description, and the same said as a warning; empty when nothing was."""
    skipped = +skipped  # drops the kinds counted zero times
    if not skipped:
        return ""
    counts = ", ".join(_plural(count, kind) for kind, count in sorted(skipped.items()))
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


def decode_image(data: bytes, name: str, limits: ReadLimits | None = None) -> np.ndarray:
    """Encoded image bytes -> ``(H, W, 3)`` uint8 RGB.

    EXIF orientation is applied; grayscale and palette images become RGB; alpha is dropped;
    16-bit images keep their top 8 bits (0..65535 -> 0..255); a GIF gives its first frame.
    ``name`` is used in error messages only. ``limits`` (default: from the environment) bounds
    the pixels, checked from the header before decoding.
    """
    limits = limits or ReadLimits.from_environment()
    if len(data) == 0:
        raise _undecodable(name, "is empty (0 bytes)", "remove it")
    _check_png_chunks(io.BytesIO(data), name)
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 MP; the limit here is lower and raises its own error just below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)
        with opened:
            _check_pixels(opened.size, name, limits)
            opened.load()
            image = ImageOps.exif_transpose(opened)
            if image.mode in _SIXTEEN_BIT_MODES:
                wide = np.asarray(image, dtype=np.int64)
                gray = np.clip(wide >> 8, 0, 255).astype(np.uint8)
                return np.repeat(gray[:, :, None], 3, axis=2)
            if image.mode == "F":
                raise _undecodable(name, "holds floating-point pixels", "save it as 8-bit RGB")
            if image.mode != "RGB":
                image = image.convert("RGB")  # L, P, RGBA, LA, PA, CMYK, 1, ...: alpha is dropped
            return np.array(image, dtype=np.uint8)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as error:  # over twice Pillow's limit, which is not lifted here
        raise _undecodable(name, f"is too large for Pillow to decode ({error})", "shrink it") from None
    except UnidentifiedImageError:
        reason = f"not a {'/'.join(PILLOW_FORMATS)} image, or its header is corrupt"
    except (OSError, ValueError, SyntaxError) as error:
        reason = str(error)
    raise _undecodable(name, f"could not be decoded ({reason})", "fix or remove it")


def _channels_first(pixels: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` -> ``(3, H, W)``, contiguous."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


class NotRegularFileError(OSError):
    """A path that was a regular file when listed is now a FIFO, socket or device."""


def open_regular(path: Path) -> BinaryIO:
    """``open(path, "rb")`` that never waits: opened non-blocking (opening a FIFO, one put in place of a
    listed file even, would wait for a writer), then kept only if ``fstat`` says it is a regular file,
    else :class:`NotRegularFileError`. On a regular file the flag changes nothing."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    handle = open(descriptor, "rb")
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        handle.close()
        raise NotRegularFileError(errno.EINVAL, "not a regular file (a FIFO, socket or device)", os.fspath(path))
    return handle


def _read_image_file(path: Path, limits: ReadLimits | None = None) -> torch.Tensor:
    """One image file -> ``(3, H, W)`` uint8, its size checked before reading and its pixels before decoding."""
    limits = limits or ReadLimits.from_environment()
    name = os.fspath(path)
    try:
        with open_regular(path) as handle:
            _check_size(os.fstat(handle.fileno()).st_size, name, limits, "on disk")
            _check_png_chunks(handle, name)  # before the data is read: a chunk's header can claim anything
            data = _read_capped(handle, name, limits)
    except NotRegularFileError:
        raise _undecodable(name, "is not a regular file (a FIFO, socket or device)", "give image files") from None
    except OSError as error:
        raise _undecodable(
            name, f"could not be read ({error.strerror or error})", "check that it exists and is readable"
        ) from None
    return _channels_first(decode_image(data, name, limits))


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
        return _read_image_file(self.paths[index], self.limits)


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


def _is_zip_link(info: zipfile.ZipInfo) -> bool:
    """A symbolic link stored by a Unix zip: its mode, in the high bits of the external attributes."""
    return stat.S_ISLNK(info.external_attr >> 16)


class ImageArchive(Dataset):
    """The supported images inside a ``.zip`` or ``.tar`` (optionally compressed), sorted by name,
    read without unpacking to disk.

    A compressed tar can only be read forwards cheaply: when its members are not stored in name
    order, their bytes are read into memory in one pass instead, within ``max_file_bytes`` in all.
    Links (tar symbolic and hard links, zip symbolic links) are skipped and counted.
    """

    def __init__(self, path: Path, limits: ReadLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or ReadLimits.from_environment()
        self.is_zip = self.path.name.lower().endswith(ZIP_SUFFIXES)
        self._handle: zipfile.ZipFile | tarfile.TarFile | None = None
        self._pid: int | None = None
        self._tar_members: list[tarfile.TarInfo] = []
        self._in_memory: list[bytes | None] | None = None
        self._sizes: list[int] = []  # uncompressed, from the archive's headers
        skipped: Counter = Counter()
        try:
            names = self._open_zip(skipped) if self.is_zip else self._open_tar(skipped)
        except _ARCHIVE_ERRORS as error:
            raise InputError(f"{shown(self.path)} is not a readable archive ({error}); check the file") from None
        note = _skipped_note(skipped, f"archive {shown(self.path)}")
        if not self.members:
            raise InputError(
                f"{shown(self.path)} holds {len(names)} files but none is an image with a supported extension "
                f"({_supported_list()}){note and f' ({note[2:]})'}"
            )
        self.description = f"archive {shown(self.path)} ({len(self.members)} images{note})"

    def _open_zip(self, skipped: Counter) -> list[str]:
        """Index the zip; returns the names of all its files. Sets ``members`` (sorted image names) and their sizes."""
        with zipfile.ZipFile(self.path) as archive:
            files = [info for info in archive.infolist() if not info.is_dir()]
        skipped["link"] += sum(_is_zip_link(info) for info in files)
        by_name = {info.filename: info for info in files if not _is_zip_link(info) and is_image_name(info.filename)}
        self.members = sorted(by_name)  # a later duplicate wins, as ZipFile.getinfo does
        self._sizes = [by_name[name].file_size for name in self.members]
        return [info.filename for info in files]

    def _open_tar(self, skipped: Counter) -> list[str]:
        """Index the tar; returns the names of all its files. Sets ``members`` (sorted image names) and their sizes."""
        with tarfile.open(self.path) as archive:
            entries = archive.getmembers()
            files = [m for m in entries if m.isfile()]
            skipped["link"] += sum(m.issym() or m.islnk() for m in entries)
            skipped["special file"] += sum(m.ischr() or m.isblk() or m.isfifo() for m in entries)
            by_name = {m.name: m for m in files if is_image_name(m.name)}  # a later duplicate wins, as tar does
            self.members = sorted(by_name)
            ordered = [by_name[name] for name in self.members]
            self._sizes = [m.size for m in ordered]
            offsets = [m.offset_data for m in ordered]
            compressed = not isinstance(archive.fileobj, io.BufferedReader)
            if compressed and offsets != sorted(offsets):
                # Backward seeks in a gzip/bz2/xz stream restart decompression from the start.
                self._in_memory = self._read_all(archive, files, by_name)
            else:
                self._tar_members = ordered
        return [m.name for m in files]

    def _read_all(self, archive: tarfile.TarFile, files: list[tarfile.TarInfo],
                  by_name: dict[str, tarfile.TarInfo]) -> list[bytes | None]:
        """The bytes of every image member in one forward pass, in name order; None for those over the limit."""
        wanted = {id(m): m for m in by_name.values() if m.size <= self.limits.max_file_bytes}
        total = sum(m.size for m in wanted.values())
        if total > self.limits.max_file_bytes:
            raise InputError(
                f"{shown(self.path)} is compressed and stores its images out of name order, so they would be read "
                f"into memory: {total:,} bytes, over the limit of {self.limits.max_file_bytes:,}. Unpack it, or "
                f"re-create it in name order (tar --sort=name), or raise the limit ({ENV_MAX_FILE_BYTES}={total})"
            )
        data: dict[str, bytes] = {}
        for member in files:
            if id(member) in wanted:
                stream = archive.extractfile(member)
                name = f"{os.fspath(self.path)}:{member.name}"
                data[member.name] = _read_capped(stream, name, self.limits)  # type: ignore[arg-type]
        return [data.get(name) for name in self.members]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, None  # each worker process opens its own handle
        return state

    def _archive(self) -> zipfile.ZipFile | tarfile.TarFile:
        if self._handle is None or self._pid != os.getpid():
            raw = open_regular(self.path)  # the archive is opened again in each worker: by then it could be a FIFO
            self._handle = zipfile.ZipFile(raw) if self.is_zip else tarfile.open(fileobj=raw)
            self._pid = os.getpid()
        return self._handle

    def __len__(self) -> int:
        return len(self.members)

    def _member_name(self, index: int) -> str:
        return f"{os.fspath(self.path)}:{self.members[index]}"

    def name(self, index: int) -> str:
        """``archive:member`` of item ``index``, for messages."""
        return shown(self._member_name(index))

    def _read(self, index: int) -> bytes:
        """The bytes of member ``index``, its size checked first from the header, then while reading."""
        name = self._member_name(index)
        _check_size(self._sizes[index], name, self.limits, "uncompressed, as the archive's header says")
        if self._in_memory is not None:
            return self._in_memory[index] or b""
        archive = self._archive()
        if isinstance(archive, zipfile.ZipFile):
            with archive.open(self.members[index]) as member:
                return _read_capped(member, name, self.limits)
        extracted = archive.extractfile(self._tar_members[index])
        return _read_capped(extracted, name, self.limits) if extracted is not None else b""

    def __getitem__(self, index: int) -> torch.Tensor:
        """``(3, H, W)`` uint8."""
        try:
            data = self._read(index)
        except ImageDecodeError:
            raise
        except _ARCHIVE_ERRORS as error:
            raise _undecodable(
                self._member_name(index), f"could not be read from the archive ({error})",
                "the archive may be truncated or damaged",
            ) from None
        return _channels_first(decode_image(data, self._member_name(index), self.limits))


IMAGE_KEYS = ("images", "arr_0")  # the array of a .npz read as images: named so, or np.savez's first positional one
LABEL_KEYS = ("labels", "y", "arr_1")  # and its labels, one integer per image: guided-diffusion writes arr_1


class ImageArray(Dataset):
    """Images stored as one 4-d array in a ``.npy`` or ``.npz``: uint8 ``(N, H, W, 3)`` or ``(N, 3, H, W)``
    (one channel is repeated to RGB), or floats with a declared ``input_range``.

    A ``.npz`` uses its array ``images``, else ``arr_0`` (what ``np.savez(path, images, labels)``
    writes, as guided-diffusion's samplers do), else its only array; ``description`` names the one
    used. Labels are read from ``labels``, ``y`` or ``arr_1`` when present: one integer per image
    (``labels``, ``(N,)`` int64; None without). Shape, dtype, range and finiteness are checked once at
    open, so errors come before any scoring, and each image's size against ``limits``. Nothing is
    read whole: ``.npy`` files are memory-mapped, ``.npz`` members read by rows (:mod:`.npz`).
    """

    def __init__(self, path: Path, input_range: InputRange | None = None, limits: ReadLimits | None = None) -> None:
        self.path = Path(path)
        self.input_range = input_range
        self.limits = limits or ReadLimits.from_environment()
        self.key: str | None = None  # the .npz member read as images
        self.label_key: str | None = None
        array = self._load()
        self._check(array)
        self.count = int(array.shape[0])
        self.labels = self._read_labels() if self.label_key is not None else None
        member = "" if self.key is None else f" [{self.key!r}]"
        self.description = f"array {shown(self.path)}{member} {tuple(array.shape)} {array.dtype}"
        if self.labels is not None:
            self.description += f", labels [{self.label_key!r}] ({len(np.unique(self.labels))} classes)"
        self._array: np.ndarray | NpzMember | None = array

    def _is_npy(self) -> bool:
        return self.path.name.lower().endswith(".npy")

    def _load(self) -> np.ndarray | NpzMember:
        try:
            if self._is_npy():
                open_regular(self.path).close()  # mapped again in each worker: by then it could be a FIFO
                return np.load(self.path, mmap_mode="r", allow_pickle=False)
            if self.key is not None:  # a copy in another process: the member was chosen at open
                return NpzMember(self.path, self.key)
            keys = npz_keys(self.path)
            chosen = [key for key in IMAGE_KEYS if key in keys]
            if chosen:
                self.key = chosen[0]
            elif len(keys) == 1:
                self.key = keys[0]
            else:
                raise InputError(
                    f"{shown(self.path)} holds the arrays {keys} and none is named 'images' (or 'arr_0', the first "
                    f"array of np.savez(path, images, labels)): save the images under that name "
                    f"(np.savez(path, images=...))"
                )
            self.label_key = next((key for key in LABEL_KEYS if key in keys and key != self.key), None)
            return NpzMember(self.path, self.key)
        except InputError:
            raise
        except NPZ_READ_ERRORS as error:
            raise InputError(f"{shown(self.path)} could not be read as a numpy array file ({error})") from None

    def _read_labels(self) -> np.ndarray:
        """The ``(N,)`` labels, checked to be one integer per image."""
        assert self.label_key is not None
        try:
            member = NpzMember(self.path, self.label_key)
        except NPZ_READ_ERRORS as error:
            raise InputError(f"{shown(self.path)}: its labels {self.label_key!r} could not be read ({error})") from None
        if member.shape != (self.count,) or member.dtype.kind not in "iu":
            raise InputError(
                f"{shown(self.path)}: the array {self.label_key!r} is read as the images' labels, but it is "
                f"{member.shape} {member.dtype}, not one integer per image ({self.count},); save labels as "
                f"integers, or under another name if they are not labels"
            )
        labels = member.rows(0, self.count).astype(np.int64)
        member.close()
        return labels

    def _check(self, array: np.ndarray | NpzMember) -> None:
        where = shown(self.path)
        if array.ndim != 4:
            raise InputError(
                f"{where} holds an array of shape {array.shape}; expected images (N, H, W, 3) or (N, 3, H, W)"
            )
        floating = np.issubdtype(array.dtype, np.floating)
        if array.dtype != np.uint8 and not floating:
            raise InputError(
                f"{where} holds {array.dtype} values; save uint8 pixels (0..255), "
                f"or floats and pass --input-range"
            )
        if floating and self.input_range is None:
            raise InputError(
                f"{where} holds floats ({array.dtype}); declare their range with --input-range 0,1, -1,1 or 0,255"
            )
        if array.shape[0] == 0:
            raise InputError(f"{where} holds no images (shape {array.shape})")
        axis = channels_axis(array.shape, where)  # the whole array's shape in the message, not a slice's
        height, width = [size for i, size in enumerate(array.shape[1:], start=1) if i != axis]
        image_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize
        if width * height > self.limits.max_image_pixels or image_bytes > self.limits.max_file_bytes:
            raise InputError(
                f"{where}: each image is {width}x{height} pixels, {image_bytes:,} bytes, over the limit of "
                f"{self.limits.max_image_pixels:,} pixels or {self.limits.max_file_bytes:,} bytes for one image; "
                f"if it is genuine, raise the limits ({ENV_MAX_PIXELS}={width * height}, "
                f"{ENV_MAX_FILE_BYTES}={image_bytes})"
            )
        if not floating:
            return
        chunk_images = max(1, min(_VALIDATION_CHUNK, _VALIDATION_BYTES // image_bytes))
        for start in range(0, array.shape[0], chunk_images):
            chunk = np.array(array[start : start + chunk_images])
            finite = np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
            if not finite.all():
                first = start + int(np.argmin(finite))
                raise InputError(
                    f"{where}: image {first} contains non-finite values (NaN or inf); "
                    f"fix the generator's output first"
                )
            standardize_batch(chunk, self.input_range, f"{where}[{start}:{start + len(chunk)}]")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self._is_npy():
            state["_array"] = None  # a memory map: each process maps the file itself
        return state

    def __len__(self) -> int:
        return self.count

    def name(self, index: int) -> str:
        """``file[index]``, for messages."""
        return f"{shown(self.path)}[{index}]"

    def __getitem__(self, index: int) -> torch.Tensor:
        """``(3, H, W)`` uint8, or float32 in [0, 255] for a float array."""
        if self._array is None:
            self._array = self._load()
        return standardize_batch(np.array(self._array[index : index + 1]), self.input_range, self.name(index))[0]


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


def open_path(path: Path | str, *, input_range: InputRange | None = None, limits: ReadLimits | None = None) -> Dataset:
    """The reader for one path: a folder, an array file, an archive, or a single image file.

    ``limits`` bounds what one image may cost (default: :meth:`ReadLimits.from_environment`).
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
        return ImageArray(path, input_range, limits)
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
    paths: Sequence[Path | str], *, input_range: InputRange | None = None, limits: ReadLimits | None = None
) -> ImageSources:
    """One dataset of every image in ``paths``, concatenated in the order given."""
    if not paths:
        raise InputError("no input given: name a folder, an array file or an archive")
    limits = limits or ReadLimits.from_environment()
    return ImageSources([open_path(p, input_range=input_range, limits=limits) for p in paths])


class _DecodeFailure(Dataset):
    """Item ``i``: None when item ``i`` of ``dataset`` decodes, else the error's message."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> str | None:
        try:
            self.dataset[index]
        except ImageDecodeError as error:
            return str(error).removesuffix(_SKIP_ADVICE)  # it is being skipped already
        return None


def _keep_list(items: list) -> list:
    return items


def decodable(dataset: Dataset, num_workers: int = 0, progress: bool = False) -> tuple[list[int], list[str]]:
    """Decode every image of ``dataset`` once: the indices of those that decode, and the messages of
    those that do not."""
    loader = DataLoader(_DecodeFailure(dataset), batch_size=64, num_workers=num_workers, collate_fn=_keep_list)
    failures: list[str] = []
    valid: list[int] = []
    index = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dataset), unit="img", desc="Checking images", dynamic_ncols=True)  # type: ignore[arg-type]
    try:
        for batch in loader:
            for failure in batch:
                if failure is None:
                    valid.append(index)
                else:
                    failures.append(failure)
                index += 1
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return valid, failures


def keep_valid(dataset: ImageSources, valid: list[int], failures: list[str]) -> Dataset:
    """``dataset`` without the images that failed (all of it when none did)."""
    if not failures:
        return dataset
    if not valid:
        raise InputError(f"all {len(failures)} images failed to decode; the first: {failures[0]}")
    subset = Subset(dataset, valid)
    subset.description = f"{dataset.description}, {len(failures)} invalid skipped"  # type: ignore[attr-defined]
    return subset


def without_invalid(
    dataset: ImageSources, num_workers: int = 0, progress: bool = False
) -> tuple[Dataset, list[str]]:
    """Decode every image once; return the dataset without those that fail, and their messages.

    The number of images, and so the splits, is then final before scoring starts.
    """
    valid, failures = decodable(dataset, num_workers, progress)
    return keep_valid(dataset, valid, failures), failures
