"""The scoring loop that keeps logits and statistics on the device (inception_score.engine.pipeline), on CPU
tensors: the device-side statistics against SplitStatistics and a naive loop, the float16 overflow
guard folded into the accumulation (a stand-in network that overflows on one batch, with the CUDA
branch of a CPU scorer), and the count of the points where the host waits for the device."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import inception_score.engine.pipeline as pipeline_module
import inception_score.engine.runner as runner_module
from inception_score import InceptionScore, InceptionScorer, inception_score
from inception_score.engine.accumulators import SplitAccumulator
from inception_score.score.statistics import (
    DeviceStatistics,
    SplitStatistics,
    _sum_by_product,
    shuffled_positions,
    split_of_positions,
)

FIELDS = ("sum_p", "sum_plogp", "sum_clr", "sum_clr2", "sketch", "count")
EPS = np.finfo(np.float64).eps


def random_logits(n: int, classes: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(n, classes)) * rng.uniform(0.1, 6.0, size=(n, 1))).float()


def naive_columns(logits: torch.Tensor) -> np.ndarray:
    """Per image, in float64 numpy: p(y|x), sum_y p log p, clr(p) = log p - mean_y log p, ||clr||^2."""
    x = logits.double().numpy()
    log_p = x - x.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    c = log_p - log_p.mean(axis=1, keepdims=True)
    return np.concatenate([p, (p * log_p).sum(axis=1, keepdims=True), c, (c * c).sum(axis=1, keepdims=True)], axis=1)


@pytest.mark.parametrize(("n", "splits", "batch", "sketch", "seed"), [(53, 5, 4, 1024, None), (40, 3, 7, 0, 11),
                                                                      (64, 1, 64, 1024, 2)])
def test_device_statistics_on_a_cpu_are_split_statistics_bit_for_bit(n: int, splits: int, batch: int, sketch: int,
                                                                     seed: int | None) -> None:
    # Equal by construction: both add the same per-batch sums (split_sums, the same kernels on the
    # same inputs) to their running totals in the same order, with correctly rounded float64 additions.
    logits = random_logits(n, 17, seed=n)
    positions = np.arange(n) if seed is None else shuffled_positions(n, seed)
    ids = split_of_positions(positions, n, splits)
    host, device = SplitStatistics.zeros(splits, 17, sketch), DeviceStatistics(splits, 17, sketch)
    for start in range(0, n, batch):
        host.add(logits[start : start + batch], ids[start : start + batch])
        device.add(logits[start : start + batch], ids[start : start + batch])
    got = device.numpy()
    for name in FIELDS:
        assert getattr(got, name).dtype == getattr(host, name).dtype
        assert np.array_equal(getattr(got, name), getattr(host, name)), name
    # And against a naive loop: each split's sums of the per-image values, one image at a time. Each
    # value is within (C + 8) eps of its scale (|value| + the largest |log p| of its image: a log-sum-exp
    # over C = 17 classes, then a centring), and m additions add m eps of the sum of magnitudes.
    columns = naive_columns(logits)
    scale = np.abs(columns) + np.abs(
        np.log(columns[:, :17])).max(axis=1, keepdims=True)
    for split in range(splits):
        members = [i for i in range(n) if ids[i] == split]
        assert got.count[split] == len(members)
        expected = sum((columns[i] for i in members), np.zeros(columns.shape[1]))
        bound = (17 + 8 + len(members)) * EPS * sum((scale[i] for i in members), np.zeros(columns.shape[1]))
        values = np.concatenate([got.sum_p[split], [got.sum_plogp[split]], got.sum_clr[split], [got.sum_clr2[split]]])
        assert np.all(np.abs(values - expected) <= bound)


def test_the_sum_by_product_used_on_a_gpu_equals_a_naive_sum() -> None:
    rng = np.random.default_rng(4)
    values = torch.from_numpy(rng.normal(size=(29, 6)) * 10)
    ids = torch.from_numpy(rng.integers(0, 4, size=29))
    got = _sum_by_product(values, ids, 4).numpy()
    for split in range(4):
        rows = [values[i].numpy() for i in range(29) if ids[i] == split]
        expected = sum(rows, np.zeros(6))
        # Any order of m float64 additions: within (m - 1) eps of the sum of magnitudes, each way.
        bound = 2 * len(rows) * EPS * sum((np.abs(r) for r in rows), np.zeros(6))
        assert np.all(np.abs(got[split] - expected) <= bound)


def test_a_skipped_batch_adds_nothing_and_an_unskipped_one_adds_the_same_bits() -> None:
    logits = random_logits(12, 9, seed=1)
    ids = np.repeat(np.arange(3), 4)
    plain, flagged = DeviceStatistics(3, 9), DeviceStatistics(3, 9)
    plain.add(logits, ids)
    flagged.add(logits, ids, skip=torch.tensor(False))
    flagged.add(torch.full((12, 9), math.inf), ids, skip=torch.tensor(True))  # inf logits, flagged
    for name in FIELDS:
        assert np.array_equal(getattr(flagged.numpy(), name), getattr(plain.numpy(), name)), name


# --- the float16 guard: a CPU scorer told it is on CUDA, with a stand-in network ----------------------


class Autocast:
    """torch.autocast's stand-in: records whether autocast is on (a CPU has no CUDA autocast)."""

    active = [False]

    def __init__(self, device_type: str, dtype: torch.dtype | None = None, enabled: bool = True) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        Autocast.active.append(self.enabled)

    def __exit__(self, *exc: object) -> bool:
        Autocast.active.pop()
        return False


