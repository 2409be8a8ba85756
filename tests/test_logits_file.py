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

import inception_score.cli.main as cli
import inception_score.engine.runner as scorer_module
import inception_score.logits.file as logits_file
from inception_score import InceptionScorer, inception_score_from_logits
from inception_score.score.statistics import summarize

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


def paper_split_scores(logits: np.ndarray, splits: int) -> np.ndarray:
    """exp(mean KL(p(y|x) || p(y))) per contiguous split, written out in float64 from the rows."""
    rows = logits.astype(np.float64)
    p = np.exp(rows - rows.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.array([np.exp(np.mean(np.sum(part * (np.log(part) - np.log(part.mean(axis=0))), axis=1)))
                     for part in np.array_split(p, splits)])


def test_save_logits_then_score_logits_file_gives_the_numbers_of_inception_score(
        folder: Path, genuine_weights_file: Path, tmp_path: Path) -> None:
    """From Python. The same scorer on the same batches of 5 computes the same float32 logits, by
    construction; only the float64 sums of the statistics are grouped differently (batches against one
    pass over the file), a relative difference of a few 1e-16 per term: held to 1e-12."""
    from inception_score import SavedLogits, inception_score, save_logits, score_logits_file

    network = scorer_module.InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False)
    direct = inception_score(folder, splits=3, batch_size=5, scorer=network)
    saved = save_logits(folder, tmp_path / "l.npy", scorer=network, batch_size=5)
    assert isinstance(saved, SavedLogits) and (saved.num_images, saved.kept) == (12, 0) and saved.elapsed_s > 0
    result = score_logits_file(tmp_path / "l.npy", splits=3, saved=saved)
    np.testing.assert_allclose(result.split_scores, direct.split_scores, rtol=1e-12)
    np.testing.assert_allclose((result.mean, result.std), (direct.mean, direct.std), rtol=1e-12)
    rows = np.load(tmp_path / "l.npy", allow_pickle=False)
    # The KL written out against the identity the statistics use (cancellation in float64): 1e-9.
    np.testing.assert_allclose(result.split_scores, paper_split_scores(rows, 3), rtol=1e-9)
    assert result.num_images == 12 and result.weights_sha256 == direct.weights_sha256
    # Checked by the process that wrote it: unverified for what they are (development weights), not a claim.
    assert result.weights_verified is False and not any("only claims" in r for r in result.not_comparable)
    # The same call again keeps every row and computes none.
    resumed: list[int] = []
    again = save_logits(folder, tmp_path / "l.npy", scorer=network, batch_size=5, on_resume=resumed.append)
    assert (again.kept, again.elapsed_s, resumed) == (12, 0.0, [12])


def test_a_logits_file_scored_from_python_only_claims_its_weights_unless_they_are_checked(
        folder: Path, genuine_weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inception_score.network.weights as weights_module
    from inception_score import InputError, save_logits, score_logits_file

    network = scorer_module.InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False)
    path = tmp_path / "l.npy"
    saved = save_logits(folder, path, scorer=network, batch_size=6, limit=4)
    claimed = score_logits_file(path, splits=2)
    assert claimed.weights_verified is False and claimed.images_per_second == float("inf")  # no time spent here
    assert any("only claims its weights" in reason for reason in claimed.not_comparable)
    checked = score_logits_file(path, splits=2, weights=genuine_weights_file)
    assert checked.weights_path == str(genuine_weights_file) and checked.weights_verified is False
    assert not any("only claims" in reason for reason in checked.not_comparable)
    monkeypatch.setattr(weights_module, "KNOWN_FILES", {network.weights.sha256: weights_module.PYTORCH_FID_WEIGHTS})
    assert score_logits_file(path, splits=2, weights=genuine_weights_file).weights_verified is True
    other = tmp_path / "other.pth"
    other.write_bytes(b"not these weights")
    with pytest.raises(InputError, match="has sha256"):
        score_logits_file(path, splits=2, weights=other)
    with pytest.raises(InputError, match="not both"):
        score_logits_file(path, splits=2, weights=genuine_weights_file, saved=saved)
    # What cannot be fingerprinted is refused before any network runs.
    with pytest.raises(InputError, match="numpy.save"):
        save_logits(np.zeros((4, 32, 32, 3), np.uint8), tmp_path / "t.npy", scorer=network)
