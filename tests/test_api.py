"""The whole pipeline: our port against independent ports, batch-size independence, the metric object,
and the input errors. Weights: genuine convolutions + a seeded random fc layer (not Inception Scores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inception_score import InceptionScore, InceptionScorer, Output, inception_score
from inception_score.errors import InputError


@pytest.fixture(scope="module")
def scorer(genuine_weights_file: Path) -> InceptionScorer:
    return InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True)


def varied_images(count: int, seed: int) -> list[torch.Tensor]:
    """uint8 (3, H, W) images with structure (smooth blobs + noise), sizes varying, 32x32 the most common."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [(32, 32), (32, 32), (64, 48), (17, 29), (300, 200)]
    images = []
    for index in range(count):
        height, width = sizes[index % len(sizes)]
        coarse = torch.rand(3, 4, 4, generator=generator)
        smooth = torch.nn.functional.interpolate(coarse[None], size=(height, width), mode="bicubic")[0]
        noise = torch.rand(3, height, width, generator=generator) * 0.3
        images.append(((smooth + noise).clamp(0, 1) * 255).to(torch.uint8))
    return images


def test_pool3_equals_the_fid_helper_torchscript(scorer: InceptionScorer) -> None:
    """Acceptance: same normalised 299x299 input -> pool_3 within 1e-4 of an independent port."""
    from inception_score.network.dev_weights import fid_helper_pool3

    generator = torch.Generator().manual_seed(7)
    x = torch.rand(3, 3, 299, 299, generator=generator) * 2 - 1
    with torch.inference_mode():
        ours = scorer.network(x, Output.POOL3)
    theirs = fid_helper_pool3(x)
    assert ours.shape == theirs.shape == (3, 2048)
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_pipeline_equals_torch_fidelity(scorer: InceptionScorer, genuine_weights_file: Path) -> None:
    """Acceptance: 64 uint8 images of varied sizes, same weights file, same split and shuffle settings."""
    utils = pytest.importorskip("torch_fidelity.utils")
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    images = varied_images(64, seed=3)
    extractor = utils.create_feature_extractor(
        "inception-v3-compat",
        ["logits_unbiased"],
        feature_extractor_weights_path=str(genuine_weights_file),
        cuda=False,
        verbose=False,
    )
    with torch.inference_mode():
        theirs = torch.cat([extractor(image[None])[0] for image in images])
    ours = scorer.logits(images)
    assert (ours - theirs).abs().max().item() <= 1e-3
    for shuffle in (False, True):
        reference = metric_isc.isc_features_to_metric(theirs, splits=10, shuffle=shuffle, rng_seed=2020)
        result = inception_score(images, splits=10, shuffle=shuffle, seed=2020, scorer=scorer, batch_size=16)
        assert result.mean == pytest.approx(reference["inception_score_mean"], rel=1e-5)
        assert result.std == pytest.approx(reference["inception_score_std"], rel=1e-3, abs=1e-6)
        assert result.num_images == 64 and not result.weights_verified


def test_batch_size_does_not_change_the_score_and_metric_object_agrees(scorer: InceptionScorer) -> None:
    images = torch.stack(varied_images(64 * 5, seed=11)[::5])  # the 32x32 ones: one (64, 3, 32, 32) batch
    assert images.shape == (64, 3, 32, 32)
    results = [inception_score(images, splits=10, batch_size=b, scorer=scorer) for b in (1, 7, 64)]
    for other in results[1:]:
        assert other.mean == pytest.approx(results[0].mean, rel=1e-6)
        np.testing.assert_allclose(other.split_scores, results[0].split_scores, rtol=1e-6)
    metric = InceptionScore(splits=10, num_images=64, scorer=scorer)
    for start in range(0, 64, 13):
        metric.update(images[start : start + 13].permute(0, 2, 3, 1).numpy())  # NHWC arrays too
    got = metric.compute()
    assert got.mean == pytest.approx(results[0].mean, rel=1e-6)
    assert got.num_images == 64
    metric.reset()
    with pytest.raises(InputError, match="0 images arrived but 64 were announced"):
        metric.compute()


