"""The split-order diagnostic: its sums of squares against a per-image loop, its expectation against
every (or many) random orders, and its verdict on genuine CIFAR-10 images sorted by class."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from inception_score.metric import SplitStatistics, shuffled_positions, split_bounds, split_of_positions
from inception_score.order import order_diagnostic, order_threshold, split_sums_of_squares


def random_logits(n: int, classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, classes)) * rng.uniform(0.1, 6.0, size=(n, 1))


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def statistics(logits: np.ndarray, positions: np.ndarray, splits: int) -> SplitStatistics:
    stats = SplitStatistics.zeros(splits, logits.shape[1])
    stats.add(torch.from_numpy(logits), split_of_positions(positions, len(logits), splits))
    return stats


def statistics_of_order(p: np.ndarray, positions: np.ndarray, splits: int) -> SplitStatistics:
    """The same sums as :meth:`SplitStatistics.add`, from probabilities, summed in numpy over the
    contiguous runs of the reordered rows: many orders cheaply (no softmax, no torch threads)."""
    bounds = split_bounds(len(p), splits)
    starts = [start for start, _ in bounds]
    rows = p[np.argsort(positions)]
    return SplitStatistics(
        sum_p=np.add.reduceat(rows, starts, axis=0),
        sum_plogp=np.add.reduceat((rows * np.log(rows)).sum(axis=1), starts),
        sum_p2=np.add.reduceat((rows * rows).sum(axis=1), starts),
        count=np.array([stop - start for start, stop in bounds], dtype=np.int64),
    )


def naive_sums_of_squares(p: np.ndarray, members: list[list[int]]) -> tuple[float, float]:
    """B and T one image and one class at a time, around the means of the images themselves."""
    n, classes = p.shape
    overall = [sum(p[i, y] for i in range(n)) / n for y in range(classes)]
    total = sum((p[i, y] - overall[y]) ** 2 for i in range(n) for y in range(classes))
    between = 0.0
    for images in members:
        mean = [sum(p[i, y] for i in images) / len(images) for y in range(classes)]
        between += len(images) * sum((mean[y] - overall[y]) ** 2 for y in range(classes))
    return between, total


@pytest.mark.parametrize("n, splits, seed", [(37, 10, None), (50, 3, 7), (64, 1, None), (10, 10, 3)])
def test_sums_of_squares_equal_per_image_loop(n: int, splits: int, seed: int | None) -> None:
    logits = random_logits(n, 13, seed=n + splits)
    positions = np.arange(n) if seed is None else shuffled_positions(n, seed)
    # Added in uneven batches and merged, as a run (or several processes) would.
    stats = SplitStatistics.zeros(splits, 13)
    for start in range(0, n, 9):
        part = SplitStatistics.zeros(splits, 13)
        ids = split_of_positions(positions[start : start + 9], n, splits)
        part.add(torch.from_numpy(logits[start : start + 9]), ids)
        stats = stats.merge(part)
    members = [[i for i in range(n) if start <= positions[i] < stop] for start, stop in split_bounds(n, splits)]
    between, total = naive_sums_of_squares(softmax(logits), members)
    got = split_sums_of_squares(stats)
    assert got.between == pytest.approx(between, rel=1e-11, abs=1e-14)
    assert got.total == pytest.approx(total, rel=1e-11)
    assert got.expected_between == pytest.approx(total * (splits - 1) / (n - 1), rel=1e-11)


def test_sum_of_squared_probabilities_is_kept_per_split() -> None:
    logits = random_logits(25, 6, seed=1)
    stats = statistics(logits, np.arange(25), 4)
    p = softmax(logits)
    expected = [sum(float(p[i] @ p[i]) for i in range(start, stop)) for start, stop in split_bounds(25, 4)]
    np.testing.assert_allclose(stats.sum_p2, expected, rtol=1e-13)
    np.testing.assert_array_equal(SplitStatistics.zeros(4, 6).sum_p2, np.zeros(4))
    # The numpy helper the order tests use gives the same sums as SplitStatistics.add.
    positions = shuffled_positions(25, 3)
    via_add, via_numpy = statistics(logits, positions, 4), statistics_of_order(p, positions, 4)
    for name in ("sum_p", "sum_plogp", "sum_p2", "count"):
        np.testing.assert_allclose(getattr(via_numpy, name), getattr(via_add, name), rtol=1e-12, atol=1e-15)


def test_expected_between_is_the_average_over_every_order_of_unequal_splits() -> None:
    # 7 images into splits of 2, 2, 3: all 210 distinct assignments, each equally likely under a
    # uniformly random permutation.
    n, splits = 7, 3
    p = softmax(random_logits(n, 5, seed=11))
    sizes = [stop - start for start, stop in split_bounds(n, splits)]
    assert sizes == [2, 2, 3]
    values = []
    for first in itertools.combinations(range(n), 2):
        rest = [i for i in range(n) if i not in first]
        for second in itertools.combinations(rest, 2):
            positions = np.empty(n, dtype=np.int64)
            order = list(first) + list(second) + [i for i in rest if i not in second]
            positions[order] = np.arange(n)
            values.append(split_sums_of_squares(statistics_of_order(p, positions, splits)).between)
    assert len(values) == 210
    expected = split_sums_of_squares(statistics_of_order(p, np.arange(n), splits)).expected_between
    assert np.mean(values) == pytest.approx(expected, rel=1e-12)


def test_expected_between_matches_random_permutations_of_many_images() -> None:
    # 55 images, 10 splits of 5 or 6: the permutation mean of B over 20,000 orders, vectorised.
    n, splits, orders = 55, 10, 20000
    p = softmax(random_logits(n, 20, seed=5))
    d = p - p.mean(axis=0)
    bounds = split_bounds(n, splits)
    rng = np.random.default_rng(0)
    perms = np.argsort(rng.random((orders, n)), axis=1)  # perms[k, position] = image
    sums = np.cumsum(d[perms], axis=1)
    sums = np.concatenate([np.zeros((orders, 1, d.shape[1])), sums], axis=1)
    between = sum(((sums[:, stop] - sums[:, start]) ** 2).sum(axis=1) / (stop - start) for start, stop in bounds)
    expected = split_sums_of_squares(statistics(np.log(p), np.arange(n), splits)).expected_between
    standard_error = between.std() / np.sqrt(orders)
    assert abs(between.mean() - expected) < 4 * standard_error
    assert abs(between.mean() / expected - 1) < 0.02


def test_threshold_is_the_single_direction_gaussian_quantile() -> None:
    # For i.i.d. Gaussian values along one direction the F(S-1, N-S) law is exact: fresh data sets
    # (not permutations) must exceed order_threshold(N, S, a) in a share a of cases.
    n, splits, trials, rate = 200, 10, 40000, 0.05
    x = np.random.default_rng(1).normal(size=(trials, n))
    means = x.reshape(trials, splits, n // splits).mean(axis=2)
    between = (n // splits) * ((means - x.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    total = ((x - x.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    ratio = between / (total * (splits - 1) / (n - 1))
    observed = float(np.mean(ratio > order_threshold(n, splits, rate)))
    assert abs(observed - rate) < 4 * np.sqrt(rate * (1 - rate) / trials)


def test_nothing_is_flagged_with_one_split_or_few_images_per_split() -> None:
    assert order_threshold(1000, 1) == float("inf")
    assert order_threshold(99, 10) == float("inf")
    assert order_threshold(100, 10) < float("inf")
    logits = random_logits(40, 4, seed=0)
    labels = np.argmax(logits, axis=1)
    sorted_positions = np.empty(40, dtype=np.int64)
    sorted_positions[np.argsort(labels, kind="stable")] = np.arange(40)
    few = order_diagnostic(statistics(logits, sorted_positions, 10))
    assert few.ratio > 1 and not few.flagged  # 4 images per split: too few to tell
    one_per_split = order_diagnostic(statistics(logits[:10], np.arange(10), 10))
    assert one_per_split.ratio == pytest.approx(1.0) and not one_per_split.flagged  # B = T = E[B]


@pytest.mark.slow
def test_class_sorted_genuine_images_fire_and_random_orders_do_not(
    genuine_weights_file: Path, cifar10_partial_dir: Path
) -> None:
    """Genuine CIFAR-10 images through the genuine convolutions and a seeded random fc (so the split
    scores would not be Inception Scores), ordered as a class_0/ ... class_9/ folder reads them."""
    from inception_score.scorer import InceptionScorer

    n, splits = 150, 10
    archive = np.load(cifar10_partial_dir / "cifar10_prefix_partial.npz")
    images = torch.from_numpy(archive["data_batch_1_data_prefix"][:n].reshape(n, 3, 32, 32))
    labels = archive["data_batch_1_labels"][:n]
    scorer = InceptionScorer(genuine_weights_file, allow_unverified=True, device="cpu", progress=False)
    logits = torch.cat([scorer.logits(images[i : i + 50]) for i in range(0, n, 50)]).double().numpy()
    p = softmax(logits)
    rng = np.random.default_rng(2024)

    def by_class(labels: np.ndarray) -> np.ndarray:
        positions = np.empty(len(labels), dtype=np.int64)
        positions[np.argsort(labels, kind="stable")] = np.arange(len(labels))
        return positions

    # 150 images: 200 random orders and CIFAR's own order stay far below the threshold; the sorted
    # order stands above all of them, though with these weights not yet past the worst-case threshold.
    random_orders = [order_diagnostic(statistics_of_order(p, rng.permutation(n), splits)) for _ in range(200)]
    assert not any(d.flagged for d in random_orders)
    assert 0.85 < float(np.mean([d.ratio for d in random_orders])) < 1.15  # E[R] = 1
    assert not order_diagnostic(statistics(logits, np.arange(n), splits)).flagged
    assert order_diagnostic(statistics(logits, by_class(labels), splits)).ratio > max(d.ratio for d in random_orders)

    # The same images seven times over (1050, a folder holding each image seven times): sorted by
    # class it fires; random orders of the same 1050 do not.
    copies, copy_labels = np.tile(logits, (7, 1)), np.tile(labels, 7)
    sorted_verdict = order_diagnostic(statistics(copies, by_class(copy_labels), splits))
    assert sorted_verdict.flagged, sorted_verdict
    copies_p = np.tile(p, (7, 1))
    random_copies = [statistics_of_order(copies_p, rng.permutation(7 * n), splits) for _ in range(200)]
    assert not any(order_diagnostic(stats).flagged for stats in random_copies)
