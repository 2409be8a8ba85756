"""The split-order diagnostic: its sums of squares against a per-image loop, its expectation against
every (or many) random orders, its sketch against the exact spread, its threshold against simulated
random orders, and its verdict on genuine CIFAR-10 images sorted by class."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from inception_score.score.statistics import (
    ORDER_SKETCH_SIZE, SplitStatistics, shuffled_positions, sketch_projections, split_bounds, split_of_positions,
)
from inception_score.score.order import (
    effective_directions, order_diagnostic, order_threshold, sketch_error, split_sums_of_squares,
)


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


def clr(logits: np.ndarray) -> np.ndarray:
    """log p - mean_y log p, from the probabilities."""
    log_p = np.log(softmax(logits))
    return log_p - log_p.mean(axis=1, keepdims=True)


def statistics_of_order(logits: np.ndarray, positions: np.ndarray, splits: int, sketch: bool = True) -> SplitStatistics:
    """The same sums as :meth:`SplitStatistics.add`, written out in numpy over the contiguous runs of
    the reordered rows: many orders cheaply (no torch threads). ``sketch=False``: no sketch."""
    bounds = split_bounds(len(logits), splits)
    starts = [start for start, _ in bounds]
    rows = logits[np.argsort(positions)]
    p, c = softmax(rows), clr(rows)
    size = ORDER_SKETCH_SIZE if sketch else 0
    projected = c @ sketch_projections(logits.shape[1], size).numpy()
    return SplitStatistics(
        sum_p=np.add.reduceat(p, starts, axis=0),
        sum_plogp=np.add.reduceat((p * np.log(p)).sum(axis=1), starts),
        sum_clr=np.add.reduceat(c, starts, axis=0),
        sum_clr2=np.add.reduceat((c * c).sum(axis=1), starts),
        sketch=np.add.reduceat(projected[:, :size] * projected[:, size:], starts, axis=0) if size else np.zeros((splits, 0)),
        count=np.array([stop - start for start, stop in bounds], dtype=np.int64),
    )


def naive_sums_of_squares(c: np.ndarray, members: list[list[int]]) -> tuple[float, float]:
    """B and T one image and one class at a time, around the means of the images themselves."""
    n, classes = c.shape
    overall = [sum(c[i, y] for i in range(n)) / n for y in range(classes)]
    total = sum((c[i, y] - overall[y]) ** 2 for i in range(n) for y in range(classes))
    between = 0.0
    for images in members:
        mean = [sum(c[i, y] for i in images) / len(images) for y in range(classes)]
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
    between, total = naive_sums_of_squares(clr(logits), members)
    got = split_sums_of_squares(stats)
    assert got.between == pytest.approx(between, rel=1e-11, abs=1e-14)
    assert got.total == pytest.approx(total, rel=1e-11)
    assert got.expected_between == pytest.approx(total * (splits - 1) / (n - 1), rel=1e-11)


def test_clr_sums_and_sketch_are_kept_per_split() -> None:
    logits = random_logits(25, 6, seed=1)
    stats = statistics(logits, np.arange(25), 4)
    c = clr(logits)
    g, h = (sketch_projections(6, ORDER_SKETCH_SIZE).numpy()[:, k * ORDER_SKETCH_SIZE : (k + 1) * ORDER_SKETCH_SIZE]
            for k in (0, 1))
    for split, (start, stop) in enumerate(split_bounds(25, 4)):
        rows = range(start, stop)
        np.testing.assert_allclose(stats.sum_clr[split], sum(c[i] for i in rows), rtol=1e-12, atol=1e-13)
        assert stats.sum_clr2[split] == pytest.approx(sum(float(c[i] @ c[i]) for i in rows), rel=1e-12)
        expected = [sum(float(c[i] @ g[:, k]) * float(c[i] @ h[:, k]) for i in rows) for k in range(0, 1024, 97)]
        np.testing.assert_allclose(stats.sketch[split, ::97], expected, rtol=1e-9, atol=1e-12)
    assert SplitStatistics.zeros(4, 6).sketch.shape == (4, ORDER_SKETCH_SIZE)
    assert SplitStatistics.zeros(4, 6, sketch_size=0).sketch.shape == (4, 0)
    # The numpy helper the order tests use gives the same sums as SplitStatistics.add.
    positions = shuffled_positions(25, 3)
    via_add, via_numpy = statistics(logits, positions, 4), statistics_of_order(logits, positions, 4)
    for name in ("sum_p", "sum_plogp", "sum_clr", "sum_clr2", "sketch", "count"):
        np.testing.assert_allclose(getattr(via_numpy, name), getattr(via_add, name), rtol=1e-9, atol=1e-11)


def test_expected_between_is_the_average_over_every_order_of_unequal_splits() -> None:
    # 7 images into splits of 2, 2, 3: all 210 distinct assignments, each equally likely under a
    # uniformly random permutation.
    n, splits = 7, 3
    p = random_logits(n, 5, seed=11)
    sizes = [stop - start for start, stop in split_bounds(n, splits)]
    assert sizes == [2, 2, 3]
    values = []
    for first in itertools.combinations(range(n), 2):
        rest = [i for i in range(n) if i not in first]
        for second in itertools.combinations(rest, 2):
            positions = np.empty(n, dtype=np.int64)
            order = list(first) + list(second) + [i for i in rest if i not in second]
            positions[order] = np.arange(n)
            values.append(split_sums_of_squares(statistics_of_order(p, positions, splits, sketch=False)).between)
    assert len(values) == 210
    expected = split_sums_of_squares(statistics_of_order(p, np.arange(n), splits, sketch=False)).expected_between
    assert np.mean(values) == pytest.approx(expected, rel=1e-12)


def test_expected_between_matches_random_permutations_of_many_images() -> None:
    # 55 images, 10 splits of 5 or 6: the permutation mean of B over 20,000 orders, vectorised.
    n, splits, orders = 55, 10, 20000
    logits = random_logits(n, 20, seed=5)
    d = clr(logits) - clr(logits).mean(axis=0)
    bounds = split_bounds(n, splits)
    rng = np.random.default_rng(0)
    perms = np.argsort(rng.random((orders, n)), axis=1)  # perms[k, position] = image
    sums = np.cumsum(d[perms], axis=1)
    sums = np.concatenate([np.zeros((orders, 1, d.shape[1])), sums], axis=1)
    between = sum(((sums[:, stop] - sums[:, start]) ** 2).sum(axis=1) / (stop - start) for start, stop in bounds)
    expected = split_sums_of_squares(statistics(logits, np.arange(n), splits)).expected_between
    standard_error = between.std() / np.sqrt(orders)
    assert abs(between.mean() - expected) < 4 * standard_error
    assert abs(between.mean() / expected - 1) < 0.02


def test_threshold_is_the_laurent_massart_bound_written_out() -> None:
    x = np.log(2 / 1e-6)
    for n, splits, d in [(200, 10, 1.0), (200, 10, 25.0), (2000, 2, 40.0), (2000, 20, 7.5)]:
        expected = 1 + 2 * np.sqrt(x / ((splits - 1) * d)) + 2 * x / ((splits - 1) * np.sqrt(d))
        assert order_threshold(n, splits, d) == pytest.approx(expected, rel=1e-12)
    assert sketch_error(1024) == pytest.approx(np.sqrt(18 * x / 1024), rel=1e-12)


@pytest.mark.parametrize("spectrum", ["one direction", "flat over 30", "decaying"])
def test_random_orders_exceed_the_threshold_less_often_than_its_rate(spectrum: str) -> None:
    # Fresh Gaussian data sets with a known covariance spectrum, 200 images in 10 splits: the share of
    # ratios above order_threshold(N, S, d, a) at a = 0.05 (d from the exact spectrum) stays below a.
    n, splits, trials, rate = 200, 10, 3000, 0.05
    scales = {"one direction": np.array([1.0]), "flat over 30": np.ones(30),
              "decaying": 0.8 ** np.arange(40)}[spectrum]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(trials, n, len(scales))) * np.sqrt(scales)
    centred = x - x.mean(axis=1, keepdims=True)
    means = centred.reshape(trials, splits, n // splits, len(scales)).mean(axis=2)
    between = (n // splits) * (means**2).sum(axis=(1, 2))
    ratio = between / ((centred**2).sum(axis=(1, 2)) * (splits - 1) / (n - 1))
    directions = scales.sum() ** 2 / (scales**2).sum()
    observed = float(np.mean(ratio > order_threshold(n, splits, directions, rate)))
    assert observed < rate


def test_the_sketch_bounds_the_directions_from_below() -> None:
    # (tr C)^2 / tr(C^2) from every eigenvalue of the covariance of clr(p), against the sketch's bound.
    for seed, classes in [(0, 40), (1, 300)]:
        logits = random_logits(400, classes, seed=seed) @ np.random.default_rng(seed).normal(size=(classes, classes))
        stats = statistics(logits, np.arange(400), 10)
        c = clr(logits)
        eigenvalues = np.linalg.eigvalsh(np.cov(c, rowvar=False, bias=True))
        exact = eigenvalues.sum() ** 2 / (eigenvalues**2).sum()
        bound = effective_directions(stats)
        assert (1 - sketch_error(ORDER_SKETCH_SIZE)) * exact * 0.7 < bound < exact
        assert order_diagnostic(stats).directions == bound


def test_nothing_is_flagged_with_one_split_or_few_images_per_split() -> None:
    assert order_threshold(1000, 1, 10.0) == float("inf")
    assert order_threshold(99, 10, 10.0) == float("inf")
    assert order_threshold(100, 10, 10.0) < float("inf")
    assert order_threshold(100, 10, float("nan")) == float("inf")
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
    from inception_score.engine.runner import InceptionScorer

    n, splits = 200, 10
    archive = np.load(cifar10_partial_dir / "cifar10_prefix_partial.npz")
    images = torch.from_numpy(archive["data_batch_1_data_prefix"][:n].reshape(n, 3, 32, 32))
    labels = archive["data_batch_1_labels"][:n]
    scorer = InceptionScorer(genuine_weights_file, allow_unverified=True, device="cpu", progress=False)
    logits = torch.cat([scorer.logits(images[i : i + 50]) for i in range(0, n, 50)]).double().numpy()
    rng = np.random.default_rng(2024)
    positions = np.empty(n, dtype=np.int64)
    positions[np.argsort(labels, kind="stable")] = np.arange(n)

    # 200 images, 10 splits: sorted by class it fires; 300 random orders and CIFAR's own order do not.
    sorted_verdict = order_diagnostic(statistics(logits, positions, splits))
    assert sorted_verdict.flagged, sorted_verdict
    random_orders = [order_diagnostic(statistics_of_order(logits, rng.permutation(n), splits)) for _ in range(300)]
    assert not any(d.flagged for d in random_orders)
    assert 0.9 < float(np.mean([d.ratio for d in random_orders])) < 1.1  # E[R] = 1
    assert not order_diagnostic(statistics(logits, np.arange(n), splits)).flagged
