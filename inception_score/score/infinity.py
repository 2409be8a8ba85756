"""IS-infinity: the Inception Score extrapolated to infinitely many images (Chong & Forsyth, CVPR 2020).

The score of n images in one split, IS_n, is biased in n: its marginal p(y) is estimated from the same
n images, and the bias shrinks about as 1/n. Chong & Forsyth ("Effectively Unbiased FID and Inception
Score and where to find them") compute IS_n at 15 sizes and fit a straight line of IS_n against 1/n;
its value at 1/n = 0 is IS-infinity. Their code (mchong6/FID_IS_infinity, ``score_infinity.py``) takes
``n = linspace(5000, 50000, 15)`` truncated to integers, and for each n the first n of a freshly
shuffled pool of 50,000, with torchvision's Inception.

Here, for N images (any N >= :data:`MIN_IMAGES`):

- sizes ``n_k = floor(N (14 + 9 k) / 140)``, k = 0 ... 14: ``linspace(N/10, N, 15)`` truncated, as the
  reference code truncates (computed in integers, so 5000, 8214, ..., 46785, 50000 at N = 50,000);
- one seeded order for every n, ``shuffled_positions(N, seed)`` (:mod:`.metric`): IS_n is the
  one-split score of the images at positions ``[0, n)``. The subsets are nested (the reference
  reshuffles for each n); that is what makes one pass enough:
- image i falls in bucket k when its position lies in ``[n_{k-1}, n_k)`` (``n_{-1} = 0``). The
  buckets' statistics are a :class:`~.metric.SplitStatistics` with 15 rows (sums of p(y|x) and of
  ``sum_y p log p`` in float64), so they add across batches and across processes exactly as the
  split statistics do, and the first n_k images are buckets 0 ... k: prefix sums give every IS_n.

The fit is ordinary least squares of IS_n on 1/n over the 15 points; its residual is reported as the
root mean square of ``IS_n - (intercept + slope / n)``. IS-infinity is a different quantity from the
Inception Score of published tables (50,000 images, 10 splits): never set one beside the other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .statistics import SplitStatistics, shuffled_positions

POINTS = 15  # the reference code's num_points
MIN_IMAGES = 16  # below this two sizes n_k coincide (their step is 9 N / 140 images)


def infinity_sizes(num_images: int) -> np.ndarray:
    """``(15,)`` int64: ``n_k = floor(N (14 + 9 k) / 140)``, from N/10 to N, strictly increasing."""
    if num_images < MIN_IMAGES:
        raise InputError(f"IS-infinity needs at least {MIN_IMAGES} images (15 distinct subset sizes from N/10 to N); "
                         f"got {num_images}")
    return np.array([num_images * (14 + 9 * k) // 140 for k in range(POINTS)], dtype=np.int64)


def infinity_buckets(num_images: int, seed: int) -> np.ndarray:
    """``(N,)`` int64: the bucket of each input image (index in input order) under the seeded order."""
    positions = shuffled_positions(num_images, seed)
    return np.searchsorted(infinity_sizes(num_images), positions, side="right")


@dataclass(frozen=True)
class InfinityFit:
    """IS_n at the 15 sizes and the least-squares line ``IS_n = intercept + slope / n``.

    ``sizes`` ``(15,)`` int64, ``scores`` ``(15,)`` float64; ``intercept`` is IS-infinity;
    ``residual`` the root mean square of the 15 points' deviations from the line.
    """

    sizes: np.ndarray
    scores: np.ndarray
    intercept: float
    slope: float
    residual: float


def fit_line(sizes: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    """``(intercept, slope, rms residual)`` of the least-squares line of ``scores`` against ``1 / sizes``."""
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    design = np.stack([np.ones_like(x), x], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, scores, rcond=None)
    residual = float(np.sqrt(np.mean((scores - design @ np.array([intercept, slope])) ** 2)))
    return float(intercept), float(slope), residual


def infinity_fit(buckets: SplitStatistics) -> InfinityFit:
    """IS_n and the line from the statistics of the 15 buckets (all images, all processes)."""
    if buckets.splits != POINTS:
        raise InputError(f"IS-infinity needs the statistics of {POINTS} buckets, got {buckets.splits}")
    num_images = int(buckets.count.sum())
    sizes = infinity_sizes(num_images)
    prefix = SplitStatistics(**{f.name: np.cumsum(getattr(buckets, f.name), axis=0)
                                for f in dataclasses.fields(buckets)})
    if not np.array_equal(prefix.count, sizes):
        raise InputError(f"the buckets hold {prefix.count.tolist()} images cumulatively, not the sizes {sizes.tolist()}")
    scores = prefix.scores()
    intercept, slope, residual = fit_line(sizes, scores)
    return InfinityFit(sizes=sizes, scores=scores, intercept=intercept, slope=slope, residual=residual)
