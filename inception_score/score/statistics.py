"""The Inception Score itself: pure functions from logits to numbers, no network, no IO.

IS = exp( E_x KL( p(y|x) || p(y) ) ), computed per split over contiguous chunks of the images in
input order, reported as the mean and the population standard deviation (ddof=0) of the split scores
(Salimans et al. 2016, section 4, and ``get_inception_score`` in its code). :class:`SplitRule` says
where the chunks end: ``splits`` equal parts (the paper's code: chunk i = images
[i*N//splits, (i+1)*N//splits)), or chunks of ``split_size`` images, the last one shorter
(guided-diffusion's evaluator). Both agree at 50,000 images in chunks of 5,000.

Per split only two sufficient statistics are needed, thanks to the exact identity

    mean_x KL(p(y|x) || pbar) = mean_x sum_y p log p  -  sum_y pbar log pbar,   pbar = mean_x p(y|x),

so :class:`SplitStatistics` keeps, for each split, the sum of ``p(y|x)`` (one row of 1008 values),
the sum of ``sum_y p log p`` and the image count: one exact pass in O(splits x classes) memory,
and statistics from several processes combine by addition. It also keeps what the split-order
diagnostic (:mod:`inception_score.score.order`) needs: sums of the centred log-ratio of p(y|x), of its
squared norm, and a sketch of its covariance (products of random projections).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..arguments import whole_number
from ..errors import InputError
from ..protocol import PUBLISHED_SPLITS

# Pairs of random projections in the order diagnostic's covariance sketch (inception_score.score.order
# explains the size), drawn from a fixed seed so that every process and every run uses the same.
ORDER_SKETCH_SIZE = 1024
ORDER_SKETCH_SEED = 0


@functools.lru_cache(maxsize=4)
def sketch_projections(num_classes: int, size: int, device: str = "cpu") -> torch.Tensor:
    """``(C, 2 size)`` float64 standard normal entries: columns ``k`` and ``size + k`` are the pair
    ``(g_k, h_k)`` of the order sketch. The same numbers on every device (drawn on the CPU)."""
    generator = torch.Generator().manual_seed(ORDER_SKETCH_SEED)
    return torch.randn(num_classes, 2 * size, generator=generator, dtype=torch.float64).to(device)


@dataclass(frozen=True)
class SplitRule:
    """How the images, in scoring order, are cut into contiguous splits; exactly one field is set.

    ``splits``: that many parts, split i = images ``[i*N//splits, (i+1)*N//splits)`` (the paper's code).
    ``split_size``: chunks of that many images, split i = ``[i*K, min((i+1)*K, N))``, the last one
    shorter when K does not divide N (``compute_inception_score`` of guided-diffusion's evaluator).
    """

    splits: int | None = PUBLISHED_SPLITS
    split_size: int | None = None

    def __post_init__(self) -> None:
        if (self.splits is None) == (self.split_size is None):
            raise InputError("give either a number of splits or a split size, not both")
        for name in ("splits", "split_size"):  # frozen: the checked int replaces a numpy integer
            if getattr(self, name) is not None:
                object.__setattr__(self, name, whole_number(getattr(self, name), name, minimum=1))

    def split_count(self, num_images: int) -> int:
        """The number of splits of ``num_images`` images."""
        if self.splits is not None:
            return self.splits
        return -(-num_images // self.split_size)  # type: ignore[operator]

    def describe(self) -> str:
        """``10 splits`` or ``chunks of 5000 images``, for messages."""
        return f"{self.splits} splits" if self.splits is not None else f"chunks of {self.split_size} images"


def split_rule(splits: int | SplitRule | None = None, split_size: int | None = None) -> SplitRule:
    """The rule of the API's ``splits`` / ``split_size`` arguments: ``split_size`` alone gives chunks of
    that size, ``splits`` alone (or neither: 10) that many parts; both at once is an error."""
    if isinstance(splits, SplitRule):
        if split_size is not None:
            raise InputError("give either splits or split_size, not both")
        return splits
    if splits is not None and split_size is not None:
        raise InputError(f"give either splits ({splits}) or split_size ({split_size}), not both: "
                         "split_size cuts chunks of that many images, splits that many equal parts")
    if split_size is not None:
        return SplitRule(splits=None, split_size=split_size)
    return SplitRule(splits=PUBLISHED_SPLITS if splits is None else splits)


def check_split_count(num_images: int, splits: int | SplitRule) -> None:
    """Raise :class:`InputError` unless the rule is valid and every split gets at least one image."""
    rule = split_rule(splits)
    if rule.split_size is not None:
        if num_images < 1:
            raise InputError(f"no images to cut into {rule.describe()}")
        return
    assert rule.splits is not None
    if num_images < rule.splits:
        raise InputError(
            f"{num_images} images cannot be divided into {rule.splits} splits: "
            f"give at least {rule.splits} images or lower splits (the paper used 50,000 images, 10 splits)"
        )


def split_bounds(num_images: int, splits: int | SplitRule) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of each split of ``num_images`` images under the rule (:class:`SplitRule`)."""
    check_split_count(num_images, splits)
    rule = split_rule(splits)
    if rule.split_size is not None:
        size = rule.split_size
        return [(start, min(start + size, num_images)) for start in range(0, num_images, size)]
    count = rule.split_count(num_images)
    return [(i * num_images // count, (i + 1) * num_images // count) for i in range(count)]


def split_of_positions(positions: np.ndarray, num_images: int, splits: int | SplitRule) -> np.ndarray:
    """The split index of each 0-based position in the scoring order (after any shuffle) of the images."""
    return SplitPlan.of(num_images, splits).split_ids(positions)


def shuffled_positions(num_images: int, seed: int) -> np.ndarray:
    """Position of each input image after torch-fidelity's shuffle.

    torch-fidelity reorders features as ``f[perm]`` with ``perm = RandomState(seed).permutation(N)``,
    so input image ``j`` ends at the position ``k`` with ``perm[k] == j``.
    """
    perm = np.random.RandomState(seed).permutation(num_images)
    positions = np.empty(num_images, dtype=np.int64)
    positions[perm] = np.arange(num_images)
    return positions


def order_text(shuffle_seed: int | None) -> str:
    """The order splits are cut from, as :attr:`ISResult.order` words it: ``input order`` or
    ``shuffled (seed S)``."""
    return "input order" if shuffle_seed is None else f"shuffled (seed {shuffle_seed})"


@dataclass(frozen=True)
class SplitPlan:
    """Which split each of ``num_images`` images falls in: the one mapping from an image's global
    position in input order (0-based) to its split, used by every way of scoring.

    ``rule``: where the contiguous splits end (:class:`SplitRule`); ``shuffle_seed``: the images are first
    reordered by torch-fidelity's permutation with that seed (:func:`shuffled_positions`), else they
    are split in input order.
    """

    num_images: int
    rule: SplitRule = SplitRule()
    shuffle_seed: int | None = None

    @classmethod
    def of(cls, num_images: int, splits: int | SplitRule | None = None, shuffle_seed: int | None = None,
           split_size: int | None = None) -> "SplitPlan":
        """The plan of the API's arguments; raises :class:`InputError` unless every split gets an image."""
        rule = split_rule(splits, split_size)
        check_split_count(num_images, rule)
        return cls(num_images, rule, shuffle_seed)

    @property
    def split_count(self) -> int:
        return self.rule.split_count(self.num_images)

    @property
    def order(self) -> str:
        """``input order`` or ``shuffled (seed S)`` (:func:`order_text`)."""
        return order_text(self.shuffle_seed)

    @functools.cached_property
    def _stops(self) -> np.ndarray:
        return np.array([stop for _, stop in split_bounds(self.num_images, self.rule)])

    def positions(self, indices: np.ndarray | None = None) -> np.ndarray:
        """``(B,)`` int64: the position in scoring order of each image at ``indices`` of input order
        (all ``num_images`` when None): itself, or its place after the shuffle."""
        if self.shuffle_seed is None:
            return np.arange(self.num_images) if indices is None else np.asarray(indices, dtype=np.int64)
        shuffled = _shuffled_positions_cached(self.num_images, self.shuffle_seed)
        return shuffled.copy() if indices is None else shuffled[np.asarray(indices, dtype=np.int64)]

    def split_ids(self, indices: np.ndarray) -> np.ndarray:
        """``(B,)`` int64: the split of each image at ``indices`` (global positions in input order)."""
        return np.searchsorted(self._stops, self.positions(indices), side="right")

    def span_ids(self, start: int, stop: int) -> np.ndarray:
        """The split of each image at positions ``[start, stop)`` of input order."""
        return self.split_ids(np.arange(start, stop))


@functools.lru_cache(maxsize=1)  # one N at a time: a run's plans share it, and no more is held
def _shuffled_positions_cached(num_images: int, seed: int) -> np.ndarray:
    positions = shuffled_positions(num_images, seed)
    positions.setflags(write=False)  # shared between plans: never changed in place
    return positions


@dataclass
class SplitStatistics:
    """Sufficient statistics of each split, sums over its images (float64; ``count`` int64):

    - ``sum_p`` (S, C): p(y|x); ``sum_plogp`` (S,): ``sum_y p log p``; ``count`` (S,): images;
    - for the order diagnostic (:mod:`inception_score.score.order`), with ``c = clr(p) = log p - mean_y log p``
      (the centred log-ratio, equal to the logits minus their mean): ``sum_clr`` (S, C): c;
      ``sum_clr2`` (S,): ``||c||^2``; ``sketch`` (S, K): ``(c . g_k)(c . h_k)`` for the K pairs of
      :func:`sketch_projections` (K = 0: none, as for the IS-infinity buckets).

    Every field is a per-split sum, so statistics of disjoint sets of images combine by adding every
    field (:meth:`merge`, or an all-reduce with SUM across processes). Add batches with :meth:`add`.
    """

    sum_p: np.ndarray
    sum_plogp: np.ndarray
    sum_clr: np.ndarray
    sum_clr2: np.ndarray
    sketch: np.ndarray
    count: np.ndarray

    @classmethod
    def zeros(cls, splits: int, num_classes: int, sketch_size: int = ORDER_SKETCH_SIZE) -> "SplitStatistics":
        return cls(
            sum_p=np.zeros((splits, num_classes), dtype=np.float64),
            sum_plogp=np.zeros(splits, dtype=np.float64),
            sum_clr=np.zeros((splits, num_classes), dtype=np.float64),
            sum_clr2=np.zeros(splits, dtype=np.float64),
            sketch=np.zeros((splits, sketch_size), dtype=np.float64),
            count=np.zeros(splits, dtype=np.int64),
        )

    @property
    def splits(self) -> int:
        return self.count.shape[0]

    def add(self, logits: torch.Tensor, split_ids: np.ndarray) -> None:
        """Add ``(B, C)`` logits whose images belong to splits ``split_ids`` ``(B,)``."""
        self.add_sums(split_sums(logits, split_ids, self.splits, self.sketch.shape[1]).cpu().numpy())

    def add_sums(self, sums: np.ndarray) -> None:
        """Add ``(S, 2C + K + 3)`` per-split sums laid out as :func:`split_sums` gives them."""
        classes, width = self.sum_p.shape[1], sums.shape[1]
        self.sum_p += sums[:, :classes]
        self.sum_plogp += sums[:, classes]
        self.sum_clr += sums[:, classes + 1 : 2 * classes + 1]
        self.sum_clr2 += sums[:, 2 * classes + 1]
        self.sketch += sums[:, 2 * classes + 2 : width - 1]
        self.count += sums[:, width - 1].astype(np.int64)  # whole numbers, exact in float64 below 2**53

    def merge(self, other: "SplitStatistics") -> "SplitStatistics":
        """The statistics of both sets of images together (exact: sums add)."""
        return SplitStatistics(**{name: getattr(self, name) + getattr(other, name)
                                  for name in self.__dataclass_fields__})

    def marginal(self) -> np.ndarray:
        """``(C,)`` float64 p(y) over all images added so far."""
        return self.sum_p.sum(axis=0) / max(int(self.count.sum()), 1)

    def check_finite(self, source: str = "the network") -> None:
        """Raise :class:`InputError` when any image's logits held NaN or infinity: such a logit makes
        the sum of centred logits of its split non-finite (finite float32 logits never do), so no
        score of it may be given. ``source``: what gave the logits, for the message."""
        finite = np.isfinite(self.sum_clr).all(axis=1) & np.isfinite(self.sum_p).all(axis=1) & np.isfinite(self.sum_plogp)
        if not finite.all():
            bad = [int(i) for i in np.flatnonzero(~finite)]
            raise InputError(f"{source} gave NaN or infinite logits for images of split(s) {bad[:10]}, so there is "
                             "no score: the weights may be damaged (a NaN in fc.weight, for one); use a genuine "
                             "weights file")

    def scores(self) -> np.ndarray:
        """``(S,)`` float64 score of each split; :class:`InputError` when a logit was not finite."""
        self.check_finite()
        if np.any(self.count == 0):
            empty = [int(i) for i in np.flatnonzero(self.count == 0)]
            raise InputError(f"splits {empty} received no images; every split needs at least one")
        count = self.count.astype(np.float64)
        pbar = self.sum_p / count[:, None]
        # xlogy gives 0 for classes with pbar == 0, as the limit p log p -> 0 does.
        mean_kl = self.sum_plogp / count - _xlogx(pbar).sum(axis=1)
        return np.exp(mean_kl)


def split_sums(logits: torch.Tensor, split_ids: np.ndarray | torch.Tensor, splits: int,
               sketch_size: int = ORDER_SKETCH_SIZE) -> torch.Tensor:
    """``(B, C)`` logits of images in splits ``split_ids`` ``(B,)`` -> ``(S, 2C + K + 3)`` float64 on the
    logits' device: per split, side by side, the sums of :class:`SplitStatistics`' fields: p(y|x) (C
    columns), ``sum_y p log p`` (1), clr(p) (C), ``||clr||^2`` (1), the K sketch products, the count (1)."""
    logits = logits.detach()
    log_p = torch.log_softmax(logits.to(torch.float64), dim=1)
    p = log_p.exp()
    # clr(p) = log p - mean_y log p: the softmax's normaliser cancels, so it is the centred logits.
    centred = logits.to(torch.float64)
    centred = centred - centred.mean(dim=1, keepdim=True)
    columns = [p, (p * log_p).sum(dim=1, keepdim=True), centred, (centred * centred).sum(dim=1, keepdim=True)]
    if sketch_size:
        projected = centred @ sketch_projections(centred.shape[1], sketch_size, str(centred.device))
        columns.append(projected[:, :sketch_size] * projected[:, sketch_size:])
    columns.append(torch.ones(len(logits), 1, dtype=torch.float64, device=logits.device))
    # non_blocking: a host-to-device copy of pageable memory is staged at once, without waiting for the device.
    ids = torch.as_tensor(np.asarray(split_ids, dtype=np.int64)).to(logits.device, non_blocking=True)
    values = torch.cat(columns, dim=1)
    if values.device.type == "cpu":
        return _sum_by_index(values, ids, splits)
    return _sum_by_product(values, ids, splits)


def _sum_by_index(values: torch.Tensor, ids: torch.Tensor, splits: int) -> torch.Tensor:
    """``(B, W)`` rows -> ``(S, W)`` sums of the rows of each split, added one row after the other in
    batch order (index_add_ on a CPU)."""
    return torch.zeros(splits, values.shape[1], dtype=values.dtype).index_add_(0, ids, values)


def _sum_by_product(values: torch.Tensor, ids: torch.Tensor, splits: int) -> torch.Tensor:
    """:func:`_sum_by_index` as a product with the ``(S, B)`` 0/1 matrix of the splits: on a GPU,
    index_add_ adds with atomics in no fixed order, a matrix product always in the same one. Built by
    comparison: one_hot would check the ids' range, a wait for the device."""
    member = ids[None, :] == torch.arange(splits, device=values.device)[:, None]
    return member.to(values.dtype) @ values


class DeviceStatistics:
    """:class:`SplitStatistics` kept where the logits are: one ``(S, 2C + K + 3)`` float64 tensor of the
    per-split sums of :func:`split_sums`, updated on the logits' device without waiting for it, and
    read back once, by :meth:`numpy`.

    On a CPU it gives the bits :meth:`SplitStatistics.add` gives: the same per-batch sums
    (:func:`split_sums`), added to the running total in the same order, and a float64 addition is
    correctly rounded in torch as in numpy.
    """

    def __init__(self, splits: int, num_classes: int, sketch_size: int = ORDER_SKETCH_SIZE) -> None:
        self.splits, self.num_classes, self.sketch_size = splits, num_classes, sketch_size
        self.total: torch.Tensor | None = None  # on the device of the first logits added

    def add(self, logits: torch.Tensor, split_ids: np.ndarray, skip: torch.Tensor | None = None) -> None:
        """Add ``(B, C)`` logits of images in splits ``split_ids`` ``(B,)``. ``skip``: a 0-d bool tensor
        on the device; where it holds True the batch adds nothing, not even its count (its logits must
        not be used: :mod:`inception_score.engine.pipeline` adds them again once computed without float16)."""
        sums = split_sums(logits, split_ids, self.splits, self.sketch_size)
        if skip is not None:
            sums = torch.where(skip, torch.zeros((), dtype=sums.dtype, device=sums.device), sums)
        if self.total is None:
            self.total = torch.zeros_like(sums)
        self.total += sums

    def numpy(self) -> SplitStatistics:
        """The sums as :class:`SplitStatistics`: one copy to the host, which waits for the device here."""
        stats = SplitStatistics.zeros(self.splits, self.num_classes, self.sketch_size)
        if self.total is not None:
            stats.add_sums(self.total.cpu().numpy())
        return stats


def _xlogx(x: np.ndarray) -> np.ndarray:
    return torch.special.xlogy(torch.from_numpy(x), torch.from_numpy(x)).numpy()


def summarize(split_scores: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation (numpy's default ddof=0), as the paper's code."""
    return float(np.mean(split_scores)), float(np.std(split_scores))
