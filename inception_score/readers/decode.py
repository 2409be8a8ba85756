"""Decoding one image file, within read limits that a hostile or broken file cannot get past.

A file must not take the machine's memory (:class:`ReadLimits`). Each image file and archive member
is checked against ``max_file_bytes`` before it is read (its size on disk, or the uncompressed size
in the archive's header) and read by a stream that stops at the limit, since a header can lie. Each
image's ``width * height`` is checked against ``max_image_pixels`` from its header, before its
pixels are decoded, and each PNG chunk other than pixel data against ``MAX_PNG_CHUNK_BYTES`` from its
header, before a file on disk is read. An image over a limit raises :class:`ImageDecodeError`, like
any image that cannot be decoded, so a caller that skips invalid images skips and counts it too.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .bounded_read import read_at_most
from ..errors import ImageDecodeError, InputError
from .native_stderr import captured_native_stderr
from .image_modes import REMEDY as UNDEFINED_PIXELS_REMEDY, UndefinedPixels, check_samples, rgb_pixels

# The Pillow decoders of the supported extensions (JPEG opens cameras' MPO files too). Naming them keeps
# Pillow from trying its other decoders on a renamed file (EPS, for one, runs Ghostscript).
PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF")

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
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, each byte order
# An archive's index costs 24 bytes a member plus its name (:mod:`.archive_index`), and reading its headers
# takes time in proportion: 5 million is about four times ImageNet's training tar (1.28 million images), and
# at most 0.3 GB of index for names of ImageNet's length.
MAX_ARCHIVE_MEMBERS = 5_000_000
ENV_MAX_PIXELS = "INCEPTION_SCORE_MAX_PIXELS"
ENV_MAX_FILE_BYTES = "INCEPTION_SCORE_MAX_FILE_BYTES"
ENV_MAX_ARCHIVE_MEMBERS = "INCEPTION_SCORE_MAX_ARCHIVE_MEMBERS"


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
    all the images of a compressed tar read out of order), and pixels (``width * height``); and the most
    members one archive may hold."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_archive_members: int = MAX_ARCHIVE_MEMBERS

    def __post_init__(self) -> None:
        _positive_limit(self.max_file_bytes, "max_file_bytes")
        _positive_limit(self.max_image_pixels, "max_image_pixels")
        _positive_limit(self.max_archive_members, "max_archive_members")

    @classmethod
    def from_environment(cls) -> ReadLimits:
        """The defaults, or ``$INCEPTION_SCORE_MAX_FILE_BYTES``, ``$INCEPTION_SCORE_MAX_PIXELS`` and
        ``$INCEPTION_SCORE_MAX_ARCHIVE_MEMBERS`` where set."""
        values = {}
        for field_name, variable in (("max_file_bytes", ENV_MAX_FILE_BYTES), ("max_image_pixels", ENV_MAX_PIXELS),
                                     ("max_archive_members", ENV_MAX_ARCHIVE_MEMBERS)):
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


def undecodable(name: str, problem: str, fix: str) -> ImageDecodeError:
    """``name problem; fix``: the error of one image that cannot be used."""
    return ImageDecodeError(f"{shown(name)} {problem}; {fix}")


def check_size(size: int, name: str, limits: ReadLimits, where: str) -> None:
    if size > limits.max_file_bytes:
        raise undecodable(
            name, f"is {size:,} bytes ({where}), over the limit of {limits.max_file_bytes:,} bytes for one image",
            f"if it is genuine, raise the limit ({ENV_MAX_FILE_BYTES}={size})",
        )


def read_capped(stream: BinaryIO, name: str, limits: ReadLimits, expected: int | None = None) -> bytes:
    """All of ``stream``, but never more than the limit plus one byte: a size in a header can lie.
    ``expected``: the size the header or the file system gives, read in one piece when it is right."""
    data = read_at_most(stream, limits.max_file_bytes, expected)
    if data is None:
        raise undecodable(
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
                raise undecodable(
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
        raise undecodable(
            name, f"is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), over the limit of "
            f"{limits.max_image_pixels:,} pixels",
            f"if it is genuine, raise the limit ({ENV_MAX_PIXELS}={width * height})",
        )


def decode_image(data: bytes, name: str, limits: ReadLimits | None = None) -> np.ndarray:
    """Encoded image bytes -> ``(H, W, 3)`` uint8 RGB.

    EXIF orientation is applied; every mode becomes RGB as :mod:`.image_modes` says (grey and palette
    images as their colours, alpha dropped, 16-bit grey its top 8 bits), or is refused where its pixels
    are not defined (floating-point, signed, 32-bit); a GIF gives its first frame.
    ``name`` is used in error messages only. ``limits`` (default: from the environment) bounds
    the pixels, checked from the header before decoding.
    """
    limits = limits or ReadLimits.from_environment()
    if len(data) == 0:
        raise undecodable(name, "is empty (0 bytes)", "remove it")
    _check_png_chunks(io.BytesIO(data), name)
    native: list[str] = []
    try:
        with warnings.catch_warnings(), _native_messages(data) as native:
            # Pillow warns of what it decodes anyway (a palette's transparency, which is dropped as all alpha
            # is; TIFF metadata it skips; from 89 MP, where the limit here is lower and refuses first).
            warnings.simplefilter("ignore")
            return _rgb_pixels(data, name, limits)
    except ImageDecodeError:
        raise
    except UndefinedPixels as error:
        raise undecodable(name, str(error), UNDEFINED_PIXELS_REMEDY) from None
    except Image.DecompressionBombError as error:  # over twice Pillow's limit, which is not lifted here
        raise undecodable(name, f"is too large for Pillow to decode ({error})", "shrink it") from None
    except UnidentifiedImageError:
        reason = f"not a {'/'.join(PILLOW_FORMATS)} image, or its header is corrupt"
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
    if native:  # libtiff's own words are more precise than Pillow's "decoder error -2"
        reason += f"; libtiff: {native[0]}"
    raise undecodable(name, f"could not be decoded ({reason})", "fix or remove it")


def _native_messages(data: bytes) -> contextlib.AbstractContextManager[list[str]]:
    """For a TIFF (decoded by libtiff, which writes on stderr itself), what libtiff writes, captured."""
    return captured_native_stderr() if data[:4] in _TIFF_SIGNATURES else contextlib.nullcontext([])


def _rgb_pixels(data: bytes, name: str, limits: ReadLimits) -> np.ndarray:
    """:func:`decode_image`'s decoding, which raises what Pillow raises, and :class:`UndefinedPixels` where the
    file's pixels have no defined black and white (:mod:`.image_modes`)."""
    opened = Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)
    with opened:
        _check_pixels(opened.size, name, limits)
        check_samples(opened)  # before the pixels are decoded
        opened.load()
        return rgb_pixels(ImageOps.exif_transpose(opened), opened)


