"""The public API: :func:`inception_score`, one call for a whole set of images, and
:class:`InceptionScore`, a metric object for training loops (``update`` / ``compute`` / ``reset``) that
gives the same number on the same images. Both open their images and feed one
:class:`~inception_score.engine.run.ScoringRun`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.data import Dataset, Subset

from .arguments import whole_number
from .engine.distributed import Group, agreeing, current_group, shard_bounds
from .engine.run import ScoringRun
from .engine.runner import InceptionScorer, build_scorer
from .errors import InputError
from .options import ScorerOptions, ScorerKeywords, scorer_options
from .protocol import TORCH_FIDELITY_SEED
from .readers.files import dataset_labels
from .readers.inputs import InputKind, InputRange, classify_input, image_stream, open_path_input, parse_input_range
from .readers.inputs import standardize_batch
from .score.result import ISResult
from .score.statistics import SplitRule, check_split_count, order_text, split_rule
from .engine.accumulators import check_indices

if TYPE_CHECKING:
    from typing_extensions import Unpack


def inception_score(
    images: Any,
    *,
    splits: int | None = None,
    split_size: int | None = None,
    input_range: str | InputRange | None = None,
    shuffle: bool = False,
    seed: int = TORCH_FIDELITY_SEED,
    limit: int | None = None,
    num_images: int | None = None,
    progress: bool = False,
    return_marginal: bool = False,
    scorer: InceptionScorer | None = None,
    distributed: bool | None = None,
    infinity: bool = False,
    infinity_seed: int = TORCH_FIDELITY_SEED,
    options: ScorerOptions | None = None,
    **option_keywords: Unpack[ScorerKeywords],
) -> ISResult:
    """The Inception Score of ``images``, as the paper's code computes it.

    ``images``: a uint8 tensor or array ``(N, 3, H, W)`` / ``(N, H, W, 3)``; floats with
    ``input_range``; a sequence of images of any sizes; an iterable of batches; a ``Dataset`` or
    ``DataLoader`` yielding images or ``(image, label)``; or a path (folder, .npy/.npz, archive).
    Splits are contiguous in input order unless ``shuffle`` (torch-fidelity's permutation with
    ``seed``): ``splits`` equal parts (default 10, the paper's code), or chunks of ``split_size`` images,
    the last one shorter (guided-diffusion's evaluator); not both. ``num_images`` announces the length of an
    unsized iterable, so that memory stays flat. Pass a ready ``scorer`` to reuse a loaded network across calls.

    The network's options (``precision``, ``exact_kernel``, ``device``, ``weights``, ``allow_unverified``,
    ``batch_size``, ``num_workers``) are those of :class:`~inception_score.options.ScorerOptions`: give
    ``options=``, or any of them as keywords (a keyword left None takes ``options``' value, or its default).

    Inside an initialised ``torch.distributed`` process group (unless ``distributed=False``), a sized
    input (tensor, array, sequence, ``Dataset``, path) is shared out: each process reads and scores its
    contiguous part, the statistics are summed once, and every process returns the result one process
    would give on the same images in the same order (:mod:`inception_score.engine.distributed`).

    ``infinity=True`` also computes IS-infinity in the same pass (:mod:`inception_score.score.infinity`):
    ``is_n``, the one-split scores of the first n images of the order ``infinity_seed`` gives, for 15 n
    from N/10 to N, and ``is_infinity``, the intercept of their least-squares line against 1/n.
    """
    rule = split_rule(splits, split_size)  # raises on a bad or doubly given rule, before anything loads
    settings = scorer_options(options, **option_keywords)
    if shuffle:  # torch-fidelity's permutation: numpy's RandomState(seed), which takes 0 .. 2**32 - 1
        seed = whole_number(seed, "seed", minimum=0, maximum=2**32 - 1)
    if infinity:
        infinity_seed = whole_number(infinity_seed, "infinity_seed", minimum=0, maximum=2**32 - 1)
    group = current_group(distributed)
    shuffle_seed = seed if shuffle else None
    order = order_text(shuffle_seed)
    ordered_by = infinity_seed if infinity else None
    if group is not None:
        return _distributed_score(group, images, rule, settings, input_range=input_range, shuffle_seed=shuffle_seed,
                                  order=order, limit=limit, progress=progress, return_marginal=return_marginal,
                                  scorer=scorer, infinity_seed=ordered_by)
    scorer = scorer or build_scorer(settings, progress)
    stream = image_stream(images, batch_size=settings.batch_size, input_range=input_range,
                          num_workers=settings.num_workers, limit=limit, num_images=num_images,
                          pin_memory=scorer.device.type == "cuda")
    run = ScoringRun(scorer, rule, shuffle_seed=shuffle_seed, infinity_seed=ordered_by, num_images=stream.num_images,
                     progress=progress)
    run.feed(stream.batches)
    return run.finish(order=order, return_marginal=return_marginal, labels=stream.labels)


def _shard(images: Any, input_range: str | InputRange | None, limit: int | None,
           group: Group) -> tuple[Any, InputRange | None, int, int, int, np.ndarray | None]:
    """This rank's part of a sized input: ``(part, its input range, global count, offset, local count,
    the labels of all the images scored or None)``. Only the part is read: files are listed, not decoded,
    before the split."""
    input_range = parse_input_range(input_range)
    kind = classify_input(images)
    if kind is None or not kind.shardable:
        raise InputError(
            f"in a torch.distributed group, inception_score() shares out sized inputs only (a tensor, array, "
            f"sequence of images, Dataset or path), not a {type(images).__name__}: use the InceptionScore metric "
            f"object with a DistributedSampler, or pass distributed=False to score it in this process alone"
        )
    source: Any = images
    if kind is InputKind.PATHS:
        source, input_range = open_path_input(images, input_range, scored=limit)
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


def _distributed_score(group: Group, images: Any, splits: SplitRule, settings: ScorerOptions, *,
                       input_range: str | InputRange | None, shuffle_seed: int | None, order: str, limit: int | None,
                       progress: bool, return_marginal: bool, scorer: InceptionScorer | None,
                       infinity_seed: int | None = None) -> ISResult:
    """:func:`inception_score` on this rank's shard, in lock step with the other ranks."""
    with agreeing(group):
        scorer = scorer or build_scorer(settings, progress and group.is_main)
        part, part_range, total, offset, count, labels = _shard(images, input_range, limit, group)
        check_split_count(total, splits)
        batches: Any = []
        if count:
            batches = image_stream(part, batch_size=settings.batch_size, input_range=part_range,
                                   num_workers=settings.num_workers, pin_memory=scorer.device.type == "cuda").batches
        run = ScoringRun(scorer, splits, shuffle_seed=shuffle_seed, infinity_seed=infinity_seed, num_images=count,
                         offset=offset, total=total, progress=progress, batch_size=settings.batch_size)
    run.feed(batches, group, total)
    with agreeing(group):
        stats = run.statistics()
    return run.result(stats, group=group, order=f"{order}, shared out over {group.world_size} processes",
                      return_marginal=return_marginal, labels=labels)


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

    ``infinity=True`` adds IS-infinity to the result, as :func:`inception_score` does. The network's options
    (``options=``, or ``precision``, ``exact_kernel``, ``device``, ``weights``, ``allow_unverified``, ``batch_size``
    as keywords) are :class:`~inception_score.options.ScorerOptions`'; ``update`` runs ``batch_size`` images at a time.

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
        input_range: str | InputRange | None = None,
        shuffle: bool = False,
        seed: int = TORCH_FIDELITY_SEED,
        scorer: InceptionScorer | None = None,
        distributed: bool | None = None,
        infinity: bool = False,
        infinity_seed: int = TORCH_FIDELITY_SEED,
        options: ScorerOptions | None = None,
        **option_keywords: Unpack[ScorerKeywords],
    ) -> None:
        self.splits = split_rule(splits, split_size)  # 10 equal parts by default, or chunks of split_size
        self.options = scorer_options(options, **option_keywords)
        self.infinity_seed = infinity_seed if infinity else None
        self.num_images = num_images
        self.input_range = parse_input_range(input_range)
        self.shuffle_seed = seed if shuffle else None
        self.order = order_text(self.shuffle_seed)
        self.batch_size = self.options.batch_size
        self.distributed = distributed
        self.scorer = scorer or build_scorer(self.options)
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far (the network stays loaded)."""
        self._run: ScoringRun | None = None  # built at the first update: the group may come later
        self._indexed = False

    def _start(self, indexed: bool) -> ScoringRun:
        """The run of this epoch's images, begun at its first update (with or without indices)."""
        if self._run is not None:
            if indexed != self._indexed and self._run.images_seen:
                raise InputError("update() was called both with and without indices since the last reset(); use one")
            if indexed == self._indexed:
                return self._run
        group = current_group(self.distributed)
        self._indexed = indexed
        if indexed:
            assert self.num_images is not None
            self._run = ScoringRun(self.scorer, self.splits, shuffle_seed=self.shuffle_seed,
                                   infinity_seed=self.infinity_seed, indexed=self.num_images,
                                   keep_last=group.world_size if group else 0, batch_size=self.batch_size)
        else:
            # One process: images arrive in input order; several: the order is fixed at compute().
            self._run = ScoringRun(self.scorer, self.splits, shuffle_seed=self.shuffle_seed,
                                   infinity_seed=self.infinity_seed, num_images=self.num_images if group is None else None,
                                   announced=self.num_images, batch_size=self.batch_size)
        return self._run

    def update(self, images: Any, indices: Any = None) -> None:
        """Add a batch ``(B, 3, H, W)`` or ``(B, H, W, 3)``; large batches run in ``batch_size`` chunks.
        ``indices`` ``(B,)``: each image's index in the data set of ``num_images`` images."""
        pixels = standardize_batch(images, self.input_range, "the batch given to update()")
        if indices is None:
            self._start(indexed=False).add(pixels)
        else:
            index_array = check_indices(indices, pixels.shape[0], self.num_images)
            self._start(indexed=True).add(pixels, index_array)

    def compute(self, return_marginal: bool = False) -> ISResult:
        """The score of every image given since the last ``reset`` (on every process of a group)."""
        group = current_group(self.distributed)
        run = self._run or self._start(indexed=False)
        if self._indexed:
            order = f"{self.order} of the data set's indices"
        elif group is None:
            order = self.order
        else:
            order = f"{self.order}, rank-major over {group.world_size} processes (rank 0's images first)"
        if group is None:
            return run.finish(order=order, return_marginal=return_marginal)
        with agreeing(group, InputError):
            stats = run.statistics(group)
        return run.result(stats, group=group, order=order, return_marginal=return_marginal)
