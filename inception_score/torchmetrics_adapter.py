"""The Inception Score as a ``torchmetrics.Metric``, for Lightning and torchmetrics users (imported only
when torchmetrics is installed: ``pip install torchmetrics``).

Its states are the per-split sufficient statistics of :class:`~inception_score.metric.SplitStatistics`
with ``dist_reduce_fx="sum"``, so ``self.log("is", metric)`` in a LightningModule syncs about 240 KB per
process (10 splits) whatever the number of images: no features are gathered.

The order, which decides each image's split: the ``k``-th image a process of rank ``r`` (of ``W``)
receives has global position ``k W + r``, the order of a ``DistributedSampler`` (its shuffle or not).
Positions from ``num_images`` on are that sampler's padding and are dropped. With one process, images
are in ``update`` order. The score then equals :func:`inception_score.inception_score` on the images in
the sampler's global order.

torchmetrics' own ``InceptionScore`` differs: it keeps every feature (N x 1008 float32, all-gathered to
every rank), splits after an unseeded ``torch.randperm`` into ``torch.chunk`` pieces (``ceil(N /
splits)`` images each), reports the sample standard deviation (ddof=1), and from torchmetrics 1.8 on
feeds torch-fidelity's network through an antialiased resize. See docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torchmetrics import Metric

from .inputs import InputRange, parse_input_range, standardize_batch
from .metric import SplitStatistics, check_split_count, shuffled_positions, split_of_positions, summarize
from .network import NUM_CLASSES
from .scorer import TORCH_FIDELITY_SEED, InceptionScorer, Precision


class InceptionScoreMetric(Metric):
    """``update(images)`` per batch on each process, ``compute()`` -> ``(mean, std)`` float64 tensors."""

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        splits: int = 10,
        *,
        num_images: int,
        weights: str | os.PathLike | None = None,
        allow_unverified: bool = False,
        input_range: str | InputRange | None = None,
        shuffle: bool = False,
        seed: int = TORCH_FIDELITY_SEED,
        precision: Precision = "exact",
        scorer: InceptionScorer | Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_split_count(num_images, splits)
        self.splits = splits
        self.num_images = num_images
        self.input_range = parse_input_range(input_range)
        self.positions = shuffled_positions(num_images, seed) if shuffle else np.arange(num_images)
        self.scorer = scorer or InceptionScorer(weights, device=self.device, allow_unverified=allow_unverified,
                                                precision=precision, progress=False)
        for field in dataclasses.fields(SplitStatistics):
            zeros = np.asarray(getattr(SplitStatistics.zeros(splits, NUM_CLASSES), field.name))
            self.add_state(field.name, torch.zeros(zeros.shape, dtype=torch.float64), dist_reduce_fx="sum")
        self._received = 0  # images this process received since the last reset (not a synced state)

    def reset(self) -> None:
        super().reset()
        self._received = 0

    def state_bytes(self) -> int:
        """Bytes of state each process contributes to a sync."""
        return sum(getattr(self, f.name).numel() * 8 for f in dataclasses.fields(SplitStatistics))

    def update(self, images: Any) -> None:  # type: ignore[override]
        pixels = standardize_batch(images, self.input_range, "the batch given to update()")
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
        order = (self._received + np.arange(len(pixels))) * world + rank
        self._received += len(pixels)
        keep = order < self.num_images  # the rest is a DistributedSampler's padding
        if not keep.any():
            return
        logits = self.scorer.logits(pixels[torch.from_numpy(np.flatnonzero(keep))])
        stats = SplitStatistics.zeros(self.splits, NUM_CLASSES)
        stats.add(logits, split_of_positions(self.positions[order[keep]], self.num_images, self.splits))
        for field in dataclasses.fields(SplitStatistics):
            state = getattr(self, field.name)
            state += torch.from_numpy(np.asarray(getattr(stats, field.name), dtype=np.float64)).to(state.device)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        values = {f.name: getattr(self, f.name).cpu().numpy() for f in dataclasses.fields(SplitStatistics)}
        values["count"] = np.rint(values["count"]).astype(np.int64)
        stats = SplitStatistics(**values)
        received = int(stats.count.sum())
        if received != self.num_images:
            raise ValueError(f"the processes received {received} of the {self.num_images} images announced: "
                             "score the whole data set, or announce its real size")
        mean, std = summarize(stats.scores())
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
