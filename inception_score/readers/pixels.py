"""Batches of pixels: the layouts and value ranges accepted, and their one conversion to what the scorer reads.

A batch is a tensor or array ``(N, 3, H, W)`` or ``(N, H, W, 3)`` (one channel is repeated to RGB).
uint8 stays as it is; floats need a declared ``input_range`` such as ``(0, 1)``, ``(-1, 1)`` or
``(0, 255)`` and become float32 in [0, 255]. The in-memory inputs (:mod:`.inputs`) and the file
readers (:mod:`.files`) both convert through here, so this module imports neither of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..protocol import NAMED_RANGES, PIXEL_RANGE, InputRange

CHANNEL_COUNTS = (1, 3)  # grayscale, repeated to RGB; or RGB
# A single image whose values all lie in [0, 1] of 0..255 may be a dark picture (of -1..1, a pale one); a
# batch of several such images is floats in [0, 1] declared with the wrong range (refuse_narrower_range).
UNIT_SCALE_MIN_IMAGES = 2
_INT_TYPES = {torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32, torch.uint64}


def parse_input_range(value: str | Sequence[float] | None) -> InputRange | None:
    """``"0,1"``, ``"-1,1"``, ``"0,255"`` or a pair of numbers -> ``(low, high)``."""
    if value is None:
        return None
    given = value
    try:
        if isinstance(value, str):
            value = value.replace(" ", "").split(",")
        low, high = (float(bound) for bound in value)  # exactly two
    except (TypeError, ValueError):
        raise InputError(f"input range {given!r} is not two numbers, low and high: give 'low,high' or (low, high), "
                         f"for example 0,1 or -1,1 or 0,255") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError(f"input range ({low}, {high}) is not finite: give the finite values the images span, "
                         f"for example (0, 1), (-1, 1) or (0, 255)")
    if not high > low:
        raise InputError(f"input range ({low}, {high}) is empty: high must exceed low")
    return (low, high)


def is_pil_image(value: Any) -> bool:
    """Whether ``value`` is a PIL image (always ``(H, W, C)`` pixels)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(value, Image.Image)


