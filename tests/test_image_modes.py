"""Every image mode Pillow opens decodes to its true pixels, or is refused with a line that says why
(issue 37: a 32-bit TIFF decoded to a black image, with exit 0).

The TIFF files are written here byte by byte (a few tags, one uncompressed strip), so that every
sample layout the format allows can be made, whatever Pillow's writer supports; PNG, BMP, GIF, WebP
and JPEG files are written by Pillow from arrays whose pixels are known. The expected pixels are
computed here from the samples in the file, with the formula each colour model defines."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import BmpImagePlugin, Image, PngImagePlugin, TiffImagePlugin

import distributed_workers as workers
import inception_score.cli.main as cli
import inception_score.engine.runner as runner_module
from inception_score.readers.decode import decode_image
from inception_score.errors import ImageDecodeError

H, W = 4, 6
RNG = np.random.default_rng(37)


def tiff(samples: np.ndarray, photometric: int, *, sample_format: int = 1, extra: tuple[int, ...] = (),
         bits: int | None = None, order: str = "<", data: bytes | None = None, palette: np.ndarray | None = None,
         tags: tuple[tuple[int, int, list[int]], ...] = ()) -> bytes:
    """A TIFF of ``samples`` ``(H, W, S)``: one uncompressed strip, chunky, in byte ``order``."""
    height, width, count = samples.shape
    bits = bits or samples.dtype.itemsize * 8
    if data is None:
        data = samples.astype(samples.dtype.newbyteorder(order)).tobytes()
    entries = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bits] * count), (259, 3, [1]),
               (262, 3, [photometric]), (273, 4, [0]), (277, 3, [count]), (278, 4, [height]),
               (279, 4, [len(data)]), (284, 3, [1]), (339, 3, [sample_format] * count), *tags]
    if palette is not None:
        entries.append((320, 3, [int(v) for v in palette.ravel(order="F")]))  # all reds, greens, blues
    if extra:
        entries.append((338, 3, list(extra)))
    entries.sort()
    base = 8 + 2 + 12 * len(entries) + 4
    values_area, fields = b"", b""
    for tag, kind, values in entries:
        raw = struct.pack(order + ("H" if kind == 3 else "I") * len(values), *values)
        if tag == 273:
            raw = b"STRP"  # patched below, once the strip's offset is known
        if len(raw) <= 4:
            fields += struct.pack(order + "HHI", tag, kind, len(values)) + raw.ljust(4, b"\0")
        else:
            fields += struct.pack(order + "HHI", tag, kind, len(values)) + struct.pack(order + "I", base + len(values_area))
            values_area += raw + b"\0" * (len(raw) % 2)
    fields = fields.replace(b"STRP", struct.pack(order + "I", base + len(values_area)))
    head = (b"II*\0" if order == "<" else b"MM\0*") + struct.pack(order + "I", 8)
    return head + struct.pack(order + "H", len(entries)) + fields + b"\0\0\0\0" + values_area + data


def grey(values: np.ndarray) -> np.ndarray:
    """``(H, W)`` -> ``(H, W, 3)`` uint8: grey is R = G = B."""
    return np.repeat(np.asarray(values, dtype=np.uint8)[:, :, None], 3, axis=2)


def unpremultiplied(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.clip(np.round(colour * 255.0 / alpha), 0, 255).astype(np.uint8)


def cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """Ink coverage to light: each of R, G, B is what C, M, Y and then K let through."""
    cmyk = cmyk.astype(np.float64)
    return np.round((255 - cmyk[..., :3]) * (255 - cmyk[..., 3:]) / 255).astype(np.uint8)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """JFIF's full-range BT.601 transform."""
    y, cb, cr = (ycc[..., i].astype(np.float64) for i in range(3))
    rgb = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128), y + 1.772 * (cb - 128)], -1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def cielab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """TIFF CIELab (L* as 0..255 for 0..100, a* and b* signed bytes) -> sRGB under a D65 white."""
    lightness = lab[..., 0].astype(np.float64) * 100 / 255
    a, b = (lab[..., i].astype(np.int8).astype(np.float64) for i in (1, 2))
    fy = (lightness + 16) / 116
    f = np.stack([fy + a / 500, fy, fy - b / 200], -1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * np.array([0.95047, 1.0, 1.08883])
    linear = xyz @ np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]).T
    linear = np.clip(linear, 0, 1)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)


