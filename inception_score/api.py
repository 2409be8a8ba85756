"""The public API: :func:`inception_score`, one call for a whole set of images, and
:class:`InceptionScore`, a metric object for training loops (``update`` / ``compute`` / ``reset``) that
gives the same number on the same images. Both run :class:`~inception_score.runner.InceptionScorer`
and route each image to its split by :class:`~inception_score.metric.SplitPlan`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, Subset

from .arguments import whole_number
from .accumulators import _check_indices, _IndexedAccumulator, _result, _SplitAccumulator
from .distributed import Group, agreeing, all_gather_counts, current_group, lockstep_steps, run_in_lockstep, shard_bounds
from .errors import InputError
from .files import dataset_labels
from .inputs import ImageBatch, InputRange, image_stream, is_path_like, is_single_image, parse_input_range, standardize_batch
from .metric import SplitRule, SplitStatistics, check_split_count, order_text, split_rule
from .order import label_order
from .pipeline import DevicePipeline
from .protocol import TORCH_FIDELITY_SEED
from .result import ISResult
from . import runner
from .runner import ExactKernel, InceptionScorer, Precision

def inception_score(
    images: Any,
    *,
    splits: int | None = None,
    split_size: int | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    weights: str | os.PathLike | None = None,
    allow_unverified: bool = False,
    input_range: str | InputRange | None = None,
    shuffle: bool = False,
    seed: int = TORCH_FIDELITY_SEED,
    num_workers: int = 0,
    limit: int | None = None,
    num_images: int | None = None,
    progress: bool = False,
    precision: Precision = "exact",
    exact_kernel: ExactKernel = "auto",
    return_marginal: bool = False,
    scorer: InceptionScorer | None = None,
    distributed: bool | None = None,
    infinity: bool = False,
    infinity_seed: int = TORCH_FIDELITY_SEED,
) -> ISResult:
    """The Inception Score of ``images``, as the paper's code computes it.

    ``images``: a uint8 tensor or array ``(N, 3, H, W)`` / ``(N, H, W, 3)``; floats with
    ``input_range``; a sequence of images of any sizes; an iterable of batches; a ``Dataset`` or
    ``DataLoader`` yielding images or ``(image, label)``; or a path (folder, .npy/.npz, archive).
    Splits are contiguous in input order unless ``shuffle`` (torch-fidelity's permutation with
    ``seed``): ``splits`` equal parts (default 10, the paper's code), or chunks of ``split_size`` images,
    the last one shorter (guided-diffusion's evaluator); not both. ``num_images`` announces the length of an unsized iterable, so that memory stays flat.
    Pass a ready ``scorer`` to reuse a loaded network across calls. ``precision`` and ``exact_kernel``
    (how "exact" multiplies: "ieee" float32, "split-tf32", or "auto") are
    :class:`~inception_score.runner.InceptionScorer`'s.

    Inside an initialised ``torch.distributed`` process group (unless ``distributed=False``), a sized
    input (tensor, array, sequence, ``Dataset``, path) is shared out: each process reads and scores its
    contiguous part, the statistics are summed once, and every process returns the result one process
    would give on the same images in the same order (:mod:`inception_score.distributed`).

    ``infinity=True`` also computes IS-infinity in the same pass (:mod:`inception_score.infinity`):
    ``is_n``, the one-split scores of the first n images of the order ``infinity_seed`` gives, for 15 n
    from N/10 to N, and ``is_infinity``, the intercept of their least-squares line against 1/n.
    """
    rule = split_rule(splits, split_size)  # raises on a bad or doubly given rule, before anything loads
    if shuffle:  # torch-fidelity's permutation: numpy's RandomState(seed), which takes 0 .. 2**32 - 1
        seed = whole_number(seed, "seed", minimum=0, maximum=2**32 - 1)
    if infinity:
        infinity_seed = whole_number(infinity_seed, "infinity_seed", minimum=0, maximum=2**32 - 1)
    group = current_group(distributed)
    shuffle_seed = seed if shuffle else None
    order = order_text(shuffle_seed)
    ordered_by = infinity_seed if infinity else None
    if group is not None:
        return _distributed_score(group, images, rule, batch_size=batch_size, device=device, weights=weights,
                                  allow_unverified=allow_unverified, input_range=input_range, shuffle_seed=shuffle_seed,
                                  order=order, num_workers=num_workers, limit=limit, progress=progress,
                                  precision=precision, return_marginal=return_marginal, scorer=scorer,
                                  infinity_seed=ordered_by, exact_kernel=exact_kernel)
    scorer = scorer or runner.InceptionScorer(
        weights, device=device, allow_unverified=allow_unverified, precision=precision, progress=progress,
        exact_kernel=exact_kernel,
    )
    stream = image_stream(
        images,
        batch_size=batch_size,
        input_range=input_range,
        num_workers=num_workers,
        limit=limit,
        num_images=num_images,
        pin_memory=scorer.device.type == "cuda",
    )
    accumulator = _SplitAccumulator(rule, stream.num_images, shuffle_seed, infinity_seed=ordered_by)
    pipeline = DevicePipeline(scorer, accumulator)
    start = time.perf_counter()
    with progress_bar(progress, stream.num_images) as bar:
        for batch in stream.batches:
            pipeline.add(batch)
            bar(len(batch))
    stats = pipeline.finish()
    labels = None if stream.labels is None else label_order(stream.labels, rule, shuffle_seed)
    return _result(stats, scorer, time.perf_counter() - start, return_marginal, order, shuffled=shuffle,
                   split_size=rule.split_size, labels=labels, buckets=accumulator.buckets, infinity_seed=ordered_by)


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


def _shard(images: Any, input_range: str | InputRange | None, limit: int | None,
           group: Group) -> tuple[Any, InputRange | None, int, int, int, np.ndarray | None]:
    """This rank's part of a sized input: ``(part, its input range, global count, offset, local count,
    the labels of all the images scored or None)``. Only the part is read: files are listed, not decoded,
    before the split."""
    input_range = parse_input_range(input_range)
    if is_path_like(images):
        from .files import open_paths

        paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        source: Any = open_paths([Path(p) for p in paths], input_range=input_range)
        # The file readers already map declared float ranges to [0, 255].
        input_range = (0.0, 255.0) if input_range is not None else None
    elif isinstance(images, (torch.Tensor, np.ndarray)):
        source = images
    elif isinstance(images, Sequence) and len(images) > 0 and is_single_image(images[0]):
        source = images
    elif isinstance(images, Dataset) and not isinstance(images, IterableDataset) and hasattr(images, "__len__"):
        source = images
    else:
        raise InputError(
            f"in a torch.distributed group, inception_score() shares out sized inputs only (a tensor, array, "
            f"sequence of images, Dataset or path), not a {type(images).__name__}: use the InceptionScore metric "
            f"object with a DistributedSampler, or pass distributed=False to score it in this process alone"
        )
    total = len(source) if limit is None else min(len(source), limit)
    check_split_count(total, 1)
    start, stop = shard_bounds(total, group.rank, group.world_size)
    labels = None
    if isinstance(source, Dataset):
        part = Subset(source, range(start, stop))
        labels = dataset_labels(source, total)
    else:
        part = source[start:stop]
    return part, input_range, total, start, stop - start, labels


def _distributed_score(group: Group, images: Any, splits: SplitRule, *, batch_size: int, device: str | torch.device,
                       weights: str | os.PathLike | None, allow_unverified: bool, input_range: str | InputRange | None,
                       shuffle_seed: int | None, order: str, num_workers: int, limit: int | None, progress: bool,
                       precision: Precision, return_marginal: bool, scorer: InceptionScorer | None,
                       infinity_seed: int | None = None, exact_kernel: ExactKernel = "auto") -> ISResult:
    """:func:`inception_score` on this rank's shard, in lock step with the other ranks."""
    with agreeing(group):
        scorer = scorer or runner.InceptionScorer(weights, device=device, allow_unverified=allow_unverified,
                                           precision=precision, progress=progress and group.is_main,
                                           exact_kernel=exact_kernel)
        part, part_range, total, offset, count, labels = _shard(images, input_range, limit, group)
        check_split_count(total, splits)
        batches: Iterable[ImageBatch] = []
        if count:
            batches = image_stream(part, batch_size=batch_size, input_range=part_range, num_workers=num_workers,
                                   pin_memory=scorer.device.type == "cuda").batches
        accumulator = _SplitAccumulator(splits, count, shuffle_seed, offset, total, infinity_seed)
    assert scorer is not None
    pipeline = DevicePipeline(scorer, accumulator)
    start = time.perf_counter()
    with progress_bar(progress and group.is_main, count) as bar:
        def work(batch: ImageBatch) -> None:
            pipeline.add(batch)
            bar(len(batch))

        run_in_lockstep(group, batches, lockstep_steps(total, group.world_size, batch_size), work)
    with agreeing(group):
        stats = pipeline.finish()
    return _result(stats, scorer, time.perf_counter() - start, return_marginal,
                   f"{order}, shared out over {group.world_size} processes", group, shuffled=shuffle_seed is not None,
                   split_size=splits.split_size,
                   labels=None if labels is None else label_order(labels, splits, shuffle_seed),
                   buckets=accumulator.buckets, infinity_seed=infinity_seed)


class InceptionScore:
    """The Inception Score as a metric object for training loops (``update``/``compute``/``reset``).

    ``update`` takes a batch of images (tensor or array, NCHW or NHWC, uint8 or floats with the
    ``input_range`` given here); ``compute`` returns an :class:`ISResult` equal to
    :func:`inception_score` on the same images in the same order. With ``num_images`` given, memory
    stays O(splits x 1008); without it the logits are kept until ``compute``.

    In a ``torch.distributed`` group (unless ``distributed=False``) every process calls ``update`` with
    its own images and ``compute`` on all of them; the statistics are summed once, in float64, and every
    process gets the same result. The global position of each image, which decides its split:

    - ``update(images, indices=...)``: the images' indices in the data set of ``num_images`` images (a
      ``DistributedSampler`` loop). Statistics are kept per split as the images arrive; an index seen by
      several processes (the sampler's padding, which repeats the first indices at the end of the
      last processes' shares) is counted once, by the lowest rank that saw it.
    - without indices: rank-major order, every image of rank 0 in ``update`` order, then rank 1's, and
      so on (``ISResult.order`` says so). The logits are kept until ``compute`` (4 KB per image), since
      a rank's offset is known only when every rank's count is.

    ``infinity=True`` adds IS-infinity to the result, as :func:`inception_score` does; ``precision`` and
    ``exact_kernel`` are :class:`~inception_score.runner.InceptionScorer`'s.

    Never a stale or partial score: call ``reset()`` before a new epoch's images. With ``num_images``,
    images beyond it raise at the ``update`` that brings them (in a group, at ``compute``), fewer raise
    at ``compute``; with indices, an index a process was given again since the last ``reset()`` makes
    ``compute`` raise, with the counts.
    """

    def __init__(
        self,
        splits: int | None = None,
        *,
        split_size: int | None = None,
        num_images: int | None = None,
        weights: str | os.PathLike | None = None,
        device: str | torch.device = "auto",
        allow_unverified: bool = False,
        input_range: str | InputRange | None = None,
        shuffle: bool = False,
        seed: int = TORCH_FIDELITY_SEED,
        precision: Precision = "exact",
        exact_kernel: ExactKernel = "auto",
        batch_size: int = 64,
        scorer: InceptionScorer | None = None,
        distributed: bool | None = None,
        infinity: bool = False,
        infinity_seed: int = TORCH_FIDELITY_SEED,
    ) -> None:
        self.splits = split_rule(splits, split_size)  # 10 equal parts by default, or chunks of split_size
        self.infinity_seed = infinity_seed if infinity else None
        self.num_images = num_images
        self.input_range = parse_input_range(input_range)
        self.shuffle_seed = seed if shuffle else None
        self.order = order_text(self.shuffle_seed)
        self.batch_size = batch_size
        self.distributed = distributed
        self.scorer = scorer or runner.InceptionScorer(
            weights, device=device, allow_unverified=allow_unverified, precision=precision, exact_kernel=exact_kernel
        )
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far (the network stays loaded)."""
        self._plain: _SplitAccumulator | None = None  # built at the first update: the group may come later
        self._indexed: _IndexedAccumulator | None = None
        self._pipeline: DevicePipeline | None = None  # scores the batches into whichever of the two is used
        self._elapsed = 0.0

    @property
    def _accumulator(self) -> _SplitAccumulator:
        if self._plain is None:
            # One process: images arrive in input order; several: the order is fixed at compute().
            alone = current_group(self.distributed) is None
            self._plain = _SplitAccumulator(self.splits, self.num_images if alone else None, self.shuffle_seed,
                                            infinity_seed=self.infinity_seed)
        return self._plain

    def update(self, images: Any, indices: Any = None) -> None:
        """Add a batch ``(B, 3, H, W)`` or ``(B, H, W, 3)``; large batches run in ``batch_size`` chunks.
        ``indices`` ``(B,)``: each image's index in the data set of ``num_images`` images."""
        start = time.perf_counter()
        pixels = standardize_batch(images, self.input_range, "the batch given to update()")
        if indices is not None:
            index_array = _check_indices(indices, pixels.shape[0], self.num_images)
            if self._plain is not None and self._plain.seen:
                raise InputError("update() was called both with and without indices since the last reset(); use one")
            if self._indexed is None:
                assert self.num_images is not None
                group = current_group(self.distributed)
                self._indexed = _IndexedAccumulator(self.splits, self.num_images, self.shuffle_seed,
                                                    keep_last=group.world_size if group else 0,
                                                    infinity_seed=self.infinity_seed)
        elif self._indexed is not None:
            raise InputError("update() was called both with and without indices since the last reset(); use one")
        if self._pipeline is None:
            self._pipeline = DevicePipeline(self.scorer, self._accumulator if indices is None else self._indexed)
        for position, chunk in enumerate(pixels.split(self.batch_size)):
            if indices is None:
                self._pipeline.add(chunk)
            else:
                self._pipeline.add(chunk, index_array[position * self.batch_size : position * self.batch_size + len(chunk)])
        self._elapsed += time.perf_counter() - start

    def _finish(self, accumulator: _SplitAccumulator | _IndexedAccumulator, *args: Any, **kwargs: Any) -> SplitStatistics:
        """The accumulator's statistics on the host, after the pipeline's last flags (when it ran)."""
        if self._pipeline is None:
            return accumulator.finish(*args, **kwargs)
        return self._pipeline.finish(*args, **kwargs)

    def compute(self, return_marginal: bool = False) -> ISResult:
        """The score of every image given since the last ``reset`` (on every process of a group)."""
        group = current_group(self.distributed)
        if group is None:
            if self._indexed is not None:
                stats = self._finish(self._indexed, None)
                return _result(stats, self.scorer, self._elapsed, return_marginal,
                               f"{self.order} of the data set's indices", shuffled=self.shuffle_seed is not None,
                               split_size=self.splits.split_size, buckets=self._indexed.buckets,
                               infinity_seed=self.infinity_seed)
            stats = self._finish(self._accumulator)
            return _result(stats, self.scorer, self._elapsed, return_marginal, self.order,
                           shuffled=self.shuffle_seed is not None, split_size=self.splits.split_size,
                           buckets=self._accumulator.buckets, infinity_seed=self.infinity_seed)
        stats: SplitStatistics | None = None
        buckets: SplitStatistics | None = None
        with agreeing(group, InputError):
            if self._indexed is not None:
                stats = self._finish(self._indexed, group)
                buckets = self._indexed.buckets
                order = f"{self.order} of the data set's indices"
            else:
                counts = all_gather_counts(group, self._accumulator.seen)
                if self.num_images is not None and sum(counts) != self.num_images:
                    raise InputError(f"the {group.world_size} processes received {sum(counts)} images ({counts}) "
                                     f"for the {self.num_images} announced: reset() between epochs, and announce "
                                     "the real number")
                stats = self._finish(self._accumulator, offset=sum(counts[: group.rank]), total=sum(counts))
                buckets = self._accumulator.buckets
                order = f"{self.order}, rank-major over {group.world_size} processes (rank 0's images first)"
        assert stats is not None
        return _result(stats, self.scorer, self._elapsed, return_marginal, order, group,
                       shuffled=self.shuffle_seed is not None, split_size=self.splits.split_size, buckets=buckets,
                       infinity_seed=self.infinity_seed)


