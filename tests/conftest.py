"""Shared test configuration.

Data from the project's shared folder (MNIST, the partial CIFAR-10) is found through
``--shared-dir`` or the environment variable ``INCEPTION_SCORE_SHARED``; tests that need it
skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shared-dir",
        default=None,
        help="folder holding data/mnist and data/cifar10-partial (default: $INCEPTION_SCORE_SHARED)",
    )


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