def pillow(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def packed_12_bit(values: np.ndarray) -> bytes:
    """Rows of 12-bit samples, two in three bytes, each row padded to a whole byte."""
    rows = []
    for row in values:
        padded = list(row) + [0] * (len(row) % 2)
        out = bytearray()
        for first, second in zip(padded[::2], padded[1::2]):
            out += bytes([first >> 4, ((first & 15) << 4) | (second >> 8), second & 255])
        rows.append(bytes(out[: (len(row) * 12 + 7) // 8]))
    return b"".join(rows)


def bmp_555(pixels: np.ndarray) -> tuple[bytes, np.ndarray]:
    """A 16-bit BMP (5 bits per channel, bottom-up rows padded to 4 bytes) and its 8-bit pixels."""
    five = pixels >> 3
    words = (five[..., 0].astype(np.uint16) << 10) | (five[..., 1].astype(np.uint16) << 5) | five[..., 2]
    stride = (W * 2 + 3) // 4 * 4
    rows = b"".join(words[row].astype("<u2").tobytes().ljust(stride, b"\0") for row in range(H - 1, -1, -1))
    header = struct.pack("<IiiHHIIiiII", 40, W, H, 1, 16, 0, len(rows), 2835, 2835, 0, 0)
    data = b"BM" + struct.pack("<IHHI", 14 + 40 + len(rows), 0, 0, 54) + header + rows
    return data, np.round(five * 255.0 / 31).astype(np.uint8)


Case = Callable[[], tuple[bytes, "np.ndarray | str", int]]  # file, expected pixels or refusal, tolerance
CASES: dict[str, Case] = {}


def case(name: str):
    def register(function: Case) -> Case:
        CASES[name] = function
        return function
    return register


G8 = RNG.integers(0, 256, (H, W), dtype=np.uint8)
G16 = RNG.integers(0, 65536, (H, W)).astype(np.uint16)
RGB8 = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
RGB16 = RNG.integers(0, 65536, (H, W, 3)).astype(np.uint16)
ALPHA = RNG.integers(1, 256, (H, W, 1)).astype(np.uint8)
BITS = RNG.integers(0, 2, (H, 8)).astype(np.uint8)
INDEX = RNG.integers(0, 256, (H, W), dtype=np.uint8)
PALETTE16 = RNG.integers(0, 65536, (256, 3))  # TIFF palettes are 16-bit
PALETTE8 = RNG.integers(0, 256, (256, 3), dtype=np.uint8)

case("TIFF 8-bit grey")(lambda: (tiff(G8[:, :, None], 1), grey(G8), 0))
case("TIFF 8-bit grey, white is zero")(lambda: (tiff(G8[:, :, None], 0), grey(255 - G8), 0))
case("TIFF 1-bit")(lambda: (tiff(BITS[:, :, None], 1, bits=1, data=np.packbits(BITS, axis=1).tobytes()),
                            grey(BITS * 255), 0))
case("TIFF 1-bit, white is zero")(lambda: (tiff(BITS[:, :, None], 0, bits=1, data=np.packbits(BITS, axis=1).tobytes()),
                                           grey((1 - BITS) * 255), 0))
case("TIFF 16-bit grey, little-endian")(lambda: (tiff(G16[:, :, None], 1), grey(G16 >> 8), 0))
case("TIFF 16-bit grey, big-endian")(lambda: (tiff(G16[:, :, None], 1, order=">"), grey(G16 >> 8), 0))
case("TIFF 16-bit grey, white is zero")(lambda: (tiff(G16[:, :, None], 0), grey((65535 - G16) >> 8), 0))
case("TIFF 12-bit grey")(lambda: (tiff((G16 >> 4)[:, :, None], 1, bits=12, data=packed_12_bit(G16 >> 4)),
                                  grey(G16 >> 8), 0))
case("TIFF 8-bit signed grey")(lambda: (tiff(G8.astype(np.int8)[:, :, None], 1, sample_format=2), "signed", 0))
case("TIFF 16-bit signed grey")(lambda: (tiff(G16.astype(np.int16)[:, :, None], 1, sample_format=2), "signed", 0))
case("TIFF 32-bit signed grey")(lambda: (tiff(G8.astype(np.int32)[:, :, None], 1, sample_format=2), "signed", 0))
case("TIFF 32-bit unsigned grey")(lambda: (tiff(G8.astype(np.uint32)[:, :, None], 1), "32-bit integer", 0))
case("TIFF 32-bit float grey")(lambda: (tiff((G8 / 255).astype(np.float32)[:, :, None], 1, sample_format=3),
                                        "floating-point", 0))
case("TIFF RGB")(lambda: (tiff(RGB8, 2), RGB8, 0))
case("TIFF 16-bit RGB, little-endian")(lambda: (tiff(RGB16, 2), (RGB16 >> 8).astype(np.uint8), 0))
case("TIFF 16-bit RGB, big-endian")(lambda: (tiff(RGB16, 2, order=">"), (RGB16 >> 8).astype(np.uint8), 0))
case("TIFF RGB and alpha")(lambda: (tiff(np.concatenate([RGB8, ALPHA], 2), 2, extra=(2,)), RGB8, 0))
case("TIFF RGB and an unspecified channel")(lambda: (tiff(np.concatenate([RGB8, ALPHA], 2), 2, extra=(0,)), RGB8, 0))
case("TIFF 16-bit RGB and alpha")(lambda: (tiff(np.concatenate([RGB16, RGB16[:, :, :1]], 2), 2, extra=(2,)),
                                           (RGB16 >> 8).astype(np.uint8), 0))
case("TIFF RGB premultiplied by alpha")(lambda: (
    tiff(np.concatenate([(RGB8 * (ALPHA / 255.0)).astype(np.uint8), ALPHA], 2), 2, extra=(1,)),
    unpremultiplied((RGB8 * (ALPHA / 255.0)).astype(np.uint8), ALPHA), 1))
case("TIFF grey and alpha")(lambda: (tiff(np.stack([G8, ALPHA[:, :, 0]], 2), 1, extra=(2,)), grey(G8), 0))
case("TIFF grey premultiplied by alpha")(lambda: (
    tiff(np.stack([(G8 * (ALPHA[:, :, 0] / 255.0)).astype(np.uint8), ALPHA[:, :, 0]], 2), 1, extra=(1,)),
    grey(unpremultiplied((G8 * (ALPHA[:, :, 0] / 255.0)).astype(np.uint8), ALPHA[:, :, 0])), 1))
case("TIFF palette")(lambda: (tiff(INDEX[:, :, None], 3, palette=PALETTE16), (PALETTE16[INDEX] >> 8).astype(np.uint8), 0))
case("TIFF palette and alpha")(lambda: (tiff(np.stack([INDEX, G8], 2), 3, palette=PALETTE16, extra=(2,)),
                                        (PALETTE16[INDEX] >> 8).astype(np.uint8), 0))
case("TIFF CMYK")(lambda: (tiff(np.concatenate([RGB8, G8[:, :, None]], 2), 5),
                           cmyk_to_rgb(np.concatenate([RGB8, G8[:, :, None]], 2)), 1))
case("TIFF 16-bit CMYK")(lambda: (tiff(np.concatenate([RGB16, G16[:, :, None]], 2), 5),
                                  cmyk_to_rgb(np.concatenate([RGB16, G16[:, :, None]], 2) >> 8), 1))
case("TIFF YCbCr")(lambda: (tiff(RGB8, 6, tags=((530, 3, [1, 1]),)), ycbcr_to_rgb(RGB8), 1))
case("TIFF YCbCr, subsampled")(lambda: (tiff(RGB8, 6, tags=((530, 3, [2, 2]),)), "subsampled", 0))
# CIELab colours inside the sRGB gamut (outside it, each converter clips its own way): L* 20..78, a*, b* within 20.
LAB = np.stack([RNG.integers(50, 200, (H, W)), RNG.integers(-20, 21, (H, W)) % 256,
                RNG.integers(-20, 21, (H, W)) % 256], -1).astype(np.uint8)
case("TIFF CIELab")(lambda: (tiff(LAB, 8), cielab_to_srgb(LAB), 1))
case("PNG 1-bit")(lambda: (pillow(Image.fromarray(BITS.astype(bool)), "PNG"), grey(BITS * 255), 0))
case("PNG grey")(lambda: (pillow(Image.fromarray(G8), "PNG"), grey(G8), 0))
case("PNG 16-bit grey")(lambda: (pillow(Image.fromarray(G16), "PNG"), grey(G16 >> 8), 0))
case("PNG grey and alpha")(lambda: (pillow(Image.fromarray(np.stack([G8, ALPHA[:, :, 0]], 2), "LA"), "PNG"), grey(G8), 0))
case("PNG RGB")(lambda: (pillow(Image.fromarray(RGB8), "PNG"), RGB8, 0))
case("PNG RGBA")(lambda: (pillow(Image.fromarray(np.concatenate([RGB8, ALPHA], 2)), "PNG"), RGB8, 0))


def _palette_image() -> Image.Image:
    image = Image.fromarray(INDEX, "P")
    image.putpalette(PALETTE8.ravel().tolist())
    return image


case("PNG palette with transparency")(lambda: (pillow(_palette_image(), "PNG", transparency=bytes(range(256))),
                                               PALETTE8[INDEX], 0))
case("GIF palette with transparency")(lambda: (pillow(_palette_image(), "GIF", transparency=7), PALETTE8[INDEX], 0))
case("BMP 1-bit")(lambda: (pillow(Image.fromarray(BITS.astype(bool)), "BMP"), grey(BITS * 255), 0))
case("BMP grey")(lambda: (pillow(Image.fromarray(G8), "BMP"), grey(G8), 0))
case("BMP palette")(lambda: (pillow(_palette_image(), "BMP"), PALETTE8[INDEX], 0))
case("BMP RGB")(lambda: (pillow(Image.fromarray(RGB8), "BMP"), RGB8, 0))
case("BMP RGBA")(lambda: (pillow(Image.fromarray(np.concatenate([RGB8, ALPHA], 2)), "BMP"), RGB8, 0))
case("BMP 16-bit")(lambda: (*bmp_555(RGB8), 1))
case("WebP lossless RGB")(lambda: (pillow(Image.fromarray(RGB8), "WEBP", lossless=True), RGB8, 0))
case("WebP lossless RGBA")(lambda: (pillow(Image.fromarray(np.concatenate([RGB8, np.full_like(ALPHA, 255)], 2)), "WEBP",
                                           lossless=True), RGB8, 0))
# JPEG is lossy: one flat colour per image, which it keeps within a level or two.
FLAT_RGB = np.full((16, 16, 3), (200, 120, 40), dtype=np.uint8)
FLAT_CMYK = np.full((16, 16, 4), (30, 140, 200, 60), dtype=np.uint8)
case("JPEG grey")(lambda: (pillow(Image.fromarray(FLAT_RGB[:, :, 0]), "JPEG", quality=100), grey(FLAT_RGB[:, :, 0]), 2))
case("JPEG RGB")(lambda: (pillow(Image.fromarray(FLAT_RGB), "JPEG", quality=100), FLAT_RGB, 3))
case("JPEG CMYK")(lambda: (pillow(Image.fromarray(FLAT_CMYK, "CMYK"), "JPEG", quality=100), cmyk_to_rgb(FLAT_CMYK), 3))
case("JPEG YCbCr")(lambda: (pillow(Image.fromarray(FLAT_RGB, "YCbCr"), "JPEG", quality=100), ycbcr_to_rgb(FLAT_RGB), 3))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_mode_decodes_to_its_true_pixels_or_is_refused_saying_why(name: str) -> None:
    data, expected, tolerance = CASES[name]()
    if isinstance(expected, str):
        with pytest.raises(ImageDecodeError, match=expected) as raised:
            decode_image(data, "x.img")
        assert "x.img" in str(raised.value) and "save it as" in str(raised.value)
        return
    pixels = decode_image(data, "x.img")
    assert pixels.dtype == np.uint8 and pixels.shape == expected.shape
    difference = np.abs(pixels.astype(np.int64) - expected.astype(np.int64))
    assert difference.max() <= tolerance, (name, pixels[0, :3].tolist(), expected[0, :3].tolist())


def test_the_cases_cover_every_mode_the_supported_formats_open_in() -> None:
    """Each mode Pillow's TIFF, PNG, BMP, GIF, WebP and JPEG readers can give (their tables, and the
    modes of the conversions they do themselves) is the mode of at least one case above."""
    opened = {Image.open(io.BytesIO(CASES[name]()[0])).mode for name in CASES}
    possible = ({info[0] for info in TiffImagePlugin.OPEN_INFO.values()}
                | {mode for mode, _ in PngImagePlugin._MODES.values()}
                | {mode for mode, _ in BmpImagePlugin.BIT2MODE.values()}
                | {"P", "L", "RGB", "RGBA", "CMYK", "1"})  # GIF, WebP and JPEG
    assert possible <= opened, sorted(possible - opened)


def test_a_32_bit_tiff_is_refused_by_the_command_not_scored_as_black(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "InceptionScorer", lambda *args, **kwargs: workers.PixelProjection())
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        (folder / f"{index}.tif").write_bytes(tiff(G8.astype(np.int32)[:, :, None] + index, 1, sample_format=2))
    outcome = CliRunner().invoke(cli.main, [str(folder), "--splits", "1", "--device", "cpu"])
    assert outcome.exit_code == 2, outcome.output
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "0.tif" in errors[0] and "signed integer pixels" in errors[0], outcome.output
