"""The pixels of a decoded image in every mode Pillow opens it in, as ``(H, W, 3)`` uint8 RGB, or a
refusal that says why there are none.

What each mode becomes (the tests compute each from the file's samples, without Pillow):

* ``RGB``: as it is. ``L``, ``1`` and a palette (``P``): grey or the palette's colour. Alpha is
  dropped (``RGBA``, ``LA``, ``PA``); premultiplied alpha (``RGBa``, ``La``) is divided out first.
* ``CMYK``: ``(255 - C)(255 - K) / 255`` and likewise; ``YCbCr``: the JPEG (full-range BT.601)
  transform; ``LAB`` (TIFF CIELab): sRGB under a D65 white point. Pillow's conversions, checked.
* One channel of more than 8 bits (``I;16`` and its byte orders, and ``I`` from a 16-bit PNG): its
  top 8 bits, of the bit depth the file declares (a 12-bit TIFF uses all of 0..4095, not the low
  bits of 0..65535), black and white swapped back for a TIFF that stores white as zero.
* Refused: floating-point samples (``F``), signed integers, and integers of more than 16 bits
  (``I`` from a TIFF), whose black and white the file does not define; any mode not named here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_CONVERTED = ("1", "L", "P", "RGBA", "RGBX", "LA", "PA", "CMYK", "YCbCr", "LAB")
_PREMULTIPLIED = {"RGBa": "RGBA", "La": "LA"}  # Pillow divides the alpha out in these conversions
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_TIFF_BITS, _TIFF_PHOTOMETRIC, _TIFF_SAMPLE_FORMAT = 258, 262, 339
_WHITE_IS_ZERO, _UNSIGNED, _SIGNED, _FLOATING = 0, 1, 2, 3
REMEDY = "save it as 8-bit RGB (or 8- or 16-bit unsigned grey)"


class UndefinedPixels(Exception):
    """An image whose pixels this module will not guess; the message says why (:mod:`.decode` turns
    it into an :class:`~inception_score.errors.ImageDecodeError` naming the file, with :data:`REMEDY`)."""


def _tiff_tag(opened: Image.Image, tag: int) -> tuple[int, ...]:
    tags = getattr(opened, "tag_v2", None)
    if tags is None or tag not in tags:
        return ()
    value = tags[tag]
    return tuple(int(v) for v in value) if isinstance(value, tuple) else (int(value),)


def check_samples(opened: Image.Image) -> None:
    """Refuse a file whose samples are floating-point or signed (a TIFF says so in SampleFormat)."""
    formats = set(_tiff_tag(opened, _TIFF_SAMPLE_FORMAT))
    if opened.mode == "F" or _FLOATING in formats:
        raise UndefinedPixels("holds floating-point pixels, whose black and white the file does not define")
    if _SIGNED in formats:
        raise UndefinedPixels("holds signed integer pixels, whose black and white the file does not define")


def _wide_grey(image: Image.Image, opened: Image.Image) -> np.ndarray:
    """``(H, W)`` uint8 of one channel of 9 to 16 bits: the top 8 of the bits the file declares."""
    bits = max(_tiff_tag(opened, _TIFF_BITS) or (16,))
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
    if mode in _PREMULTIPLIED:
        image, mode = image.convert(_PREMULTIPLIED[mode]), _PREMULTIPLIED[mode]
    if mode in _CONVERTED:
        image = image.convert("RGB")
    elif mode != "RGB":
        raise UndefinedPixels(f"has pixels of mode {mode}, which is not read here")
    return np.array(image, dtype=np.uint8)
