"""The scorer owns its numerics whatever autocast, TF32 or float32 matmul precision the caller set
(issue 38, found 1), and gives the caller's settings back.

Lightning's ``Trainer(precision="bf16-mixed")`` runs every step under ``torch.autocast("cpu",
dtype=torch.bfloat16)``; ``"16-mixed"`` on a GPU under ``torch.autocast("cuda", dtype=torch.float16)``;
many training scripts call ``torch.set_float32_matmul_precision("medium")``, which lets oneDNN compute
float32 products in bfloat16 on CPU. A score computed inside any of these must be the float32 score:
the reference here is the same scorer called with no caller setting at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from inception_score import InceptionScore, InceptionScorer, inception_score

# float32 logits batched the same way in both runs: the scores agree far below this.
FLOAT32 = 1e-6


def autocast_enabled(device_type: str) -> bool:
    """torch's own reading of the caller's autocast switch."""
    return torch.is_autocast_enabled(device_type)


def images(count: int = 6, size: int = 16) -> np.ndarray:
    """``(count, size, size, 3)`` uint8, seeded."""
    return np.random.default_rng(38).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


@pytest.fixture()
def caller_settings() -> Iterator[None]:
    """The settings a Lightning bf16 program leaves around a validation step, undone afterwards."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    finally:
        torch.set_float32_matmul_precision(before)


def switches() -> dict[str, Any]:
    """What a caller can read of the process-wide numerics settings."""
    values: dict[str, Any] = {
        "cpu autocast": autocast_enabled("cpu"),
        "cpu autocast dtype": torch.get_autocast_dtype("cpu"),
        "cuda autocast": autocast_enabled("cuda"),
        "float32 matmul precision": torch.get_float32_matmul_precision(),
        "cudnn.benchmark": torch.backends.cudnn.benchmark,
    }
    for name, holder in {"backends": torch.backends, "mkldnn": torch.backends.mkldnn,
                         "mkldnn.matmul": torch.backends.mkldnn.matmul, "mkldnn.conv": torch.backends.mkldnn.conv,
                         "cudnn": torch.backends.cudnn, "cudnn.conv": torch.backends.cudnn.conv,
                         "cuda.matmul": torch.backends.cuda.matmul}.items():
        if hasattr(holder, "fp32_precision"):
            values[f"{name}.fp32_precision"] = holder.fp32_precision
    return values


@pytest.fixture(scope="module")
def float32_score(dev_scorer) -> float:
    """The score with no caller setting in force."""
    assert not autocast_enabled("cpu")
    return inception_score(images(), splits=2, scorer=dev_scorer, progress=False).mean


def test_the_call_under_cpu_bfloat16_autocast_gives_the_float32_score(dev_scorer, float32_score: float,
                                                                       caller_settings: None) -> None:
    result = inception_score(images(), splits=2, scorer=dev_scorer, progress=False)
    assert result.mean == pytest.approx(float32_score, rel=FLOAT32)


def test_the_metric_object_under_cpu_bfloat16_autocast_gives_the_float32_score(dev_scorer, float32_score: float,
                                                                                caller_settings: None) -> None:
    metric = InceptionScore(splits=2, num_images=6, scorer=dev_scorer)
    pixels = images()
    metric.update(pixels[:4])
    metric.update(pixels[4:])
    assert metric.compute().mean == pytest.approx(float32_score, rel=FLOAT32)


def test_the_torchmetrics_adapter_under_cpu_bfloat16_autocast_gives_the_float32_score(
        dev_scorer, float32_score: float, caller_settings: None) -> None:
    pytest.importorskip("torchmetrics")
    from inception_score.torchmetrics_adapter import InceptionScoreMetric

    with pytest.warns(UserWarning, match="unverified weights"):
        metric = InceptionScoreMetric(splits=2, num_images=6, scorer=dev_scorer)
    pixels = images()
    metric.update(pixels[:4])
    metric.update(pixels[4:])
    assert float(metric.compute()) == pytest.approx(float32_score, rel=FLOAT32)


def test_the_scorer_computes_in_float32_inside_and_gives_the_callers_settings_back(dev_scorer,
                                                                                  caller_settings: None) -> None:
    seen: dict[str, Any] = {}

    def record(module: torch.nn.Module, args: tuple) -> None:
        seen["input dtype"] = args[0].dtype
        seen["cpu autocast"] = autocast_enabled("cpu")
        seen["mkldnn.matmul"] = getattr(torch.backends.mkldnn.matmul, "fp32_precision", "ieee")
        seen["float32 matmul precision"] = torch.get_float32_matmul_precision()

    before = switches()
    assert before["cpu autocast"] and before["float32 matmul precision"] == "medium"
    hook = dev_scorer.network.register_forward_pre_hook(record)
    try:
        dev_scorer.logits(torch.from_numpy(images(2)).permute(0, 3, 1, 2))
    finally:
        hook.remove()
    # The resize's output reached the network in float32, with neither autocast nor bfloat16 products.
    assert seen["input dtype"] == torch.float32 and seen["cpu autocast"] is False
    assert seen["mkldnn.matmul"] == "ieee" or seen["float32 matmul precision"] == "highest"
    assert switches() == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA float16 autocast (Lightning's 16-mixed) needs a GPU")
def test_cuda_float16_autocast_of_the_caller_gives_the_float32_score(genuine_weights_file) -> None:
    scorer = InceptionScorer(genuine_weights_file, device="cuda", allow_unverified=True, progress=False)
    pixels = images()
    expected = inception_score(pixels, splits=2, scorer=scorer, progress=False).mean
    before = switches()
    with torch.autocast("cuda", dtype=torch.float16):
        inside = switches()
        call = inception_score(pixels, splits=2, scorer=scorer, progress=False).mean
        metric = InceptionScore(splits=2, num_images=6, scorer=scorer)
        metric.update(pixels)
        assert switches() == inside
    assert switches() == before
    assert call == pytest.approx(expected, rel=FLOAT32)
    assert metric.compute().mean == pytest.approx(expected, rel=FLOAT32)
