"""Images from files: folders, ``.npy`` / ``.npz`` arrays, ``.zip`` / ``.tar`` / ``.tar.gz`` archives.

Each reader is a map-style ``Dataset`` whose items are ``(3, H, W)`` uint8 tensors (float32 in
[0, 255] for float arrays with a declared range), in a fixed order (paths sorted), so the splits of a
score are reproducible. Readers are picklable, and archives reopen their file in each worker
process, so decoding can run in ``DataLoader`` workers.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import ConcatDataset, Dataset, Subset

from .errors import ImageDecodeError, InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
ARRAY_EXTENSIONS = (".npy", ".npz")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes -> ``(H, W, 3)`` uint8 RGB.

    EXIF orientation is applied; grayscale and palette images become RGB; alpha is dropped;
    16-bit images keep their top 8 bits; a GIF gives its first frame.
    """
    if len(data) == 0:
        raise ImageDecodeError(f"{name} is empty (0 bytes): remove it, or pass --skip-invalid")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
                wide = np.asarray(image, dtype=np.int64)
                gray = np.clip(wide >> 8, 0, 255).astype(np.uint8)  # 16-bit -> 8-bit
                return np.repeat(gray[:, :, None], 3, axis=2)
            if image.mode == "F":
                raise ImageDecodeError(f"{name} holds floating point pixels; save it as 8-bit RGB")
            if image.mode != "RGB":
                image = image.convert("RGB")  # L, P, RGBA, LA, CMYK, ...: alpha dropped
            return np.asarray(image, dtype=np.uint8).copy()
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ImageDecodeError(
            f"{name} could not be decoded ({error}); fix or remove it, or pass --skip-invalid"
        ) from None


