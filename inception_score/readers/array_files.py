"""Images stored as one 4-d array in a ``.npy`` or ``.npz`` file, read a few images at a time.

An item is ``(3, H, W)``: uint8 as stored, or float32 in [0, 255] for floats read with a declared
range. Shape, dtype, range, finiteness and each image's size are checked once at open, so errors
come before any scoring; the values of only the images that will be scored, when that is known (``--limit``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .decode import ENV_MAX_FILE_BYTES, ENV_MAX_PIXELS, ReadLimits, open_regular, shown
from ..errors import InputError
from .npz import READ_ERRORS as NPZ_READ_ERRORS
from .npz import NpzMember, npz_keys
from .pixels import channels_axis, standardize_batch
from ..protocol import InputRange

_VALIDATION_CHUNK = 1024  # images per chunk when a float array is checked at open,
_VALIDATION_BYTES = 64 * 2**20  # and at most this many bytes
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

    def __init__(self, path: Path, input_range: InputRange | None = None, limits: ReadLimits | None = None,
                 scored: int | None = None) -> None:
        """``scored``: how many of the first images will be read, when not all; only their values are checked
        (finite, in the declared range), so that ``--limit 20`` reads 20 images of a large file, not all."""
        self.path = Path(path)
        self.input_range = input_range
        self.limits = limits or ReadLimits.from_environment()
        self.key: str | None = None  # the .npz member read as images
        self.label_key: str | None = None
        array = self._load()
        self._check(array, scored)
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
                self._check_npy_length()  # mapped again in each worker: by then it could be a FIFO
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

    def _check_npy_length(self) -> None:
        """A regular file holding every byte its header promises: a file cut short (a copy or a save
        interrupted) cannot be mapped, and numpy would only say that the map is longer than the file."""
        with open_regular(self.path) as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:  # a newer header: np.load judges it
                return
            data = math.prod(shape) * dtype.itemsize if not dtype.hasobject else 0  # exact, however large
            held = os.fstat(handle.fileno()).st_size - handle.tell()
        if held < data:
            raise InputError(
                f"{shown(self.path)} is truncated: its header promises a {shape} {dtype} array, {data:,} bytes of "
                f"data, but it holds {held:,}; write the file again (or copy it whole)"
            )

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

    def _check(self, array: np.ndarray | NpzMember, scored: int | None) -> None:
        where = shown(self.path)
        if array.ndim != 4:
            raise InputError(
                f"{where} holds an array of shape {array.shape}; expected images (N, H, W, 3) or (N, 3, H, W)"
            )
        floating = np.issubdtype(array.dtype, np.floating)
        if array.dtype != np.uint8 and not floating:
            raise InputError(
                f"{where} holds {array.dtype} values; save uint8 pixels (0..255), "
                f"or floats with a declared input range"
            )
        if floating and self.input_range is None:
            raise InputError(
                f"{where} holds floats ({array.dtype}); declare their range: input_range (0, 1), (-1, 1) or (0, 255)"
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
        for start in range(0, array.shape[0] if scored is None else min(scored, array.shape[0]), chunk_images):
            chunk = np.array(array[start : min(start + chunk_images, scored or array.shape[0])])
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
