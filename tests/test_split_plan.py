"""One rule puts each image in its split, whichever way the images are scored.

The same images go through the one-call API, the metric object (with and without indices), the
torchmetrics adapter and ``--from-logits``; every path must give the split scores that a naive loop
written out here gives for the split assignment the protocol defines (contiguous splits of the input
order, or of torch-fidelity's permutation with the seed). The logits come from
``distributed_workers.PixelProjection``, exact by construction, so the only differences left are the
order of float64 sums over a split's images (a few dozen terms): held to 1e-12 relative. Paths that
add the same batches in the same order must agree bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import distributed_workers as workers
from inception_score import InceptionScore, inception_score
from inception_score.cli.main import main
from inception_score.logits.file import LogitsInfo, sidecar
from inception_score.score.statistics import SplitPlan, SplitRule
from inception_score.torchmetrics_adapter import InceptionScoreMetric

COUNT = 37  # not a multiple of any split count below: the splits differ in size
BATCH = 6


def naive_split_scores(logits: np.ndarray, splits: int | None, split_size: int | None, seed: int | None) -> np.ndarray:
    """The IS of each split, written out: reorder by the permutation (torch-fidelity's ``f[perm]``), cut
    the contiguous chunks, and take exp of the mean KL of each chunk in float64."""
    order = np.arange(len(logits)) if seed is None else np.random.RandomState(seed).permutation(len(logits))
    ordered = logits[order].astype(np.float64)
    if split_size is not None:
        chunks = [ordered[start : start + split_size] for start in range(0, len(ordered), split_size)]
    else:
        chunks = [ordered[i * len(ordered) // splits : (i + 1) * len(ordered) // splits] for i in range(splits)]
    scores = []
    for chunk in chunks:
        shifted = chunk - chunk.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        marginal = p.mean(axis=0)
        kl = (p * (np.log(p) - np.log(marginal))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return np.array(scores)


CASES = [
    pytest.param(5, None, None, id="5-splits-input-order"),
    pytest.param(4, None, 7, id="4-splits-shuffled"),
    pytest.param(None, 8, None, id="chunks-of-8-input-order"),
    pytest.param(None, 8, 11, id="chunks-of-8-shuffled"),
]


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return workers.images(COUNT, seed=5)


@pytest.fixture(scope="module")
def logits(pixels: np.ndarray) -> np.ndarray:
    return workers.PixelProjection().logits(torch.from_numpy(pixels).permute(0, 3, 1, 2)).numpy()


def write_logits_file(path: Path, logits: np.ndarray) -> None:
    """A complete logits file as ``--save-logits`` leaves it: the rows, and the sidecar beside them."""
    np.save(path, logits.astype("<f4"))
    info = LogitsInfo(num_images=len(logits), done=len(logits), weights_sha256="0" * 64, weights_path="projection",
                      weights_verified=False, input="projected test images")
    sidecar(path).write_text(json.dumps(dataclasses.asdict(info)))


@pytest.mark.parametrize("splits, split_size, seed", CASES)
def test_every_path_puts_each_image_in_the_same_split(
    splits: int | None, split_size: int | None, seed: int | None, pixels: np.ndarray, logits: np.ndarray,
    tmp_path: Path,
) -> None:
    expected = naive_split_scores(logits, splits, split_size, seed)
    shuffle = dict(shuffle=seed is not None, seed=seed if seed is not None else 0)
    scores: dict[str, tuple[float, ...]] = {}

    scores["call"] = inception_score(pixels, splits=splits, split_size=split_size, batch_size=BATCH,
                                     scorer=workers.PixelProjection(), **shuffle).split_scores

    for announced in (COUNT, None):  # statistics as the images arrive, and logits kept until compute()
        metric = InceptionScore(splits, split_size=split_size, num_images=announced, batch_size=BATCH,
                                scorer=workers.PixelProjection(), **shuffle)
        for start in range(0, COUNT, BATCH):
            metric.update(pixels[start : start + BATCH])
        scores[f"metric, num_images={announced}"] = metric.compute().split_scores

    # With indices the images may come in any order: here the batches backwards, each one reversed.
    metric = InceptionScore(splits, split_size=split_size, num_images=COUNT, batch_size=BATCH,
                            scorer=workers.PixelProjection(), **shuffle)
    for start in reversed(range(0, COUNT, BATCH)):
        indices = np.arange(start, min(start + BATCH, COUNT))[::-1].copy()
        metric.update(pixels[indices], indices=indices)
    scores["metric with indices"] = metric.compute().split_scores

    if split_size is None:  # the adapter takes a number of splits only
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the projection's weights are not verified
            adapter = InceptionScoreMetric(splits, num_images=COUNT, scorer=workers.PixelProjection(), **shuffle)
        for start in range(0, COUNT, BATCH):
            adapter.update(torch.from_numpy(pixels[start : start + BATCH]))
        adapter.compute()
        scores["adapter"] = adapter.result.split_scores

    path = tmp_path / "logits.npy"
    write_logits_file(path, logits)
    rule = ["--splits", str(splits)] if split_size is None else ["--split-size", str(split_size)]
    order = [] if seed is None else ["--shuffle", "--seed", str(seed)]
    run = CliRunner().invoke(main, ["--from-logits", str(path), "--json", "--quiet", *rule, *order])
    assert run.exit_code == 0, run.output
    scores["--from-logits"] = tuple(json.loads(run.stdout)["split_scores"])

    for name, got in scores.items():
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, err_msg=name)
    # The same logits added in the same batches: the same sums, so the same bits.
    assert scores["call"] == scores[f"metric, num_images={COUNT}"] == scores["metric, num_images=None"]


def test_the_plan_maps_positions_as_the_protocol_reads() -> None:
    """Split i of N images in S parts is ``[i N // S, (i + 1) N // S)`` of the order; shuffled, input
    image j sits where torch-fidelity's permutation puts it (``perm[k] == j`` -> position k)."""
    plan = SplitPlan.of(10, 3)
    assert plan.split_ids(np.arange(10)).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert plan.order == "input order"
    chunks = SplitPlan.of(10, split_size=4)
    assert chunks.split_ids(np.arange(10)).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    shuffled = SplitPlan(10, SplitRule(splits=2), shuffle_seed=3)
    perm = np.random.RandomState(3).permutation(10)
    naive = np.empty(10, dtype=np.int64)
    for k, j in enumerate(perm):
        naive[j] = 0 if k < 5 else 1
    assert shuffled.split_ids(np.arange(10)).tolist() == naive.tolist()
    assert shuffled.split_ids(np.array([perm[7], perm[2]])).tolist() == [1, 0]
    assert shuffled.order == "shuffled (seed 3)"
