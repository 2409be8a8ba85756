"""KID (inception_score.score.kid) against torch-fidelity 0.4.0's own function on the same features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inception_score.errors import InputError
from inception_score.score.kid import kernel_inception_distance, unbiased_mmd2


def pool3_like(count: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(rng.standard_normal((count, 2048)).astype(np.float32) * 0.4 + 0.3 + shift)


@pytest.mark.parametrize(("subsets", "subset_size", "seed"), [(10, 100, 2020), (7, 150, 3)])
def test_kid_equals_torch_fidelity(subsets: int, subset_size: int, seed: int) -> None:
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    first, second = pool3_like(400, seed=1), pool3_like(300, seed=2, shift=0.05)
    theirs = metric_kid.kid_features_to_metric(torch.from_numpy(first), torch.from_numpy(second), kid_subsets=subsets,
                                               kid_subset_size=subset_size, rng_seed=seed, verbose=False)
    ours = kernel_inception_distance(first, second, subsets=subsets, subset_size=subset_size, seed=seed)
    # torch-fidelity's kernels are float32, ours float64: the only difference.
    assert ours.mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=2e-4)
    assert ours.std == pytest.approx(theirs["kernel_inception_distance_std"], rel=2e-3)
    # In float64 its own function gives ours to rounding: same subsets, same estimator.
    exact = metric_kid.kid_features_to_metric(torch.from_numpy(first).double(), torch.from_numpy(second).double(),
                                              kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed,
                                              verbose=False)
    assert ours.mean == pytest.approx(exact["kernel_inception_distance_mean"], rel=1e-10)
    assert ours.std == pytest.approx(exact["kernel_inception_distance_std"], rel=1e-8)


def test_unbiased_mmd2_is_the_formula_over_distinct_pairs() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 5)), rng.random((12, 5)) + 0.1
    k = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(12) for j in range(12) if i != j) / (12 * 11)
    across = sum(k(x[i], y[j]) for i in range(12) for j in range(12)) / 144
    assert unbiased_mmd2(x, y) == pytest.approx(within - 2 * across, rel=1e-12)


def test_kid_refuses_a_subset_larger_than_a_side() -> None:
    with pytest.raises(InputError, match="subset size 1000 is larger"):
        kernel_inception_distance(np.zeros((500, 4)), np.zeros((2000, 4)))
