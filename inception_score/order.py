"""The split-order diagnostic: do the splits' class marginals differ more than a random order allows?

The paper's protocol scores contiguous splits in input order (REFERENCE.md section 1, step 5). When
the input is sorted by class (a folder of class_0/ ... class_9/ read in path order), each split
holds one or two classes, its marginal pbar_s is narrow, and the split scores (hence the mean) come
out wrong with nothing visibly broken. The metric's per-split sums (with ``sum_p2``) detect it, as
a one-way analysis of variance of p(y|x) between splits (squared Euclidean distance over classes):

    B = sum_s n_s ||pbar_s - pbar||^2                    between splits   (from sum_p, count)
    T = sum_i ||p_i - pbar||^2 = sum_i ||p_i||^2 - N ||pbar||^2          (sum_p2 adds sum_i ||p_i||^2)

If the N images are put into splits of the given sizes n_s by a uniformly random permutation,

    E[B] = T (S - 1) / (N - 1)       for any sizes n_s

(with d_i = p_i - pbar, sum_i d_i = 0: a random subset of n images has E||sum d_i||^2 =
n T/N - n(n - 1) T / (N(N - 1)) = n T (N - n) / (N(N - 1)); divided by n and summed over the
splits, sum_s (N - n_s) = (S - 1) N). The diagnostic is the ratio R = B / E[B]: about 1 for an
order unrelated to the images' content, up to (N - 1)/(S - 1) when the splits are as different
as the images themselves.

Threshold: if p(y|x) varied along one Gaussian direction only, (B/(S-1)) / ((T-B)/(N-S)) would
follow F(S-1, N-S) under a random order; its quantile f at a false-alarm rate of 1e-6 gives, in R's
terms, R = f (N - 1) / (f (S - 1) + N - S) (4.6 for N = 200, 4.9 for N >= 1000, with 10 splits).
p(y|x) varies along many directions, which averages B over them: on genuine CIFAR-10 images R's
random-order standard deviation is about 0.13 against 0.47 for one direction, and no random order
came near the threshold (benchmarks/results/order-diagnostic.md). The threshold is set for the worst
case instead of for those images: with p(y|x) two-valued (K images differ, the rest are equal;
K of them all in one split give R ~ K, with probability ~ S^(1-K)), random orders exceed it at
most 2 times in 10^4 with 10 splits, 2 in 10^3 with 20 (simulated, N >= 10 S). Below 10 images
per split such coincidences reach the largest possible R, (N - 1)/(S - 1): nothing is flagged there.

Power: a class-sorted order gives R ~ eta^2 (N - 1)/(S - 1), eta^2 the share of T explained by
the class, so it is flagged from about N = 5 (S - 1) / eta^2 images on. With the development
weights eta^2 ~ 0.065 on CIFAR-10 (10 splits: 500 images not flagged, 1000 flagged).

Labels, when the samples carry them (a guided-diffusion ``.npz``: ``arr_1``), make a second check
that needs nothing from the network (:func:`label_order`): the input is *sorted by class* when each
class present forms one contiguous run in the order the splits are cut from, with at least two
classes and two splits, so that some split misses a class that is present. A random order of N
labels with class counts n_1..n_C falls into one run per class with probability exactly
C! n_1! ... n_C! / N!; the flag needs that below :data:`SORTED_CHANCE` (2 classes of 12 images: 7e-7;
5 classes of 3: 7e-7; 12 distinct labels: 1, never flagged). Unlike the ratio above it does not depend
on what the network sees in the images, nor on their number per split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import f as f_distribution

from .errors import InputError
from .metric import SplitRule, SplitStatistics, shuffled_positions, split_bounds

FALSE_ALARM_RATE = 1e-6
SORTED_CHANCE = 1e-6  # the largest chance that a random order is grouped by class which still flags it
MIN_IMAGES_PER_SPLIT = 10


@dataclass(frozen=True)
class SplitSumsOfSquares:
    """The one-way analysis of variance of p(y|x) over the splits (float64 values).

    ``between`` (B), ``total`` (T), ``expected_between`` (E[B] under a random order of the same
    images into splits of the same sizes).
    """

    between: float
    total: float
    expected_between: float


@dataclass(frozen=True)
class OrderDiagnostic:
    """``ratio`` = B / E[B] (about 1 for a random order; NaN when undefined: one split, or all
    p(y|x) equal); ``flagged`` when ``ratio > threshold``: the splits' class marginals differ far
    more than a random order of these images would make them, as when the input is sorted by
    class; the remedy is to shuffle the images (``shuffle=True``). ``threshold`` is infinite (never
    flagged) with fewer than 10 images per split."""

    ratio: float
    threshold: float
    flagged: bool


def split_sums_of_squares(stats: SplitStatistics) -> SplitSumsOfSquares:
    """B, T and E[B] from the statistics of a whole run (every split must hold at least one image)."""
    count = stats.count.astype(np.float64)
    num_images = float(count.sum())
    splits = stats.splits
    if np.any(count == 0):
        empty = [int(i) for i in np.flatnonzero(count == 0)]
        raise InputError(f"splits {empty} received no images; every split needs at least one")
    pbar = stats.sum_p.sum(axis=0) / num_images
    pbar_split = stats.sum_p / count[:, None]
    between = float(np.sum(count * np.sum((pbar_split - pbar) ** 2, axis=1)))
    # T >= B always; the subtraction can round below B when p(y|x) barely varies.
    total = max(float(stats.sum_p2.sum()) - num_images * float(pbar @ pbar), between)
    expected = total * (splits - 1) / (num_images - 1) if num_images > 1 else 0.0
    return SplitSumsOfSquares(between=between, total=total, expected_between=expected)


def order_threshold(num_images: int, splits: int, false_alarm_rate: float = FALSE_ALARM_RATE) -> float:
    """The largest ratio R = B / E[B] a random order should give, at ``false_alarm_rate``.

    From F(S-1, N-S) (one Gaussian direction, the widest case): R = f (N-1) / (f (S-1) + N-S).
    Infinite (nothing flagged) with one split or fewer than :data:`MIN_IMAGES_PER_SPLIT` images per
    split, where a few coinciding images can reach the largest possible R, (N-1)/(S-1).
    """
    if splits < 2 or num_images < MIN_IMAGES_PER_SPLIT * splits:
        return math.inf
    f = float(f_distribution.isf(false_alarm_rate, splits - 1, num_images - splits))
    return f * (num_images - 1) / (f * (splits - 1) + num_images - splits)


def order_diagnostic(stats: SplitStatistics, false_alarm_rate: float = FALSE_ALARM_RATE) -> OrderDiagnostic:
    """Whether the input order looks sorted by content (e.g. by class), from the run's statistics."""
    num_images = int(stats.count.sum())
    threshold = order_threshold(num_images, stats.splits, false_alarm_rate)
    sums = split_sums_of_squares(stats)
    if sums.expected_between > 0:
        ratio = sums.between / sums.expected_between
    else:
        ratio = math.nan
    return OrderDiagnostic(ratio=ratio, threshold=threshold, flagged=bool(ratio > threshold))


