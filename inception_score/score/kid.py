"""KID (Binkowski et al. 2018) as torch-fidelity 0.4.0 computes it, in float64.

The unbiased estimate of the squared MMD between pool_3 features, with the polynomial kernel
``k(x, y) = (x . y / d + 1)^3``, over ``subsets`` random subsets of ``subset_size`` vectors from each
side; the result is the mean and the (population, ddof=0) standard deviation of the per-subset values.
The subsets are drawn as torch-fidelity draws them (``torch_fidelity/metric_kid.py``), so that the two
give the same number on the same features: one ``np.random.RandomState(seed)``, and for each subset in
turn ``choice(n1, subset_size, replace=False)`` for the first set, then the same for the second.
torch-fidelity computes the kernels in float32; here they are float64 (on the same features its KID
moves by about 1e-4 relative from that alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError

from ..protocol import KID_SEED, KID_SUBSET_SIZE, KID_SUBSETS


@dataclass(frozen=True)
class KidResult:
    """KID: the mean and std (ddof=0) of the unbiased MMD^2 over the subsets, and how it was drawn."""

    mean: float
    std: float
    subsets: int
    subset_size: int
    seed: int


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x @ y.T / d + 1) ** 3`` for ``(m, d)`` and ``(n, d)`` float64 features: ``(m, n)``."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 estimate between two equal-sized samples ``(m, d)`` under :func:`polynomial_kernel`:
    the mean of k over distinct pairs within each sample, minus twice the mean over all cross pairs."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def _as_float64(features: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise InputError(f"KID takes (N, D) features; the {name} features are {array.shape}")
    return array


def kernel_inception_distance(features_1: np.ndarray | torch.Tensor, features_2: np.ndarray | torch.Tensor,
                              subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
                              seed: int = KID_SEED) -> KidResult:
    """KID between ``(N1, D)`` and ``(N2, D)`` features (torch-fidelity's ``input1`` and ``input2``: its
    generated images first, its reference second; the subsets are drawn in that order)."""
    x, y = _as_float64(features_1, "first"), _as_float64(features_2, "second")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"KID needs features of one dimension on both sides, got {x.shape[1]} and {y.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise InputError(f"KID needs at least 1 subset of at least 2 vectors, got {subsets} of {subset_size}")
    if min(len(x), len(y)) < subset_size:
        raise InputError(f"KID subset size {subset_size} is larger than a side ({len(x)} and {len(y)} images): "
                         "pass a smaller subset size (torch-fidelity's kid_subset_size) or more images")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for index in range(subsets):
        first = x[rng.choice(len(x), subset_size, replace=False)]
        second = y[rng.choice(len(y), subset_size, replace=False)]
        values[index] = unbiased_mmd2(first, second)
    return KidResult(float(values.mean()), float(values.std()), subsets, subset_size, seed)


__all__ = ["KID_SEED", "KID_SUBSETS", "KID_SUBSET_SIZE", "KidResult", "kernel_inception_distance",
           "polynomial_kernel", "unbiased_mmd2"]
