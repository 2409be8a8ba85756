"""The scoring run: the one loop that turns batches of pixels into an :class:`~inception_score.ISResult`.

Every way of scoring opens a source of images and feeds a :class:`ScoringRun`: :func:`inception_score`
(one process or a share of a group), the :class:`~inception_score.InceptionScore` metric object,
:func:`~inception_score.score_generator`, :func:`~inception_score.save_logits` (whose run hands its logits
to the file instead of keeping statistics), :class:`~inception_score.torchmetrics_adapter.InceptionScoreMetric`
and both commands. The run owns what they share:

- the device pipeline (:class:`~inception_score.engine.pipeline.DevicePipeline`: pinned copies, the float16
  overflow policy, few waits for the device);
- the statistics (an accumulator of :mod:`~inception_score.engine.accumulators`, which places each image by
  :class:`~inception_score.score.planned.PlannedStatistics`);
- the progress bar and the timer;
- the collectives of a ``torch.distributed`` group: lock step while scoring, one sum of the statistics at
  the end (:mod:`~inception_score.engine.distributed`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..readers.inputs import ImageBatch
from ..score.order import LabelOrder, label_order
from ..score.result import ISResult, result_from_statistics
from ..score.statistics import SplitRule, SplitStatistics, split_rule
from ..errors import InputError
from .accumulators import IndexedAccumulator, LogitsSink, SplitAccumulator
from .features import CollectedFeatures, FeatureCollector, FeatureRequest
from .distributed import Group, all_reduce_statistics, lockstep_steps, max_over_ranks, run_in_lockstep, statistics_bytes
from .pipeline import DevicePipeline


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int | None, what: str = "Inception Score") -> Iterator[Callable[[int], Any]]:
    """A tqdm bar on stderr named ``what`` (or nothing), advanced by calling what this yields with a count."""
    if not enabled:
        yield lambda count: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="img", desc=what, dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()


class ScoringRun:
    """Batches of pixels in, through ``scorer``'s network, into statistics split by ``splits``.

    How the images are placed, which decides each one's split (:class:`~inception_score.score.statistics.SplitPlan`):

    - in input order (the default): this process's ``num_images`` images (None: unknown until
      :meth:`finish`, the logits are then kept) are positions ``[offset, offset + num_images)`` of ``total``;
      ``announced``: the images of all processes together, checked at :meth:`finish` where the count was
      not known up front;
    - ``indexed=N``: each batch comes with its images' indices in a data set of N images (:meth:`add`'s
      ``indices``), a sampler's order; ``keep_last`` rows are kept to drop a ``DistributedSampler``'s padding,
      and ``complete=False`` scores a part of the data set (summed elsewhere);
    - ``sink``: no statistics; each batch's settled logits go to ``sink`` (a
      :class:`~inception_score.engine.accumulators.LogitsSink`), which writes them on.

    ``features``: the pool_3 or spatial features to keep beside the logits, from the same pass
    (:mod:`~inception_score.engine.features`; :meth:`collected` gives them), for a run in input order
    (an ``indexed`` run keeps moments only, of images the caller gives once: no ``keep_last``).

    ``shuffle_seed``: torch-fidelity's permutation first; ``infinity_seed``: the IS-infinity buckets too.
    ``progress``: a bar on stderr while :meth:`feed` runs; ``batch_size``: :meth:`add` cuts larger batches.
    """

    def __init__(self, scorer: Any, splits: int | SplitRule | None = None, *, shuffle_seed: int | None = None,
                 infinity_seed: int | None = None, num_images: int | None = None, offset: int = 0,
                 total: int | None = None, announced: int | None = None, indexed: int | None = None,
                 keep_last: int = 0, complete: bool = True, sink: LogitsSink | None = None,
                 progress: bool = False, batch_size: int | None = None, features: FeatureRequest | None = None,
                 ) -> None:
        self.scorer = scorer
        self.splits = split_rule(splits)
        self.shuffle_seed = shuffle_seed
        self.infinity_seed = infinity_seed
        self.progress = progress
        self.batch_size = batch_size
        self.elapsed = 0.0
        self.accumulator: SplitAccumulator | IndexedAccumulator | LogitsSink
        if sink is not None:
            self.accumulator = sink
        elif indexed is not None:
            self.accumulator = IndexedAccumulator(self.splits, indexed, shuffle_seed, keep_last, infinity_seed, complete)
        else:
            self.accumulator = SplitAccumulator(self.splits, num_images, shuffle_seed, offset, total, infinity_seed,
                                                announced)
        if features and indexed is not None and (features.kept or keep_last):
            raise InputError("features for FID, KID or precision/recall are kept in input order, not by index: "
                             "score without indices to compare with a reference")
        self.features = FeatureCollector(features) if features else None
        self.pipeline = DevicePipeline(scorer, self.accumulator, self.features)
        self.count = num_images

    @property
    def images_seen(self) -> int:
        """Images added so far (by this process)."""
        accumulator = self.accumulator
        if isinstance(accumulator, SplitAccumulator):
            return accumulator.seen
        if isinstance(accumulator, IndexedAccumulator):
            return int(accumulator.seen.sum()) + accumulator.repeated
        return 0

    def add(self, batch: ImageBatch, indices: np.ndarray | None = None) -> None:
        """Score one batch ``(B, 3, H, W)`` (or a list of ``(3, H, W)``), in ``batch_size`` parts when it is
        larger; ``indices`` ``(B,)``: the images' indices, for an ``indexed`` run."""
        began = time.perf_counter()
        size = self.batch_size or len(batch)
        for start in range(0, len(batch), max(size, 1)):
            part = batch[start : start + size]
            if indices is None:
                self.pipeline.add(part)
            else:
                self.pipeline.add(part, indices[start : start + size])
        self.elapsed += time.perf_counter() - began

    def feed(self, batches: Iterable[ImageBatch], group: Group | None = None, total: int | None = None) -> None:
        """Score every batch of ``batches``, with a progress bar when asked. In a ``group`` every process
        calls this with its own batches; ``total``: the images of all processes, so that each knows how many
        steps the slowest takes (lock step: an error on one rank stops all of them)."""
        began = time.perf_counter()
        with progress_bar(self.progress and (group is None or group.is_main), self.count) as bar:
            def work(batch: ImageBatch) -> None:
                self.pipeline.add(batch)
                bar(len(batch))

            if group is None:
                for batch in batches:
                    work(batch)
            else:
                assert total is not None and self.batch_size is not None
                run_in_lockstep(group, batches, lockstep_steps(total, group.world_size, self.batch_size), work)
        self.elapsed += time.perf_counter() - began

    def statistics(self, group: Group | None = None) -> SplitStatistics:
        """This process's statistics, on the host, after the last batch (placed after the lower ranks'
        images, where ``group`` is given and the run kept its logits): no sum over the group yet."""
        stats = self.pipeline.finish(group)
        assert stats is not None, "a run with a sink keeps no statistics"
        return stats

    def collected(self, group: Group | None = None) -> CollectedFeatures | None:
        """The features kept beside the logits (``features``; None without), after :meth:`statistics`: in a
        ``group``, the moments summed over it and the vectors gathered in rank order, on every process."""
        return None if self.features is None else self.features.finish(group)

    @property
    def buckets(self) -> SplitStatistics | None:
        """The IS-infinity buckets' statistics, after :meth:`statistics` (None without ``infinity_seed``)."""
        return getattr(self.accumulator, "buckets", None)

    def close(self) -> None:
        """The last batches handed to the sink (a run with a ``sink``)."""
        self.pipeline.finish()

    def result(self, stats: SplitStatistics, *, group: Group | None = None, order: str = "input order",
               return_marginal: bool = False, labels: np.ndarray | None = None) -> ISResult:
        """The :class:`~inception_score.ISResult` of ``stats`` (in a ``group``: summed over it, once);
        ``order``: the words of :attr:`ISResult.order`; ``labels``: the ``(N,)`` classes of the images in
        input order, for the check that the input is not sorted by class."""
        ordered = None if labels is None else label_order(labels, self.splits, self.shuffle_seed)
        return result_of(stats, self.scorer, self.elapsed, return_marginal, order, group,
                         shuffled=self.shuffle_seed is not None, split_size=self.splits.split_size, labels=ordered,
                         buckets=self.buckets, infinity_seed=self.infinity_seed)

    def finish(self, group: Group | None = None, *, order: str = "input order", return_marginal: bool = False,
               labels: np.ndarray | None = None) -> ISResult:
        """:meth:`statistics`, then :meth:`result`: the score of every image added, on every process."""
        return self.result(self.statistics(group), group=group, order=order, return_marginal=return_marginal,
                           labels=labels)


