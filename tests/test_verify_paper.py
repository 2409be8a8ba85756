"""benchmarks/verify_paper.py reads CIFAR-10's python batches as the standard files lay them out."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("verify_paper", ROOT / "benchmarks" / "verify_paper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reads_python_batches_in_order_as_nhwc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    expected = []
    for index in range(1, 6):
        # The python batches: rows of 3072 bytes, 1024 red, then 1024 green, then 1024 blue, row-major.
        chw = rng.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
        rows = chw.reshape(3, 3072)
        with open(tmp_path / f"data_batch_{index}", "wb") as handle:
            pickle.dump({b"data": rows, b"labels": [0, 1, 2], b"batch_label": b"x"}, handle, protocol=2)
        for image in chw:
            expected.append(np.stack([image[0], image[1], image[2]], axis=-1))
    # Only files with the official md5s are unpickled: declare these synthetic ones official.
    import reference_gan.data as data_module

    md5s = {name: hashlib.md5((tmp_path / name).read_bytes()).hexdigest() for name in [f"data_batch_{i}" for i in range(1, 6)]}
    monkeypatch.setattr(data_module, "CIFAR10_FILES", {**data_module.CIFAR10_FILES, **md5s})
    images = load_script().read_cifar10_training_images(tmp_path)
    assert images.shape == (15, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, np.stack(expected))
    # Pixel (row 0, col 1) of image 0 is byte 1 (red), 1025 (green), 2049 (blue) of its row.
    with open(tmp_path / "data_batch_1", "rb") as handle:
        row = pickle.load(handle, encoding="bytes")[b"data"][0]
    assert tuple(images[0, 0, 1]) == (row[1], row[1025], row[2049])


def test_missing_batch_is_named(tmp_path: Path) -> None:
    import click

    with pytest.raises(click.ClickException, match="data_batch_1 not found"):
        load_script().read_cifar10_training_images(tmp_path)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch ran-code",))


def test_a_batch_that_is_not_the_official_file_is_refused_before_unpickling(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    monkeypatch.chdir(tmp_path)
    for index in range(1, 6):
        with open(tmp_path / f"data_batch_{index}", "wb") as handle:
            pickle.dump({b"data": RunsCode(), b"labels": [0]}, handle)
    with pytest.raises(click.ClickException, match="data_batch_1 has the wrong md5"):
        load_script().read_cifar10_training_images(tmp_path)
    assert not (tmp_path / "ran-code").exists()
