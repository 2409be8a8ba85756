"""TF1 ResizeBilinear (align_corners=False, no half-pixel centres) on hand-computed cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inception_score.network.preprocess import normalize, tf1_resize_bilinear, tf1_resize_matrix, to_network_input


def test_2x2_to_3x3_by_hand() -> None:
    # Source coordinates i * 2/3 = 0, 0.667, 1.333; the last clamps to pixel 1.
    image = torch.tensor([[0.0, 30.0], [60.0, 90.0]])[None, None]
    expected = torch.tensor(
        [
            [0.0, 20.0, 30.0],  # row 0: 0, 0 + 2/3 * 30, 30
            [40.0, 60.0, 70.0],  # row 1: row 0 + 2/3 * (row 1 - row 0) = + 40
            [60.0, 80.0, 90.0],  # row 2: source 1.333 -> row 1 (upper index clamps)
        ]
    )
    got = tf1_resize_bilinear(image, size=3)[0, 0]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_3x3_to_5x5_by_hand() -> None:
    # value(r, c) = R[r] + C[c] is separable-additive, so bilinear output is R' + C' exactly.
    # Source coordinates i * 0.6 = 0, 0.6, 1.2, 1.8, 2.4 (last clamps to pixel 2).
    rows = torch.tensor([0.0, 10.0, 100.0])
    cols = torch.tensor([0.0, 1.0, 2.0])
    image = (rows[:, None] + cols[None, :])[None, None]
    rows_out = torch.tensor([0.0, 6.0, 10.0 + 0.2 * 90.0, 10.0 + 0.8 * 90.0, 100.0])
    cols_out = torch.tensor([0.0, 0.6, 1.2, 1.8, 2.0])
    got = tf1_resize_bilinear(image, size=5)[0, 0]
    torch.testing.assert_close(got, rows_out[:, None] + cols_out[None, :], rtol=0, atol=1e-5)


def test_downscale_samples_without_antialiasing() -> None:
    # 4 -> 2: source coordinates 0 and 2 land exactly on pixels 0 and 2.
    line = torch.tensor([5.0, 7.0, 11.0, 13.0])
    torch.testing.assert_close(tf1_resize_matrix(4, 2) @ line, torch.tensor([5.0, 11.0]))


def test_rows_of_the_matrix_sum_to_one() -> None:
    for in_size in (1, 2, 7, 28, 32, 64, 256, 512):
        matrix = tf1_resize_matrix(in_size, 299)
        torch.testing.assert_close(matrix.sum(dim=1), torch.ones(299))


def test_same_size_is_identity_and_agrees_with_interpolate() -> None:
    image = torch.rand(2, 3, 299, 299) * 255
    assert torch.equal(tf1_resize_bilinear(image), image)
    torch.testing.assert_close(F.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False), image)


def test_constant_image_agrees_with_interpolate() -> None:
    image = torch.full((1, 3, 32, 32), 77.0)
    ours = tf1_resize_bilinear(image)
    theirs = F.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, theirs)


def test_upscale_differs_from_half_pixel_interpolate() -> None:
    # torch's align_corners=False uses half-pixel centres; TF1's legacy resize does not.
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    ours = tf1_resize_bilinear(image)
    theirs = F.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False)
    assert (ours - theirs).abs().max() > 10


@pytest.mark.parametrize("size", [(32, 32), (28, 28), (17, 45), (400, 300)])
def test_matches_torch_fidelity_tf1_resize(size: tuple[int, int]) -> None:
    compat = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
    image = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1)) * 255
    theirs = compat.interpolate_bilinear_2d_like_tensorflow1x(image, size=(299, 299), align_corners=False)
    torch.testing.assert_close(tf1_resize_bilinear(image), theirs, rtol=0, atol=1e-3)


def test_normalisation_is_x_minus_128_over_128() -> None:
    pixels = torch.tensor([0.0, 128.0, 255.0])
    torch.testing.assert_close(normalize(pixels), torch.tensor([-1.0, 0.0, 127.0 / 128.0]))
    out = to_network_input(torch.full((1, 3, 8, 8), 255, dtype=torch.uint8))
    assert out.shape == (1, 3, 299, 299) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full_like(out, 127.0 / 128.0))
