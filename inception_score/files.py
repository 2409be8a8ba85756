"""Images from files: folders, ``.npy`` / ``.npz`` arrays, ``.zip`` / ``.tar`` / ``.tar.gz`` archives.

Each reader is a map-style ``Dataset``: ``len()`` is the number of images, item ``i`` is a
``(3, H, W)`` uint8 tensor (float32 in [0, 255] for float arrays read with a declared range), and
``description`` says where the images came from. The order is fixed (names sorted), so the
contiguous splits of a score are reproducible. Readers are picklable and open their files lazily,
once per process, so ``DataLoader`` workers can decode in parallel.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from .errors import ImageDecodeError, InputError
from .inputs import InputRange, standardize_batch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
ARRAY_EXTENSIONS = (".npy", ".npz")
ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ITEM_RANGE: InputRange = (0.0, 255.0)  # float items of every reader are already mapped to this range
_VALIDATION_CHUNK = 1024  # images per chunk when a float array is checked at open


def is_image_name(name: str) -> bool:
    """A supported extension, and not hidden: skips ``.DS_Store``-like files and macOS ``__MACOSX/._x.png``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if any(part.startswith(".") and part not in (".", "..") for part in parts) or "__MACOSX" in parts:
        return False
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _supported_list() -> str:
    return ", ".join(extension.lstrip(".") for extension in IMAGE_EXTENSIONS)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes -> ``(H, W, 3)`` uint8 RGB.

    EXIF orientation is applied; grayscale and palette images become RGB; alpha is dropped;
    16-bit images keep their top 8 bits (0..65535 -> 0..255); a GIF gives its first frame.
    ``name`` is used in error messages only.
    """
    if len(data) == 0:
        raise ImageDecodeError(f"{name} is empty (0 bytes): remove it, or pass --skip-invalid")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
            if image.mode in _SIXTEEN_BIT_MODES:
                wide = np.asarray(image, dtype=np.int64)
                gray = np.clip(wide >> 8, 0, 255).astype(np.uint8)
                return np.repeat(gray[:, :, None], 3, axis=2)
            if image.mode == "F":
                raise ImageDecodeError(f"{name} holds floating-point pixels; save it as 8-bit RGB")
            if image.mode != "RGB":
                image = image.convert("RGB")  # L, P, RGBA, LA, PA, CMYK, 1, ...: alpha is dropped
            return np.array(image, dtype=np.uint8)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        reason = "not a recognised image format, or its header is corrupt"
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
        reason = str(error)
    raise ImageDecodeError(f"{name} could not be decoded ({reason}); fix or remove it, or pass --skip-invalid")


def _channels_first(pixels: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` -> ``(3, H, W)``, contiguous."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


class ImageFiles(Dataset):
    """Image files given by path, in the order given."""

    def __init__(self, paths: Sequence[Path], description: str) -> None:
        self.paths = [Path(p) for p in paths]
        self.description = description

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, index: int) -> str:
        """The file behind item ``index``, for messages."""
        return str(self.paths[index])

    def __getitem__(self, index: int) -> torch.Tensor:
        """``(3, H, W)`` uint8."""
        path = self.paths[index]
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ImageDecodeError(
                f"{path} could not be read ({error.strerror}); check that it exists and is readable"
            ) from None
        return _channels_first(decode_image(data, str(path)))


def image_folder(root: Path) -> ImageFiles:
    """Every supported image below ``root``, recursively, sorted by path relative to ``root``."""
    root = Path(root)
    files = sorted((p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()))
    if not files:
        raise InputError(f"{root} is empty: give a folder that holds images")
    images = [name for name in files if is_image_name(name)]
    if not images:
        raise InputError(
            f"{root} holds {len(files)} files but none is an image with a supported extension "
            f"({_supported_list()})"
        )
    ignored = len(files) - len(images)
    note = f"; {ignored} other files ignored" if ignored else ""
    return ImageFiles([root / name for name in images], f"folder {root} ({len(images)} images{note})")


class ImageArchive(Dataset):
    """The supported images inside a ``.zip`` or ``.tar`` (optionally compressed), sorted by name,
    read without unpacking to disk.

    A compressed tar can only be read forwards cheaply: when its members are not stored in name
    order, their bytes are read into memory in one pass instead (the size of the archive).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.is_zip = self.path.name.lower().endswith(ZIP_SUFFIXES)
        self._handle: zipfile.ZipFile | tarfile.TarFile | None = None
        self._pid: int | None = None
        self._tar_members: list[tarfile.TarInfo] = []
        self._in_memory: list[bytes] | None = None
        try:
            if self.is_zip:
                with zipfile.ZipFile(self.path) as archive:
                    names = [info.filename for info in archive.infolist() if not info.is_dir()]
                self.members = sorted(name for name in names if is_image_name(name))
            else:
                names = self._open_tar()
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
            raise InputError(f"{self.path} is not a readable archive ({error}); check the file") from None
        if not self.members:
            raise InputError(
                f"{self.path} holds {len(names)} files but none is an image with a supported extension "
                f"({_supported_list()})"
            )
        self.description = f"archive {self.path} ({len(self.members)} images)"

    def _open_tar(self) -> list[str]:
        """Index the tar; returns the names of all its files. Sets ``members`` (sorted image names)."""
        with tarfile.open(self.path) as archive:
            files = [m for m in archive.getmembers() if m.isfile()]
            by_name = {m.name: m for m in files if is_image_name(m.name)}  # a later duplicate wins, as tar does
            self.members = sorted(by_name)
            ordered = [by_name[name] for name in self.members]
            offsets = [m.offset_data for m in ordered]
            compressed = not isinstance(archive.fileobj, io.BufferedReader)
            if compressed and offsets != sorted(offsets):
                # Backward seeks in a gzip/bz2/xz stream restart decompression from the start.
                data = {}
                for member in files:
                    if member.name in by_name and by_name[member.name] is member:
                        data[member.name] = archive.extractfile(member).read()  # type: ignore[union-attr]
                self._in_memory = [data[name] for name in self.members]
            else:
                self._tar_members = ordered
        return [m.name for m in files]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, None  # each worker process opens its own handle
        return state

    def _archive(self) -> zipfile.ZipFile | tarfile.TarFile:
        if self._handle is None or self._pid != os.getpid():
            self._handle = zipfile.ZipFile(self.path) if self.is_zip else tarfile.open(self.path)
            self._pid = os.getpid()
        return self._handle

    def __len__(self) -> int:
        return len(self.members)

    def name(self, index: int) -> str:
        """``archive:member`` of item ``index``, for messages."""
        return f"{self.path}:{self.members[index]}"

    def _read(self, index: int) -> bytes:
        if self._in_memory is not None:
            return self._in_memory[index]
        archive = self._archive()
        if isinstance(archive, zipfile.ZipFile):
            return archive.read(self.members[index])
        extracted = archive.extractfile(self._tar_members[index])
        return extracted.read() if extracted is not None else b""

    def __getitem__(self, index: int) -> torch.Tensor:
        """``(3, H, W)`` uint8."""
        try:
            data = self._read(index)
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
            raise ImageDecodeError(
                f"{self.name(index)} could not be read from the archive ({error}); the archive may be truncated"
            ) from None
        return _channels_first(decode_image(data, self.name(index)))