class OverflowingNetwork:
    """Logits = a fixed projection of 4x4 averages of the pixels; under autocast, inf for a batch
    holding an image whose first pixel is 255 (as float16 past 65504). Records each call."""

    def __init__(self) -> None:
        self.matrix = torch.randn(48, 1008, generator=torch.Generator().manual_seed(0), dtype=torch.float64) / 20
        self.calls: list[tuple[bool, list[int]]] = []  # (autocast on, the batch's first pixels)

    def __call__(self, x: torch.Tensor, output: object, **kwargs: object) -> torch.Tensor:
        marks = x[:, 0, 0, 0].round().int().tolist()
        self.calls.append((Autocast.active[-1], marks))
        logits = torch.nn.functional.adaptive_avg_pool2d(x.double(), 4).flatten(1) @ self.matrix
        if Autocast.active[-1] and 255 in marks:
            logits[0, 3] = math.inf
        return logits.float()


@pytest.fixture(scope="module")
def loaded(genuine_weights_file: Path) -> InceptionScorer:
    """A CPU scorer, loaded once: each test takes copies of it with a stand-in network."""
    return InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False)


def stand_in(loaded: InceptionScorer) -> InceptionScorer:
    scorer = copy.copy(loaded)
    scorer.network = OverflowingNetwork()
    scorer.network_input = lambda batch: batch.float()
    return scorer


def guarded_scorer(loaded: InceptionScorer, monkeypatch: pytest.MonkeyPatch, precision: str = "fast") -> InceptionScorer:
    scorer = stand_in(loaded)
    scorer.device = torch.device("cuda")  # the CUDA branch: float16 autocast in fast mode
    scorer.precision = precision
    monkeypatch.setattr(torch, "autocast", Autocast)
    monkeypatch.setattr(runner_module, "precision_scope", lambda *args, **kwargs: _nothing())
    monkeypatch.setattr(pipeline_module.DevicePipeline, "_to_device", lambda self, batch: (batch, False))
    return scorer


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def marked_images(count: int, marked: int) -> torch.Tensor:
    """``(count, 3, 8, 8)`` uint8; image i's first pixel is i (below 255), but ``marked``'s is 255."""
    images = torch.randint(0, 256, (count, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    images[:, 0, 0, 0] = torch.arange(count, dtype=torch.uint8)
    images[marked, 0, 0, 0] = 255
    return images


def naive_scores(logits: torch.Tensor, splits: int) -> np.ndarray:
    columns = naive_columns(logits)
    p = columns[:, : logits.shape[1]]
    scores = []
    n = len(p)
    for i in range(splits):  # the paper's contiguous chunks, [i n / splits, (i + 1) n / splits)
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), axis=1))))
    return np.array(scores)