class ProjectionScorer:
    """A stand-in for the network (logits = a fixed projection of the pixels), to test the runner's
    bookkeeping quickly; it has the attributes the runner reads."""

    def __init__(self) -> None:
        from inception_score.network.weights import LoadedWeights

        self.device = torch.device("cpu")
        self.dtype = "float32"
        self.weights = LoadedWeights(state_dict={}, path=Path("none"), sha256="none", verified=False)
        self.projection = torch.randn(3 * 4 * 4, 1008, generator=torch.Generator().manual_seed(0)) * 0.02

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(batch.float(), 4).flatten(1)
        return x @ self.projection


def test_announced_count_and_buffered_logits_agree_with_a_direct_computation() -> None:
    from inception_score.score.planned import inception_score_from_logits

    fake = ProjectionScorer()
    images = torch.randint(0, 256, (103, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    batches = lambda: (images[i : i + 10] for i in range(0, 103, 10))  # noqa: E731
    direct = inception_score_from_logits(torch.cat([fake.logits(b) for b in batches()]), splits=10, shuffle_seed=7)
    for num_images in (None, 103):
        result = inception_score(batches(), num_images=num_images, splits=10, shuffle=True, seed=7, scorer=fake)
        np.testing.assert_allclose(result.split_scores, direct, rtol=1e-12)
    with pytest.raises(InputError, match="more images arrived than the 50 announced"):
        inception_score(batches(), num_images=50, scorer=fake)
    with pytest.raises(InputError, match="103 images arrived but 200 were announced"):
        inception_score(batches(), num_images=200, scorer=fake)


def test_inputs_of_every_kind_give_one_score(scorer: InceptionScorer) -> None:
    images = torch.stack(varied_images(10 * 5, seed=2)[::5])
    reference = inception_score(images, splits=2, scorer=scorer)
    as_floats = images.float() / 255.0
    dataset = torch.utils.data.TensorDataset(images, torch.zeros(10))
    candidates = {
        "NHWC numpy": images.permute(0, 2, 3, 1).numpy(),
        "floats in (0, 1)": (as_floats, (0, 1)),
        "floats in (-1, 1)": (as_floats * 2 - 1, (-1, 1)),
        "list of images": list(images),
        "generator of batches": (images[i : i + 3] for i in range(0, 10, 3)),
        "(image, label) dataset": dataset,
        "DataLoader": torch.utils.data.DataLoader(dataset, batch_size=4),
    }
    for name, value in candidates.items():
        value, input_range = value if isinstance(value, tuple) else (value, None)
        result = inception_score(value, splits=2, scorer=scorer, input_range=input_range, batch_size=4)
        assert result.num_images == 10, name
        assert result.mean == pytest.approx(reference.mean, rel=1e-5), name


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (torch.zeros(9, 3, 8, 8, dtype=torch.uint8), {}, "9 images cannot be divided into 10 splits"),
        (torch.zeros(12, 4, 8, 8, dtype=torch.uint8), {}, "no axis of 3"),
        (torch.zeros(12, 8, 8, dtype=torch.uint8), {}, "expected a batch"),
        (torch.rand(12, 3, 8, 8), {}, "no input range was declared"),
        (torch.full((12, 3, 8, 8), float("nan")), {"input_range": (0, 1)}, "non-finite"),
        (torch.rand(12, 3, 8, 8) * 255, {"input_range": (0, 1)}, "outside the declared input range"),
        (torch.zeros(12, 3, 8, 8, dtype=torch.int64), {}, "convert to uint8"),
        (torch.zeros(12, 3, 8, 8, dtype=torch.uint8), {"device": "tpu"}, "unknown device"),
    ],
)
def test_bad_inputs_raise_specific_errors(
    scorer: InceptionScorer, images: torch.Tensor, kwargs: dict, message: str
) -> None:
    device = kwargs.pop("device", None)
    with pytest.raises(InputError, match=message):
        if device is not None:
            inception_score(images, device=device, weights="unused.pth")
        inception_score(images, scorer=scorer, **kwargs)
