"""Weight sources: hash checks, refusals and their messages, offline behaviour."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

import inception_score.network.weights as weights_module
from inception_score.errors import WeightsFormatError, WeightsHashError, WeightsNotFoundError
from inception_score.network.inception import Inception2015
from inception_score.network.weights import PYTORCH_FID_WEIGHTS, TF_GRAPH, load_network, load_weights


@pytest.fixture(scope="module")
def random_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random.pth"
    torch.save(Inception2015().state_dict(), path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache and a download address nobody answers (loopback port 9)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("INCEPTION_SCORE_WEIGHTS", raising=False)
    unreachable = dataclasses.replace(PYTORCH_FID_WEIGHTS, url="http://127.0.0.1:9/pt_inception-2015-12-05-6726825d.pth")
    monkeypatch.setattr(weights_module, "DEFAULT", unreachable)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_known_hashes_are_the_reference_ones() -> None:
    assert PYTORCH_FID_WEIGHTS.sha256 == "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
    assert TF_GRAPH.sha256 == "009d6814d1bc560d4e7b236e170e9b2d5ca6f4b57bd8037f6db05776204415c6"
    assert set(weights_module.KNOWN_FILES) == {PYTORCH_FID_WEIGHTS.sha256, TF_GRAPH.sha256}


def test_unknown_hash_is_refused_with_its_hash(random_weights_file: Path) -> None:
    digest = hashlib.sha256(random_weights_file.read_bytes()).hexdigest()
    with pytest.raises(WeightsHashError) as caught:
        load_weights(random_weights_file)
    message = str(caught.value)
    assert str(random_weights_file) in message and digest in message
    assert "allow_unverified=True" in message and PYTORCH_FID_WEIGHTS.sha256 in message


def test_unverified_opt_in_loads_and_says_so(random_weights_file: Path) -> None:
    network, loaded = load_network(random_weights_file, allow_unverified=True)
    assert loaded.verified is False
    assert loaded.sha256 == hashlib.sha256(random_weights_file.read_bytes()).hexdigest()
    reference = torch.load(random_weights_file, weights_only=True)
    assert torch.equal(network.Mixed_7c.branch_pool.conv.weight, reference["Mixed_7c.branch_pool.conv.weight"])
    assert not network.training


def test_truncated_file(random_weights_file: Path, tmp_path: Path) -> None:
    truncated = tmp_path / PYTORCH_FID_WEIGHTS.name
    truncated.write_bytes(random_weights_file.read_bytes()[: 10_000_000])
    with pytest.raises(WeightsHashError, match="may be truncated"):
        load_weights(truncated)
    with pytest.raises(WeightsFormatError, match="could not be read as a PyTorch state dict"):
        load_weights(truncated, allow_unverified=True)


def test_state_dict_missing_tensors(tmp_path: Path) -> None:
    path = tmp_path / "partial.pth"
    state = Inception2015().state_dict()
    del state["fc.weight"]
    torch.save(state, path)
    with pytest.raises(WeightsFormatError, match="lacks 1 of the network's"):
        load_weights(path, allow_unverified=True)


def test_missing_local_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as caught:
        load_weights(tmp_path / "nowhere.pth")
    assert "nowhere.pth does not exist" in str(caught.value)


def test_offline_without_file_says_what_to_download_and_where(offline_cache: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as caught:
        load_weights(progress=False)
    message = str(caught.value)
    for needed in (PYTORCH_FID_WEIGHTS.name, PYTORCH_FID_WEIGHTS.sha256, str(offline_cache), "INCEPTION_SCORE_WEIGHTS", "could not download"):
        assert needed in message
    assert not any(offline_cache.glob("*.partial")), "no partial download may be left behind"


def test_environment_variable_and_cache_are_used(
    random_weights_file: Path, offline_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCEPTION_SCORE_WEIGHTS", str(random_weights_file))
    assert load_weights(allow_unverified=True).path == random_weights_file
    monkeypatch.delenv("INCEPTION_SCORE_WEIGHTS")
    offline_cache.mkdir(parents=True)
    cached = offline_cache / PYTORCH_FID_WEIGHTS.name
    cached.write_bytes(random_weights_file.read_bytes())
    assert load_weights(allow_unverified=True).path == cached


class NotATensor:
    """Pickled by reference to this module: torch's tensor-only reader refuses it."""


def test_non_tensor_objects_are_refused_without_torchs_advice(tmp_path: Path) -> None:
    path = tmp_path / "with-objects.pth"
    state = Inception2015().state_dict()
    state["extra"] = NotATensor()
    torch.save(state, path)
    with pytest.raises(WeightsFormatError) as caught:
        load_weights(path, allow_unverified=True)
    message = str(caught.value)
    assert message.startswith(f"{path} was refused: it contains non-tensor objects")
    assert "NotATensor" in message and "weights_only" not in message and "\x1b" not in message
    assert len(message.splitlines()) == 1
