"""Inputs that used to be scored under a wrong reading, or failed with a raw error: each is refused
with an InputError that says what to do, and its harmless neighbours still pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch.utils.data import Dataset

from inception_score.cli.main import main
from inception_score.errors import InputError
from inception_score.readers.files import open_path
from inception_score.readers.inputs import image_stream
from inception_score.readers.pixels import standardize_batch, standardize_image


@pytest.fixture
def unit_floats() -> np.ndarray:
    """Four 8x8 images with values in [0, 1], as many generators output them."""
    return np.random.default_rng(5).uniform(0, 1, (4, 3, 8, 8)).astype(np.float32)


def test_floats_in_0_1_declared_0_255_are_refused(unit_floats: np.ndarray) -> None:
    with pytest.raises(InputError, match=r"look like floats in \[0, 1\].*input_range=\(0, 1\)"):
        standardize_batch(unit_floats, (0.0, 255.0))
    # The same values declared right, or scaled to 0..255 by hand, pass and agree.
    declared = standardize_batch(unit_floats, (0.0, 1.0))
    scaled = standardize_batch(unit_floats * np.float32(255), (0.0, 255.0))
    assert torch.allclose(declared, torch.from_numpy(unit_floats) * 255, atol=1e-4)
    assert torch.allclose(scaled, declared, atol=1e-4)


def test_dark_but_genuine_0_255_floats_pass(unit_floats: np.ndarray) -> None:
    zeros = np.zeros((4, 3, 8, 8), np.float32)  # black either way, so nothing to tell
    assert torch.equal(standardize_batch(zeros, (0.0, 255.0)), torch.zeros(4, 3, 8, 8))
    one = standardize_image(unit_floats[0], (0.0, 255.0))  # a single image may be a dark picture
    assert torch.equal(one, torch.from_numpy(unit_floats[0]))
    lit = unit_floats.copy()
    lit[3, 0, 0, 0] = 2.0  # one value above 1 in the batch: not [0, 1] data
    assert torch.equal(standardize_batch(lit, (0.0, 255.0)), torch.from_numpy(lit))


class FloatImages(Dataset):
    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.images[index])


def test_a_dataset_of_0_1_floats_declared_0_255_is_refused_per_batch(unit_floats: np.ndarray) -> None:
    stream = image_stream(FloatImages(unit_floats), batch_size=4, input_range=(0.0, 255.0))
    with pytest.raises(InputError, match="look like floats in"):
        list(stream.batches)
    batches = list(image_stream(FloatImages(unit_floats), batch_size=4, input_range=(0.0, 1.0)).batches)
    assert torch.allclose(batches[0], torch.from_numpy(unit_floats) * 255, atol=1e-4)


def test_array_file_of_0_1_floats_declared_0_255(unit_floats: np.ndarray, tmp_path: Path) -> None:
    np.save(tmp_path / "samples.npy", unit_floats)
    with pytest.raises(InputError, match=f"{tmp_path / 'samples.npy'}.*look like floats in"):
        open_path(tmp_path / "samples.npy", input_range=(0.0, 255.0))
    result = CliRunner().invoke(main, [str(tmp_path / "samples.npy"), "--input-range", "0,255", "--splits", "1"])
    assert result.exit_code == 2 and "look like floats in [0, 1]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("shape", [(2, 3, 3, 3), (2, 1, 3, 1), (2, 3, 5, 3), (2, 3, 7, 1)])
def test_a_layout_with_two_possible_channel_axes_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=rf"shape \({shape[0]}, {shape[1]}, {shape[2]}, {shape[3]}\).*ambiguous"
                                         rf".*at least 4 pixels on each side"):
        standardize_batch(np.zeros(shape, np.uint8))


def test_an_ambiguous_single_image_and_array_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ambiguous"):
        standardize_image(np.zeros((3, 3, 3), np.uint8))
    np.save(tmp_path / "tiny.npy", np.zeros((5, 3, 3, 3), np.uint8))
    with pytest.raises(InputError, match=r"tiny.npy has shape \(5, 3, 3, 3\).*ambiguous"):
        open_path(tmp_path / "tiny.npy")


def test_grayscale_and_pil_images_keep_their_known_layout() -> None:
    gray = np.arange(15, dtype=np.uint8).reshape(5, 3)  # (H, W) with W = 3: not channels
    assert torch.equal(standardize_image(gray), torch.from_numpy(np.stack([gray] * 3)))
    rgb = np.arange(45, dtype=np.uint8).reshape(3, 5, 3)  # PIL is (H, W, C) even when H = 3
    assert torch.equal(standardize_image(Image.fromarray(rgb)), torch.from_numpy(rgb.transpose(2, 0, 1).copy()))


@pytest.mark.parametrize(
    "array", [np.array([np.zeros((8, 8, 3)), np.zeros((4, 4, 3))], dtype=object), np.array([["a"]]),
              np.zeros((2, 8, 8, 3), dtype=np.complex64)],
    ids=["object", "strings", "complex"],
)
def test_arrays_of_non_numbers_are_input_errors(array: np.ndarray) -> None:
    with pytest.raises(InputError, match=f"dtype {array.dtype}"):
        image_stream(array)


def test_big_endian_floats_read_like_native() -> None:
    native = np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    swapped = native.astype(">f4")
    assert torch.equal(standardize_batch(swapped, (-1.0, 1.0)), standardize_batch(native, (-1.0, 1.0)))
