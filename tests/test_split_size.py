"""``--split-size K`` / ``split_size=K``: guided-diffusion's evaluator rule, contiguous chunks of K
images with the last one shorter, checked against that formula written out here in numpy, and its
comparability notes. Weights: genuine convolutions + a seeded random fc layer (numbers are not
Inception Scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from inception_score import InceptionScore, InputError, inception_score
from inception_score.cli.main import main
from inception_score.score.statistics import SplitStatistics, split_bounds
from inception_score.engine.runner import InceptionScorer
from inception_score.score.result import result_from_statistics


def evaluator_scores(logits: np.ndarray, split_size: int) -> np.ndarray:
    """guided-diffusion's ``compute_inception_score`` on ``(N, C)`` logits, transcribed in float64:
    softmax, then per chunk of ``split_size`` rows exp(mean_x sum_y p (log p - log mean_x p))."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    scores = []
    for start in range(0, len(p), split_size):
        part = p[start : start + split_size]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return np.array(scores)


@pytest.fixture(scope="module")
def fifty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fifty") / "fifty.npy"
    np.save(path, np.random.default_rng(25).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8))
    return path


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(main, [*args, "--json", "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_split_size_20_of_50_images_is_the_evaluators_formula_on_the_saved_logits(
        fifty: Path, loaded_once: InceptionScorer, genuine_weights_file: Path, tmp_path: Path) -> None:
    logits_path = tmp_path / "logits.npy"
    weights = ["--weights", str(genuine_weights_file), "--allow-unverified-weights"]
    report = run_json(str(fifty), "--split-size", "20", "--batch-size", "25", "--save-logits", str(logits_path),
                      *weights)
    assert report["splits"] == 3 and report["split_size"] == 20 and report["num_images"] == 50
    expected = evaluator_scores(np.load(logits_path), 20)  # chunks of 20, 20 and 10
    assert len(expected) == 3
    np.testing.assert_allclose(report["split_scores"], expected, rtol=1e-9)  # float64 sums in another order
    assert report["mean"] == pytest.approx(float(np.mean(expected)), rel=1e-9)
    assert report["std"] == pytest.approx(float(np.std(expected)), rel=1e-9)
    assert any("3 chunks of 20 images, the last of 10" in reason for reason in report["not_comparable"])

    # Re-scored from the file without the network: the same logits, so the same sums.
    again = run_json("--from-logits", str(logits_path), "--split-size", "20")
    assert again["split_scores"] == report["split_scores"]
    # (The one-call API, the metric object and torch.distributed with split_size, on a fast stand-in
    # network: tests/test_distributed.py::test_split_size_across_processes_equals_one_process.)


def test_split_bounds_follow_the_evaluators_chunks() -> None:
    from inception_score.score.statistics import SplitRule

    rule = SplitRule(splits=None, split_size=20)
    assert split_bounds(50, rule) == [(0, 20), (20, 40), (40, 50)]
    assert split_bounds(40, rule) == [(0, 20), (20, 40)]
    assert split_bounds(7, rule) == [(0, 7)]
    assert split_bounds(50_000, SplitRule(splits=None, split_size=5000)) == split_bounds(50_000, 10)


def test_split_size_and_splits_are_exclusive(fifty: Path) -> None:
    result = CliRunner().invoke(main, [str(fifty), "--splits", "5", "--split-size", "20"])
    assert result.exit_code == 2 and "--splits or --split-size, not both" in result.output
    with pytest.raises(InputError, match="not both"):
        inception_score(np.zeros((4, 8, 8, 3), np.uint8), splits=2, split_size=2)
    with pytest.raises(InputError, match="split_size must be at least 1"):
        InceptionScore(split_size=0, scorer=object())  # type: ignore[arg-type]


def _statistics(num_images: int, splits: int) -> SplitStatistics:
    """Statistics of ``num_images`` made-up images in ``splits`` parts (one class each), enough for the notes."""
    stats = SplitStatistics.zeros(splits, 4)
    logits = torch.from_numpy(np.random.default_rng(0).normal(size=(num_images, 4)))
    bounds = split_bounds(num_images, splits)
    stats.add(logits, np.concatenate([np.full(stop - start, i) for i, (start, stop) in enumerate(bounds)]))
    return stats


@pytest.mark.parametrize("num_images, split_size, note", [
    (50_000, 5000, None),  # the published protocol: comparable
    (10_000, 5000, "2 chunks of 5000 images (the published protocol: 50,000 images in 10 chunks of 5,000)"),
    (50_000, 4000, "13 chunks of 4000 images, the last of 2000"),
])
def test_comparability_notes_know_the_chunk_rule(num_images: int, split_size: int, note: str | None) -> None:
    from inception_score.score.statistics import SplitRule

    splits = SplitRule(splits=None, split_size=split_size).split_count(num_images)
    result = result_from_statistics(_statistics(num_images, splits), weights_path="w", weights_sha256="0" * 64,
                                    weights_verified=True, device="cpu", dtype="float32", elapsed=1.0,
                                    split_size=split_size)
    split_notes = [r for r in result.not_comparable if "chunks" in r]
    if note is None:
        assert split_notes == [] and result.split_size == 5000
    else:
        assert len(split_notes) == 1 and note in split_notes[0]
