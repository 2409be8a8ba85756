"""Pixels to network input, as the 2015 graph does it.

The graph takes RGB floats in [0, 255] of any size, resizes them to 299x299 with TensorFlow 1's
``ResizeBilinear`` (align_corners=False, *no* half-pixel centres: the source coordinate of output
index ``i`` is ``i * in_size / out_size``) and then computes ``(x - 128) / 128``
(the paper's code, improved-gan's ``inception_score/model.py``, feeds it such images).

The resize is separable, so for a batch of equally sized images it is two small matrix products,
``R_h @ image @ R_w.T``, with interpolation matrices built once per input size. The matrices hold
the very weights TF1 computes in float32.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .inception import INPUT_SIZE


@lru_cache(maxsize=64)
def _tf1_resize_matrix_np(in_size: int, out_size: int) -> np.ndarray:
    """``(out_size, in_size)`` float32 matrix of TF1 bilinear weights along one axis."""
    # TF1 computes the scale and the source coordinates in float32.
    scale = np.float32(in_size) / np.float32(out_size)
    source = np.arange(out_size, dtype=np.float32) * scale
    lower = np.floor(source).astype(np.int64)
    upper = np.minimum(np.ceil(source).astype(np.int64), in_size - 1)
    lerp = source - lower.astype(np.float32)
    matrix = np.zeros((out_size, in_size), dtype=np.float32)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, lower), np.float32(1) - lerp)
    np.add.at(matrix, (rows, upper), lerp)
    return matrix


def tf1_resize_matrix(in_size: int, out_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(out_size, in_size)`` float32 interpolation matrix of TF1 ``ResizeBilinear`` (one axis).

    Row ``i`` has weight ``1 - f`` at ``floor(s)`` and ``f`` at ``min(ceil(s), in_size - 1)``,
    where ``s = i * (in_size / out_size)`` and ``f = s - floor(s)``.
    """
    return torch.from_numpy(_tf1_resize_matrix_np(in_size, out_size)).to(device)


def tf1_resize_bilinear(images: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` float images to ``(N, C, size, size)`` as TF1's ResizeBilinear.

    Values keep their range. A same-size resize is the identity and costs nothing.
    """
    if not images.is_floating_point():
        raise TypeError(f"tf1_resize_bilinear needs floating point images, got {images.dtype}")
    height, width = images.shape[-2:]
    if height == size and width == size:
        return images
    rows = tf1_resize_matrix(height, size, images.device).to(images.dtype)
    cols = tf1_resize_matrix(width, size, images.device).to(images.dtype)
    # (size, H) @ (N, C, H, W) @ (W, size): width first, so the larger product runs once.
    return rows @ (images @ cols.T)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """``[0, 255]`` floats to the network's ``(x - 128) / 128`` (exact: 1/128 is a power of two)."""
    return (images - 128.0) / 128.0


# Up to this many values per image row (width x channels), the resize runs channels-last in two
# plain matrix products (see to_network_input); wider rows use the per-plane products.
CHANNELS_LAST_ROW_LIMIT = 3 * 128


def to_network_input(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(N, 3, H, W)`` uint8, or floats in [0, 255] -> ``(N, 3, 299, 299)`` normalised ``dtype``.

    The same numbers as ``normalize(tf1_resize_bilinear(x))``, computed with fewer passes over
    memory. ``(y - 128) / 128 == y / 128 - 1`` exactly in floating point (dividing by a power of two
    only shifts the exponent), and ``y / 128`` is the resize with the row matrix divided by 128, so
    the normalisation costs one in-place subtraction. For small images (CIFAR's 32x32 among them)
    the width pass multiplies each pixel row, channels interleaved, by ``kron(R_w, I_3)``, whose
    extra terms are exact zeros, and the height pass leaves the result channels-last, the layout
    the network wants: 3-4x faster at 32x32 on a 2-core Xeon.
    """
    x = images.to(dtype)
    count, channels, height, width = x.shape
    if height == INPUT_SIZE and width == INPUT_SIZE:
        return normalize(x)
    rows = tf1_resize_matrix(height, INPUT_SIZE, x.device).to(dtype) * (1.0 / 128.0)
    cols = tf1_resize_matrix(width, INPUT_SIZE, x.device).to(dtype)
    if width * channels <= CHANNELS_LAST_ROW_LIMIT:
        spread = torch.kron(cols, torch.eye(channels, dtype=dtype, device=x.device))
        pixel_rows = x.permute(0, 2, 3, 1).reshape(count * height, width * channels)
        wide = (pixel_rows @ spread.T).view(count, height, INPUT_SIZE * channels)
        out = (rows @ wide).sub_(1.0)
        return out.view(count, INPUT_SIZE, INPUT_SIZE, channels).permute(0, 3, 1, 2)
    return (rows @ (x @ cols.T)).sub_(1.0)
