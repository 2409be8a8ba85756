"""IS-infinity (inception_score.score.infinity): every IS_n against the score of its subset written out here,
the intercept against numpy's own least-squares line, and the same numbers from every way in (the API,
the metric object, the command, --from-logits, two processes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import distributed_workers as workers
import inception_score.cli.main as cli
import inception_score.engine.runner as scorer_module
from inception_score import InceptionScore, InceptionScorer, inception_score
from inception_score.engine.distributed import statistics_bytes
from inception_score.errors import InputError
from test_distributed import spawn

SEED = 2020  # the documented default of infinity_seed


def direct_is_n(logits: np.ndarray, seed: int) -> list[tuple[int, float]]:
    """The 15 (n, IS_n) by the definition: n = linspace(N/10, N, 15) truncated; the first n images of the
    order RandomState(seed).permutation(N) (the image at position k is perm[k]); one split; IS = exp of
    the mean over those images of KL(p(y|x) || their mean p)."""
    count = len(logits)
    perm = np.random.RandomState(seed).permutation(count)
    points = []
    for n in np.linspace(count / 10, count, 15).astype(int):
        subset = logits[perm[:n]].astype(np.float64)
        log_p = subset - subset.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        p = np.exp(log_p)
        pbar = p.mean(axis=0)
        kl = np.sum(p * (log_p - np.log(pbar)), axis=1)
        points.append((int(n), float(np.exp(kl.mean()))))
    return points


def projection_logits(pixels: np.ndarray) -> np.ndarray:
    return workers.PixelProjection().logits(torch.from_numpy(pixels).permute(0, 3, 1, 2)).numpy()


def test_every_is_n_is_the_one_split_score_of_the_first_n_images_of_the_seeded_order() -> None:
    pixels = workers.images(137)
    for seed in (SEED, 7):
        result = inception_score(pixels, splits=10, batch_size=16, scorer=workers.PixelProjection(),
                                 infinity=True, infinity_seed=seed)
        expected = direct_is_n(projection_logits(pixels), seed)
        assert [n for n, _ in result.is_n] == [n for n, _ in expected]
        # float64 sums of the same float32 logits in another order: 1e-12 relative is generous.
        np.testing.assert_allclose([v for _, v in result.is_n], [v for _, v in expected], rtol=1e-12)
        assert result.infinity_seed == seed
    assert result.is_n[-1][1] == pytest.approx(
        inception_score(pixels, splits=1, scorer=workers.PixelProjection()).mean, rel=1e-12)  # n = N: all images


def test_the_sizes_at_50000_are_the_reference_codes() -> None:
    from inception_score.score.infinity import infinity_sizes

    # score_infinity.py: np.linspace(5000, 50000, 15).astype('int32')
    assert infinity_sizes(50_000).tolist() == [5000, 8214, 11428, 14642, 17857, 21071, 24285, 27500, 30714, 33928,
                                               37142, 40357, 43571, 46785, 50000]


def test_is_infinity_is_the_least_squares_intercept_through_the_reported_points() -> None:
    result = inception_score(workers.images(90), splits=10, scorer=workers.PixelProjection(), infinity=True)
    n, values = (np.array(column, dtype=np.float64) for column in zip(*result.is_n))
    slope, intercept = np.polyfit(1.0 / n, values, 1)
    assert result.is_infinity == pytest.approx(intercept, rel=1e-9)
    assert result.is_infinity_slope == pytest.approx(slope, rel=1e-9)
    rms = np.sqrt(np.mean((values - (intercept + slope / n)) ** 2))
    assert result.is_infinity_residual == pytest.approx(rms, rel=1e-6, abs=1e-12)
    assert any("IS-infinity is extrapolated" in reason for reason in result.not_comparable)
    assert result.mean == inception_score(workers.images(90), splits=10, scorer=workers.PixelProjection()).mean


def test_the_order_of_is_n_ignores_shuffle_and_every_accumulation_path_agrees() -> None:
    pixels = workers.images(53)
    reference = inception_score(pixels, splits=5, scorer=workers.PixelProjection(), infinity=True)
    shuffled = inception_score(pixels, splits=5, shuffle=True, seed=3, scorer=workers.PixelProjection(),
                               infinity=True)
    batches = (pixels[i : i + 7] for i in range(0, 53, 7))  # an unsized iterable: logits kept until the end
    streamed = inception_score(batches, splits=5, scorer=workers.PixelProjection(), infinity=True)
    announced = InceptionScore(splits=5, num_images=53, scorer=workers.PixelProjection(), infinity=True)
    unannounced = InceptionScore(splits=5, scorer=workers.PixelProjection(), infinity=True)
    indexed = InceptionScore(splits=5, num_images=53, scorer=workers.PixelProjection(), infinity=True)
    order = np.random.default_rng(1).permutation(53)
    for start in range(0, 53, 6):
        announced.update(pixels[start : start + 6])
        unannounced.update(pixels[start : start + 6])
        chosen = order[start : start + 6]
        indexed.update(pixels[chosen], indices=chosen)
    for other in (shuffled, streamed, announced.compute(), unannounced.compute(), indexed.compute()):
        assert [n for n, _ in other.is_n] == [n for n, _ in reference.is_n]
        np.testing.assert_allclose([v for _, v in other.is_n], [v for _, v in reference.is_n], rtol=1e-12)
        assert other.is_infinity == pytest.approx(reference.is_infinity, rel=1e-12)
    assert shuffled.mean != reference.mean  # the splits did change


def test_too_few_images_for_15_sizes_is_an_input_error() -> None:
    with pytest.raises(InputError, match="at least 16 images"):
        inception_score(workers.images(15), splits=5, scorer=workers.PixelProjection(), infinity=True)
    assert inception_score(workers.images(15), splits=5, scorer=workers.PixelProjection()).is_infinity is None


@pytest.mark.parametrize("world", [2])
def test_two_processes_give_the_numbers_of_one(tmp_path: Path, world: int) -> None:
    outcomes = spawn(tmp_path, world, "api", count=41, splits=10, batch_size=4, infinity=True)
    alone = inception_score(workers.images(41), splits=10, batch_size=5, scorer=workers.PixelProjection(),
                            distributed=False, infinity=True)
    for outcome in outcomes:
        assert "error" not in outcome, outcome.get("traceback")
        # Each image's logits depend on that image alone (float64 inside the projection), so only the
        # float64 sums' order differs: far inside float32 rounding (1e-6).
        np.testing.assert_allclose([v for _, v in outcome["is_n"]], [v for _, v in alone.is_n], rtol=1e-12)
        assert outcome["is_infinity"] == pytest.approx(alone.is_infinity, rel=1e-12)
        # The split statistics and the 15 buckets' (sums of p and of sum p log p only), float64.
        assert outcome["exchanged_bytes"] == statistics_bytes(10, 1008) + 8 * 15 * (2 * 1008 + 3)
    sampler = spawn(tmp_path, world, "metric_sampler", count=41, splits=10, batch_size=4, infinity=True)
    for outcome in sampler:  # a DistributedSampler loop, its padding dropped
        assert "error" not in outcome, outcome.get("traceback")
        np.testing.assert_allclose([v for _, v in outcome["is_n"]], [v for _, v in alone.is_n], rtol=1e-12)


_SCORERS: dict[str, InceptionScorer] = {}


@pytest.fixture
def one_loaded_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def shared(weights, **options):
        return _SCORERS.setdefault(str(weights), InceptionScorer(weights, **options))

    monkeypatch.setattr(scorer_module, "InceptionScorer", shared)


def test_the_command_the_api_and_from_logits_give_the_same_numbers(
    genuine_weights_file: Path, tmp_path: Path, one_loaded_network: None
) -> None:
    """Genuine convolutions + a seeded random fc: the numbers are not Inception Scores."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(8)
    for index in range(16):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{index:02d}.png")
    weights = ["--weights", str(genuine_weights_file), "--allow-unverified-weights", "--batch-size", "8"]

    def command(*args: str) -> dict:
        outcome = CliRunner().invoke(cli.main, [*args, "--json", "--quiet", "--device", "cpu"])
        assert outcome.exit_code == 0, outcome.output
        return json.loads(outcome.stdout)["infinity"]

    plot = tmp_path / "infinity.png"
    saved = tmp_path / "logits.npy"
    command_line = command(str(folder), "--splits", "2", "--infinity-plot", str(plot), "--save-logits", str(saved),
                           *weights)
    from_file = command("--from-logits", str(saved), "--infinity", "--splits", "3")
    api = inception_score(folder, splits=2, batch_size=8, device="cpu", weights=genuine_weights_file,
                          allow_unverified=True, infinity=True)
    assert plot.stat().st_size > 0
    # The same float32 logits (one network, the same batches), their float64 sums taken in another order.
    for other in (from_file, {"is_n": [list(point) for point in api.is_n], "is_infinity": api.is_infinity}):
        np.testing.assert_allclose(np.array(other["is_n"]), np.array(command_line["is_n"]), rtol=1e-12)
        assert other["is_infinity"] == pytest.approx(command_line["is_infinity"], rel=1e-12)
    assert command_line["seed"] == SEED
    np.testing.assert_allclose(np.array(command_line["is_n"])[:, 1],
                               [v for _, v in direct_is_n(np.load(saved, allow_pickle=False), SEED)], rtol=1e-12)
