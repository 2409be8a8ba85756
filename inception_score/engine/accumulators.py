"""Accumulators: what a scoring run (:mod:`inception_score.engine.run`) does with each batch's logits.

Each one takes the logits of the batches as the device pipeline (:mod:`inception_score.engine.pipeline`)
computes them, by the same four calls (:class:`~inception_score.engine.pipeline.Accumulating`):

- :class:`SplitAccumulator`: the images arrive in input order (this process's contiguous part);
- :class:`IndexedAccumulator`: each image comes with its index in a data set (a sampler's loop);
- :class:`LogitsSink`: the logits themselves go on, settled, in order (a logits file is written from them).

The first two place every image by :class:`~inception_score.score.planned.PlannedStatistics`, the one step
from logits to statistics.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..network.inception import NUM_CLASSES
from ..score.planned import PlannedStatistics
from ..score.statistics import SplitPlan, SplitRule, SplitStatistics, split_rule
from .distributed import Group, all_gather_counts, all_gather_seen, subtract_statistics


class SplitAccumulator:
    """Routes logits to their split's statistics by each image's position in the global order.

    This process's images are positions ``[offset, offset + num_images)`` of ``total`` (one process:
    all of them). With the count known up front, statistics are kept per split as the images arrive
    (O(splits x 1008) memory), on the logits' device. Without it, the float32 logits are kept until the
    count is known, which is exact too but costs 4 KB per image: on the device until :meth:`flush` moves
    them to the host; :meth:`finish` then places them (in a group, rank-major: this rank's images after
    those of the lower ranks, checked against ``announced`` images in all when given). With
    ``infinity_seed``, the same images also go to the 15 buckets of IS-infinity; :meth:`finish` leaves
    those statistics in ``buckets``.
    """

    def __init__(self, splits: int | SplitRule, num_images: int | None, shuffle_seed: int | None,
                 offset: int = 0, total: int | None = None, infinity_seed: int | None = None,
                 announced: int | None = None) -> None:
        total = num_images if total is None else total
        self.splits = split_rule(splits)
        self.shuffle_seed = shuffle_seed
        self.infinity_seed = infinity_seed
        self.offset = offset
        self.expected = num_images  # this process's images, when known up front: statistics as they arrive
        self.announced = announced
        self.seen = 0
        self.live = None if num_images is None or total is None else PlannedStatistics(
            SplitPlan.of(total, self.splits, shuffle_seed), NUM_CLASSES, infinity_seed)
        self.on_device: list[torch.Tensor] = []  # logits kept, not yet moved to the host
        self.buffer: list[torch.Tensor] = []
        self.buckets: SplitStatistics | None = None

    settle_every: int | None = None  # the pipeline's own interval

    def begin(self, batch: Any) -> None:
        """Nothing to do before the network runs."""

    def add(self, logits: torch.Tensor, skip: torch.Tensor | None = None) -> int:
        """Add a batch's logits (on any device) as the next images; ``skip``: its float16 overflow flag.
        Returns the token :meth:`redo` takes."""
        count = logits.shape[0]
        if self.live is None:
            self.on_device.append(logits.detach())
            self.seen += count
            return len(self.on_device) - 1
        assert self.expected is not None
        if self.seen + count > self.expected:
            raise InputError(
                f"more images arrived than the {self.expected} announced ({self.seen + count} with this "
                f"batch); pass the right num_images or leave it out (a metric object: reset() between epochs)"
            )
        start = self.seen
        self.live.add_span(logits, self.offset + start, skip)
        self.seen += count
        return start

    def redo(self, token: int, logits: torch.Tensor) -> None:
        """The batch :meth:`add` gave ``token`` for, with these logits instead (computed again)."""
        if self.live is None:
            self.on_device[token] = logits.detach()
        else:
            self.live.add_span(logits, self.offset + token)

    def flush(self) -> bool:
        """Move the logits kept on the device to the host, one copy for all; True when there were any."""
        if not self.on_device:
            return False
        if self.on_device[0].device.type == "cpu":
            self.buffer.extend(logits.to(torch.float32) for logits in self.on_device)
        else:
            host = torch.cat(self.on_device).to("cpu", torch.float32)
            self.buffer.extend(host.split([len(logits) for logits in self.on_device]))
        self.on_device.clear()
        return True

    def finish(self, group: Group | None = None) -> SplitStatistics:
        """The statistics of this process's images, on the host (in a group, the other ranks' are added
        by the run, once). Buffered logits are placed now."""
        if self.live is not None:
            if self.seen != self.expected:
                raise InputError(f"{self.seen} images arrived but {self.expected} were announced")
            stats, self.buckets = self.live.numpy()
            return stats
        self.flush()
        offset, total = 0, self.seen
        if group is not None:
            counts = all_gather_counts(group, self.seen)
            if self.announced is not None and sum(counts) != self.announced:
                raise InputError(f"the {group.world_size} processes received {sum(counts)} images ({counts}) "
                                 f"for the {self.announced} announced: reset() between epochs, and announce "
                                 "the real number")
            offset, total = sum(counts[: group.rank]), sum(counts)
        placed = PlannedStatistics(SplitPlan.of(total, self.splits, self.shuffle_seed), NUM_CLASSES, self.infinity_seed)
        start = offset
        for logits in self.buffer:
            placed.add_span(logits, start)
            start += logits.shape[0]
        stats, self.buckets = placed.numpy()
        return stats


def check_indices(indices: Any, count: int, num_images: int | None) -> np.ndarray:
    """``indices`` given with ``count`` images as ``(count,)`` int64, each in ``[0, num_images)``; else
    :class:`InputError` saying what is wrong."""
    if num_images is None:
        raise InputError("update(images, indices=...) needs num_images: the size of the data set the indices point into")
    array = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
    if array.shape != (count,) or array.dtype.kind not in "iu":
        raise InputError(f"indices must be {count} integers, one per image; got shape {array.shape}, dtype {array.dtype}")
    if count and (array.min() < 0 or array.max() >= num_images):
        raise InputError(f"indices must lie in [0, {num_images}); got [{array.min()}, {array.max()}]")
    return array.astype(np.int64)


class IndexedAccumulator:
    """Statistics of images that come with their index in a data set of ``num_images``.

    An index seen again by this process since the last reset (a second epoch without ``reset()``: a
    sampler never gives one process an index twice in one epoch) is not counted, and :meth:`finish`
    refuses to score, after its collectives, so every process hears of it. Across processes the duplicates of a
    ``DistributedSampler`` (its padding: the first indices again, as the last item of the last ranks)
    are found at :meth:`finish` from each rank's seen-bitmap (N / 8 bytes each) and dropped by every rank
    but the lowest that saw them; for that, each rank keeps the logits of its last ``keep_last`` images.
    With ``infinity_seed``, the images also go to the IS-infinity buckets by index (``buckets`` after
    :meth:`finish`). ``complete=False``: :meth:`finish` gives the statistics of the images seen, without
    asking that they cover the data set (a part of it, summed elsewhere).
    """

    def __init__(self, splits: int | SplitRule, num_images: int, shuffle_seed: int | None, keep_last: int,
                 infinity_seed: int | None = None, complete: bool = True) -> None:
        self.plan = SplitPlan.of(num_images, splits, shuffle_seed)
        self.num_images = num_images
        self.seen = np.zeros(num_images, dtype=bool)
        self.infinity_seed = infinity_seed
        self.complete = complete
        self.live = PlannedStatistics(self.plan, NUM_CLASSES, infinity_seed)
        self.buckets: SplitStatistics | None = None
        self.recent: collections.deque[tuple[int, torch.Tensor]] = collections.deque(maxlen=max(keep_last, 1))
        self.repeated = 0  # images whose index this process had already seen

    settle_every: int | None = None  # the pipeline's own interval

    def begin(self, batch: Any) -> None:
        """Nothing to do before the network runs."""

    def add(self, logits: torch.Tensor, indices: np.ndarray,
            skip: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Add a batch's logits (on any device) of the images at ``indices``; ``skip``: its float16
        overflow flag. Returns the token :meth:`redo` takes: the rows counted and their indices (None when
        every index was seen before)."""
        new = ~self.seen[indices]
        _, first = np.unique(indices, return_index=True)
        keep = np.zeros(len(indices), dtype=bool)
        keep[first] = True
        keep &= new
        self.repeated += len(indices) - int(keep.sum())
        if not keep.any():
            return None
        token = (np.flatnonzero(keep), indices[keep])
        self._remember(indices[keep], self._add_rows(logits, token, skip))
        self.seen[indices[keep]] = True
        return token

    def _add_rows(self, logits: torch.Tensor, token: tuple[np.ndarray, np.ndarray],
                  skip: torch.Tensor | None) -> torch.Tensor:
        """Add the rows ``token`` names of a batch's logits; returns those rows."""
        rows, indices = token
        if len(rows) < len(logits):  # the index moved to the device without waiting (pageable memory is staged)
            logits = logits[torch.from_numpy(rows).to(logits.device, non_blocking=True)]
        logits = logits.detach()
        self.live.add(logits, indices, skip)
        return logits

    def _remember(self, indices: np.ndarray, logits: torch.Tensor) -> None:
        for index, row in zip(indices, logits):  # rows stay on the device: no wait for it here
            self.recent.append((int(index), row))

    def redo(self, token: tuple[np.ndarray, np.ndarray] | None, logits: torch.Tensor) -> None:
        """The batch :meth:`add` gave ``token`` for, with these logits instead (computed again): its
        statistics added, and its rows among the last kept replaced in place."""
        if token is None:
            return
        fixed = dict(zip(token[1].tolist(), self._add_rows(logits, token, None)))
        kept = [(index, fixed.get(index, row)) for index, row in self.recent]
        self.recent.clear()
        self.recent.extend(kept)

    def flush(self) -> bool:
        """Nothing to move: the statistics stay on the device until :meth:`finish`."""
        return False

    def finish(self, group: Group | None = None) -> SplitStatistics:
        stats, self.buckets = self.live.numpy()
        if group is not None:
            everyone = all_gather_seen(group, self.seen)
            seen_below = np.logical_or.reduce(everyone[: group.rank], axis=0) if group.rank else np.zeros_like(self.seen)
            drop = self.seen & seen_below
            if drop.any():
                rows = {index: row for index, row in self.recent}
                missing = [int(i) for i in np.flatnonzero(drop) if int(i) not in rows]
                if missing:
                    raise InputError(
                        f"indices {missing[:5]} reached several processes, beyond the padding of a DistributedSampler; "
                        "give each process its own indices")
                dropped = np.flatnonzero(drop)
                duplicate = PlannedStatistics(self.plan, NUM_CLASSES, self.infinity_seed)
                duplicate.add(torch.stack([rows[int(i)] for i in dropped]), dropped)
                duplicate_stats, duplicate_buckets = duplicate.numpy()
                stats = subtract_statistics(stats, duplicate_stats)
                if self.buckets is not None and duplicate_buckets is not None:
                    self.buckets = subtract_statistics(self.buckets, duplicate_buckets)
            covered = int(np.logical_or.reduce(everyone, axis=0).sum())
        else:
            covered = int(self.seen.sum())
        if self.repeated:
            raise InputError(f"{self.repeated} images came with indices this process had already given since the "
                             f"last reset() ({int(self.seen.sum())} distinct of the {self.num_images} announced): "
                             "call reset() between epochs, and give each image once")
        if self.complete and covered != self.num_images:
            raise InputError(f"the indices given cover {covered} of the {self.num_images} images announced; "
                             "score the whole data set or announce its real size")
        return stats


