"""FID's statistics and distance (inception_score.score.fid) against numpy's covariance and scipy's sqrtm."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from inception_score.errors import InputError
from inception_score.score.fid import FeatureMoments, GaussianStatistics, frechet_distance, trace_sqrt_product


def features(count: int, dim: int, seed: int, rank: int | None = None) -> np.ndarray:
    """Correlated features whose mean is about as large as their spread (as pool_3's); with ``rank``,
    confined to a subspace of that dimension (plus the mean), so their covariance has that rank."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((rank or dim, dim)) / np.sqrt(rank or dim)
    return rng.standard_normal((count, rank or dim)) @ mixing + rng.uniform(0.2, 0.8, dim)


def scipy_trace(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """The trace FID implementations take: scipy's sqrtm of the product, real part."""
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(np.trace(root).real)


def test_moments_equal_numpy_cov_and_merge_by_addition() -> None:
    x = features(700, 64, seed=0).astype(np.float32)
    whole = FeatureMoments(64)
    parts = [FeatureMoments(64), FeatureMoments(64)]
    for start in range(0, 700, 96):  # uneven batches, alternately into two accumulators (two "processes")
        batch = torch.from_numpy(x[start : start + 96])
        whole.update(batch)
        parts[(start // 96) % 2].update(batch)
    merged = FeatureMoments.from_tensor(parts[0].as_tensor() + parts[1].as_tensor(), 64)  # as an all-reduce sums
    expected_mu, expected_sigma = x.astype(np.float64).mean(0), np.cov(x.astype(np.float64), rowvar=False)
    for moments in (whole, merged, parts[0] + parts[1]):
        stats = moments.statistics()
        assert stats.count == 700
        np.testing.assert_allclose(stats.mu, expected_mu, rtol=1e-13)
        np.testing.assert_allclose(stats.sigma, expected_sigma, rtol=1e-10, atol=1e-13 * np.abs(expected_sigma).max())
        assert np.array_equal(stats.sigma, stats.sigma.T)


def test_moments_memory_does_not_grow_with_the_number_of_images() -> None:
    moments = FeatureMoments(16)
    sizes = []
    for _ in range(3):
        moments.update(torch.rand(1000, 16))
        sizes.append(moments.as_tensor().numel())
    assert sizes == [1 + 16 + 256] * 3 and moments.count == 3000


def test_moments_refuse_too_few_images_and_wrong_widths() -> None:
    moments = FeatureMoments(8)
    moments.update(torch.rand(1, 8))
    with pytest.raises(InputError, match="at least 2"):
        moments.statistics()
    with pytest.raises(InputError, match=r"\(B, 8\)"):
        moments.update(torch.rand(3, 9))


def test_trace_sqrt_product_equals_scipy_sqrtm_on_well_conditioned_covariances() -> None:
    s1 = np.cov(features(2000, 256, seed=1), rowvar=False)
    s2 = np.cov(features(1500, 256, seed=2) * 1.3, rowvar=False)
    ours = trace_sqrt_product(s1, s2)
    assert ours == pytest.approx(scipy_trace(s1, s2), rel=1e-8)
    assert trace_sqrt_product(s2, s1) == pytest.approx(ours, rel=1e-10)  # AB and BA: one spectrum


@pytest.mark.parametrize(("count1", "count2", "rank1"), [
    (100, 1500, None),  # the first covariance singular (rank 99 < 256), as with a small reference
    (90, 120, None),  # both singular
    (2000, 2000, 40),  # features confined to a subspace
])
def test_trace_sqrt_product_on_rank_deficient_covariances(count1: int, count2: int, rank1: int | None) -> None:
    # A singular product's null eigenvalues come out of float64 as noise of order eps * |S1 S2|, whose square
    # roots (1e-8 of the large ones each) scipy's sqrtm adds up: measured 2.7e-8 to 5.6e-8 relative here
    # (1.6e-8 from a 40-digit evaluation at 64 dimensions, where ours was 4e-9 off). Ours drops them with the
    # pivoted Cholesky.
    s1 = np.cov(features(count1, 256, seed=1, rank=rank1), rowvar=False)
    s2 = np.cov(features(count2, 256, seed=2) * 1.3, rowvar=False)
    assert trace_sqrt_product(s1, s2) == pytest.approx(scipy_trace(s1, s2), rel=1e-7)


def test_trace_sqrt_product_on_rank_deficient_covariances_equals_40_digit_arithmetic() -> None:
    mpmath = pytest.importorskip("mpmath")
    s1 = np.cov(features(30, 48, seed=5), rowvar=False)  # rank 29 of 48
    s2 = np.cov(features(400, 48, seed=6) * 1.3, rowvar=False)
    with mpmath.workdps(40):
        eigenvalues = mpmath.eig(mpmath.matrix(s1.tolist()) * mpmath.matrix(s2.tolist()), left=False, right=False)
        exact = float(sum(mpmath.sqrt(mpmath.re(e)) for e in eigenvalues if mpmath.re(e) > 0))
    assert trace_sqrt_product(s1, s2) == pytest.approx(exact, rel=1e-8)


def test_trace_sqrt_product_of_commuting_matrices_is_the_formula() -> None:
    # Diagonal covariances: tr sqrt(S1 S2) = sum sqrt(a_i b_i), exactly known.
    a, b = np.linspace(0.1, 2, 50), np.linspace(3, 0.5, 50)
    a[:10] = 0  # rank-deficient
    assert trace_sqrt_product(np.diag(a), np.diag(b)) == pytest.approx(np.sqrt(a * b).sum(), rel=1e-12)


def test_frechet_distance_is_the_evaluators_formula() -> None:
    x, y = features(1200, 128, seed=3), features(900, 128, seed=4) * 1.1 + 0.05
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    expected = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * scipy_trace(s1, s2))
    ours = frechet_distance(GaussianStatistics(mu1, s1), GaussianStatistics(mu2, s2))
    assert ours == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(GaussianStatistics(mu1, s1), GaussianStatistics(mu1, s1)) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_refuses_different_dimensions() -> None:
    small, large = GaussianStatistics(np.zeros(3), np.eye(3)), GaussianStatistics(np.zeros(4), np.eye(4))
    with pytest.raises(InputError, match="3 and 4 dimensions"):
        frechet_distance(small, large)
    with pytest.raises(InputError, match="inf or NaN"):
        GaussianStatistics(np.array([np.nan, 0.0]), np.eye(2))
