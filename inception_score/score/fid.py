"""FID and sFID: running float64 feature statistics, and the Frechet distance between two Gaussians.

FID (Heusel et al. 2017) compares the mean and covariance of pool_3 features (N, 2048):
``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2))``, with ``S = np.cov(features, rowvar=False)``
(ddof=1), as TTUR, torch-fidelity and guided-diffusion's evaluator compute it. sFID (Nash et al. 2021) is
the same formula on the spatial features (N, 2023) (:data:`inception_score.network.outputs.Output.SPATIAL`).

:class:`FeatureMoments` keeps float64 sums (count, sum, sum of outer products), so its memory does not
grow with N and two of them add up (over batches, or over processes with one all-reduce).
:func:`trace_sqrt_product` computes ``tr(sqrtm(S1 S2))`` from eigenvalues, not from scipy's ``sqrtm``.
Pure math: no files, no devices beyond the tensors given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from ..errors import InputError


@dataclass(frozen=True)
class GaussianStatistics:
    """``mu`` (D,) and ``sigma`` (D, D) float64, the mean and the ddof=1 covariance of ``count`` feature
    vectors (None where a file gave the statistics without their count)."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int | None = None

    def __post_init__(self) -> None:
        mu, sigma = np.asarray(self.mu), np.asarray(self.sigma)
        if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
            raise InputError(f"Gaussian statistics need mu (D,) and sigma (D, D); got mu {mu.shape}, sigma {sigma.shape}")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            raise InputError("Gaussian statistics hold inf or NaN: the features or the statistics file are damaged")
        object.__setattr__(self, "mu", mu.astype(np.float64))
        object.__setattr__(self, "sigma", sigma.astype(np.float64))


