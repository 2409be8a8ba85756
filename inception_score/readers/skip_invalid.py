"""Skipping images that cannot be decoded: every image of a reader is decoded once before scoring,
so the number of images, and with it the splits, is final before the network sees any of them.

Progress is reported by calling ``advance(count)`` after each batch, the callable that the scoring's
progress bar yields (:func:`inception_score.api.progress_bar`); no bar is drawn here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader, Dataset, Subset

from ..errors import ImageDecodeError, InputError
from .loader_workers import worker_count

_BATCH = 64  # images decoded per DataLoader batch


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


def decodable(dataset: Dataset, num_workers: int = 0,
              advance: Callable[[int], Any] | None = None) -> tuple[list[int], list[str]]:
    """Decode every image of ``dataset`` once: the indices of those that decode, and the messages of
    those that do not. ``advance(count)`` is called after each batch of ``count`` images checked."""
    workers = worker_count(num_workers, -(-len(dataset) // _BATCH))  # type: ignore[arg-type]
    loader = DataLoader(_DecodeFailure(dataset), batch_size=_BATCH, num_workers=workers, collate_fn=_keep_list)
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
        if advance is not None:
            advance(len(batch))
    return valid, failures


def keep_valid(dataset: Dataset, valid: list[int], failures: list[str]) -> Dataset:
    """``dataset`` (a reader with a ``description``) without the images that failed (all of it when
    none did)."""
    if not failures:
        return dataset
    if not valid:
        raise InputError(f"all {len(failures)} images failed to decode; the first: {failures[0]}")
    subset = Subset(dataset, valid)
    subset.description = f"{dataset.description}, {len(failures)} invalid skipped"  # type: ignore[attr-defined]
    return subset


def without_invalid(dataset: Dataset, num_workers: int = 0,
                    advance: Callable[[int], Any] | bool | None = None) -> tuple[Dataset, list[str]]:
    """Decode every image once; return the dataset without those that fail, and their messages."""
    valid, failures = decodable(dataset, num_workers, advance)
    return keep_valid(dataset, valid, failures), failures
