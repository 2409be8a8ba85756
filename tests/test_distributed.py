"""Scoring across processes (torch.distributed, Gloo on CPU, 2 and 3 spawned processes): every rank
gets the score one process gives on the same images in the same order, each rank reads only its
part, and a failure on one rank ends every rank with that rank's message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch.multiprocessing as mp

import distributed_workers as workers
from inception_score import InceptionScore, inception_score
from inception_score.engine.distributed import shard_bounds, statistics_bytes


def spawn(tmp_path: Path, world: int, scenario: str, **params) -> list[dict]:
    """Run ``scenario`` in ``world`` fresh processes joined by a Gloo group; their outcomes by rank."""
    out = tmp_path / f"{scenario}-{world}-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    mp.start_processes(workers.worker, args=(world, str(out / "rendezvous"), str(out), scenario, params),
                       nprocs=world, join=True, start_method="spawn")
    return [json.loads((out / f"rank-{rank}.json").read_text()) for rank in range(world)]


def alone(pixels: np.ndarray, splits: int, shuffle: bool = False):
    return inception_score(pixels, splits=splits, batch_size=5, shuffle=shuffle, scorer=workers.PixelProjection(),
                           distributed=False)


# The stand-in's logits are the same bits on any process count (workers.PixelProjection: each image
# by itself), so one process and 2 or 3 differ only in the order of the float64 sums that make each
# split's statistics: relative 1e-12 holds that with a wide margin, and any image counted twice,
# dropped or put in the wrong split moves a score by ~1e-3. The real network's float32 logits do
# change with the batches; its bound, 1e-6 on the mean, is in tests/test_distributed_cli.py.
FLOAT64_SUMS = 1e-12


def assert_same_score(outcomes: list[dict], expected) -> None:
    for outcome in outcomes:
        assert "error" not in outcome, outcome.get("traceback")
        assert outcome["num_images"] == expected.num_images
        np.testing.assert_allclose(outcome["split_scores"], expected.split_scores, rtol=FLOAT64_SUMS, atol=0)
        assert outcome["mean"] == pytest.approx(expected.mean, rel=FLOAT64_SUMS)
        assert outcome["std"] == pytest.approx(expected.std, rel=FLOAT64_SUMS, abs=1e-15)
    # Every rank computes its scores from the same all-reduced statistics: the same bits on each.
    assert len({json.dumps(o["split_scores"]) for o in outcomes}) == 1


@pytest.mark.parametrize("world, count, splits, shuffle", [
    (2, 40, 10, False),  # divisible by the world size
    (3, 41, 10, False),  # not divisible
    (3, 41, 10, True),  # shuffle by global position
    (3, 2, 2, False),  # fewer images than processes: rank 2 has none
])
def test_api_on_a_dataset_equals_one_process_and_each_rank_reads_its_own_part(
    tmp_path: Path, world: int, count: int, splits: int, shuffle: bool
) -> None:
    outcomes = spawn(tmp_path, world, "api", count=count, splits=splits, batch_size=4, shuffle=shuffle)
    assert_same_score(outcomes, alone(workers.images(count), splits, shuffle))
    reads = [o["read"] for o in outcomes]
    for rank, read in enumerate(reads):
        assert read == list(range(*shard_bounds(count, rank, world)))  # its contiguous part, once
    assert sorted(sum(reads, [])) == list(range(count))  # together: all of it, disjoint
    assert outcomes[0]["processes"] == world
    assert outcomes[0]["exchanged_bytes"] == statistics_bytes(splits, 1008)


def test_api_on_an_array_with_3_processes(tmp_path: Path) -> None:
    outcomes = spawn(tmp_path, 3, "api_array", count=23, splits=10, batch_size=4)
    assert_same_score(outcomes, alone(workers.images(23), 10))


@pytest.mark.parametrize("world, count, sampler_shuffle, shuffle", [(2, 31, False, False), (3, 31, True, False),
                                                                    (3, 31, False, True)])
def test_metric_with_distributed_sampler_indices_drops_the_padding(
    tmp_path: Path, world: int, count: int, sampler_shuffle: bool, shuffle: bool
) -> None:
    outcomes = spawn(tmp_path, world, "metric_sampler", count=count, splits=10, batch_size=4,
                     sampler_shuffle=sampler_shuffle, shuffle=shuffle)
    sampled = sum((o["sampled"] for o in outcomes), [])
    assert len(sampled) > count  # the sampler padded: some images reached two ranks
    # Indices are positions in the data set: the score is the data set's, in its own order.
    assert_same_score(outcomes, alone(workers.images(count), 10, shuffle))


@pytest.mark.parametrize("world", [2, 3])
def test_metric_without_indices_uses_rank_major_order_and_says_so(tmp_path: Path, world: int) -> None:
    counts = [7, 0, 12][:world] if world == 3 else [9, 13]
    outcomes = spawn(tmp_path, world, "metric_rank_major", counts=counts, splits=4)
    rank_major = np.concatenate([workers.images(c, seed=100 + r) for r, c in enumerate(counts)])
    assert_same_score(outcomes, alone(rank_major, 4))
    assert "rank-major" in outcomes[0]["order"]


def test_one_process_metric_object_is_unchanged_by_the_indices_path(tmp_path: Path) -> None:
    pixels = workers.images(25)
    metric = InceptionScore(splits=5, num_images=25, scorer=workers.PixelProjection(), batch_size=4)
    order = np.random.default_rng(1).permutation(25)
    for start in range(0, 25, 6):
        metric.update(pixels[order[start : start + 6]], indices=order[start : start + 6])
    result = metric.compute()
    expected = alone(pixels, 5)
    np.testing.assert_allclose(result.split_scores, expected.split_scores, rtol=FLOAT64_SUMS)


def test_a_failing_rank_ends_every_rank_with_its_message(tmp_path: Path) -> None:
    # Image 35 lies in the part of rank 2 (of 3) only: [27, 40).
    begin = time.perf_counter()
    outcomes = spawn(tmp_path, 3, "api", count=40, splits=10, batch_size=4, bad=35)
    assert time.perf_counter() - begin < 60
    assert outcomes[2]["error"].startswith("ImageDecodeError: image-35.png is truncated")
    for outcome in outcomes[:2]:
        assert outcome["error"].startswith("RankFailedError: process 2 of 3 failed: image-35.png is truncated")


def test_torchmetrics_adapter_syncs_sums_only_and_equals_the_one_call(tmp_path: Path) -> None:
    pytest.importorskip("torchmetrics")
    outcomes = spawn(tmp_path, 3, "torchmetrics_adapter", count=31, splits=10)
    # DistributedSampler(shuffle=False) order: global position k*3 + r is data set index k*3 + r; the
    # sampler pads rank 1 and 2 with indices 0 and 1 again (positions 31 and 32), which are dropped.
    expected, second = alone(workers.images(31), 10), alone(workers.images(31, 1), 10)
    for outcome in outcomes:
        assert "error" not in outcome, outcome.get("traceback")
        assert outcome["mean"] == pytest.approx(expected.mean, rel=FLOAT64_SUMS)
        assert outcome["std"] == pytest.approx(expected.std, rel=FLOAT64_SUMS)
        assert outcome["processes"] == 3
        # A second epoch without reset(): refused on every process, with the counts.
        assert outcome["without_reset"].startswith(
            "the processes received 66 images for the 31 announced: 31 scored, 2 a DistributedSampler's padding "
            "(dropped) and 33 beyond both, not scored")
        assert outcome["after_reset"] == pytest.approx(second.mean, rel=FLOAT64_SUMS)
    assert abs(second.mean - expected.mean) > 1e-3 * expected.mean  # so a stale value would fail
    assert outcomes[0]["state_bytes"] == statistics_bytes(10, 1008) + 16  # and the two image counts


def test_metric_object_refuses_a_second_epoch_without_reset_on_every_process(tmp_path: Path) -> None:
    outcomes = spawn(tmp_path, 2, "metric_two_epochs", count=21)
    for outcome in outcomes:
        assert "error" not in outcome, outcome.get("traceback")
        # With indices each process finds its own repeats (rank 1's 11th image is the sampler's padding).
        assert outcome["indices"].startswith(
            "InputError: 11 images came with indices this process had already given since the last reset() "
            "(11 distinct of the 21 announced)")
        assert outcome["plain"].startswith("InputError: the 2 processes received 42 images ([22, 20]) for the 21 announced")


def test_split_size_across_processes_equals_one_process(tmp_path: Path) -> None:
    """Chunks of 7 of 41 images (the last of 6): the one-call API on a dataset over 3 ranks, and the
    metric object over 2 (rank-major): each as one process, with the same 6 chunks."""
    expected = inception_score(workers.images(41), split_size=7, batch_size=5, scorer=workers.PixelProjection(),
                               distributed=False)
    assert len(expected.split_scores) == 6 and expected.split_size == 7
    outcomes = spawn(tmp_path, 3, "api", count=41, split_size=7, batch_size=4)
    assert_same_score(outcomes, expected)
    assert outcomes[0]["split_size"] == 7
    counts = [20, 21]
    outcomes = spawn(tmp_path, 2, "metric_rank_major", counts=counts, split_size=7)
    rank_major = np.concatenate([workers.images(c, seed=100 + r) for r, c in enumerate(counts)])
    assert_same_score(outcomes, inception_score(rank_major, split_size=7, scorer=workers.PixelProjection(),
                                                distributed=False))
