"""Precision and recall (inception_score.score.precision_recall) against the definition written out naively."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inception_score.errors import InputError
from inception_score.score.precision_recall import manifold_radii, pairwise_distances, precision_recall


def naive(reference: np.ndarray, samples: np.ndarray, k: int = 3) -> tuple[float, float]:
    """All pairs, float64, differences squared (no expansion): a point's radius is the distance at index
    k of its sorted distances to its own set, itself (0) included, as guided-diffusion's evaluator takes it."""
    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)

    ref_radii = np.sort(distances(reference, reference), axis=1)[:, k]
    sample_radii = np.sort(distances(samples, samples), axis=1)[:, k]
    cross = distances(samples, reference)  # (samples, reference)
    precision = np.mean([(cross[i] <= ref_radii).any() for i in range(len(samples))])
    recall = np.mean([(cross[:, j] <= sample_radii).any() for j in range(len(reference))])
    return float(precision), float(recall)


def clouds(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = np.abs(rng.standard_normal((230, 40)) * 0.5 + 0.4)
    samples = np.abs(rng.standard_normal((170, 40)) * 0.6 + 0.45)  # overlapping, not equal: neither fraction is 0 or 1
    return reference, samples


@pytest.mark.parametrize("block", [4096, 64, 37])  # one block; several; blocks that do not divide the sets
def test_precision_recall_equal_the_naive_definition(block: int) -> None:
    reference, samples = clouds(0)
    expected = naive(reference, samples)
    assert 0.05 < expected[0] < 0.95 and 0.05 < expected[1] < 0.95
    result = precision_recall(reference, samples, block=block)
    assert (result.precision, result.recall) == pytest.approx(expected, abs=0)
    assert result.k == 3 and result.distances == "float64"


def test_other_neighbourhoods_and_float32_tensors() -> None:
    reference, samples = clouds(1)
    result = precision_recall(torch.from_numpy(reference).float(), torch.from_numpy(samples).float(), k=5, block=50)
    expected = naive(reference.astype(np.float32).astype(np.float64), samples.astype(np.float32).astype(np.float64), k=5)
    assert (result.precision, result.recall) == pytest.approx(expected, abs=0)


def test_radius_counts_duplicates_as_the_evaluator_does() -> None:
    # Three copies of a point: its radius is the distance at index 3, past the two duplicates (0) and itself.
    points = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    radii = manifold_radii(points, k=3).numpy()
    assert radii[0] == pytest.approx(1.0)  # 0 (itself), 0, 0, then 1
    assert radii[4] == pytest.approx(4.0)  # 0 (itself), then the three copies at 4; 5 comes after


def test_float16_emulation_rounds_as_float16_and_stays_close() -> None:
    reference, samples = clouds(2)
    a, b = torch.from_numpy(reference[:50]).float(), torch.from_numpy(samples[:60]).float()
    exact = pairwise_distances(a, b).numpy()
    emulated = pairwise_distances(a, b, "float16")
    assert emulated.dtype == torch.float32
    values = emulated.numpy()
    assert np.array_equal(values, values.astype(np.float16).astype(np.float32))  # float16 values
    assert np.abs(values - exact).max() <= 2 ** -10 * 4 * np.abs(exact).max()  # a few float16 places of the norms
    result = precision_recall(reference, samples, distances="float16")
    exact_result = naive(reference, samples)
    assert abs(result.precision - exact_result[0]) < 0.05 and abs(result.recall - exact_result[1]) < 0.05


def test_float16_overflow_falls_back_to_float32() -> None:
    # Squared norms past 65504 overflow float16: the evaluator then computes the block in float32.
    a = torch.full((3, 4), 200.0)
    b = torch.zeros(2, 4)
    assert torch.equal(pairwise_distances(a, b, "float16"), torch.full((3, 2), 160000.0))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InputError, match="differ in dimension"):
        precision_recall(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(InputError, match="k=3 needs more than k points"):
        precision_recall(np.random.rand(3, 2), np.random.rand(10, 2))
    with pytest.raises(InputError, match="inf or NaN"):
        precision_recall(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(InputError, match="'float64' or 'float16'"):
        precision_recall(np.random.rand(5, 2), np.random.rand(5, 2), distances="float32")  # type: ignore[arg-type]