@pytest.mark.parametrize("num_images", [40, None])  # statistics as the images arrive / logits kept
def test_a_float16_overflow_is_recomputed_for_that_batch_only(loaded: InceptionScorer,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              num_images: int | None) -> None:
    images = marked_images(40, marked=11)  # batch 5 of 20 batches of 2
    fast = guarded_scorer(loaded, monkeypatch)
    batches = [images[i : i + 2] for i in range(0, 40, 2)]
    result = inception_score(iter(batches), num_images=num_images, splits=4, scorer=fast)
    network = fast.network
    assert sum(on for on, _ in network.calls) == 20  # every batch once in float16 ...
    assert [marks for on, marks in network.calls if not on] == [[10, 255]]  # ... and batch 5 again, without
    assert fast.float16_overflows == 1 and "1 batch(es) overflowed float16" in result.precision_note
    # The same images with nothing overflowing: the statistics differ only by where batch 5's float64
    # sums were added (at the flag read after batch 16, not in sequence): 20 sums per split in another
    # order, a relative error far below 1e-13 on scores of order 1.
    exact = guarded_scorer(loaded, monkeypatch, precision="exact")
    reference = inception_score(iter(batches), num_images=num_images, splits=4, scorer=exact)
    assert exact.float16_overflows == 0 and reference.precision_note == ""
    np.testing.assert_allclose(result.split_scores, reference.split_scores, rtol=1e-13, atol=0)
    finite = OverflowingNetwork()(images.float(), None)
    np.testing.assert_allclose(result.split_scores, naive_scores(finite, 4), rtol=1e-12, atol=0)


def test_the_metric_object_with_indices_recomputes_the_overflowed_chunk(loaded: InceptionScorer,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    images = marked_images(24, marked=20)
    order = np.random.default_rng(1).permutation(24)
    fast = guarded_scorer(loaded, monkeypatch)
    metric = InceptionScore(splits=3, num_images=24, scorer=fast, batch_size=4)
    for start in range(0, 24, 8):
        metric.update(images[order[start : start + 8]], indices=order[start : start + 8])
    result = metric.compute()
    again = [marks for on, marks in fast.network.calls if not on]
    assert len(again) == 1 and 255 in again[0] and fast.float16_overflows == 1  # the chunk with image 20
    finite = OverflowingNetwork()(images.float(), None)
    np.testing.assert_allclose(result.split_scores, naive_scores(finite, 3), rtol=1e-12, atol=0)


@pytest.mark.parametrize("num_images", [40, None])
def test_a_run_waits_for_the_device_a_few_times_not_once_per_batch(loaded: InceptionScorer,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   num_images: int | None) -> None:
    images = marked_images(40, marked=30)
    batches = [images[i : i + 1] for i in range(40)]  # 40 batches
    for precision in ("fast", "exact"):  # with flags to read, and without
        scorer = guarded_scorer(loaded, monkeypatch, precision)
        before = scorer.host_syncs
        inception_score(iter(batches), num_images=num_images, splits=4, scorer=scorer)
        assert scorer.host_syncs - before <= 2 + 40 // 16
        # outputs() and logits(), the public per-batch calls, wait each time: what the loop avoids.
        before = scorer.host_syncs
        for batch in batches[:5]:
            scorer.logits(batch)
        assert scorer.host_syncs - before == 5


def test_a_cpu_run_waits_once(loaded: InceptionScorer) -> None:
    scorer = stand_in(loaded)
    images = marked_images(24, marked=0)
    before = scorer.host_syncs
    result = inception_score(images, splits=3, batch_size=2, scorer=scorer)
    assert scorer.host_syncs - before == 1  # 12 batches, statistics read back once
    np.testing.assert_allclose(result.split_scores, naive_scores(scorer.network(images.float(), None), 3),
                               rtol=1e-12, atol=0)


def test_device_outputs_are_the_outputs_left_where_they_were_computed(loaded: InceptionScorer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    images = marked_images(6, marked=2)
    cpu = stand_in(loaded)
    logits, flag = cpu.device_outputs(images)
    assert flag is None and torch.equal(logits, cpu.logits(images))
    fast = guarded_scorer(loaded, monkeypatch)
    logits, flag = fast.device_outputs(images)
    assert flag is not None and flag.shape == () and bool(flag) and not torch.isfinite(logits).all()
    assert fast.float16_overflows == 0  # nothing recomputed until the flag is read
    assert torch.equal(fast.logits(images), cpu.logits(images)) and fast.float16_overflows == 1
    logits, flag = fast.device_outputs(images[3:])
    assert flag is not None and not bool(flag)


def test_the_accumulator_redoes_only_the_token_it_gave() -> None:
    logits = random_logits(12, 1008, seed=3)
    accumulator = SplitAccumulator(3, 12, None)
    tokens = [accumulator.add(logits[i : i + 4], skip=torch.tensor(i == 4)) for i in range(0, 12, 4)]
    assert tokens == [0, 4, 8]
    accumulator.redo(4, logits[4:8])
    whole = SplitStatistics.zeros(3, 1008)
    whole.add(logits, np.repeat(np.arange(3), 4))
    got = accumulator.finish()
    # Each split holds one batch here, so the order of its additions is the same: the same bits.
    for name in FIELDS:
        assert np.array_equal(getattr(got, name), getattr(whole, name)), name
