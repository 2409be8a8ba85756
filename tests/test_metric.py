"""The metric against a naive per-image transcription of the paper's formula, and torch-fidelity's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inception_score.errors import InputError
from inception_score.score.statistics import (
    SplitStatistics,
    shuffled_positions,
    split_bounds,
    split_of_positions,
    summarize,
)
from inception_score.score.planned import inception_score_from_logits


def naive_split_scores(p: np.ndarray, splits: int) -> list[float]:
    """The original code's loop, one image at a time: KL(p(y|x) || p(y)) per image, exp of the mean."""
    n = p.shape[0]
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = [sum(row[y] for row in part) / len(part) for y in range(p.shape[1])]
        kls = []
        for row in part:
            kl = 0.0
            for y in range(p.shape[1]):
                kl += row[y] * (math.log(row[y]) - math.log(marginal[y]))
            kls.append(kl)
        scores.append(math.exp(sum(kls) / len(kls)))
    return scores


def random_probabilities(n: int, classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Peaked rows like a confident classifier, plus flat ones.
    logits = rng.normal(size=(n, classes)) * rng.uniform(0.1, 6.0, size=(n, 1))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("n, splits", [(10, 10), (37, 10), (50, 3), (101, 7), (64, 1)])
def test_split_scores_equal_naive_transcription(n: int, splits: int) -> None:
    p = random_probabilities(n, 23, seed=n * 31 + splits)
    expected = naive_split_scores(p, splits)
    got = inception_score_from_logits(np.log(p), splits=splits)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_mean_and_population_std() -> None:
    scores = np.array([1.0, 2.0, 4.0])
    mean, std = summarize(scores)
    assert mean == pytest.approx(7 / 3, rel=1e-15)
    assert std == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 3), rel=1e-15)


def test_split_bounds_are_contiguous_floor_divisions() -> None:
    assert split_bounds(25, 10) == [(0, 2), (2, 5), (5, 7), (7, 10), (10, 12), (12, 15), (15, 17), (17, 20), (20, 22), (22, 25)]
    positions = np.arange(25)
    ids = split_of_positions(positions, 25, 10)
    for index, (start, stop) in enumerate(split_bounds(25, 10)):
        assert list(np.flatnonzero(ids == index)) == list(range(start, stop))


def test_statistics_added_in_batches_equal_one_pass_and_merge() -> None:
    p = random_probabilities(53, 11, seed=3)
    logits = torch.from_numpy(np.log(p))
    ids = split_of_positions(np.arange(53), 53, 5)
    whole = SplitStatistics.zeros(5, 11)
    whole.add(logits, ids)
    first, second = SplitStatistics.zeros(5, 11), SplitStatistics.zeros(5, 11)
    for start in range(0, 53, 4):
        target = first if start < 24 else second
        target.add(logits[start : start + 4], ids[start : start + 4])
    np.testing.assert_allclose(first.merge(second).scores(), whole.scores(), rtol=1e-13)


def test_shuffle_matches_torch_fidelity() -> None:
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    rng = np.random.default_rng(5)
    logits = torch.from_numpy(rng.normal(size=(97, 1008)) * 3).float()
    for shuffle in (False, True):
        theirs = metric_isc.isc_features_to_metric(logits, splits=10, shuffle=shuffle, rng_seed=2020)
        scores = inception_score_from_logits(logits, 10, shuffle_seed=2020 if shuffle else None)
        mean, std = summarize(scores)
        assert mean == pytest.approx(theirs["inception_score_mean"], rel=1e-12)
        assert std == pytest.approx(theirs["inception_score_std"], rel=1e-9, abs=1e-12)


def test_shuffled_positions_invert_the_permutation() -> None:
    perm = np.random.RandomState(11).permutation(20)
    positions = shuffled_positions(20, 11)
    assert all(positions[perm[k]] == k for k in range(20))


def test_fewer_images_than_splits_is_refused() -> None:
    with pytest.raises(InputError, match="9 images cannot be divided into 10 splits"):
        inception_score_from_logits(np.zeros((9, 5)), splits=10)
    with pytest.raises(InputError, match="splits must be at least 1"):
        split_bounds(10, 0)


def test_identical_confident_predictions_score_one_and_uniform_classes_score_k() -> None:
    # Every image certain of the same class: KL is 0, score 1. Each image certain of a
    # different class among K: score K. Worked out by hand from the definition.
    same = np.full((10, 4), -50.0)
    same[:, 2] = 50.0
    assert inception_score_from_logits(same, splits=1)[0] == pytest.approx(1.0, abs=1e-12)
    distinct = np.full((4, 4), -50.0)
    np.fill_diagonal(distinct, 50.0)
    assert inception_score_from_logits(distinct, splits=1)[0] == pytest.approx(4.0, rel=1e-12)
