"""The metric objects in one process: torchmetrics' InceptionScoreMetric and the plain InceptionScore
never give a stale or partial score (surplus images, a second epoch without reset(), images announced
but absent: an error with the counts), and the adapter's value, extras, forward, warning and device.
The same across processes: tests/test_distributed.py; inside Lightning: tests/test_lightning.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import distributed_workers as workers
from inception_score import InceptionScore
from inception_score.errors import InputError

pytest.importorskip("torchmetrics")
from inception_score.torchmetrics_adapter import InceptionScoreMetric  # noqa: E402

# Each image's stand-in logits are the same bits in any batch, so only the order of float64 sums differs.
FLOAT64_SUMS = 1e-12


def batches(pixels: np.ndarray, size: int = 7):
    return [torch.from_numpy(pixels[start : start + size]) for start in range(0, len(pixels), size)]


def adapter(num_images: int = 40, splits: int = 5, **kwargs) -> InceptionScoreMetric:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stand-in's weights are unverified; tested below
        return InceptionScoreMetric(splits=splits, num_images=num_images, scorer=workers.PixelProjection(), **kwargs)


def naive_split_scores(pixels: np.ndarray, splits: int) -> np.ndarray:
    """exp(E_x KL(p(y|x) || p(y))) per contiguous split of equal size, written out in float64."""
    assert len(pixels) % splits == 0  # equal sizes, as these tests use
    return workers.naive_split_scores(pixels, splits)


def test_compute_is_the_mean_as_a_0_dim_tensor_and_result_holds_the_rest() -> None:
    pixels = workers.images(40)
    metric = adapter()
    for batch in batches(pixels):
        metric.update(batch)
    value = metric.compute()
    expected = naive_split_scores(pixels, 5)
    assert isinstance(value, torch.Tensor) and value.shape == () and value.dtype == torch.float64
    assert float(value) == pytest.approx(expected.mean(), rel=FLOAT64_SUMS)
    np.testing.assert_allclose(metric.result.split_scores, expected, rtol=FLOAT64_SUMS)
    # Population std, as the paper's; scores within 1e-12 give a std within (mean / std) 1e-12 (mean / std ~ 5 here).
    assert metric.result.std == pytest.approx(expected.std(), rel=1e-10)
    scalars = metric.scalars("val_is")
    assert sorted(scalars) == ["val_is", "val_is_std", "val_is_weights_verified"]
    assert all(v.shape == () for v in scalars.values())
    assert float(scalars["val_is"]) == float(value) and float(scalars["val_is_std"]) == metric.result.std


def test_more_images_than_announced_are_refused_with_the_counts() -> None:
    metric = adapter()
    for batch in batches(workers.images(48)):
        metric.update(batch)
    with pytest.raises(InputError, match=r"received 48 images for the 40 announced: 40 scored, 0 a "
                                         r"DistributedSampler's padding \(dropped\) and 8 beyond both, not scored"):
        metric.compute()


def test_a_second_epoch_without_reset_is_refused_and_after_reset_scores_its_own_images() -> None:
    first, second = workers.images(40, seed=1), workers.images(40, seed=2)
    metric = adapter()
    for batch in batches(first):
        metric.update(batch)
    assert float(metric.compute()) == pytest.approx(naive_split_scores(first, 5).mean(), rel=FLOAT64_SUMS)
    for batch in batches(second):
        metric.update(batch)
    with pytest.raises(InputError, match=r"received 80 images for the 40 announced: 40 scored, 0 a .* and 40 beyond"
                                         r" both, not scored. If a new epoch began, call reset\(\)"):
        metric.compute()
    metric.reset()
    for batch in batches(second):
        metric.update(batch)
    expected = naive_split_scores(second, 5).mean()
    assert abs(expected - naive_split_scores(first, 5).mean()) > 1e-3 * expected  # a stale value would fail
    assert float(metric.compute()) == pytest.approx(expected, rel=FLOAT64_SUMS)


def test_fewer_images_than_announced_are_refused_with_the_counts() -> None:
    metric = adapter()
    for batch in batches(workers.images(30)):
        metric.update(batch)
    with pytest.raises(InputError, match=r"received 30 of the 40 images announced.*num_sanity_val_steps=0"):
        metric.compute()


def test_forward_is_refused_at_the_first_call_naming_update_and_compute() -> None:
    metric = adapter()
    with pytest.raises(InputError, match=r"metric\.update\(images\).*metric\.compute\(\)"):
        metric(torch.from_numpy(workers.images(8)))
    assert metric.update_count == 0 and int(metric.received) == 0  # nothing was added


def test_unverified_weights_warn_once_and_are_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metric = InceptionScoreMetric(splits=5, num_images=40, scorer=workers.PixelProjection())
        for batch in batches(workers.images(40)):
            metric.update(batch)
        metric.compute()
        metric.result, metric.scalars()  # noqa: B018 - no warning again
    messages = [str(w.message) for w in caught if "unverified weights" in str(w.message)]
    assert len(messages) == 1 and "metric.weights_verified is False" in messages[0]
    assert metric.weights_verified is False and metric.result.weights_verified is False
    assert "the weights are not the verified 2015-12-05 Inception network" in metric.not_comparable
    assert float(metric.scalars()["is_weights_verified"]) == 0.0
    monkeypatch.setenv("RANK", "1")  # another process of the same run (torchrun): it stays silent
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InceptionScoreMetric(splits=5, num_images=40, scorer=workers.PixelProjection())
    assert not [w for w in caught if "unverified weights" in str(w.message)]


def test_the_scorer_follows_the_metric_to_another_device(genuine_weights_file: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = InceptionScoreMetric(splits=1, num_images=4, weights=genuine_weights_file, allow_unverified=True)
    assert metric.scorer.device == torch.device("cpu")
    metric.half()  # a dtype cast: neither the states (torchmetrics) nor the network change
    assert {p.dtype for p in metric.scorer.network.parameters()} == {torch.float32}
    assert metric.sum_p.dtype == torch.float64
    metric.to(torch.device("meta"))  # what Lightning's module.to(device) does to its metrics
    assert metric.device == torch.device("meta") and metric.scorer.device == torch.device("meta")
    assert {p.device.type for p in metric.scorer.network.parameters()} == {"meta"}
    assert metric.sum_p.device.type == "meta"
    assert not list(metric.parameters())  # the network is no submodule: not trained, not in the state_dict


def test_plain_metric_object_refuses_surplus_and_a_second_epoch_without_reset() -> None:
    pixels = workers.images(40)
    metric = InceptionScore(splits=5, num_images=40, scorer=workers.PixelProjection(), distributed=False)
    for batch in batches(pixels):
        metric.update(batch)
    assert metric.compute().mean == pytest.approx(naive_split_scores(pixels, 5).mean(), rel=FLOAT64_SUMS)
    with pytest.raises(InputError, match=r"more images arrived than the 40 announced \(47 with this batch\).*reset\(\)"):
        metric.update(torch.from_numpy(pixels[:7]))
    metric.reset()
    metric.update(torch.from_numpy(pixels[:30]))
    with pytest.raises(InputError, match=r"30 images arrived but 40 were announced"):
        metric.compute()


def test_plain_metric_object_with_indices_refuses_repeats_and_absent_images() -> None:
    pixels = workers.images(40)
    indices = np.arange(40)
    metric = InceptionScore(splits=5, num_images=40, scorer=workers.PixelProjection(), distributed=False)
    metric.update(pixels, indices=indices)
    assert metric.compute().mean == pytest.approx(naive_split_scores(pixels, 5).mean(), rel=FLOAT64_SUMS)
    metric.update(pixels[:10], indices=indices[:10])  # a second epoch begun without reset()
    with pytest.raises(InputError, match=r"10 images came with indices this process had already given since the "
                                         r"last reset\(\) \(40 distinct of the 40 announced\)"):
        metric.compute()
    metric.reset()
    metric.update(pixels[:25], indices=indices[:25])
    with pytest.raises(InputError, match=r"the indices given cover 25 of the 40 images announced"):
        metric.compute()
