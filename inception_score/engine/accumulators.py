"""Accumulators: logits in, per-split statistics out, each image routed to its split by its global
position (:class:`inception_score.score.statistics.SplitPlan`), and the step from complete statistics to an
:class:`~inception_score.score.result.ISResult` (one exchange across the processes of a group).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .distributed import Group, all_gather_seen, all_reduce_statistics, max_over_ranks, statistics_bytes, subtract_statistics
from ..errors import InputError
from ..score.infinity import POINTS as INFINITY_POINTS, infinity_buckets
from ..score.statistics import DeviceStatistics, SplitPlan, SplitRule, SplitStatistics, split_rule
from ..network.inception import NUM_CLASSES
from ..score.order import LabelOrder
from ..score.result import ISResult, result_from_statistics
from ..network.weights import LoadedWeights

if TYPE_CHECKING:
    from .runner import InceptionScorer

class _SplitAccumulator:
    """Routes logits to their split's statistics by each image's position in the global order.

    This process's images are positions ``[offset, offset + num_images)`` of ``total`` (one process:
    all of them). With the count known up front, statistics are kept per split as the images arrive
    (O(splits x 1008) memory), on the logits' device (:class:`~inception_score.score.statistics.DeviceStatistics`).
    Without it, the float32 logits are kept until the count is known, which is exact too but costs
    4 KB per image: on the device until :meth:`flush` moves them to the host. With ``infinity_seed``,
    the same images also go to the 15 buckets of IS-infinity (:mod:`.infinity`) by their index in
    input order; :meth:`finish` leaves those statistics in ``buckets``.
    """

    def __init__(self, splits: int | SplitRule, num_images: int | None, shuffle_seed: int | None,
                 offset: int = 0, total: int | None = None, infinity_seed: int | None = None) -> None:
        total = num_images if total is None else total
        self.splits = split_rule(splits)
        self.shuffle_seed = shuffle_seed
        self.plan = None if total is None else SplitPlan.of(total, self.splits, shuffle_seed)
        self.seen = 0
        self.stats = DeviceStatistics(self.splits.split_count(total or 1), NUM_CLASSES)
        self.on_device: list[torch.Tensor] = []  # logits kept, not yet moved to the host
        self.buffer: list[torch.Tensor] = []
        self.offset = offset
        self.expected = num_images  # this process's images, when known up front: statistics as they arrive
        self.infinity_seed = infinity_seed
        self.live_buckets: DeviceStatistics | None = None
        self.buckets: SplitStatistics | None = None
        self.bucket_ids: np.ndarray | None = None
        if num_images is not None and total is not None and infinity_seed is not None:
            self.live_buckets = DeviceStatistics(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
            self.bucket_ids = infinity_buckets(total, infinity_seed)[offset : offset + num_images]

    @property
    def _buffered(self) -> bool:
        return self.expected is None or self.plan is None

    def add(self, logits: torch.Tensor, skip: torch.Tensor | None = None) -> int:
        """Add a batch's logits (on any device) as the next images; ``skip``: its float16 overflow flag
        (:class:`~inception_score.score.statistics.DeviceStatistics`). Returns the token :meth:`redo` takes."""
        count = logits.shape[0]
        if self._buffered:
            self.on_device.append(logits.detach())
            self.seen += count
            return len(self.on_device) - 1
        if self.seen + count > self.expected:
            raise InputError(
                f"more images arrived than the {self.expected} announced ({self.seen + count} with this "
                f"batch); pass the right num_images or leave it out (a metric object: reset() between epochs)"
            )
        start = self.seen
        self._add_at(start, logits, skip)
        self.seen += count
        return start

    def _add_at(self, start: int, logits: torch.Tensor, skip: torch.Tensor | None) -> None:
        assert self.plan is not None
        stop = start + logits.shape[0]
        self.stats.add(logits, self.plan.span_ids(self.offset + start, self.offset + stop), skip)
        if self.live_buckets is not None and self.bucket_ids is not None:
            self.live_buckets.add(logits, self.bucket_ids[start:stop], skip)

    def redo(self, token: int, logits: torch.Tensor) -> None:
        """The batch :meth:`add` gave ``token`` for, with these logits instead (computed again)."""
        if self._buffered:
            self.on_device[token] = logits.detach()
        else:
            self._add_at(token, logits, None)

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

    def finish(self, offset: int = 0, total: int | None = None) -> SplitStatistics:
        """The statistics of the images added, on the host. Buffered logits are placed now, at ``offset``
        of ``total`` (one process: 0 of the count seen)."""
        if self._buffered:
            self.flush()
            plan = SplitPlan.of(self.seen if total is None else total, self.splits, self.shuffle_seed)
            total = plan.num_images
            stats = SplitStatistics.zeros(plan.split_count, NUM_CLASSES)
            bucket_ids = None
            if self.infinity_seed is not None:
                self.buckets = SplitStatistics.zeros(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
                bucket_ids = infinity_buckets(total, self.infinity_seed)[offset : offset + self.seen]
            start = 0
            for logits in self.buffer:
                stop = start + logits.shape[0]
                stats.add(logits, plan.span_ids(offset + start, offset + stop))
                if self.buckets is not None and bucket_ids is not None:
                    self.buckets.add(logits, bucket_ids[start:stop])
                start = stop
            return stats
        if self.seen != self.expected:
            raise InputError(f"{self.seen} images arrived but {self.expected} were announced")
        if self.live_buckets is not None:
            self.buckets = self.live_buckets.numpy()
        return self.stats.numpy()


def _result(
    stats: SplitStatistics, scorer: InceptionScorer, elapsed: float, return_marginal: bool,
    order: str = "input order", group: Group | None = None, shuffled: bool = False,
    split_size: int | None = None, labels: LabelOrder | None = None,
    buckets: SplitStatistics | None = None, infinity_seed: int | None = None,
) -> ISResult:
    exchanged = 0
    if group is not None:
        stats = all_reduce_statistics(group, stats)
        elapsed = max_over_ranks(group, elapsed)
        exchanged = statistics_bytes(stats.splits, stats.sum_p.shape[1])
        if buckets is not None:
            buckets = all_reduce_statistics(group, buckets)
            exchanged += statistics_bytes(buckets.splits, buckets.sum_p.shape[1], buckets.sketch.shape[1])
    weights: LoadedWeights = scorer.weights
    return result_from_statistics(
        stats, weights_path=str(weights.path), weights_sha256=weights.sha256, weights_verified=weights.verified,
        device=str(scorer.device), dtype=scorer.dtype, elapsed=elapsed, return_marginal=return_marginal, order=order,
        processes=1 if group is None else group.world_size, exchanged_bytes=exchanged, shuffled=shuffled,
        precision=getattr(scorer, "effective_precision", "exact"), precision_note=getattr(scorer, "precision_note", ""),
        split_size=split_size, labels=labels,
        buckets=buckets, infinity_seed=infinity_seed,
    )



def _check_indices(indices: Any, count: int, num_images: int | None) -> np.ndarray:
    if num_images is None:
        raise InputError("update(images, indices=...) needs num_images: the size of the data set the indices point into")
    array = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
    if array.shape != (count,) or array.dtype.kind not in "iu":
        raise InputError(f"indices must be {count} integers, one per image; got shape {array.shape}, dtype {array.dtype}")
    if count and (array.min() < 0 or array.max() >= num_images):
        raise InputError(f"indices must lie in [0, {num_images}); got [{array.min()}, {array.max()}]")
    return array.astype(np.int64)


class _IndexedAccumulator:
    """Statistics of images that come with their index in a data set of ``num_images``.

    An index seen again by this process since the last reset (a second epoch without ``reset()``: a
    sampler never gives one process an index twice in one epoch) is not counted, and :meth:`finish`
    refuses to score, after its collectives, so every process hears of it. Across processes the duplicates of a
    ``DistributedSampler`` (its padding: the first indices again, as the last item of the last ranks)
    are found at :meth:`finish` from each rank's seen-bitmap (N / 8 bytes each) and dropped by every rank
    but the lowest that saw them; for that, each rank keeps the logits of its last ``keep_last`` images.
    With ``infinity_seed``, the images also go to the IS-infinity buckets by index (``buckets`` after
    :meth:`finish`).
    """

    def __init__(self, splits: int | SplitRule, num_images: int, shuffle_seed: int | None, keep_last: int,
                 infinity_seed: int | None = None) -> None:
        self.plan = SplitPlan.of(num_images, splits, shuffle_seed)
        self.splits = self.plan.rule
        self.num_images = num_images
        self.seen = np.zeros(num_images, dtype=bool)
        self.stats = DeviceStatistics(self.splits.split_count(num_images), NUM_CLASSES)
        self.bucket_ids = None if infinity_seed is None else infinity_buckets(num_images, infinity_seed)
        self.live_buckets = None if infinity_seed is None else DeviceStatistics(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
        self.buckets: SplitStatistics | None = None
        self.recent: collections.deque[tuple[int, torch.Tensor]] = collections.deque(maxlen=max(keep_last, 1))
        self.repeated = 0  # images whose index this process had already seen

    def _split_ids(self, indices: np.ndarray) -> np.ndarray:
        return self.plan.split_ids(indices)

    def add(self, logits: torch.Tensor, indices: np.ndarray,
            skip: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Add a batch's logits (on any device) of the images at ``indices``; ``skip``: its float16
        overflow flag (:class:`~inception_score.score.statistics.DeviceStatistics`). Returns the token :meth:`redo`
        takes: the rows counted and their indices (None when every index was seen before)."""
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
        self.stats.add(logits, self._split_ids(indices), skip)
        if self.live_buckets is not None and self.bucket_ids is not None:
            self.live_buckets.add(logits, self.bucket_ids[indices], skip)
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

    def finish(self, group: Group | None) -> SplitStatistics:
        stats = self.stats.numpy()
        self.buckets = None if self.live_buckets is None else self.live_buckets.numpy()
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
                duplicate = SplitStatistics.zeros(stats.splits, NUM_CLASSES)
                duplicate.add(torch.stack([rows[int(i)] for i in dropped]), self._split_ids(dropped))
                stats = subtract_statistics(stats, duplicate)
                if self.buckets is not None and self.bucket_ids is not None:
                    in_buckets = SplitStatistics.zeros(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
                    in_buckets.add(torch.stack([rows[int(i)] for i in dropped]), self.bucket_ids[dropped])
                    self.buckets = subtract_statistics(self.buckets, in_buckets)
            covered = int(np.logical_or.reduce(everyone, axis=0).sum())
        else:
            covered = int(self.seen.sum())
        if self.repeated:
            raise InputError(f"{self.repeated} images came with indices this process had already given since the "
                             f"last reset() ({int(self.seen.sum())} distinct of the {self.num_images} announced): "
                             "call reset() between epochs, and give each image once")
        if covered != self.num_images:
            raise InputError(f"the indices given cover {covered} of the {self.num_images} images announced; "
                             "score the whole data set or announce its real size")
        return stats
