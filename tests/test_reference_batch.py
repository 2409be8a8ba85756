"""Reference .npz files (inception_score.references.batches): guided-diffusion's layout read as its evaluator
reads it, statistics-only files, and the refusals, each with a message that names the problem."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from inception_score.errors import InputError
from inception_score.references.batches import read_reference_npz


def statistics(dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((dim + 10, dim))
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.fixture(scope="module")
def pool3_stats() -> tuple[np.ndarray, np.ndarray]:
    return statistics(2048, 0)


@pytest.fixture(scope="module")
def spatial_stats() -> tuple[np.ndarray, np.ndarray]:
    return statistics(2023, 1)


def test_a_guided_diffusion_batch_is_read_as_the_evaluator_reads_it(tmp_path: Path, pool3_stats, spatial_stats) -> None:
    images = np.random.default_rng(2).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / "VIRTUAL_test_batch.npz"
    np.savez(path, arr_0=images, mu=pool3_stats[0], sigma=pool3_stats[1], mu_s=spatial_stats[0], sigma_s=spatial_stats[1])
    batch = read_reference_npz(path)
    with np.load(path, allow_pickle=False) as archive:  # what the evaluator's np.load gives
        assert np.array_equal(batch.fid.mu, archive["mu"]) and np.array_equal(batch.fid.sigma, archive["sigma"])
        assert np.array_equal(batch.sfid.mu, archive["mu_s"]) and np.array_equal(batch.sfid.sigma, archive["sigma_s"])
        assert np.array_equal(batch.images[0:5], archive["arr_0"])
    assert batch.layout == "guided-diffusion batch" and batch.num_images == 5
    assert batch.fid.mu.dtype == np.float64
    assert batch.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_statistics_only_files_with_and_without_spatial(tmp_path: Path, pool3_stats, spatial_stats) -> None:
    fid_only = tmp_path / "stats.npz"
    np.savez_compressed(fid_only, mu=pool3_stats[0].astype(np.float32), sigma=pool3_stats[1])
    batch = read_reference_npz(fid_only)
    assert batch.layout == "statistics" and batch.images is None and batch.sfid is None
    np.testing.assert_array_equal(batch.fid.mu, pool3_stats[0].astype(np.float32).astype(np.float64))
    both = tmp_path / "both.npz"
    np.savez(both, mu=pool3_stats[0], sigma=pool3_stats[1], mu_s=spatial_stats[0], sigma_s=spatial_stats[1])
    assert read_reference_npz(both).sfid.sigma.shape == (2023, 2023)


def test_images_alone_with_labels(tmp_path: Path) -> None:
    path = tmp_path / "samples.npz"
    np.savez(path, arr_0=np.zeros((3, 4, 4, 3), np.uint8), arr_1=np.arange(3))
    batch = read_reference_npz(path)
    assert batch.fid is None and batch.num_images == 3


@pytest.mark.parametrize("name", ["cifar10_clean_train_32.npz", "cifar10_legacy_tensorflow_train_32.npz",
                                  "ffhq_legacy_pytorch_clip_vit_b_32_trainval70k_1024.npz", "mine_clean_custom_na.npz",
                                  "mine_clean_custom_na_kid.npz"])
def test_clean_fid_statistics_are_refused_as_not_comparable(tmp_path: Path, name: str, pool3_stats) -> None:
    path = tmp_path / name
    np.savez(path, mu=pool3_stats[0], sigma=pool3_stats[1])
    with pytest.raises(InputError, match="clean-fid.*another network or resize: not comparable"):
        read_reference_npz(path)


def test_clean_fid_kid_features_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "renamed.npz"
    np.savez(path, feats=np.zeros((4, 2048), np.float32))
    with pytest.raises(InputError, match="clean-fid.*not comparable"):
        read_reference_npz(path)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"mu": np.zeros(2048)}, "'mu' without 'sigma'"),
    ({"mu": np.zeros(1000), "sigma": np.eye(1000)}, r"must be \(2048,\) and \(2048, 2048\)"),
    ({"mu_s": np.zeros(2023), "sigma_s": np.eye(2023)}, "without pool_3 ones"),
    ({"mu": np.zeros(2048), "sigma": np.triu(np.ones((2048, 2048)))}, "not a covariance matrix"),
    ({"mu": np.zeros(2048, np.int64), "sigma": np.eye(2048)}, "not floating point"),
    ({"mu": np.full(2048, np.nan), "sigma": np.eye(2048)}, "inf or NaN"),
    ({"arr_0": np.zeros((3, 3, 8, 8), np.uint8)}, r"uint8 images \(N, H, W, 3\)"),
    ({"arr_0": np.zeros((3, 8, 8, 3), np.float32)}, r"uint8 images \(N, H, W, 3\)"),
    ({"images": np.zeros((3, 8, 8, 3), np.uint8)}, r"unexpected arrays \['images'\]"),
    ({"arr_1": np.zeros(3)}, "neither images"),
])
def test_files_that_do_not_fit_are_refused_with_what_is_wrong(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "reference.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=message):
        read_reference_npz(path)


def test_missing_and_damaged_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_reference_npz(tmp_path / "absent.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="not a readable .npz"):
        read_reference_npz(garbage)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, mu=np.array([object()] * 3, dtype=object), sigma=np.eye(3))
    with pytest.raises(InputError, match="Python objects"):
        read_reference_npz(pickled)
