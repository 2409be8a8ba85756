"""Bounded memory on hostile files: byte limits from headers and while reading, pixel limits before decoding.

Bombs are built here: a zip member of zeros (about 1000:1), PNG headers that claim huge sizes over
a few bytes of data. What memory a read costs is measured in a subprocess, from its peak resident size."""

from __future__ import annotations

import gc
import io
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from inception_score.cli.main import main
from inception_score.errors import ImageDecodeError, InputError
from inception_score.readers.decode import ENV_MAX_FILE_BYTES, ENV_MAX_PIXELS, MAX_IMAGE_PIXELS, ReadLimits, decode_image
from inception_score.readers.files import open_path
from inception_score.readers.skip_invalid import without_invalid

MIB = 2**20


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` RGB pixels and holds the compressed zeros of one row."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(bytes(1 + 3 * min(width, 1000)))) + png_chunk(b"IEND", b""))


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def zip_with_zeros(path: Path, zeros: int, small: bytes) -> Path:
    """``a.png`` (a real image) and ``bomb.png``: ``zeros`` zero bytes, deflated about 1000:1."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.png", small)
        with archive.open("bomb.png", "w") as member:
            for _ in range(zeros // MIB):
                member.write(bytes(MIB))
    return path


@pytest.fixture
def small_png() -> bytes:
    return png_bytes(np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8))


def test_zip_member_over_the_byte_limit_is_refused_from_its_header(tmp_path: Path, small_png: bytes) -> None:
    archive_path = zip_with_zeros(tmp_path / "bomb.zip", 64 * MIB, small_png)
    assert archive_path.stat().st_size < MIB  # the bomb: 64 MiB in under 1 MiB
    archive = open_path(archive_path, limits=ReadLimits(max_file_bytes=MIB))
    with pytest.raises(ImageDecodeError) as caught:
        archive[1]
    message = str(caught.value)
    assert message.startswith(f"{archive_path}:bomb.png is 67,108,864 bytes")  # 64 * 2**20, written out
    assert ENV_MAX_FILE_BYTES in message and message.endswith(f"({ENV_MAX_FILE_BYTES}=67108864)")
    kept, failures = without_invalid(archive)
    assert len(kept) == 1 and len(failures) == 1 and "bomb.png" in failures[0]
    assert "1 invalid skipped" in kept.description


def test_a_lying_header_stops_the_read_at_the_limit(tmp_path: Path, small_png: bytes) -> None:
    path = zip_with_zeros(tmp_path / "bomb.zip", 4 * MIB, small_png)
    archive = open_path(path, limits=ReadLimits(max_file_bytes=MIB))
    archive.index.sizes[1] = 100  # as if the header claimed 100 bytes
    with pytest.raises(ImageDecodeError, match=r"bomb.png holds more than 1,048,576 bytes, though its recorded size was less"):
        archive[1]


_MEASURE = """
import re, sys
from inception_score.errors import ImageDecodeError
from inception_score.readers.decode import ReadLimits, decode_image
from inception_score.readers.files import open_path

def kilobytes(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))

def grown(read):
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak (VmHWM) starts again from what is resident now
    before = kilobytes("VmRSS")
    try:
        read()
    except ImageDecodeError:
        pass
    return (kilobytes("VmHWM") - before) * 1024

archive = open_path(sys.argv[1], limits=ReadLimits(max_file_bytes=2**20))
archive.index.sizes[1] = 100  # a lying header: only the streamed read can stop it
capped = grown(lambda: archive[1])
header = open(sys.argv[2], "rb").read()
pixels = grown(lambda: decode_image(header, "huge.png"))
whole = grown(lambda: open_path(sys.argv[1], limits=ReadLimits(max_file_bytes=2**30))[1])
print(capped, pixels, whole)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's peak-memory reset")
def test_peak_memory_stays_near_the_limits(tmp_path: Path, small_png: bytes) -> None:
    archive = zip_with_zeros(tmp_path / "bomb.zip", 32 * MIB, small_png)
    (tmp_path / "huge.png").write_bytes(png_header_only(13000, 13000))  # 169 MP: 0.5 GB as RGB
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(archive), str(tmp_path / "huge.png")],
                          capture_output=True, text=True, timeout=60, check=True)
    capped, pixels, whole = (int(value) for value in done.stdout.split())
    assert whole > 30 * MIB, "reading the member whole must show in the peak, or the other two prove nothing"
    assert capped < 16 * MIB and pixels < 16 * MIB


def test_pixels_are_checked_from_the_header_before_decoding() -> None:
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(png_header_only(8000, 6000), "claims/48MP.png")  # 0.15 GB to decode, 48 MP > 40 MP
    message = str(caught.value)
    assert message.startswith("claims/48MP.png is 8000x6000 pixels (48.0 megapixels), over the limit of 40,000,000")
    assert f"{ENV_MAX_PIXELS}=48000000" in message


def test_the_pixel_limit_is_inclusive_and_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    data = png_bytes(pixels)
    with pytest.raises(ImageDecodeError, match=r"is 50x40 pixels"):
        decode_image(data, "a.png", ReadLimits(max_image_pixels=1999))
    assert np.array_equal(decode_image(data, "a.png", ReadLimits(max_image_pixels=2000)), pixels)
    monkeypatch.setenv(ENV_MAX_PIXELS, "1999")
    with pytest.raises(ImageDecodeError, match=f"over the limit of 1,999 pixels; if it is genuine, raise the limit"):
        decode_image(data, "a.png")
    monkeypatch.setenv(ENV_MAX_PIXELS, "2000")
    assert np.array_equal(decode_image(data, "a.png"), pixels)


@pytest.mark.parametrize("value", ["many", "0", "-5", "1e6"])
def test_a_bad_limit_in_the_environment_names_the_variable(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MAX_FILE_BYTES, value)
    with pytest.raises(InputError, match=f"\\${ENV_MAX_FILE_BYTES} is"):
        ReadLimits.from_environment()


def test_no_decompression_bomb_warning_from_pillow() -> None:
    assert 10000 * 10000 > Image.MAX_IMAGE_PIXELS > MAX_IMAGE_PIXELS  # Pillow would warn for this one
    gc.collect()  # earlier tests' garbage, so that its ResourceWarnings are not raised in here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageDecodeError, match="10000x10000 pixels"):
            decode_image(png_header_only(10000, 10000), "warns.png")
        with pytest.raises(ImageDecodeError, match="too large for Pillow to decode"):
            decode_image(png_header_only(20000, 20000), "errors.png")  # over twice Pillow's limit
    # Decoding bytes in memory opens no file: a ResourceWarning here is garbage of another test that the
    # collector reached meanwhile (seen once, before the file readers closed their own files: a reader's
    # file dropped in a reference cycle elsewhere), not a warning of the decoder.
    own = [w for w in caught if not issubclass(w.category, ResourceWarning)]
    assert not own, [str(w.message) for w in own]


def test_image_file_over_the_byte_limit_is_refused_before_reading(tmp_path: Path, small_png: bytes) -> None:
    (tmp_path / "a.png").write_bytes(small_png)
    dataset = open_path(tmp_path / "a.png", limits=ReadLimits(max_file_bytes=len(small_png) - 1))
    with pytest.raises(ImageDecodeError, match=f"a.png is {len(small_png):,} bytes \\(on disk\\), over the limit"):
        dataset[0]
    assert open_path(tmp_path / "a.png", limits=ReadLimits(max_file_bytes=len(small_png)))[0].shape == (3, 8, 8)


def test_out_of_order_compressed_tar_is_bounded_in_all(tmp_path: Path, small_png: bytes) -> None:
    path = tmp_path / "reversed.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name in ("b.png", "a.png"):  # not in name order: read into memory at open
            info = tarfile.TarInfo(name)
            info.size = len(small_png)
            archive.addfile(info, io.BytesIO(small_png))
    with pytest.raises(InputError, match=f"out of name order.*{2 * len(small_png):,} bytes.*{ENV_MAX_FILE_BYTES}"):
        open_path(path, limits=ReadLimits(max_file_bytes=2 * len(small_png) - 1))
    assert len(open_path(path, limits=ReadLimits(max_file_bytes=2 * len(small_png)))) == 2


def test_cli_names_the_file_and_the_variable_in_one_line(tmp_path: Path, small_png: bytes) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(small_png)
    result = CliRunner().invoke(main, [str(folder), "--skip-invalid", "--splits", "1"],
                                env={ENV_MAX_PIXELS: "63"})  # 8x8 = 64 pixels: refused before any weights load
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert f"{folder / 'a.png'} is 8x8 pixels" in result.stderr and f"{ENV_MAX_PIXELS}=64" in result.stderr
