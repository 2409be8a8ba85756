"""Per-image logits on disk: score a big set once, re-score it without the network, resume a run.

A logits file is a plain ``.npy`` of ``(N, 1008)`` float32 unbiased logits in input order (read with
``allow_pickle=False``: no code in it can run), and beside it ``<file>.json``: the weights' sha256 and
path, the input's description, N, and how many rows are done. Rows are written as batches finish and
the JSON is replaced atomically after each, so an interrupted run leaves a valid file that
:func:`open_for_writing` continues from its first missing row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from .errors import InputError
from .infinity import POINTS as INFINITY_POINTS, infinity_buckets
from .metric import SplitRule, SplitStatistics, check_split_count, shuffled_positions, split_of_positions, split_rule

NUM_CLASSES = 1008
_ROWS_PER_PASS = 4096  # rows read at a time when re-scoring: memory stays ~16 MB whatever N


@dataclass(frozen=True)
class LogitsInfo:
    """What the sidecar JSON records."""

    num_images: int
    done: int
    weights_sha256: str
    weights_path: str
    weights_verified: bool
    input: str


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def read_info(path: Path) -> LogitsInfo:
    """The sidecar of a logits file; :class:`InputError` when either is missing or not ours."""
    path = Path(path)
    if not path.is_file() or not sidecar(path).is_file():
        raise InputError(f"{path} is not a logits file written by --save-logits (it needs {sidecar(path).name} beside it)")
    try:
        return LogitsInfo(**json.loads(sidecar(path).read_text()))
    except (ValueError, TypeError) as error:
        raise InputError(f"{sidecar(path)} is not the description of a logits file ({error})") from None


def _write_info(path: Path, info: LogitsInfo) -> None:
    temporary = sidecar(path).with_name(sidecar(path).name + ".tmp")
    temporary.write_text(json.dumps(info.__dict__, indent=1) + "\n")
    temporary.replace(sidecar(path))


class LogitsWriter:
    """Rows ``[done, N)`` of a logits file, written batch by batch."""

    def __init__(self, path: Path, info: LogitsInfo) -> None:
        self.path = path
        self.info = info
        mode = "r+" if info.done else "w+"
        self.rows = open_memmap(path, mode=mode, dtype=np.float32, shape=(info.num_images, NUM_CLASSES))

    @property
    def done(self) -> int:
        return self.info.done

    def write(self, logits: torch.Tensor) -> None:
        """The next ``(B, 1008)`` rows."""
        start = self.info.done
        stop = start + logits.shape[0]
        if stop > self.info.num_images:
            raise InputError(f"more images than the {self.info.num_images} this logits file was opened for")
        self.rows[start:stop] = logits.detach().to("cpu", torch.float32).numpy()
        self.rows.flush()
        self.info = LogitsInfo(**{**self.info.__dict__, "done": stop})
        _write_info(self.path, self.info)


def open_for_writing(path: Path, num_images: int, weights_sha256: str, weights_path: str, weights_verified: bool,
                     description: str) -> LogitsWriter:
    """A writer that continues ``path`` when it holds the first rows of the same images with the same
    weights, and starts it afresh when it does not exist."""
    path = Path(path)
    fresh = LogitsInfo(num_images, 0, weights_sha256, weights_path, weights_verified, description)
    if path.exists() or sidecar(path).exists():
        saved = read_info(path)
        if (saved.num_images, saved.weights_sha256, saved.input) != (num_images, weights_sha256, description):
            raise InputError(
                f"{path} holds logits of other images or weights ({saved.num_images} images of {saved.input!r}, "
                f"weights {saved.weights_sha256[:12]}…): remove it or choose another --save-logits file")
        return LogitsWriter(path, saved)
    path.parent.mkdir(parents=True, exist_ok=True)
    return LogitsWriter(path, fresh)


def statistics_of(path: Path, splits: int | SplitRule, shuffle_seed: int | None) -> tuple[SplitStatistics, LogitsInfo]:
    """The split statistics of a complete logits file (contiguous splits, or shuffled by ``shuffle_seed``;
    ``splits``: a count or a :class:`SplitRule`)."""
    stats, _, info = statistics_and_buckets_of(path, splits, shuffle_seed, None)
    return stats, info


def statistics_and_buckets_of(path: Path, splits: int | SplitRule, shuffle_seed: int | None, infinity_seed: int | None,
                              ) -> tuple[SplitStatistics, SplitStatistics | None, LogitsInfo]:
    """:func:`statistics_of`, and with ``infinity_seed`` the IS-infinity buckets' statistics of the same
    rows (:mod:`.infinity`), in the same pass over the file."""
    info = read_info(path)
    if info.done != info.num_images:
        raise InputError(f"{path} holds {info.done} of {info.num_images} images: finish it by running the same "
                         "command with --save-logits again (it resumes), then re-score")
    rows = np.load(path, mmap_mode="r", allow_pickle=False)
    if rows.shape != (info.num_images, NUM_CLASSES) or rows.dtype != np.float32:
        raise InputError(f"{path} has shape {rows.shape} {rows.dtype}, not ({info.num_images}, {NUM_CLASSES}) float32")
    check_split_count(info.num_images, splits)
    positions = shuffled_positions(info.num_images, shuffle_seed) if shuffle_seed is not None else np.arange(info.num_images)
    stats = SplitStatistics.zeros(split_rule(splits).split_count(info.num_images), NUM_CLASSES)
    bucket_ids = None if infinity_seed is None else infinity_buckets(info.num_images, infinity_seed)
    buckets = None if infinity_seed is None else SplitStatistics.zeros(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
    for start in range(0, info.num_images, _ROWS_PER_PASS):
        stop = min(start + _ROWS_PER_PASS, info.num_images)
        chunk = torch.from_numpy(np.array(rows[start:stop]))
        stats.add(chunk, split_of_positions(positions[start:stop], info.num_images, splits))
        if buckets is not None and bucket_ids is not None:
            buckets.add(chunk, bucket_ids[start:stop])
    return stats, buckets, info