def _to_chw(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


class ImageFolder(Dataset):
    """Every supported image below ``root`` (recursively), sorted by relative path."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        files = sorted(
            (p for p in self.root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(self.root).as_posix()
        )
        if not files:
            raise InputError(f"{self.root} is empty: give a folder that holds images")
        self.paths = [p for p in files if _is_image_name(p.name)]
        if not self.paths:
            raise InputError(
                f"{self.root} holds {len(files)} files but none with a supported extension "
                f"({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)})"
            )
        self.description = f"folder {self.root} ({len(self.paths)} images)"

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, index: int) -> str:
        return str(self.paths[index])

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.paths[index]
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ImageDecodeError(f"{path} could not be read ({error.strerror}); check its permissions") from None
        return _to_chw(decode_image(data, str(path)))


class ImageArchive(Dataset):
    """The supported images inside a ``.zip`` or ``.tar(.gz)``, read without unpacking, sorted by name."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.is_zip = self.path.name.lower().endswith(".zip")
        self._handle: zipfile.ZipFile | tarfile.TarFile | None = None
        self._pid: int | None = None
        try:
            if self.is_zip:
                with zipfile.ZipFile(self.path) as archive:
                    names = [i.filename for i in archive.infolist() if not i.is_dir()]
            else:
                with tarfile.open(self.path) as archive:
                    names = [m.name for m in archive.getmembers() if m.isfile()]
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
            raise InputError(f"{self.path} is not a readable archive ({error})") from None
        self.members = sorted(n for n in names if _is_image_name(n))
        if not self.members:
            raise InputError(
                f"{self.path} holds {len(names)} files but no images with a supported extension "
                f"({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)})"
            )
        self.description = f"archive {self.path} ({len(self.members)} images)"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, None  # each worker opens its own handle
        return state

    def _archive(self) -> zipfile.ZipFile | tarfile.TarFile:
        if self._handle is None or self._pid != os.getpid():
            self._handle = zipfile.ZipFile(self.path) if self.is_zip else tarfile.open(self.path)
            self._pid = os.getpid()
        return self._handle

    def __len__(self) -> int:
        return len(self.members)

    def name(self, index: int) -> str:
        return f"{self.path}:{self.members[index]}"

    def __getitem__(self, index: int) -> torch.Tensor:
        member = self.members[index]
        archive = self._archive()
        try:
            if isinstance(archive, zipfile.ZipFile):
                data = archive.read(member)
            else:
                extracted = archive.extractfile(member)
                data = extracted.read() if extracted is not None else b""
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
            raise ImageDecodeError(f"{self.name(index)} could not be read from the archive ({error})") from None
        return _to_chw(decode_image(data, self.name(index)))


class ImageArray(Dataset):
    """Images stored as one array in a ``.npy`` or ``.npz``: uint8 NHWC or NCHW, or floats with a range."""

    def __init__(self, path: Path, input_range: tuple[float, float] | None = None) -> None:
        from .inputs import standardize_batch

        self.path = Path(path)
        self.input_range = input_range
        array = self._load()
        if array.ndim != 4:
            raise InputError(
                f"{self.path} holds an array of shape {array.shape}; expected (N, H, W, 3) or (N, 3, H, W) images"
            )
        if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
            raise InputError(
                f"{self.path} holds {array.dtype} values; expected uint8 pixels, or floats with --input-range"
            )
        if np.issubdtype(array.dtype, np.floating) and input_range is None:
            raise InputError(
                f"{self.path} holds floats ({array.dtype}); declare their range with --input-range 0,1, -1,1 or 0,255"
            )
        # Check shape, channels, range and finiteness once, in chunks (errors name the file).
        for start in range(0, len(array), 1024):
            standardize_batch(np.array(array[start : start + 1024]), input_range, str(self.path))
        self.count = len(array)
        self.description = f"array {self.path} {tuple(array.shape)} {array.dtype}"
        self._array: np.ndarray | None = None

    def _load(self) -> np.ndarray:
        try:
            if self.path.suffix.lower() == ".npy":
                return np.load(self.path, mmap_mode="r", allow_pickle=False)
            with np.load(self.path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                if "images" in keys:
                    return archive["images"]
                if len(keys) == 1:
                    return archive[keys[0]]
                raise InputError(
                    f"{self.path} holds arrays {keys}; name the images 'images' (np.savez(path, images=...))"
                )
        except InputError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise InputError(f"{self.path} could not be read as a numpy array file ({error})") from None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = None
        return state

    def __len__(self) -> int:
        return self.count

    def name(self, index: int) -> str:
        return f"{self.path}[{index}]"

    def __getitem__(self, index: int) -> torch.Tensor:
        from .inputs import standardize_batch

        if self._array is None:
            self._array = self._load()
        return standardize_batch(np.array(self._array[index : index + 1]), self.input_range, self.name(index))[0]


def open_path(path: Path, *, input_range: tuple[float, float] | None = None) -> Dataset:
    """The reader for one path, chosen by what it is."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        return ImageFolder(path)
    lower = path.name.lower()
    if lower.endswith(ARRAY_EXTENSIONS):
        return ImageArray(path, input_range)
    if lower.endswith(ARCHIVE_SUFFIXES):
        return ImageArchive(path)
    if _is_image_name(lower):
        return ImageFolderOfOne(path)
    raise InputError(
        f"{path}: unsupported input; give a folder of images, a .npy/.npz array, or a .zip/.tar/.tar.gz archive"
    )


class ImageFolderOfOne(ImageFolder):
    """A single image file given directly."""

    def __init__(self, path: Path) -> None:  # noqa: D107 - same interface as ImageFolder
        self.root = path.parent
        self.paths = [path]
        self.description = f"image {path}"


class ImageSources(ConcatDataset):
    """Several readers one after the other, in the order given."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        super().__init__(datasets)
        self.description = " + ".join(d.description for d in datasets)

    def name(self, index: int) -> str:
        for dataset, stop in zip(self.datasets, self.cumulative_sizes):
            if index < stop:
                return dataset.name(index - (stop - len(dataset)))
        raise IndexError(index)


def open_paths(paths: Sequence[Path], *, input_range: tuple[float, float] | None = None) -> ImageSources:
    """One dataset of every image in ``paths``, concatenated in the order given."""
    if not paths:
        raise InputError("no input given: name a folder, an array file or an archive")
    return ImageSources([open_path(Path(p), input_range=input_range) for p in paths])


class _Checked(Dataset):
    """Wraps a dataset so that an item that fails to decode yields its failure instead of raising."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> str | None:
        try:
            self.dataset[index]
            return None
        except ImageDecodeError as error:
            return str(error)


def _as_list(items: list) -> list:
    return items


def without_invalid(dataset: ImageSources, num_workers: int = 0) -> tuple[Dataset, list[str]]:
    """Decode every image once; return the dataset without those that fail, and their messages.

    The count of images, and so the splits, are then fixed before scoring starts.
    """
    loader = torch.utils.data.DataLoader(_Checked(dataset), batch_size=64, num_workers=num_workers, collate_fn=_as_list)
    failures: list[str] = []
    valid: list[int] = []
    index = 0
    for batch in loader:
        for failure in batch:
            if failure is None:
                valid.append(index)
            else:
                failures.append(failure)
            index += 1
    if len(valid) == len(dataset):
        return dataset, failures
    subset = Subset(dataset, valid)
    subset.description = dataset.description  # type: ignore[attr-defined]
    return subset, failures
