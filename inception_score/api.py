"""The public API: :func:`inception_score`, one call for a whole set of images, and
:class:`InceptionScore`, a metric object for training loops (``update`` / ``compute`` / ``reset``) that
gives the same number on the same images. Both open their images and feed one
:class:`~inception_score.engine.run.ScoringRun`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.data import Dataset, Subset

from .arguments import whole_number
from .atomic import refuse_link
from .engine.features import REFERENCE_FEATURES, CollectedFeatures, FeatureRequest, feature_request
from .references.loading import ALONE, Shared, load_reference as load_reference_source
from .references.reference import Reference, check_same_network, reference_notes
from .score.evaluation import FeatureSet, chosen_metrics, evaluate, parse_metrics
from .score.kid import KID_SUBSET_SIZE, KID_SUBSETS
from .engine.distributed import Group, agreeing, current_group, gather_objects, shard_bounds
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
    reference: Any = None,
    metrics: str | Iterable[str] | None = None,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    save_features: str | os.PathLike | None = None,
    save_reference: str | os.PathLike | None = None,
    cache: bool = True,
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

    ``reference``: FID, sFID, KID, precision and recall against it, from the same forward pass
    (``result.evaluation``): a :class:`~inception_score.references.reference.Reference`, a reference
    ``.npz`` (guided-diffusion's reference batch, statistics alone, or one ``save_reference`` wrote), or
    images of any kind above (their features cached by content unless ``cache=False``). ``metrics``
    chooses among ``fid``, ``sfid``, ``kid``, ``pr`` (default: all the reference allows). KID draws
    ``kid_subsets`` subsets of ``kid_subset_size`` from ``seed``, as torch-fidelity does.
    ``save_features``: an ``.npz`` of ``pool_3`` (N, 2048) and ``spatial`` (N, 2023) float32 in input
    order; ``save_reference``: an ``.npz`` of these images as a reference (``mu``, ``sigma``, ``mu_s``,
    ``sigma_s`` in guided-diffusion's layout, with the pool_3 vectors).
    """
    rule = split_rule(splits, split_size)  # raises on a bad or doubly given rule, before anything loads
    settings = scorer_options(options, **option_keywords)
    seed = whole_number(seed, "seed", minimum=0, maximum=2**32 - 1)  # numpy's RandomState takes 0 .. 2**32 - 1
    if infinity:
        infinity_seed = whole_number(infinity_seed, "infinity_seed", minimum=0, maximum=2**32 - 1)
    asked = parse_metrics(metrics)
    if asked and reference is None:
        raise InputError(f"metrics {sorted(asked)} compare the images with a reference: pass reference=")
    for target, option in ((save_features, "save_features"), (save_reference, "save_reference")):
        if target is not None:
            refuse_link(target, option)
    group = current_group(distributed)
    shuffle_seed = seed if shuffle else None
    plan = ScorePlan(rule, settings, input_range, shuffle_seed, order_text(shuffle_seed), limit, num_images, progress,
                     return_marginal, infinity_seed if infinity else None)
    with agreeing(group):
        scorer = scorer or build_scorer(settings, progress and (group is None or group.is_main))
    chosen: frozenset[str] = frozenset()
    ref = None
    if reference is not None:
        ref = _reference(reference, plan, scorer, group, cache, say=_stderr,
                         vectors=asked is None or bool(asked & {"kid", "pr"}))
        chosen = chosen_metrics(asked, ref.side, f"the reference {ref.source}")
        check_same_network(ref, scorer)
        if asked and "kid" in asked and (ref.count or kid_subset_size) < kid_subset_size:  # before the samples run
            raise InputError(f"KID subsets of {kid_subset_size} images from a reference of {ref.count}: pass a "
                             "smaller kid_subset_size (--kid-subset-size)")
    request = feature_request(chosen, save_features is not None, save_reference is not None)
    result, collected = _score(images, plan, scorer, group, request)
    if collected is None:
        return result
    side = collected.side()
    if group is None or group.is_main:
        if save_features is not None:
            collected.save(save_features)
        if save_reference is not None:
            Reference(side, "images", str(images), weights_sha256=scorer.weights.sha256).save(save_reference)
    if ref is None:
        return result
    evaluation = evaluate(side, ref.side, chosen, ref.info(), kid_subsets, kid_subset_size, seed,
                          warn=group is None or group.is_main, extra_notes=reference_notes(ref, scorer),
                          optional=chosen if asked is None else frozenset())
    return dataclasses.replace(result, evaluation=evaluation)