class FeatureMoments:
    """Running float64 sums of feature vectors: ``count``, ``total`` (D,) and ``outer`` (D, D) = sum x x^T.

    :meth:`update` adds a batch ``(B, D)`` (any float dtype, any device; the sums stay on the device of
    the first batch). ``a + b`` is the moments of both sets; :meth:`as_tensor` / :meth:`from_tensor` give
    the one flat float64 tensor that ``torch.distributed.all_reduce`` sums across processes. Memory is
    ``D * (D + 1) + 1`` float64 whatever the number of images (33.6 MB at D = 2048).

    The covariance is ``(outer - count * mu mu^T) / (count - 1)``. The subtraction cancels as much as the
    features' mean exceeds their spread; pool_3 means are of the order of their standard deviations, so
    float64 keeps about 15 digits (the test checks it against ``np.cov`` on real features).
    """

    def __init__(self, dim: int, device: str | torch.device = "cpu") -> None:
        self.dim = dim
        self.count = 0
        self.total = torch.zeros(dim, dtype=torch.float64, device=device)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    def update(self, features: torch.Tensor) -> None:
        """Add ``(B, D)`` features (converted to float64 on the sums' device)."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise InputError(f"features must be (B, {self.dim}), got {tuple(features.shape)}")
        x = features.to(device=self.total.device, dtype=torch.float64)
        self.count += len(x)
        self.total += x.sum(dim=0)
        self.outer.addmm_(x.T, x)

    def __add__(self, other: FeatureMoments) -> FeatureMoments:
        if other.dim != self.dim:
            raise InputError(f"cannot add moments of {self.dim} and {other.dim} dimensions")
        both = FeatureMoments(self.dim, self.total.device)
        both.count = self.count + other.count
        both.total = self.total + other.total.to(self.total.device)
        both.outer = self.outer + other.outer.to(self.total.device)
        return both

    def as_tensor(self) -> torch.Tensor:
        """``[count, total..., outer...]``, float64, on the sums' device: summed over processes, it is the
        moments of all their features (count is exact in float64 up to 2^53)."""
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.total.device)
        return torch.cat([count, self.total, self.outer.reshape(-1)])

    @classmethod
    def from_tensor(cls, flat: torch.Tensor, dim: int) -> FeatureMoments:
        """The moments that :meth:`as_tensor` gave (or a sum of such tensors)."""
        if flat.shape != (1 + dim + dim * dim,):
            raise InputError(f"a moments tensor of {dim} dimensions has {1 + dim + dim * dim} values, got {tuple(flat.shape)}")
        moments = cls(dim, flat.device)
        moments.count = int(round(float(flat[0])))
        moments.total = flat[1 : 1 + dim].to(torch.float64).clone()
        moments.outer = flat[1 + dim :].to(torch.float64).reshape(dim, dim).clone()
        return moments

    def statistics(self) -> GaussianStatistics:
        """The mean and the ddof=1 covariance (``np.cov(features, rowvar=False)``), float64 on the host."""
        if self.count < 2:
            raise InputError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        total = self.total.cpu().numpy()
        outer = self.outer.cpu().numpy()
        mu = total / self.count
        sigma = (outer - np.outer(total, mu)) / (self.count - 1)
        return GaussianStatistics(mu, (sigma + sigma.T) / 2, self.count)  # symmetric to the last bit


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """``G`` (D, r) with ``sigma = G G^T`` up to rounding, ``r`` the numerical rank: LAPACK's pivoted
    Cholesky (dpstrf), which stops where the remaining pivots fall below D * eps * max(diag), so that
    rank-deficient covariances (fewer images than dimensions) factor too."""
    factor, pivots, rank, info = scipy.linalg.lapack.dpstrf(sigma, lower=1)
    if info < 0:
        raise InputError(f"the covariance could not be factored (LAPACK dpstrf info {info})")
    lower = np.tril(factor)[:, :rank]
    g = np.empty_like(lower)
    g[pivots - 1] = lower  # P^T sigma P = L L^T, so sigma = (P L)(P L)^T
    return g


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr(sqrtm(sigma1 @ sigma2))`` for two covariance matrices (symmetric, positive semi-definite).

    With ``sigma1 = G G^T``, ``sigma1 sigma2`` has the nonzero eigenvalues of the symmetric ``G^T sigma2 G``
    (``AB`` and ``BA`` share them), which are real and non-negative; the trace of the principal square
    root is the sum of their square roots. Rounding can leave tiny negative ones: they are clipped at 0.
    The factor is taken of the covariance of lower rank (``sigma1 sigma2`` and ``sigma2 sigma1`` share
    their eigenvalues): with ``G`` of rank r1 and ``sigma2`` of rank r2 < r1 (fewer images on that side
    than dimensions), ``G^T sigma2 G`` has r1 - r2 eigenvalues that are zero but for rounding, and their
    square roots would add about sqrt(eps) each (a relative error of 1e-9 with 80 and 64 images).
    Two pivoted Choleskys, two matrix products and a symmetric eigenvalue problem (values only): cheaper
    and more accurate than scipy's ``sqrtm`` of the non-symmetric product, which FID implementations call.
    """
    sigma1 = np.asarray(sigma1, dtype=np.float64)
    sigma2 = np.asarray(sigma2, dtype=np.float64)
    if sigma1.shape != sigma2.shape or sigma1.ndim != 2 or sigma1.shape[0] != sigma1.shape[1]:
        raise InputError(f"covariances must be two (D, D) matrices of one size, got {sigma1.shape} and {sigma2.shape}")
    g1, g2 = _psd_factor(sigma1), _psd_factor(sigma2)
    g, other = (g1, sigma2) if g1.shape[1] <= g2.shape[1] else (g2, sigma1)
    inner = g.T @ other @ g
    eigenvalues = scipy.linalg.eigh((inner + inner.T) / 2, eigvals_only=True, driver="evd", check_finite=False)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(first: GaussianStatistics, second: GaussianStatistics) -> float:
    """``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2))``: FID on pool_3 statistics, sFID on
    spatial ones. Statistics of different dimensions (say pool_3 against spatial) are refused."""
    if first.mu.shape != second.mu.shape:
        raise InputError(f"cannot compare statistics of {first.mu.shape[0]} and {second.mu.shape[0]} dimensions: "
                         "FID takes pool_3 statistics (2048) on both sides, sFID spatial ones (2023)")
    diff = first.mu - second.mu
    covariance_term = np.trace(first.sigma) + np.trace(second.sigma) - 2 * trace_sqrt_product(first.sigma, second.sigma)
    return float(diff @ diff + covariance_term)


__all__ = ["FeatureMoments", "GaussianStatistics", "frechet_distance", "trace_sqrt_product"]
