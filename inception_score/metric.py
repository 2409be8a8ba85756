"""The Inception Score itself: pure functions from logits to numbers, no network, no IO.

IS = exp( E_x KL( p(y|x) || p(y) ) ), computed per split over contiguous chunks of the images in
input order, reported as the mean and the population standard deviation (ddof=0) of the split scores
(REFERENCE.md section 1). :class:`SplitRule` says where the chunks end: ``splits`` equal parts (the
paper's code: chunk i = images [i*N//splits, (i+1)*N//splits)), or chunks of ``split_size`` images,
the last one shorter (guided-diffusion's evaluator). Both agree at 50,000 images in chunks of 5,000.

Per split only two sufficient statistics are needed, thanks to the exact identity

    mean_x KL(p(y|x) || pbar) = mean_x sum_y p log p  -  sum_y pbar log pbar,   pbar = mean_x p(y|x),

so :class:`SplitStatistics` keeps, for each split, the sum of ``p(y|x)`` (one row of 1008 values),
the sum of ``sum_y p log p`` and the image count: one exact pass in O(splits x classes) memory,
and statistics from several processes combine by addition. It also keeps the sum of
``||p(y|x)||^2``, which the split-order diagnostic (:mod:`inception_score.order`) needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import InputError


@dataclass(frozen=True)
class SplitRule:
    """How the images, in scoring order, are cut into contiguous splits; exactly one field is set.

    ``splits``: that many parts, split i = images ``[i*N//splits, (i+1)*N//splits)`` (the paper's code).
    ``split_size``: chunks of that many images, split i = ``[i*K, min((i+1)*K, N))``, the last one
    shorter when K does not divide N (``compute_inception_score`` of guided-diffusion's evaluator).
    """

    splits: int | None = 10
    split_size: int | None = None

    def __post_init__(self) -> None:
        if (self.splits is None) == (self.split_size is None):
            raise InputError("give either a number of splits or a split size, not both")
        if self.splits is not None and self.splits < 1:
            raise InputError(f"splits must be at least 1, got {self.splits}")
        if self.split_size is not None and self.split_size < 1:
            raise InputError(f"split_size must be at least 1, got {self.split_size}")

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
    return SplitRule(splits=10 if splits is None else splits)


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
    """The split index of each 0-based position in the (possibly shuffled) order of the images."""
    stops = np.array([stop for _, stop in split_bounds(num_images, splits)])
    return np.searchsorted(stops, positions, side="right")


def shuffled_positions(num_images: int, seed: int) -> np.ndarray:
    """Position of each input image after torch-fidelity's shuffle.

    torch-fidelity reorders features as ``f[perm]`` with ``perm = RandomState(seed).permutation(N)``,
    so input image ``j`` ends at the position ``k`` with ``perm[k] == j``.
    """
    perm = np.random.RandomState(seed).permutation(num_images)
    positions = np.empty(num_images, dtype=np.int64)
    positions[perm] = np.arange(num_images)
    return positions


@dataclass
class SplitStatistics:
    """Sufficient statistics of each split: ``sum_p`` (S, C), ``sum_plogp`` (S,), ``sum_p2`` (S,), ``count`` (S,).

    ``sum_p2`` is the sum over the split's images of ``||p(y|x)||^2 = sum_y p(y|x)^2``: with ``sum_p`` it
    gives the exact total sum of squares of p around the marginal (:mod:`inception_score.order`).
    Float64 sums, ``count`` int64. Every field is a per-split sum, so statistics of disjoint sets of
    images combine by adding every field (:meth:`merge`, or an all-reduce with SUM across processes).
    Add batches with :meth:`add`.
    """

    sum_p: np.ndarray
    sum_plogp: np.ndarray
    sum_p2: np.ndarray
    count: np.ndarray

    @classmethod
    def zeros(cls, splits: int, num_classes: int) -> "SplitStatistics":
        return cls(
            sum_p=np.zeros((splits, num_classes), dtype=np.float64),
            sum_plogp=np.zeros(splits, dtype=np.float64),
            sum_p2=np.zeros(splits, dtype=np.float64),
            count=np.zeros(splits, dtype=np.int64),
        )

    @property
    def splits(self) -> int:
        return self.count.shape[0]

    def add(self, logits: torch.Tensor, split_ids: np.ndarray) -> None:
        """Add ``(B, C)`` logits whose images belong to splits ``split_ids`` ``(B,)``."""
        log_p = torch.log_softmax(logits.detach().to("cpu", torch.float64), dim=1)
        p = log_p.exp()
        plogp = (p * log_p).sum(dim=1)
        ids = torch.from_numpy(np.asarray(split_ids, dtype=np.int64))
        sum_p = torch.zeros(self.splits, p.shape[1], dtype=torch.float64).index_add_(0, ids, p)
        sum_plogp = torch.zeros(self.splits, dtype=torch.float64).index_add_(0, ids, plogp)
        sum_p2 = torch.zeros(self.splits, dtype=torch.float64).index_add_(0, ids, (p * p).sum(dim=1))
        self.sum_p += sum_p.numpy()
        self.sum_plogp += sum_plogp.numpy()
        self.sum_p2 += sum_p2.numpy()
        self.count += np.bincount(ids.numpy(), minlength=self.splits)

    def merge(self, other: "SplitStatistics") -> "SplitStatistics":
        """The statistics of both sets of images together (exact: sums add)."""
        return SplitStatistics(
            sum_p=self.sum_p + other.sum_p,
            sum_plogp=self.sum_plogp + other.sum_plogp,
            sum_p2=self.sum_p2 + other.sum_p2,
            count=self.count + other.count,
        )

    def marginal(self) -> np.ndarray:
        """``(C,)`` float64 p(y) over all images added so far."""
        return self.sum_p.sum(axis=0) / max(int(self.count.sum()), 1)

    def scores(self) -> np.ndarray:
        """``(S,)`` float64 score of each split."""
        if np.any(self.count == 0):
            empty = [int(i) for i in np.flatnonzero(self.count == 0)]
            raise InputError(f"splits {empty} received no images; every split needs at least one")
        count = self.count.astype(np.float64)
        pbar = self.sum_p / count[:, None]
        # xlogy gives 0 for classes with pbar == 0, as the limit p log p -> 0 does.
        mean_kl = self.sum_plogp / count - _xlogx(pbar).sum(axis=1)
        return np.exp(mean_kl)


def _xlogx(x: np.ndarray) -> np.ndarray:
    return torch.special.xlogy(torch.from_numpy(x), torch.from_numpy(x)).numpy()


def summarize(split_scores: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation (numpy's default ddof=0), as the paper's code."""
    return float(np.mean(split_scores)), float(np.std(split_scores))


def inception_score_from_logits(
    logits: torch.Tensor | np.ndarray, splits: int | SplitRule | None = None, shuffle_seed: int | None = None,
    split_size: int | None = None,
) -> np.ndarray:
    """``(N, C)`` logits of all images, in input order -> ``(S,)`` split scores (``splits``, default 10,
    or chunks of ``split_size``: :class:`SplitRule`).

    ``shuffle_seed`` reorders the images first, exactly as torch-fidelity does.
    """
    logits = torch.as_tensor(logits)
    num_images = logits.shape[0]
    rule = split_rule(splits, split_size)
    check_split_count(num_images, rule)
    positions = shuffled_positions(num_images, shuffle_seed) if shuffle_seed is not None else np.arange(num_images)
    stats = SplitStatistics.zeros(rule.split_count(num_images), logits.shape[1])
    stats.add(logits, split_of_positions(positions, num_images, rule))
    return stats.scores()