@dataclass(frozen=True)
class LabelOrder:
    """What the samples' own class labels say about the splits (sample files that carry labels,
    such as guided-diffusion's ``arr_1``).

    ``histogram``: label -> number of images. ``sorted_by_class``: every class present forms one
    contiguous run in the order the splits are cut from, there are at least two classes and two
    splits (so at least one split misses a class present), and a random order of these labels would
    be so grouped with probability below :data:`SORTED_CHANCE` (the module docstring). ``classes_per_split``:
    the fewest and the most classes a split holds.
    """

    histogram: dict[int, int]
    sorted_by_class: bool
    classes_per_split: tuple[int, int]


def label_order(labels: np.ndarray, splits: int | SplitRule, shuffle_seed: int | None = None) -> LabelOrder:
    """The :class:`LabelOrder` of ``(N,)`` integer labels of the scored images, in input order, under
    contiguous splits (``splits``: a count or a :class:`SplitRule`) taken after the optional shuffle."""
    labels = np.asarray(labels)
    count = len(labels)
    values, counts = np.unique(labels, return_counts=True)
    histogram = {int(v): int(c) for v, c in zip(values, counts)}
    in_split_order = np.empty_like(labels)
    in_split_order[shuffled_positions(count, shuffle_seed) if shuffle_seed is not None else np.arange(count)] = labels
    bounds = split_bounds(count, splits)
    runs = 1 + int(np.count_nonzero(in_split_order[1:] != in_split_order[:-1]))
    per_split = [len(np.unique(in_split_order[start:stop])) for start, stop in bounds]
    # log of C! n_1! ... n_C! / N!, the chance of one run per class in a random order of these labels
    log_chance = math.lgamma(len(values) + 1) + sum(math.lgamma(n + 1) for n in counts) - math.lgamma(count + 1)
    grouped = (len(values) >= 2 and len(bounds) >= 2 and runs == len(values)
               and log_chance < math.log(SORTED_CHANCE))
    return LabelOrder(histogram=histogram, sorted_by_class=grouped,
                      classes_per_split=(min(per_split), max(per_split)))
