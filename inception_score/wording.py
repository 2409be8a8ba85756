"""Counts as messages and result lines say them."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """``1 split``, ``2 splits``, ``0 images``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def splits_phrase(num_images: int, splits: int, split_size: int | None, noun: str = "split") -> str:
    """How ``num_images`` images were cut: ``10 splits``; with a split size, ``10 splits of 5000 images``,
    ``3 splits of 8 images, the last of 4``, or ``1 split of 20 images`` (a size larger than the set).
    ``noun``: what a part is called (``chunk``)."""
    if split_size is None:
        return plural(splits, noun)
    last = num_images - (splits - 1) * split_size
    if splits == 1:
        return f"1 {noun} of {plural(last, 'image')}"
    if last == split_size:
        return f"{splits} {noun}s of {plural(split_size, 'image')}"
    return f"{splits} {noun}s of {plural(split_size, 'image')}, the last of {last}"
