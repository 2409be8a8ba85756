"""The device pipeline: each batch to the scorer's device and its logits to the accumulator, without
waiting for the device batch by batch.

Each batch goes to the device (on CUDA: pinned and copied on a side stream, so that the next batch's
copy runs while the network computes this one), its logits stay there, and the accumulator adds their
statistics there too (:class:`inception_score.score.statistics.DeviceStatistics`). The host waits for the device
only at a few points of a run:

- every ``SETTLE_EVERY`` batches (sooner when the inputs kept reach ``KEPT_BYTES``), where fast mode
  computes in float16 on CUDA: each batch carries a flag on the device, True when float16 overflowed
  (inf or NaN logits). Its statistics are left out while flagged; here the host reads the flags and
  computes the flagged batches again without float16 (:meth:`InceptionScorer.recompute_outputs`),
  from the inputs it kept for that, and adds their statistics then;
- at the same interval, where an accumulator keeps logits until the image count is known: they move
  to the host, one copy for the batches since the last such point;
- once at the end, where the statistics come back to the host.

``scorer.host_syncs`` counts these points (and one per :meth:`InceptionScorer.outputs` call). A scorer
without ``device_outputs`` (any object with ``logits``, such as a stand-in network) is run through
``logits`` with no flag.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from ..network.outputs import Output
from ..readers.inputs import ImageBatch
from .distributed import Group
from .features import FeatureCollector
from ..score.statistics import SplitStatistics

# Batches between two reads of the float16 overflow flags: the host then waits for the device about
# once in 16 batches, and the inputs of at most 16 batches are kept for a recompute.
SETTLE_EVERY = 16
# The inputs kept for a possible recompute never exceed this (large images: a settle point sooner).
KEPT_BYTES = 256 * 2**20


class Accumulating(Protocol):
    """What the pipeline needs of an accumulator (:mod:`inception_score.engine.accumulators`): ``begin`` before
    the network sees a batch, ``add`` its logits (``where``: the indices, for one), ``redo`` a batch computed
    again, ``flush`` what it keeps on the device, ``finish`` with the statistics (None: it keeps none).
    ``settle_every``: batches between two settle points, where it needs fewer than the pipeline's own."""

    settle_every: int | None

    def begin(self, batch: ImageBatch) -> None: ...

    def add(self, logits: torch.Tensor, *where: Any, skip: torch.Tensor | None = None) -> Any: ...

    def redo(self, token: Any, logits: torch.Tensor) -> None: ...

    def flush(self) -> bool: ...

    def finish(self, group: Group | None = None) -> SplitStatistics | None: ...


class DevicePipeline:
    """Batches of pixels in, their statistics added to ``accumulator`` on the scorer's device."""

    def __init__(self, scorer: Any, accumulator: Accumulating, features: FeatureCollector | None = None) -> None:
        self.scorer = scorer
        self.accumulator = accumulator
        self.features = features
        self.request = (Output.LOGITS_UNBIASED, *features.outputs) if features else None
        self.device = getattr(scorer, "device", torch.device("cpu"))
        self.copy_stream: torch.cuda.Stream | None = None  # CUDA's, made at the first batch
        self.pending: list[tuple[Any, ImageBatch, torch.Tensor, int | None]] = []  # (token, input, flag, slot)
        self.kept_bytes = 0
        self.since_settle = 0
        self.settle_every = accumulator.settle_every or SETTLE_EVERY

    def add(self, batch: ImageBatch, *where: Any) -> None:
        """Score one batch; ``where`` goes on to the accumulator's ``add`` (indices, for one)."""
        self.accumulator.begin(batch)
        batch, owned = self._to_device(batch)
        slot = None
        if self.request is not None:  # the features of FID, KID, ... from the same pass
            (logits, *features), overflowed = self.scorer.device_outputs(batch, self.request)
            slot = self.features.add(tuple(features), pending=overflowed is not None)
        elif hasattr(self.scorer, "device_outputs"):
            logits, overflowed = self.scorer.device_outputs(batch)
        else:
            logits, overflowed = self.scorer.logits(batch), None
        token = self.accumulator.add(logits, *where, skip=overflowed)
        self.since_settle += 1
        if overflowed is not None:
            kept = batch if owned else _copy(batch)
            self.pending.append((token, kept, overflowed, slot))
            self.kept_bytes += _bytes(kept)
        if self.since_settle >= self.settle_every or self.kept_bytes >= KEPT_BYTES:
            self.settle()

    def settle(self) -> None:
        """Read the pending flags, add the flagged batches computed again without float16, and move
        kept logits to the host: one wait for the device, or none when there is nothing to read."""
        self.since_settle = 0
        waited = False
        if self.pending:
            flags = torch.stack([flag for _, _, flag, _ in self.pending]).cpu().tolist()
            waited = True
            for (token, kept, _, slot), overflowed in zip(self.pending, flags):
                if self.features is None:
                    if overflowed:
                        self.accumulator.redo(token, self.scorer.recompute_outputs(kept))
                    continue
                again = self.scorer.recompute_outputs(kept, self.request) if overflowed else None
                if again is not None:
                    self.accumulator.redo(token, again[0])
                self.features.resolve(slot, None if again is None else tuple(again[1:]))
            self.pending.clear()
            self.kept_bytes = 0
        waited = self.accumulator.flush() or waited
        if self.features is not None:
            waited = self.features.flush() or waited
        if waited:
            self._count_sync()

    def finish(self, group: Group | None = None) -> SplitStatistics | None:
        """The accumulator's statistics, on the host (its ``finish``; ``group``: the processes whose images
        it places this process's after): the last flags read, then the one copy of them to the host."""
        self.settle()
        self._count_sync()
        return self.accumulator.finish(group)

    def _count_sync(self) -> None:
        if hasattr(self.scorer, "host_syncs"):
            self.scorer.host_syncs += 1

    def _to_device(self, batch: ImageBatch) -> tuple[ImageBatch, bool]:
        """On CUDA, a tensor batch pinned and copied on the side stream (the scorer's stream waits for
        that copy only), and True: the copy is the pipeline's own. Anything else as it came (the scorer
        moves it), and False."""
        if self.device.type != "cuda" or not isinstance(batch, torch.Tensor) or batch.device.type == "cuda":
            return batch, False
        if self.copy_stream is None:
            self.copy_stream = torch.cuda.Stream(self.device)
        host = batch if batch.is_pinned() else batch.pin_memory()
        with torch.cuda.stream(self.copy_stream):
            moved = host.to(self.device, non_blocking=True)
        compute = torch.cuda.current_stream(self.device)
        compute.wait_stream(self.copy_stream)
        moved.record_stream(compute)  # allocated on the side stream, used on the scorer's
        return moved, True


def _copy(batch: ImageBatch) -> ImageBatch:
    """The input kept until its flag is read: a copy, since the caller may reuse its tensor meanwhile."""
    return batch.clone() if isinstance(batch, torch.Tensor) else [image.clone() for image in batch]


def _bytes(batch: ImageBatch) -> int:
    images = [batch] if isinstance(batch, torch.Tensor) else batch
    return sum(image.numel() * image.element_size() for image in images)