class LogitsSink:
    """Hands on each batch's logits, in order and settled (a float16 overflow already computed again), as
    ``(B, 1008)`` float32 on the host: ``write(logits, started)``, with ``started`` what ``start(batch)``
    returned when the batch came in, before the network ran (work done beside it, such as the images'
    digests). It keeps no statistics; :meth:`finish` gives None."""

    settle_every = 1  # each batch is written as soon as it is settled: a file resumes from its last batch

    def __init__(self, write: Callable[[torch.Tensor, Any], None], start: Callable[[Any], Any] = lambda batch: None,
                 ) -> None:
        self.write = write
        self.start = start
        self.started: collections.deque[Any] = collections.deque()
        self.pending: list[tuple[torch.Tensor, Any]] = []

    def begin(self, batch: Any) -> None:
        self.started.append(self.start(batch))

    def add(self, logits: torch.Tensor, skip: torch.Tensor | None = None) -> int:
        self.pending.append((logits.detach(), self.started.popleft()))
        return len(self.pending) - 1

    def redo(self, token: int, logits: torch.Tensor) -> None:
        self.pending[token] = (logits.detach(), self.pending[token][1])

    def flush(self) -> bool:
        if not self.pending:
            return False
        for logits, started in self.pending:
            self.write(logits.to("cpu", torch.float32), started)
        self.pending.clear()
        return True

    def finish(self, group: Group | None = None) -> None:
        self.flush()