def result_of(
    stats: SplitStatistics, scorer: Any, elapsed: float, return_marginal: bool,
    order: str = "input order", group: Group | None = None, shuffled: bool = False,
    split_size: int | None = None, labels: LabelOrder | None = None,
    buckets: SplitStatistics | None = None, infinity_seed: int | None = None,
) -> ISResult:
    """The :class:`~inception_score.ISResult` of complete statistics computed by ``scorer``'s network (in a
    ``group``: each process's own, summed here in one exchange; the time is the slowest process's)."""
    exchanged = 0
    if group is not None:
        stats = all_reduce_statistics(group, stats)
        elapsed = max_over_ranks(group, elapsed)
        exchanged = statistics_bytes(stats.splits, stats.sum_p.shape[1])
        if buckets is not None:
            buckets = all_reduce_statistics(group, buckets)
            exchanged += statistics_bytes(buckets.splits, buckets.sum_p.shape[1], buckets.sketch.shape[1])
    weights = scorer.weights
    return result_from_statistics(
        stats, weights_path=str(weights.path), weights_sha256=weights.sha256, weights_verified=weights.verified,
        device=str(scorer.device), dtype=scorer.dtype, elapsed=elapsed, return_marginal=return_marginal, order=order,
        processes=1 if group is None else group.world_size, exchanged_bytes=exchanged, shuffled=shuffled,
        precision=getattr(scorer, "effective_precision", "exact"), precision_note=getattr(scorer, "precision_note", ""),
        split_size=split_size, labels=labels,
        buckets=buckets, infinity_seed=infinity_seed,
    )
