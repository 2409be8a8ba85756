"""The network's structure against torch-fidelity's port, on the same random weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inception_score.network.inception import Inception2015, Output, fold_batch_norm
from inception_score.network.preprocess import to_network_input


@pytest.fixture(scope="module")
def random_network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inception2015, Path]:
    """Random conv weights, random BN statistics and beta, gamma = 1 (as in the 2015 graph)."""
    generator = torch.Generator().manual_seed(1)
    network = Inception2015()
    state = network.state_dict()
    for key, value in state.items():
        if key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
        elif key.endswith(("running_mean", "bn.bias")):
            state[key] = torch.randn(value.shape, generator=generator) * 0.1
        elif key == "fc.weight":
            state[key] = torch.randn(value.shape, generator=generator) * 0.2
        elif key == "fc.bias":
            state[key] = torch.randn(value.shape, generator=generator)
    network.load_state_dict(state)
    path = tmp_path_factory.mktemp("random") / "random.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return network.eval(), path


def test_state_dict_layout_is_pytorch_fid_s() -> None:
    state = Inception2015().state_dict()
    assert len(state) == 566  # REFERENCE.md section 3
    assert state["fc.weight"].shape == (1008, 2048)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert all(module.eps == 0.001 for module in Inception2015().modules() if isinstance(module, torch.nn.BatchNorm2d))


def test_outputs_equal_torch_fidelity_on_the_same_weights(random_network: tuple[Inception2015, Path]) -> None:
    inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    network, path = random_network
    theirs = inception.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased", "logits"], feature_extractor_weights_path=str(path)
    )
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        pool3, unbiased, biased = theirs(images)
        x = to_network_input(images)
        torch.testing.assert_close(network(x, Output.POOL3), pool3, rtol=0, atol=1e-5)
        torch.testing.assert_close(network(x, Output.LOGITS_UNBIASED), unbiased, rtol=0, atol=1e-4)
        torch.testing.assert_close(network(x, Output.LOGITS), biased, rtol=0, atol=1e-4)
        torch.testing.assert_close(network(x, Output.PROBABILITIES), unbiased.double().softmax(1).float(), rtol=0, atol=1e-6)


def test_folded_batch_norm_is_the_same_function(random_network: tuple[Inception2015, Path]) -> None:
    network, _ = random_network
    folded = fold_batch_norm(network)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), network(x), rtol=0, atol=1e-4)
