"""Logits to statistics, the one way every path takes: each image goes to its split by its global
position in input order (:class:`~inception_score.score.statistics.SplitPlan`), and, when IS-infinity is
asked for, to its bucket (:func:`~inception_score.score.infinity.infinity_buckets`) as well.

The scoring run (live or buffered, one process or several), the metric objects and the logits file all add
their logits here, so an image lands in the same split whichever way it was scored.
"""

from __future__ import annotations

import numpy as np
import torch

from .infinity import POINTS as INFINITY_POINTS, infinity_buckets
from .statistics import DeviceStatistics, SplitPlan, SplitRule, SplitStatistics


class PlannedStatistics:
    """Statistics of images placed by ``plan``: the per-split sums of
    :class:`~inception_score.score.statistics.SplitStatistics` and, with ``infinity_seed``, those of the 15
    IS-infinity buckets. Kept where the logits are (:class:`~inception_score.score.statistics.DeviceStatistics`:
    on a GPU without waiting for it), read back once by :meth:`numpy`. ``num_classes``: the logits' width."""

    def __init__(self, plan: SplitPlan, num_classes: int, infinity_seed: int | None = None) -> None:
        self.plan = plan
        self.splits = DeviceStatistics(plan.split_count, num_classes)
        self.bucket_ids = None if infinity_seed is None else infinity_buckets(plan.num_images, infinity_seed)
        self.buckets = None if infinity_seed is None else DeviceStatistics(INFINITY_POINTS, num_classes, sketch_size=0)

    def add(self, logits: torch.Tensor, positions: np.ndarray, skip: torch.Tensor | None = None) -> None:
        """Add ``(B, C)`` logits of the images at global ``positions`` ``(B,)`` of input order. ``skip``: a 0-d
        bool tensor on the logits' device; where it holds True the batch adds nothing (float16 overflowed)."""
        positions = np.asarray(positions, dtype=np.int64)
        self.splits.add(logits, self.plan.split_ids(positions), skip)
        if self.buckets is not None and self.bucket_ids is not None:
            self.buckets.add(logits, self.bucket_ids[positions], skip)

    def add_span(self, logits: torch.Tensor, start: int, skip: torch.Tensor | None = None) -> None:
        """:meth:`add` for images at consecutive positions ``start, start + 1, ...``."""
        self.add(logits, np.arange(start, start + logits.shape[0]), skip)

    def numpy(self) -> tuple[SplitStatistics, SplitStatistics | None]:
        """``(split statistics, IS-infinity buckets' statistics or None)`` on the host: one copy each."""
        return self.splits.numpy(), None if self.buckets is None else self.buckets.numpy()


def statistics_of_logits(logits: torch.Tensor, plan: SplitPlan, infinity_seed: int | None = None,
                         ) -> tuple[SplitStatistics, SplitStatistics | None]:
    """The statistics of ``(N, C)`` logits of all ``plan.num_images`` images, in input order."""
    planned = PlannedStatistics(plan, logits.shape[1], infinity_seed)
    planned.add_span(logits, 0)
    return planned.numpy()


def inception_score_from_logits(
    logits: torch.Tensor | np.ndarray, splits: int | SplitRule | None = None, shuffle_seed: int | None = None,
    split_size: int | None = None,
) -> np.ndarray:
    """``(N, C)`` logits of all images, in input order -> ``(S,)`` split scores (``splits``, default 10,
    or chunks of ``split_size``: :class:`~inception_score.score.statistics.SplitRule`).

    ``shuffle_seed`` reorders the images first, exactly as torch-fidelity does.
    """
    logits = torch.as_tensor(logits)
    stats, _ = statistics_of_logits(logits, SplitPlan.of(logits.shape[0], splits, shuffle_seed, split_size))
    return stats.scores()
