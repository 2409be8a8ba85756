"""The pixels of a decoded image in every mode Pillow opens it in, as ``(H, W, 3)`` uint8 RGB, or a
refusal that says why there are none.

What each mode becomes (the tests compute each from the file's samples, without Pillow):

* ``RGB``: as it is. ``L``, ``1`` and a palette (``P``): grey or the palette's colour. Alpha is
  dropped (``RGBA``, ``LA``, ``PA``); premultiplied alpha (``RGBa``, ``La``) is divided out first.
* ``CMYK``: ``(255 - C)(255 - K) / 255`` and likewise; ``YCbCr``: the JPEG (full-range BT.601)
  transform (Pillow's conversions, checked). ``LAB`` (TIFF CIELab: L* in 0..255 for 0..100, a* and b*
  signed bytes): sRGB under the D65 white point of sRGB, computed here (Pillow's is up to 5 levels off),
  colours outside sRGB clipped; a file that names another white point is refused.
* One channel of more than 8 bits (``I;16`` and its byte orders, and ``I`` from a 16-bit PNG): its
  top 8 bits, of the bit depth the file declares (a 12-bit TIFF uses all of 0..4095, not the low
  bits of 0..65535), black and white swapped back for a TIFF that stores white as zero.
* Refused: floating-point samples (``F``), signed integers, and integers of more than 16 bits
  (``I`` from a TIFF), whose black and white the file does not define; raw YCbCr that says it is
  subsampled (Pillow reads it as if it were not); any mode not named here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_CONVERTED = ("1", "L", "RGBA", "RGBX", "LA", "PA", "CMYK", "YCbCr")
_PREMULTIPLIED = {"RGBa": "RGBA", "La": "LA"}  # Pillow divides the alpha out in these conversions
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_TIFF_BITS, _TIFF_PHOTOMETRIC, _TIFF_WHITE_POINT, _TIFF_SAMPLE_FORMAT, _TIFF_SUBSAMPLING = 258, 262, 318, 339, 530
_WHITE_IS_ZERO, _SIGNED, _FLOATING = 0, 2, 3  # Photometric 0; SampleFormat 2 and 3 (1: unsigned)
D65_CHROMATICITY = (0.3127, 0.3290)  # x, y of sRGB's white
D65_XYZ = np.array([0.95047, 1.0, 1.08883])
XYZ_TO_LINEAR_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
REMEDY = "save it as 8-bit RGB (or 8- or 16-bit unsigned grey)"


class UndefinedPixels(Exception):
    """An image whose pixels this module will not guess; the message says why (:mod:`.decode` turns
    it into an :class:`~inception_score.errors.ImageDecodeError` naming the file, with :data:`REMEDY`)."""


def _tiff_tag(opened: Image.Image, tag: int) -> tuple[float, ...]:
    tags = getattr(opened, "tag_v2", None)
    if tags is None or tag not in tags:
        return ()
    value = tags[tag]
    return tuple(float(v) for v in value) if isinstance(value, tuple) else (float(value),)


def check_samples(opened: Image.Image) -> None:
    """Refuse a file whose samples are floating-point or signed (a TIFF says so in SampleFormat), or
    a TIFF of raw YCbCr that says its colour is subsampled (Pillow would read it as if it were not)."""
    formats = set(_tiff_tag(opened, _TIFF_SAMPLE_FORMAT))
    if opened.mode == "F" or _FLOATING in formats:
        raise UndefinedPixels("holds floating-point pixels, whose black and white the file does not define")
    if _SIGNED in formats:
        raise UndefinedPixels("holds signed integer pixels, whose black and white the file does not define")
    subsampling = _tiff_tag(opened, _TIFF_SUBSAMPLING)
    if opened.mode == "YCbCr" and subsampling and subsampling != (1, 1):
        raise UndefinedPixels(f"stores YCbCr colour subsampled {subsampling[0]:g}x{subsampling[-1]:g} without "
                              "compression, which is not read here")
    white = _tiff_tag(opened, _TIFF_WHITE_POINT)
    if opened.mode == "LAB" and white and not np.allclose(white, D65_CHROMATICITY, atol=1e-3):
        raise UndefinedPixels(f"holds CIELab colours of the white point {white}, which is not converted here "
                              "(only D65, sRGB's)")


def _wide_grey(image: Image.Image, opened: Image.Image) -> np.ndarray:
    """``(H, W)`` uint8 of one channel of 9 to 16 bits: the top 8 of the bits the file declares."""
    bits = int(max(_tiff_tag(opened, _TIFF_BITS) or (16,)))
    if image.mode == "I" and (opened.format != "PNG" or bits > 16):  # a PNG's "I" is 16-bit grey
        raise UndefinedPixels(f"holds {bits}-bit integer pixels, whose black and white the file does not define")
    values = np.asarray(image, dtype=np.int64)
    if _tiff_tag(opened, _TIFF_PHOTOMETRIC) == (_WHITE_IS_ZERO,):
        values = (1 << bits) - 1 - values
    return np.clip(values >> max(bits - 8, 0), 0, 255).astype(np.uint8)


def rgb_pixels(image: Image.Image, opened: Image.Image) -> np.ndarray:
    """``image`` (``opened``, the file as Pillow opened it, perhaps turned by its EXIF orientation) ->
    ``(H, W, 3)`` uint8 RGB; :class:`UndefinedPixels` where its pixels are not defined."""
    check_samples(opened)
    mode = image.mode
    if mode in _WIDE_GREY:
        grey = _wide_grey(image, opened)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "LAB":
        return lab_to_srgb(np.asarray(image))
    if mode == "P":  # through RGBA: Pillow warns when a palette's transparency is dropped straight to RGB
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _PREMULTIPLIED:
        image, mode = image.convert(_PREMULTIPLIED[mode]), _PREMULTIPLIED[mode]
    if mode in _CONVERTED:
        image = image.convert("RGB")
    elif mode != "RGB":
        raise UndefinedPixels(f"has pixels of mode {mode}, which is not read here")
    return np.array(image, dtype=np.uint8)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 of Pillow's LAB mode (L* as 0..255 for 0..100; a*, b* signed bytes, as TIFF
    stores them) -> ``(H, W, 3)`` uint8 sRGB under D65: CIE L*a*b* to XYZ, to linear sRGB (clipped to
    [0, 1]), to the sRGB curve."""
    lightness = lab[..., 0].astype(np.float64) * (100.0 / 255.0)
    a, b = (np.ascontiguousarray(lab[..., i]).view(np.int8).astype(np.float64) for i in (1, 2))
    fy = (lightness + 16.0) / 116.0
    f = np.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    delta = 6.0 / 29.0
    xyz = np.where(f > delta, f ** 3, 3 * delta ** 2 * (f - 4.0 / 29.0)) * D65_XYZ
    linear = np.clip(xyz @ XYZ_TO_LINEAR_SRGB.T, 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1.0 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)