def decode_to_tensor(data: bytes, name: str, limits: ReadLimits | None = None) -> torch.Tensor:
    """Encoded image bytes -> ``(3, H, W)`` uint8, contiguous: :func:`decode_image`, channels first."""
    pixels = decode_image(data, name, limits)
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


class ProcessFiles:
    """The files a reader holds open in the current process: opened on its first read in each process
    that reads (a pickled copy, as a DataLoader worker gets, holds none) and closed together, by
    :meth:`close` or when the reader drops them, never left for the garbage collector to close."""

    def __init__(self) -> None:
        self._objects: tuple = ()  # what the reader reads first, the file it was opened on last
        self._pid: int | None = None

    def current(self):
        """What the reader reads, if this process has it open, else None."""
        return self._objects[0] if self._objects and self._pid == os.getpid() else None

    def keep(self, *objects):
        """Hold ``objects`` for this process (each is closed in the order given) and return the first."""
        self.close()
        self._objects, self._pid = objects, os.getpid()
        return objects[0]

    def close(self) -> None:
        if self._pid == os.getpid():
            for item in self._objects:  # a ZipFile or TarFile leaves the file object it was handed open
                item.close()
        self._objects, self._pid = (), None

    def __getstate__(self) -> dict:
        return {"_objects": (), "_pid": None}

    def __del__(self) -> None:
        self.close()


def read_image_file(path: Path, limits: ReadLimits | None = None) -> torch.Tensor:
    """One image file -> ``(3, H, W)`` uint8, its size checked before reading and its pixels before decoding."""
    limits = limits or ReadLimits.from_environment()
    name = os.fspath(path)
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            check_size(size, name, limits, "on disk")
            _check_png_chunks(handle, name)  # before the data is read: a chunk's header can claim anything
            data = read_capped(handle, name, limits, size)
    except NotRegularFileError:
        raise undecodable(name, "is not a regular file (a FIFO, socket or device)", "give image files") from None
    except OSError as error:
        raise undecodable(
            name, f"could not be read ({error.strerror or error})", "check that it exists and is readable"
        ) from None
    return decode_to_tensor(data, name, limits)