@dataclass(frozen=True)
class ScorePlan:
    """How :func:`inception_score` scores a source of images (the samples, or a reference's images)."""

    rule: SplitRule
    settings: ScorerOptions
    input_range: str | InputRange | None
    shuffle_seed: int | None
    order: str
    limit: int | None
    num_images: int | None
    progress: bool
    return_marginal: bool
    infinity_seed: int | None

    def for_reference(self) -> ScorePlan:
        """The reference's images: all of them, in their own order, in their own range."""
        return dataclasses.replace(self, rule=split_rule(1), input_range=None, shuffle_seed=None,
                                   order=order_text(None), limit=None,
                                   num_images=None, return_marginal=False, infinity_seed=None)


def _score(images: Any, plan: ScorePlan, scorer: InceptionScorer, group: Group | None,
           request: FeatureRequest | None) -> tuple[ISResult, CollectedFeatures | None]:
    """One scoring run over ``images`` (shared out over ``group``), keeping the ``request``ed features."""
    if group is not None:
        return _distributed_score(group, images, plan, scorer, request)
    settings = plan.settings
    stream = image_stream(images, batch_size=settings.batch_size, input_range=plan.input_range,
                          num_workers=settings.num_workers, limit=plan.limit, num_images=plan.num_images,
                          pin_memory=scorer.device.type == "cuda")
    run = ScoringRun(scorer, plan.rule, shuffle_seed=plan.shuffle_seed, infinity_seed=plan.infinity_seed,
                     num_images=stream.num_images, progress=plan.progress, features=request)
    run.feed(stream.batches)
    result = run.finish(order=plan.order, return_marginal=plan.return_marginal, labels=stream.labels)
    return result, run.collected()


def load_reference(
    reference: Any,
    *,
    scorer: InceptionScorer | None = None,
    cache: bool = True,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
    distributed: bool | None = None,
    metrics: str | Iterable[str] | None = None,
    options: ScorerOptions | None = None,
    **option_keywords: Unpack[ScorerKeywords],
) -> Reference:
    """A :class:`~inception_score.references.reference.Reference` for FID, sFID, KID and precision/recall,
    loaded or built once, to pass as ``reference=`` to many calls (or to a metric object).

    ``reference``: a reference ``.npz`` (guided-diffusion's reference batch: its stored statistics, and its
    ``arr_0`` images scored for KID and precision/recall; statistics alone; or one ``save_reference``
    wrote), or images of any kind :func:`inception_score` takes, scored here with ``scorer`` (or the
    network of ``options``). Features computed from a file, folder or array are cached by content in
    ``$INCEPTION_SCORE_CACHE`` (default ``~/.cache/inception_score``) unless ``cache=False``; ``say``
    hears where they came from (default: one line on stderr; ``say=lambda text: None`` silences it). In a
    ``torch.distributed`` group the images are shared out as :func:`inception_score` shares its own; every
    process uses the cache as rank 0 finds it (which needs a cache folder all of them share), and rank 0
    writes it.
    ``metrics``: the ones it will serve, where known; without KID and precision/recall among them, a
    guided-diffusion batch that stores both statistics is read without scoring its images.
    """
    settings = scorer_options(options, **option_keywords)
    group = current_group(distributed)
    with agreeing(group):
        scorer = scorer or build_scorer(settings, progress and (group is None or group.is_main))
    plan = ScorePlan(split_rule(1), settings, None, None, order_text(None), None, None, progress, False, None)
    asked = parse_metrics(metrics)
    return _reference(reference, plan, scorer, group, cache, say or _stderr,
                      vectors=asked is None or bool(asked & {"kid", "pr"}))


