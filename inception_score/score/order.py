"""The split-order diagnostic: do the splits' class distributions differ more than a random order allows?

The paper's protocol scores contiguous splits in input order (its code's ``get_inception_score``). When
the input is sorted by class (a folder of class_0/ ... class_9/ read in path order), each split
holds one or two classes, its marginal is narrow, and the split scores (hence the mean) come out
wrong with nothing visibly broken. The metric's per-split sums detect it, as a one-way analysis of
variance between splits of each image's p(y|x) in centred log-ratio coordinates,
``c = clr(p) = log p - mean_y log p`` (the logits minus their mean; squared Euclidean distance):

    B = sum_s n_s ||cbar_s - cbar||^2                    between splits   (from sum_clr, count)
    T = sum_i ||c_i - cbar||^2 = sum_i ||c_i||^2 - N ||cbar||^2          (sum_clr2)

clr weighs every class by how p's log-odds move, not by how much probability it holds, so the
evidence of many unlikely classes counts too: on 200 to 2,000 genuine CIFAR-10 images through the
development weights, clr(p) spreads over about 50 to 70 equally varying directions against 12 to 14
for p itself, and a class-sorted order's ratio comes out about twice as large as with p.

If the N images are put into splits of the given sizes n_s by a uniformly random permutation,

    E[B] = T (S - 1) / (N - 1)       for any sizes n_s

(with d_i = c_i - cbar, sum_i d_i = 0: a random subset of n images has E||sum d_i||^2 =
n T/N - n(n - 1) T / (N(N - 1)) = n T (N - n) / (N(N - 1)); divided by n and summed over the
splits, sum_s (N - n_s) = (S - 1) N). The diagnostic is the ratio R = B / E[B]: about 1 for an
order unrelated to the images' content, up to (N - 1)/(S - 1) when the splits are as different
as the images themselves.

Threshold, at a false-alarm rate alpha = 1e-6 by construction:

1. Under a random order the split sums are, by the central limit theorem for sampling without
   replacement, jointly Gaussian with the covariance the identity above implies; then exactly
   R = sum_j w_j X_j / (S - 1), X_j independent chi-square with S - 1 degrees of freedom, w_j =
   lambda_j / tr(Sigma) for the eigenvalues lambda_j of the covariance Sigma of c over the N images.
2. Laurent & Massart (2000, Lemma 1) bound any such sum: P(R > 1 + 2 sqrt(x / ((S-1) d)) +
   2 x rho / (S-1)) <= exp(-x), with d = tr(Sigma)^2 / tr(Sigma^2) (how many equally varying
   directions) and rho = lambda_max / tr(Sigma) <= 1 / sqrt(d). With rho replaced by that bound, the
   threshold needs tr(Sigma), which T gives exactly, and tr(Sigma^2).
3. tr(Sigma^2) comes from the sketch: for K = ORDER_SKETCH_SIZE fixed pairs of independent standard
   normal vectors (g_k, h_k), Y_k = (g_k' Sigma h_k)^2 has mean tr(Sigma^2) and E[Y_k^2] =
   3 tr(Sigma^2)^2 + 6 tr(Sigma^4) <= 9 tr(Sigma^2)^2, so by Maurer's bound for sums of non-negative
   variables (2003) their mean falls below (1 - eps) tr(Sigma^2) with probability at most
   exp(-K eps^2 / 18). The threshold uses the upper bound mean / (1 - eps), which holds except
   with that probability.
4. The rate is shared: alpha/2 to the order (x = ln(2/alpha)) and alpha/2 to the sketch (eps =
   sqrt(18 ln(2/alpha) / K) = 0.50 for K = 1024). The sketch costs K floats per split and two
   products per image and pair (the order-independent sums of ``sketch``; ``sum_clr`` and
   ``sum_clr2`` are sums too), so it streams, merges across processes, and needs no second pass.

Step 1 is an approximation: a few images unlike all others can make B lumpier than Gaussian (K
images that differ, all in one split, give R ~ K with probability ~ S^(1-K)). Below 10 images per
split nothing is flagged (threshold infinite). Measured (benchmarks/results/order-diagnostic.md):
no false alarm in random orders of genuine CIFAR-10 images; class-sorted orders flagged from 200
images with 10 splits on.

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

from ..errors import InputError
from .statistics import SplitPlan, SplitRule, SplitStatistics, sketch_projections, split_bounds

FALSE_ALARM_RATE = 1e-6
SORTED_CHANCE = 1e-6  # the largest chance that a random order is grouped by class which still flags it
MIN_IMAGES_PER_SPLIT = 10


@dataclass(frozen=True)
class SplitSumsOfSquares:
    """The one-way analysis of variance of clr(p(y|x)) over the splits (float64 values).

    ``between`` (B), ``total`` (T), ``expected_between`` (E[B] under a random order of the same
    images into splits of the same sizes).
    """

    between: float
    total: float
    expected_between: float


@dataclass(frozen=True)
class OrderDiagnostic:
    """``ratio`` = B / E[B] (about 1 for a random order; NaN when undefined: one split, or all
    p(y|x) equal); ``flagged`` when ``ratio > threshold``: the splits' class distributions differ
    far more than a random order of these images would make them, as when the input is sorted by
    class; the remedy is to shuffle the images (``shuffle=True``). ``threshold`` is infinite (never
    flagged) with fewer than 10 images per split. ``directions``: the d the threshold used (the
    sketch's lower bound on tr(Sigma)^2 / tr(Sigma^2); NaN when undefined)."""

    ratio: float
    threshold: float
    flagged: bool
    directions: float = math.nan


def split_sums_of_squares(stats: SplitStatistics) -> SplitSumsOfSquares:
    """B, T and E[B] from the statistics of a whole run (every split must hold at least one image)."""
    count = stats.count.astype(np.float64)
    num_images = float(count.sum())
    splits = stats.splits
    if np.any(count == 0):
        empty = [int(i) for i in np.flatnonzero(count == 0)]
        raise InputError(f"splits {empty} received no images; every split needs at least one")
    mean = stats.sum_clr.sum(axis=0) / num_images
    mean_split = stats.sum_clr / count[:, None]
    between = float(np.sum(count * np.sum((mean_split - mean) ** 2, axis=1)))
    # T >= B always; the subtraction can round below B when p(y|x) barely varies.
    total = max(float(stats.sum_clr2.sum()) - num_images * float(mean @ mean), between)
    expected = total * (splits - 1) / (num_images - 1) if num_images > 1 else 0.0
    return SplitSumsOfSquares(between=between, total=total, expected_between=expected)


def sketch_error(sketch_size: int, false_alarm_rate: float = FALSE_ALARM_RATE) -> float:
    """eps of step 3: the sketch's mean is below (1 - eps) tr(Sigma^2) with probability <= alpha/2."""
    return math.sqrt(18 * math.log(2 / false_alarm_rate) / sketch_size) if sketch_size else math.inf


def effective_directions(stats: SplitStatistics, false_alarm_rate: float = FALSE_ALARM_RATE) -> float:
    """A lower bound (except with probability alpha/2) on d = tr(Sigma)^2 / tr(Sigma^2) of clr(p(y|x))
    over all images, from the sums and the sketch; at least 1, as d is. NaN when Sigma = 0 or no sketch."""
    num_images = float(stats.count.sum())
    size = stats.sketch.shape[1]
    eps = sketch_error(size, false_alarm_rate)
    if num_images < 2 or eps >= 1:
        return math.nan
    mean = stats.sum_clr.sum(axis=0) / num_images
    trace = float(stats.sum_clr2.sum()) / num_images - float(mean @ mean)
    projections = sketch_projections(stats.sum_clr.shape[1], size).numpy()
    projected_mean = mean @ projections
    bilinear = stats.sketch.sum(axis=0) / num_images - projected_mean[:size] * projected_mean[size:]  # g' Sigma h
    square_trace = float(np.mean(bilinear**2)) / (1 - eps)
    if trace <= 0 or square_trace <= 0:
        return math.nan
    return max(trace**2 / square_trace, 1.0)


def order_threshold(num_images: int, splits: int, directions: float,
                    false_alarm_rate: float = FALSE_ALARM_RATE) -> float:
    """The largest ratio R = B / E[B] a random order should give: 1 + 2 sqrt(x / ((S-1) d)) +
    2 x / ((S-1) sqrt(d)), x = ln(2 / alpha), for ``directions`` d (steps 2 and 4 of the module text).

    Infinite (nothing flagged) with one split, fewer than :data:`MIN_IMAGES_PER_SPLIT` images per
    split, or d undefined (NaN).
    """
    if splits < 2 or num_images < MIN_IMAGES_PER_SPLIT * splits or not directions >= 1:
        return math.inf
    x = math.log(2 / false_alarm_rate)
    return 1 + 2 * math.sqrt(x / ((splits - 1) * directions)) + 2 * x / ((splits - 1) * math.sqrt(directions))


def order_diagnostic(stats: SplitStatistics, false_alarm_rate: float = FALSE_ALARM_RATE) -> OrderDiagnostic:
    """Whether the input order looks sorted by content (e.g. by class), from the run's statistics."""
    num_images = int(stats.count.sum())
    directions = effective_directions(stats, false_alarm_rate)
    threshold = order_threshold(num_images, stats.splits, directions, false_alarm_rate)
    sums = split_sums_of_squares(stats)
    if sums.expected_between > 0:
        ratio = sums.between / sums.expected_between
    else:
        ratio = math.nan
    return OrderDiagnostic(ratio=ratio, threshold=threshold, flagged=bool(ratio > threshold), directions=directions)


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
    in_split_order[SplitPlan.of(count, splits, shuffle_seed).positions()] = labels
    bounds = split_bounds(count, splits)
    runs = 1 + int(np.count_nonzero(in_split_order[1:] != in_split_order[:-1]))
    per_split = [len(np.unique(in_split_order[start:stop])) for start, stop in bounds]
    # log of C! n_1! ... n_C! / N!, the chance of one run per class in a random order of these labels
    log_chance = math.lgamma(len(values) + 1) + sum(math.lgamma(n + 1) for n in counts) - math.lgamma(count + 1)
    grouped = (len(values) >= 2 and len(bounds) >= 2 and runs == len(values)
               and log_chance < math.log(SORTED_CHANCE))
    return LabelOrder(histogram=histogram, sorted_by_class=grouped,
                      classes_per_split=(min(per_split), max(per_split)))