def _to_tensor(value: Any, what: str) -> torch.Tensor:
    """A tensor, numpy array or PIL image (as ``(H, W, 3)``) -> a tensor sharing memory where it can."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":  # object, strings, records, complex, datetimes: not pixels
            raise InputError(
                f"{what} is a numpy array of dtype {value.dtype}, not pixel values; stack the images into one "
                f"uint8 array (0..255), or floats with a declared input range (np.stack(images).astype(np.uint8))"
            )
        if not value.dtype.isnative:  # e.g. '>f4' read from a big-endian file: torch takes native order only
            value = value.astype(value.dtype.newbyteorder("="))
        return torch.from_numpy(np.ascontiguousarray(value))
    if is_pil_image(value):
        image = value.convert("RGB") if value.mode != "RGB" else value
        return torch.from_numpy(np.asarray(image).copy())
    raise InputError(f"cannot score an object of type {type(value).__name__}: give uint8 images as tensors or arrays")


def channels_axis(shape: Sequence[int], what: str) -> int:
    """The channels axis (1 or 3) of a batch of this shape; an ``InputError`` when it has none or two.

    ``shape`` is the whole batch's, so a message shows the shape the caller gave.
    """
    shape = tuple(int(size) for size in shape)
    if len(shape) != 4:
        raise InputError(f"{what} has shape {shape}; expected a batch (N, 3, H, W) or (N, H, W, 3)")
    first, last = shape[1] in CHANNEL_COUNTS, shape[3] in CHANNEL_COUNTS
    if first and last:
        raise InputError(
            f"{what} has shape {shape}: both axis 1 and axis 3 could be the channels ((N, C, H, W) with a width "
            f"of {shape[3]}, or (N, H, W, C) with a height of {shape[1]}), so the layout is ambiguous; "
            f"give images at least 4 pixels on each side (resize or pad them), channels first or last"
        )
    if first:
        return 1
    if last:
        return 3
    raise InputError(
        f"{what} has shape {shape}: no axis of 3 (RGB) or 1 (grayscale) channels; drop alpha or convert to RGB first"
    )


def _rgb_channels_first(images: torch.Tensor, what: str, axis: int | None = None) -> torch.Tensor:
    """``(N, C, H, W)`` or ``(N, H, W, C)`` with C in {1, 3} -> ``(N, 3, H, W)``, one channel repeated to RGB;
    ``axis``: the channels, when known, else found by :func:`channels_axis`."""
    if axis is None:
        axis = channels_axis(images.shape, what)
    chw = images if axis == 1 else images.permute(0, 3, 1, 2)
    if chw.shape[1] == 1:
        chw = chw.expand(-1, 3, -1, -1)
    return chw


def refuse_narrower_range(count: int, low: float, high: float, input_range: InputRange | None, what: str) -> None:
    """Refuse ``count`` float images whose values, all in ``[low, high]``, fill only a named range
    (:data:`~inception_score.protocol.NAMED_RANGES`) that is narrower than the one declared: floats in
    [0, 1] declared 0..255 (they would score as black images) or declared -1..1 (as pale ones, a
    sigmoid's output under the default range of a generator). Neither holds by chance for a batch of
    real images: all in [0, 1] of 0..255 is black, all in [0, 1] of -1..1 has no pixel darker than
    mid-grey in any channel.

    All zeros pass (they are black, or grey, whatever the range); so does a single image
    (``UNIT_SCALE_MIN_IMAGES``).
    """
    if input_range is None or count < UNIT_SCALE_MIN_IMAGES:
        return
    declared_low, declared_high = input_range
    for name, (named_low, named_high) in sorted(NAMED_RANGES.items(), key=lambda item: item[1][1] - item[1][0]):
        narrower = declared_low <= named_low and named_high <= declared_high and (named_low, named_high) != input_range
        tolerance = 1e-4 * (named_high - named_low)
        if not narrower or low < named_low - tolerance or high > named_high + tolerance or high <= named_low:
            continue
        raise InputError(
            f"{what}: {count} images with every value in [{low:.4g}, {high:.4g}] were declared to range over "
            f"{declared_low:g}..{declared_high:g}; they look like floats in [{named_low:g}, {named_high:g}], which "
            f"would score as images that use only {(named_high - named_low) / (declared_high - declared_low):.1%} of "
            f"the pixel range. Declare input_range=({named_low:g}, {named_high:g}) (--input-range {name}), or map "
            f"them to the range declared"
        )


def _to_pixel_values(images: torch.Tensor, input_range: InputRange | None, what: str) -> torch.Tensor:
    """``(N, 3, H, W)``: uint8 stays; floats are checked and mapped from ``input_range`` to [0, 255] float32."""
    if images.dtype == torch.uint8:
        return images
    if images.dtype == torch.bool or not (images.is_floating_point() or images.dtype in _INT_TYPES):
        raise InputError(f"{what} has dtype {images.dtype}; give uint8 pixels or floats with an input range")
    if not images.is_floating_point():
        raise InputError(
            f"{what} has integer dtype {images.dtype}; convert to uint8 (values 0..255) "
            f"or to floats with a declared input range"
        )
    if input_range is None:
        raise InputError(
            f"{what} holds floats ({images.dtype}) but no input range was declared: "
            f"pass input_range=(0, 1), (-1, 1) or (0, 255)"
        )
    images = images.to(torch.float32)
    if not bool(torch.isfinite(images).all()):
        bad = int((~torch.isfinite(images)).sum())
        raise InputError(f"{what} contains {bad} non-finite values (NaN or inf); fix the generator's output first")
    low, high = input_range
    lo, hi = float(images.min()), float(images.max())
    tolerance = 1e-4 * (high - low)
    if lo < low - tolerance or hi > high + tolerance:
        raise InputError(
            f"{what} has values in [{lo:.4g}, {hi:.4g}], outside the declared input range [{low:g}, {high:g}]; "
            f"declare the right range or clamp the images"
        )
    refuse_narrower_range(images.shape[0], lo, hi, input_range, what)
    if (low, high) == PIXEL_RANGE:
        return images
    return (images - low) * (255.0 / (high - low))


def _looks_like_labels(value: Any) -> bool:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.ndim <= 1
    return isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value)


def standardize_batch(batch: Any, input_range: InputRange | None = None, what: str = "the images") -> torch.Tensor:
    """One batch (tensor or array, NCHW or NHWC) -> ``(B, 3, H, W)`` uint8 or float32 in [0, 255]."""
    if isinstance(batch, (list, tuple)) and len(batch) == 2 and _looks_like_labels(batch[1]):
        batch = batch[0]  # (images, labels) from a DataLoader
    images = _rgb_channels_first(_to_tensor(batch, what), what)
    return _to_pixel_values(images, input_range, what)


def standardize_image(image: Any, input_range: InputRange | None = None, what: str = "an image", *,
                      channels_first: bool = False) -> torch.Tensor:
    """One image (tensor, array or PIL; CHW, HWC or HW; or an ``(image, label)`` pair) -> ``(3, H, W)``.

    ``channels_first``: the image is ``(C, H, W)`` by construction (a file reader's item), so its layout
    is taken as it is, never guessed: a 32x3 or 1x1 image is an image like any other.
    """
    if isinstance(image, (list, tuple)) and len(image) == 2:
        image = image[0]
    axis = 3 if is_pil_image(image) else None  # PIL pixels are always (H, W, C)
    if channels_first:
        axis = 1
    tensor = _to_tensor(image, what)
    if tensor.ndim == 2:
        tensor, axis = tensor[None], 1  # (H, W) grayscale: its channels axis is the one added here
    if tensor.ndim != 3:
        raise InputError(f"{what} has shape {tuple(tensor.shape)}; expected (3, H, W) or (H, W, 3)")
    return _to_pixel_values(_rgb_channels_first(tensor[None], what, axis), input_range, what)[0]
