"""Everything a caller may hand over, turned into batches of images the scorer understands.

Accepted: a uint8 tensor or numpy array ``(N, 3, H, W)`` or ``(N, H, W, 3)`` (one channel is
repeated to RGB); floats likewise, but only with a declared ``input_range`` such as ``(0, 1)``,
``(-1, 1)`` or ``(0, 255)``; a sequence of single images (tensors, arrays, PIL images, any sizes); an
iterable of such batches; a map-style ``Dataset`` or a ``DataLoader`` yielding images or
``(image, label)``; a path or list of paths (folders, array files, archives: :mod:`.files`).

The stream yields, per batch, either a ``(B, 3, H, W)`` tensor or a list of ``(3, H, W)`` tensors
of differing sizes, each uint8 or float32 in [0, 255].
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .errors import InputError

InputRange = tuple[float, float]
ImageBatch = Union[torch.Tensor, list[torch.Tensor]]

NAMED_RANGES: dict[str, InputRange] = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}


def parse_input_range(value: str | Sequence[float] | None) -> InputRange | None:
    """``"0,1"``, ``"-1,1"``, ``"0,255"`` or a pair of numbers -> ``(low, high)``."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.replace(" ", "").split(",")
        if len(parts) != 2:
            raise InputError(f"input range {value!r} is not 'low,high' (for example 0,1 or -1,1 or 0,255)")
        value = (float(parts[0]), float(parts[1]))
    low, high = float(value[0]), float(value[1])
    if not high > low:
        raise InputError(f"input range ({low}, {high}) is empty: high must exceed low")
    return (low, high)


@dataclass
class ImageStream:
    """Batches of images, their total count when known up front, and what they came from."""

    batches: Iterable[ImageBatch]
    num_images: int | None
    description: str


def _to_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(value, Image.Image):
        image = value.convert("RGB") if value.mode != "RGB" else value
        return torch.from_numpy(np.asarray(image).copy())
    raise InputError(f"cannot score an object of type {type(value).__name__}: give uint8 images as tensors or arrays")


def _channels_first(images: torch.Tensor, what: str) -> torch.Tensor:
    """``(N, C, H, W)`` or ``(N, H, W, C)`` with C in {1, 3} -> ``(N, 3, H, W)``."""
    if images.ndim != 4:
        raise InputError(
            f"{what} has shape {tuple(images.shape)}; expected a batch (N, 3, H, W) or (N, H, W, 3)"
        )
    if images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        chw = images
    elif images.shape[-1] in (1, 3):
        chw = images.permute(0, 3, 1, 2)
    elif images.shape[1] in (1, 3):
        chw = images
    else:
        raise InputError(
            f"{what} has shape {tuple(images.shape)}: no axis of 3 (RGB) or 1 (grayscale) channels; "
            f"drop alpha or convert to RGB first"
        )
    if chw.shape[1] == 1:
        chw = chw.expand(-1, 3, -1, -1)
    return chw


def _to_pixel_values(images: torch.Tensor, input_range: InputRange | None, what: str) -> torch.Tensor:
    """uint8 stays; floats are checked and mapped from ``input_range`` to [0, 255] float32."""
    if images.dtype == torch.uint8:
        return images
    if images.dtype == torch.bool or not (images.is_floating_point() or images.dtype in _INT_TYPES):
        raise InputError(f"{what} has dtype {images.dtype}; give uint8 pixels or floats with an input range")
    if not images.is_floating_point():
        raise InputError(
            f"{what} has integer dtype {images.dtype}; convert to uint8 (values 0..255) "
            f"or to floats with a declared input range"
        )
    if input_range is None:
        raise InputError(
            f"{what} holds floats ({images.dtype}) but no input range was declared: "
            f"pass input_range=(0, 1), (-1, 1) or (0, 255) (--input-range on the command line)"
        )
    images = images.to(torch.float32)
    if not bool(torch.isfinite(images).all()):
        bad = int((~torch.isfinite(images)).sum())
        raise InputError(f"{what} contains {bad} non-finite values (NaN or inf); fix the generator's output first")
    low, high = input_range
    lo, hi = float(images.min()), float(images.max())
    tolerance = 1e-4 * (high - low)
    if lo < low - tolerance or hi > high + tolerance:
        raise InputError(
            f"{what} has values in [{lo:.4g}, {hi:.4g}], outside the declared input range [{low:g}, {high:g}]; "
            f"declare the right range or clamp the images"
        )
    if (low, high) == (0.0, 255.0):
        return images
    return (images - low) * (255.0 / (high - low))


_INT_TYPES = {torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32, torch.uint64}


def standardize_batch(batch: Any, input_range: InputRange | None = None, what: str = "the images") -> torch.Tensor:
    """One batch (tensor or array, NCHW or NHWC) -> ``(B, 3, H, W)`` uint8 or float32 in [0, 255]."""
    if isinstance(batch, (list, tuple)) and len(batch) == 2 and _looks_like_labels(batch[1]):
        batch = batch[0]  # (images, labels) from a DataLoader
    images = _channels_first(_to_tensor(batch), what)
    return _to_pixel_values(images, input_range, what)


