"""Everything a caller may hand over, turned into batches of images the scorer understands.

Accepted: a uint8 tensor or numpy array ``(N, 3, H, W)`` or ``(N, H, W, 3)`` (one channel is
repeated to RGB); floats likewise, but only with a declared ``input_range`` such as ``(0, 1)``,
``(-1, 1)`` or ``(0, 255)``; a sequence of single images (tensors, arrays, PIL images, any sizes); an
iterable of such batches; a map-style ``Dataset`` or a ``DataLoader`` yielding images or
``(image, label)``; a path or list of paths (folders, array files, archives: :mod:`.files`).

The stream yields, per batch, either a ``(B, 3, H, W)`` tensor or a list of ``(3, H, W)`` tensors
of differing sizes, each uint8 or float32 in [0, 255].

What kind of input a value is, :func:`classify_input` says (:class:`InputKind`), once for
streaming it here and for sharing it out over the processes of a group alike.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset

from ..errors import InceptionScoreError, InputError
from ..arguments import whole_number
from .loader_workers import worker_count
from .files import ImageSources, dataset_labels, open_paths, reads_files
from .pixels import is_pil_image, parse_input_range, refuse_narrower_range, standardize_batch, standardize_image
from ..protocol import PIXEL_RANGE, InputRange

ImageBatch = Union[torch.Tensor, list[torch.Tensor]]


@dataclass
class ImageStream:
    """Batches of images, their total count when known up front, and what they came from; ``labels``
    ``(N,)`` int64: the classes that came with the images (a sample file's), else None."""

    batches: Iterable[ImageBatch]
    num_images: int | None
    description: str
    labels: np.ndarray | None = None


class _CollateImages:
    """Collate dataset items into a stacked batch when sizes agree, else a list (picklable).
    ``channels_first``: the items are ``(C, H, W)`` by construction (the file readers')."""

    def __init__(self, input_range: InputRange | None, channels_first: bool = False) -> None:
        self.input_range = input_range
        self.channels_first = channels_first

    def __call__(self, items: list[Any]) -> ImageBatch | _Raised:
        failed = next((item for item in items if isinstance(item, _Raised)), None)
        if failed is not None:
            return failed
        try:
            return _images_batch(items, self.input_range, "a batch of the dataset", self.channels_first)
        except (InceptionScoreError, OSError) as error:
            return _Raised(error)


@dataclass(frozen=True)
class _Raised:
    """An error met in a ``DataLoader`` worker, passed back as a value. Raised as itself by the process
    that reads the batches, it keeps its type and its own message (a worker's exception, re-raised by
    torch, carries the worker's traceback in its message instead)."""

    error: BaseException


class _ErrorsAsValues(Dataset):
    """``dataset``, with the package's own errors and the system's refusals returned as :class:`_Raised`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except (InceptionScoreError, OSError) as error:
            return _Raised(error)


def _raising(batches: Iterable[ImageBatch | _Raised]) -> Iterator[ImageBatch]:
    for batch in batches:
        if isinstance(batch, _Raised):
            raise batch.error
        yield batch


def _images_batch(items: Sequence[Any], input_range: InputRange | None, what: str,
                  channels_first: bool = False) -> ImageBatch:
    """Single images -> a stacked ``(B, 3, H, W)`` batch when sizes agree, else a list of ``(3, H, W)``."""
    images = [standardize_image(item, input_range, channels_first=channels_first) for item in items]
    floats = [image for image in images if image.is_floating_point()]
    if floats and input_range is not None:  # one image alone is too little to tell floats in [0, 1] declared
        # as 0..255 or -1..1; the batch is not. Its values, mapped to [0, 255] above, in the declared range again:
        low, scale = input_range[0], (input_range[1] - input_range[0]) / 255.0
        refuse_narrower_range(len(floats), low + scale * min(float(image.min()) for image in floats),
                              low + scale * max(float(image.max()) for image in floats), input_range, what)
    if all(image.shape == images[0].shape for image in images):
        return torch.stack(images)
    return images


class InputKind(enum.Enum):
    """What an input to score is, as :func:`classify_input` tells it."""

    PATHS = "paths"  # a path or a list of paths: folders, array files, archives, image files
    ARRAY = "array"  # one tensor or numpy array of images, (N, 3, H, W) or (N, H, W, 3)
    DATALOADER = "DataLoader"  # batches from a torch DataLoader
    DATASET = "Dataset"  # a map-style Dataset with a length: item i is an image or (image, label)
    ITERABLE_DATASET = "sized IterableDataset"  # an IterableDataset with a length: read in order only
    IMAGES = "sequence of images"  # a sequence of single images (tensors, arrays, PIL images), any sizes
    BATCHES = "iterable of batches"  # any other iterable, each item a batch

    @property
    def shardable(self) -> bool:
        """Whether its images can be counted and any contiguous part of them read alone, so that each
        process of a group reads only its own part."""
        return self in (InputKind.PATHS, InputKind.ARRAY, InputKind.DATASET, InputKind.IMAGES)


def is_path_like(value: Any) -> bool:
    """A path (``str`` or ``os.PathLike``), or a non-empty list or tuple of them."""
    if isinstance(value, (str, os.PathLike)):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, (str, os.PathLike)) for v in value)


def is_single_image(value: Any) -> bool:
    """One image: a PIL image, or a tensor or array ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)``."""
    return is_pil_image(value) or (isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim in (2, 3))


def classify_input(images: Any) -> InputKind | None:
    """The kind of ``images`` (see :class:`InputKind`), or None when it is none of them. The checks go
    in this order, so a ``Dataset`` that is also a sequence counts as a ``Dataset``."""
    if is_path_like(images):
        return InputKind.PATHS
    if isinstance(images, (torch.Tensor, np.ndarray)):
        return InputKind.ARRAY
    if isinstance(images, DataLoader):
        return InputKind.DATALOADER
    if isinstance(images, Dataset) and hasattr(images, "__len__"):
        return InputKind.ITERABLE_DATASET if isinstance(images, IterableDataset) else InputKind.DATASET
    if isinstance(images, Sequence) and len(images) > 0 and is_single_image(images[0]):
        return InputKind.IMAGES
    if isinstance(images, Iterable):
        return InputKind.BATCHES
    return None


def open_path_input(images: str | os.PathLike | Sequence[str | os.PathLike],
                    input_range: InputRange | None, scored: int | None = None) -> tuple[ImageSources, InputRange | None]:
    """The reader of a :attr:`InputKind.PATHS` input, and the range its items are in: the readers map
    a declared float range to :data:`~inception_score.protocol.PIXEL_RANGE` already; uint8 items need none.
    ``scored``: how many of the first images will be read, when not all."""
    paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    reader = open_paths([Path(p) for p in paths], input_range=input_range, scored=scored)
    return reader, (PIXEL_RANGE if input_range is not None else None)


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
    batch_size = whole_number(batch_size, "batch_size", minimum=1)
    limit = None if limit is None else whole_number(limit, "limit", minimum=1)
    num_workers = whole_number(num_workers, "num_workers", minimum=0)
    input_range = parse_input_range(input_range)

    def capped(count: int | None) -> int | None:
        return count if limit is None or count is None else min(count, limit)

    kind = classify_input(images)
    if kind is InputKind.PATHS:
        dataset, pixel_range = open_path_input(images, input_range, scored=limit)
        return _dataset_stream(dataset, dataset.description, batch_size, pixel_range, num_workers, limit, pin_memory)

    if kind is InputKind.ARRAY:
        tensor = standardize_batch(images, input_range, "the image array")
        if limit is not None:
            tensor = tensor[:limit]
        description = f"{type(images).__name__} {tuple(images.shape)} {images.dtype}"
        return ImageStream(_split_array(tensor, batch_size), tensor.shape[0], description)

    if kind is InputKind.DATALOADER:
        loader = images
        known = None
        if not loader.drop_last and loader.batch_size is not None and hasattr(loader.sampler, "__len__"):
            known = len(loader.sampler)
        batches = (standardize_batch(b, input_range, "a DataLoader batch") for b in loader)
        return ImageStream(_limited(batches, limit), capped(num_images or known), "DataLoader")

    if kind in (InputKind.DATASET, InputKind.ITERABLE_DATASET):
        return _dataset_stream(images, type(images).__name__, batch_size, input_range, num_workers, limit, pin_memory)

    if kind is InputKind.IMAGES:
        dataset = _SequenceDataset(images)
        return _dataset_stream(dataset, f"{len(images)} images", batch_size, input_range, num_workers, limit, False)

    if kind is InputKind.BATCHES:
        batches = (_standardize_any_batch(b, input_range) for b in images)
        known = num_images
        if known is None and isinstance(images, Sequence):
            known = sum(len(b) for b in images)  # cheap for in-memory batches
        return ImageStream(_limited(batches, limit), capped(known), "iterable of batches")

    raise InputError(
        f"cannot score an object of type {type(images).__name__}: give a tensor or array of images, "
        f"an iterable of batches, a Dataset, a DataLoader, or a path"
    )


def _standardize_any_batch(batch: Any, input_range: InputRange | None) -> ImageBatch:
    if isinstance(batch, list) and batch and is_single_image(batch[0]):
        return _images_batch(batch, input_range, "a batch")
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
        _ErrorsAsValues(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=worker_count(num_workers, -(-count // batch_size)),
        collate_fn=_CollateImages(input_range, channels_first=reads_files(dataset)),
        pin_memory=pin_memory,
        persistent_workers=False,
    )
    return ImageStream(_raising(loader), count, description, dataset_labels(dataset, count))