def _reference(reference: Any, plan: ScorePlan, scorer: InceptionScorer, group: Group | None, cache: bool,
               say: Callable[[str], None] | None, vectors: bool = True) -> Reference:
    """:func:`load_reference` with the network and group chosen: the images scored by ``plan`` (one split,
    their own order and range), keeping every feature any metric needs."""
    def score_images(images: Any) -> FeatureSet:
        collected = _score(images, plan.for_reference(), scorer, group, REFERENCE_FEATURES)[1]
        assert collected is not None
        return collected.side()

    main = group is None or group.is_main
    shared = ALONE if group is None else Shared(  # every rank runs the same collectives: rank 0 decides
        agree=lambda value: gather_objects(group, value, "the reference cache's use")[0], writes=main)
    return load_reference_source(reference, score_images, scorer.weights.sha256,
                                 getattr(scorer, "effective_precision", "exact"), cache=cache,
                                 say=(say if main else None), vectors=vectors, shared=shared)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


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


def _distributed_score(group: Group, images: Any, plan: ScorePlan, scorer: InceptionScorer,
                       request: FeatureRequest | None) -> tuple[ISResult, CollectedFeatures | None]:
    """:func:`inception_score` on this rank's shard, in lock step with the other ranks."""
    settings = plan.settings
    with agreeing(group):
        part, part_range, total, offset, count, labels = _shard(images, plan.input_range, plan.limit, group)
        check_split_count(total, plan.rule)
        batches: Any = []
        if count:
            batches = image_stream(part, batch_size=settings.batch_size, input_range=part_range,
                                   num_workers=settings.num_workers, pin_memory=scorer.device.type == "cuda").batches
        run = ScoringRun(scorer, plan.rule, shuffle_seed=plan.shuffle_seed, infinity_seed=plan.infinity_seed,
                         num_images=count, offset=offset, total=total, progress=plan.progress,
                         batch_size=settings.batch_size, features=request)
    run.feed(batches, group, total)
    with agreeing(group):
        stats = run.statistics()
    result = run.result(stats, group=group, order=f"{plan.order}, shared out over {group.world_size} processes",
                        return_marginal=plan.return_marginal, labels=labels)
    return result, run.collected(group)


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

    ``infinity=True`` adds IS-infinity to the result, as :func:`inception_score` does; ``reference`` (loaded
    once, here: a :func:`load_reference` source or its result), ``metrics``, ``kid_subsets`` and
    ``kid_subset_size`` add FID, sFID, KID, precision and recall against it to every ``compute``, from the
    same pass (not with ``indices``: the features are kept in update order). The network's options
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
        reference: Any = None,
        metrics: str | Iterable[str] | None = None,
        kid_subsets: int = KID_SUBSETS,
        kid_subset_size: int = KID_SUBSET_SIZE,
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
        self.seed = whole_number(seed, "seed", minimum=0, maximum=2**32 - 1)
        self.kid = (kid_subsets, kid_subset_size)
        asked = parse_metrics(metrics)
        if asked and reference is None:
            raise InputError(f"metrics {sorted(asked)} compare the images with a reference: pass reference=")
        self.reference = None if reference is None else load_reference(reference, scorer=self.scorer,
                                                                        distributed=distributed)
        self.metrics = frozenset() if self.reference is None else chosen_metrics(
            asked, self.reference.side, f"the reference {self.reference.source}")
        self.optional = self.metrics if asked is None else frozenset()
        if self.reference is not None:
            check_same_network(self.reference, self.scorer)
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
                                   announced=self.num_images, batch_size=self.batch_size,
                                   features=feature_request(self.metrics, False, False))
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
            result = run.finish(order=order, return_marginal=return_marginal)
        else:
            with agreeing(group, InputError):
                stats = run.statistics(group)
            result = run.result(stats, group=group, order=order, return_marginal=return_marginal)
        if self.reference is None:
            return result
        collected = run.collected(group)
        assert collected is not None
        evaluation = evaluate(collected.side(), self.reference.side, self.metrics, self.reference.info(), *self.kid,
                              self.seed, warn=group is None or group.is_main,
                              extra_notes=reference_notes(self.reference, self.scorer), optional=self.optional)
        return dataclasses.replace(result, evaluation=evaluation)