def standardize_image(image: Any, input_range: InputRange | None = None, what: str = "an image") -> torch.Tensor:
    """One image (tensor, array or PIL; CHW or HWC; or an ``(image, label)`` pair) -> ``(3, H, W)``."""
    if isinstance(image, (list, tuple)) and len(image) == 2:
        image = image[0]
    tensor = _to_tensor(image)
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim != 3:
        raise InputError(f"{what} has shape {tuple(tensor.shape)}; expected (3, H, W) or (H, W, 3)")
    return standardize_batch(tensor[None], input_range, what)[0]


def _looks_like_labels(value: Any) -> bool:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.ndim <= 1
    return isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value)


class _CollateImages:
    """Collate dataset items into a stacked batch when sizes agree, else a list (picklable)."""

    def __init__(self, input_range: InputRange | None) -> None:
        self.input_range = input_range

    def __call__(self, items: list[Any]) -> ImageBatch:
        images = [standardize_image(item, self.input_range) for item in items]
        if all(image.shape == images[0].shape for image in images):
            return torch.stack(images)
        return images


def _is_path_like(value: Any) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, (str, os.PathLike)) for v in value)


def _limited(batches: Iterable[ImageBatch], limit: int | None) -> Iterator[ImageBatch]:
    if limit is None:
        yield from batches
        return
    remaining = limit
    for batch in batches:
        if remaining <= 0:
            return
        yield batch[:remaining]
        remaining -= len(batch)


def _split_array(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size]


def image_stream(
    images: Any,
    *,
    batch_size: int = 64,
    input_range: str | InputRange | None = None,
    num_workers: int = 0,
    limit: int | None = None,
    num_images: int | None = None,
    pin_memory: bool = False,
) -> ImageStream:
    """Wrap any accepted input into an :class:`ImageStream` (see the module docstring)."""
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}")
    input_range = parse_input_range(input_range)

    def capped(count: int | None) -> int | None:
        return count if limit is None or count is None else min(count, limit)

    if _is_path_like(images):
        from .files import open_paths

        paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        dataset = open_paths([Path(p) for p in paths], input_range=input_range)
        description = getattr(dataset, "description", ", ".join(str(p) for p in paths))
        # The file readers already map declared float ranges to [0, 255].
        pixel_range = (0.0, 255.0) if input_range is not None else None
        return _dataset_stream(dataset, description, batch_size, pixel_range, num_workers, limit, pin_memory)

    if isinstance(images, (torch.Tensor, np.ndarray)):
        tensor = standardize_batch(images, input_range, "the image array")
        if limit is not None:
            tensor = tensor[:limit]
        description = f"{type(images).__name__} {tuple(images.shape)} {images.dtype}"
        return ImageStream(_split_array(tensor, batch_size), tensor.shape[0], description)

    if isinstance(images, DataLoader):
        loader = images
        known = None
        if not loader.drop_last and loader.batch_size is not None and hasattr(loader.sampler, "__len__"):
            known = len(loader.sampler)
        batches = (standardize_batch(b, input_range, "a DataLoader batch") for b in loader)
        return ImageStream(_limited(batches, limit), capped(num_images or known), "DataLoader")

    if isinstance(images, Dataset) and hasattr(images, "__len__"):
        return _dataset_stream(images, type(images).__name__, batch_size, input_range, num_workers, limit, pin_memory)

    if isinstance(images, Sequence) and len(images) > 0 and _is_single_image(images[0]):
        dataset = _SequenceDataset(images)
        return _dataset_stream(dataset, f"{len(images)} images", batch_size, input_range, num_workers, limit, False)

    if isinstance(images, Iterable):
        batches = (_standardize_any_batch(b, input_range) for b in images)
        known = num_images
        if known is None and isinstance(images, Sequence):
            known = sum(len(b) for b in images)  # cheap for in-memory batches
        return ImageStream(_limited(batches, limit), capped(known), "iterable of batches")

    raise InputError(
        f"cannot score an object of type {type(images).__name__}: give a tensor or array of images, "
        f"an iterable of batches, a Dataset, a DataLoader, or a path"
    )


def _is_single_image(value: Any) -> bool:
    try:
        from PIL import Image

        if isinstance(value, Image.Image):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim in (2, 3)


def _standardize_any_batch(batch: Any, input_range: InputRange | None) -> ImageBatch:
    if isinstance(batch, list) and batch and _is_single_image(batch[0]):
        images = [standardize_image(image, input_range) for image in batch]
        return torch.stack(images) if all(i.shape == images[0].shape for i in images) else images
    return standardize_batch(batch, input_range, "a batch")


class _SequenceDataset(Dataset):
    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]


def _dataset_stream(
    dataset: Dataset,
    description: str,
    batch_size: int,
    input_range: InputRange | None,
    num_workers: int,
    limit: int | None,
    pin_memory: bool,
) -> ImageStream:
    count = len(dataset)  # type: ignore[arg-type]
    if limit is not None and limit < count:
        dataset = Subset(dataset, range(limit))
        count = limit
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_CollateImages(input_range),
        pin_memory=pin_memory,
        persistent_workers=False,
    )
    return ImageStream(loader, count, description)

