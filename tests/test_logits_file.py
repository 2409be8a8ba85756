"""--save-logits / --from-logits: the per-image logits on disk give the direct score again without the
network, under any splits and shuffle, and an interrupted run resumes where it stopped.
Weights: genuine convolutions + a seeded random fc (numbers are not Inception Scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import inception_score.cli as cli
import inception_score.runner as scorer_module
import inception_score.logits_file as logits_file
from inception_score import InceptionScorer, inception_score_from_logits
from inception_score.metric import summarize

_SCORERS: dict[str, InceptionScorer] = {}


@pytest.fixture(autouse=True)
def one_loaded_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def shared(weights, **options):
        return _SCORERS.setdefault(str(weights), InceptionScorer(weights, **options))

    monkeypatch.setattr(scorer_module, "InceptionScorer", shared)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(8)
    for index in range(12):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path / f"{index:02d}.png")
    return path


def score(*args: str) -> dict:
    outcome = CliRunner().invoke(cli.main, [*args, "--json", "--quiet", "--device", "cpu"])
    assert outcome.exit_code == 0, outcome.output
    return json.loads(outcome.stdout)


def test_from_logits_equals_the_direct_run_and_any_resplit(folder: Path, genuine_weights_file: Path,
                                                          tmp_path: Path) -> None:
    weights = ["--weights", str(genuine_weights_file), "--allow-unverified-weights", "--batch-size", "5"]
    direct = score(str(folder), "--splits", "3", *weights)
    saved = tmp_path / "logits.npy"
    with_file = score(str(folder), "--splits", "3", "--save-logits", str(saved), *weights)
    again = score("--from-logits", str(saved), "--splits", "3")
    for result in (with_file, again):
        np.testing.assert_allclose(result["split_scores"], direct["split_scores"], rtol=1e-12)
        assert result["weights"]["sha256"] == direct["weights"]["sha256"]
    # Any other split, shuffled: the same as the formula applied to the saved rows.
    rows = np.load(saved, allow_pickle=False)
    assert rows.shape == (12, 1008) and rows.dtype == np.float32
    resplit = score("--from-logits", str(saved), "--splits", "4", "--shuffle", "--seed", "9")
    expected = inception_score_from_logits(rows, splits=4, shuffle_seed=9)
    np.testing.assert_allclose(resplit["split_scores"], expected, rtol=1e-12)
    assert resplit["mean"] == pytest.approx(summarize(expected)[0], rel=1e-12)


def test_an_interrupted_run_resumes_from_the_first_missing_row(folder: Path, genuine_weights_file: Path,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = ["--weights", str(genuine_weights_file), "--allow-unverified-weights", "--batch-size", "5"]
    saved = tmp_path / "logits.npy"
    original = logits_file.LogitsWriter.write
    calls = []

    def interrupted(self, logits, *rest):
        calls.append(len(logits))
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(self, logits, *rest)

    monkeypatch.setattr(logits_file.LogitsWriter, "write", interrupted)
    outcome = CliRunner().invoke(cli.main, [str(folder), "--splits", "3", "--save-logits", str(saved), *weights])
    assert outcome.exit_code == 130
    assert json.loads(Path(str(saved) + ".json").read_text())["done"] == 5  # the first batch is kept
    monkeypatch.setattr(logits_file.LogitsWriter, "write", original)
    resumed = CliRunner().invoke(cli.main, [str(folder), "--splits", "3", "--save-logits", str(saved), "--json",
                                            *weights])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.stderr and "5 of 12" in resumed.stderr
    direct = score(str(folder), "--splits", "3", *weights)
    np.testing.assert_allclose(json.loads(resumed.stdout)["split_scores"], direct["split_scores"], rtol=1e-12)


def test_a_logits_file_of_other_images_is_not_resumed(folder: Path, genuine_weights_file: Path, tmp_path: Path) -> None:
    weights = ["--weights", str(genuine_weights_file), "--allow-unverified-weights"]
    saved = tmp_path / "logits.npy"
    score(str(folder), "--splits", "3", "--save-logits", str(saved), "--limit", "6", *weights)
    outcome = CliRunner().invoke(cli.main, [str(folder), "--splits", "3", "--save-logits", str(saved), *weights])
    assert outcome.exit_code == 2 and "holds logits of 6 images" in outcome.output and "not of the 12" in outcome.output