class ImageArray(Dataset):
    """Images stored as one 4-d array in a ``.npy`` or ``.npz``: uint8 ``(N, H, W, 3)`` or ``(N, 3, H, W)``
    (one channel is repeated to RGB), or floats with a declared ``input_range``.

    A ``.npz`` uses its array ``images``, else its only array. Shape, dtype, range and finiteness
    are checked once at open, so errors come before any scoring. ``.npy`` files are memory-mapped.
    """

    def __init__(self, path: Path, input_range: InputRange | None = None) -> None:
        self.path = Path(path)
        self.input_range = input_range
        array = self._load()
        self._check(array)
        self.count = int(array.shape[0])
        self.description = f"array {self.path} {tuple(array.shape)} {array.dtype}"
        self._array: np.ndarray | None = array

    def _load(self) -> np.ndarray:
        try:
            if self.path.name.lower().endswith(".npy"):
                return np.load(self.path, mmap_mode="r", allow_pickle=False)
            with np.load(self.path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                if "images" in keys:
                    return archive["images"]
                if len(keys) == 1:
                    return archive[keys[0]]
                raise InputError(
                    f"{self.path} holds the arrays {keys} and none is named 'images': "
                    f"save the images under that name (np.savez(path, images=...))"
                )
        except InputError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise InputError(f"{self.path} could not be read as a numpy array file ({error})") from None

    def _check(self, array: np.ndarray) -> None:
        if array.ndim != 4:
            raise InputError(
                f"{self.path} holds an array of shape {array.shape}; expected images (N, H, W, 3) or (N, 3, H, W)"
            )
        floating = np.issubdtype(array.dtype, np.floating)
        if array.dtype != np.uint8 and not floating:
            raise InputError(
                f"{self.path} holds {array.dtype} values; save uint8 pixels (0..255), "
                f"or floats and pass --input-range"
            )
        if floating and self.input_range is None:
            raise InputError(
                f"{self.path} holds floats ({array.dtype}); declare their range with --input-range 0,1, -1,1 or 0,255"
            )
        if array.shape[0] == 0:
            raise InputError(f"{self.path} holds no images (shape {array.shape})")
        if not floating:
            standardize_batch(np.array(array[:1]), None, str(self.path))  # channels axis
            return
        for start in range(0, array.shape[0], _VALIDATION_CHUNK):
            chunk = np.array(array[start : start + _VALIDATION_CHUNK])
            finite = np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
            if not finite.all():
                first = start + int(np.argmin(finite))
                raise InputError(
                    f"{self.path}: image {first} contains non-finite values (NaN or inf); "
                    f"fix the generator's output first"
                )
            standardize_batch(chunk, self.input_range, f"{self.path}[{start}:{start + len(chunk)}]")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.path.name.lower().endswith(".npy"):
            state["_array"] = None  # a memory map: each process maps the file itself
        return state

    def __len__(self) -> int:
        return self.count

    def name(self, index: int) -> str:
        """``file[index]``, for messages."""
        return f"{self.path}[{index}]"

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


def open_path(path: Path | str, *, input_range: InputRange | None = None) -> Dataset:
    """The reader for one path: a folder, an array file, an archive, or a single image file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: check the path")
    if path.is_dir():
        return image_folder(path)
    lower = path.name.lower()
    if lower.endswith(ARRAY_EXTENSIONS):
        return ImageArray(path, input_range)
    if lower.endswith(ZIP_SUFFIXES + TAR_SUFFIXES):
        return ImageArchive(path)
    if lower.endswith(IMAGE_EXTENSIONS):
        return ImageFiles([path], f"image {path}")
    raise InputError(
        f"{path}: unsupported input; give a folder of images, a .npy/.npz array, or a .zip/.tar/.tar.gz archive"
    )


def open_paths(paths: Sequence[Path | str], *, input_range: InputRange | None = None) -> ImageSources:
    """One dataset of every image in ``paths``, concatenated in the order given."""
    if not paths:
        raise InputError("no input given: name a folder, an array file or an archive")
    return ImageSources([open_path(p, input_range=input_range) for p in paths])


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
            return str(error)
        return None


def _keep_list(items: list) -> list:
    return items


def without_invalid(
    dataset: ImageSources, num_workers: int = 0, progress: bool = False
) -> tuple[Dataset, list[str]]:
    """Decode every image once; return the dataset without those that fail, and their messages.

    The number of images, and so the splits, is then final before scoring starts.
    """
    loader = DataLoader(_DecodeFailure(dataset), batch_size=64, num_workers=num_workers, collate_fn=_keep_list)
    failures: list[str] = []
    valid: list[int] = []
    index = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(dataset), unit="img", desc="Checking images", dynamic_ncols=True)
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
    if not failures:
        return dataset, failures
    if not valid:
        raise InputError(f"all {len(failures)} images failed to decode; the first: {failures[0]}")
    subset = Subset(dataset, valid)
    subset.description = f"{dataset.description}, {len(failures)} invalid skipped"  # type: ignore[attr-defined]
    return subset, failures
