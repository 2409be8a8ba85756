"""Odd inputs end in a score or in one line naming the file: images 1 or 3 pixels wide, FIFOs in
folders, PNG chunks claiming hundreds of megabytes, damaged ``.npz`` files.
Weights: genuine convolutions + a seeded random fc layer (numbers are not Inception Scores)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from inception_score.cli.main import main
from inception_score.errors import ImageDecodeError, InputError
from inception_score.readers.decode import decode_image
from inception_score.readers.files import open_path
from inception_score.readers.skip_invalid import without_invalid

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@contextlib.contextmanager
def no_hang(seconds: int = 10) -> Iterator[None]:
    """Fail instead of waiting forever (a FIFO opened for reading waits for a writer)."""

    def hung(signum, frame):
        raise AssertionError(f"still waiting after {seconds} s: a FIFO was opened")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_command(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def naive_inception_score(logits: torch.Tensor) -> float:
    """One split: exp(mean over images of KL(p(y|x) || p(y))), written out in float64."""
    p = torch.softmax(logits.double(), dim=1)
    marginal = p.mean(dim=0, keepdim=True)
    kl = (p * (torch.log(p) - torch.log(marginal))).sum(dim=1)
    return float(torch.exp(kl.mean()))


# --- images 1 or 3 pixels wide: decoded images are (H, W, 3), never guessed ------------------------------


THIN_SIZES = {"a_32x3.png": (32, 3), "b_1x1.png": (1, 1), "c_3x32.png": (3, 32), "d_3x3.png": (3, 3),
              "e_32x32.png": (32, 32)}  # (H, W)


def test_thin_and_tiny_images_are_scored_like_any_other(tmp_path: Path, dev_scorer, loaded_once,
                                                        genuine_weights_file: Path) -> None:
    rng = np.random.default_rng(3)
    folder = tmp_path / "thin"
    folder.mkdir()
    pixels = []
    for name, (height, width) in THIN_SIZES.items():
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / name)
        pixels.append(torch.from_numpy(image).permute(2, 0, 1).contiguous())
    (folder / "f_broken.png").write_bytes(Image.new("RGB", (8, 8)).tobytes()[:40])  # not a PNG at all
    status, stdout, stderr = run_command(str(folder), "--splits", "1", "--skip-invalid", "--json", "--quiet",
                                         "--weights", str(genuine_weights_file), "--allow-unverified-weights")
    assert status == 0, stderr
    result = json.loads(stdout)
    assert result["num_images"] == len(THIN_SIZES)
    assert result["skipped_invalid"]["count"] == 1 and "f_broken.png" in result["skipped_invalid"]["files"][0]
    # The same images, as (3, H, W) tensors of known layout, in one batch: the same kernel on the same pixels,
    # so the logits agree; the score from them is then float64 arithmetic in another order (1e-12 covers it).
    expected = naive_inception_score(dev_scorer.logits(pixels))
    assert result["mean"] == pytest.approx(expected, rel=1e-9)
    assert result["mean"] > 1.0  # five different images: a score of one would mean nothing was seen


def test_a_thin_image_in_an_array_keeps_the_layout_checked_at_open(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (2, 32, 3, 3), dtype=np.uint8)  # (N, H, W, C), 3 pixels wide
    np.save(tmp_path / "thin.npy", images)
    dataset = open_path(tmp_path / "thin.npy")
    from inception_score.readers.inputs import image_stream

    batch = next(iter(image_stream(dataset, batch_size=2).batches))
    assert torch.equal(batch, torch.from_numpy(images).permute(0, 3, 1, 2))


# --- FIFOs and other non-regular files: skipped and counted, never opened ------------------------------------


def write_png(path: Path, seed: int) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)


@needs_fifo
def test_a_fifo_in_a_folder_is_skipped_and_counted(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", 0)
    os.mkfifo(tmp_path / "x.png")
    with no_hang(), pytest.warns(UserWarning, match="1 special file skipped"):
        dataset = open_path(tmp_path)
        assert len(dataset) == 1 and dataset[0].shape == (3, 8, 8)
    assert "1 special file skipped" in dataset.description


@needs_fifo
def test_a_file_swapped_for_a_fifo_during_the_run_is_named_not_waited_on(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", 0)
    write_png(tmp_path / "b.png", 1)
    dataset = open_path(tmp_path)  # both listed as regular files
    (tmp_path / "b.png").unlink()
    os.mkfifo(tmp_path / "b.png")
    with no_hang():
        with pytest.raises(ImageDecodeError, match=r"b\.png is not a regular file"):
            dataset[1]
        kept, failures = without_invalid(dataset)
    assert len(kept) == 1 and len(failures) == 1 and "b.png is not a regular file" in failures[0]


@needs_fifo
def test_the_check_is_made_on_what_was_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file swapped for a FIFO between a check by name and the open: the reader looks at what it opened."""
    write_png(tmp_path / "a.png", 0)
    write_png(tmp_path / "b.png", 1)
    dataset = open_path(tmp_path)
    regular = os.stat(tmp_path / "a.png")
    (tmp_path / "b.png").unlink()
    os.mkfifo(tmp_path / "b.png")
    with no_hang():
        monkeypatch.setattr(Path, "stat", lambda self, **kwargs: regular)  # a check by name would see a file
        with pytest.raises(ImageDecodeError, match=r"b\.png is not a regular file"):
            dataset[1]


@needs_fifo
@pytest.mark.parametrize("name", ["x.npy", "x.npz", "x.npz-deflated", "x.tar", "x.zip"])
def test_an_array_or_archive_swapped_for_a_fifo_is_not_waited_on_by_a_worker(tmp_path: Path, name: str) -> None:
    """Each DataLoader worker opens the file again (a pickled reader holds no handle): by then it may be a FIFO."""
    import pickle
    import tarfile

    images = np.random.default_rng(8).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / name.replace("-deflated", "")
    if name == "x.npy":
        np.save(path, images)
    elif name.startswith("x.npz"):
        (np.savez_compressed if "deflated" in name else np.savez)(path, images=images)
    else:
        write_png(tmp_path / "a.png", 0)
        if name == "x.tar":
            with tarfile.open(path, "w") as archive:
                archive.add(tmp_path / "a.png", arcname="a.png")
        else:
            with zipfile.ZipFile(path, "w") as archive:
                archive.write(tmp_path / "a.png", arcname="a.png")
    dataset = open_path(path)
    in_a_worker = pickle.loads(pickle.dumps(dataset))
    path.unlink()
    os.mkfifo(path)
    with no_hang(), pytest.raises(InputError, match="not a regular file") as caught:
        in_a_worker[0]
    assert str(path) in str(caught.value)


@needs_fifo
@pytest.mark.parametrize("name", ["x.png", "x.npy", "x.npz", "x.tar"])
def test_a_fifo_given_as_the_input_is_refused(tmp_path: Path, name: str) -> None:
    os.mkfifo(tmp_path / name)
    with no_hang():
        status, stdout, stderr = run_command(str(tmp_path / name), "--device", "cpu")
    assert status == 2 and stdout == ""
    assert stderr.strip().splitlines() == [f"Error: {tmp_path / name} is not a regular file (a FIFO, socket or "
                                           f"device): give a file or a folder"]


# --- PNG chunks: their length is checked from the header, before anything is read ------------------------


def png_chunk(kind: bytes, data: bytes, length: int | None = None) -> bytes:
    """One chunk as the PNG specification lays it out: length, type, data, CRC-32 of type and data."""
    size = len(data) if length is None else length
    return struct.pack(">I", size) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_huge_itxt(claimed: int) -> bytes:
    """A 4x4 PNG's signature and header, then an iTXt chunk whose header claims ``claimed`` bytes but
    holds a few: nothing of that size exists, so only a check of the header can refuse it in time."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + struct.pack(">I", claimed) + b"iTXt" + b"comment\x00\x00\x00\x00\x00" * 8


def test_a_png_chunk_claiming_200_mb_is_refused_from_its_header(tmp_path: Path) -> None:
    claimed = 200 * 2**20
    data = png_with_huge_itxt(claimed)
    with pytest.raises(ImageDecodeError, match=rf"x\.png has a PNG iTXt chunk of {claimed:,} bytes"):
        decode_image(data, "x.png")
    (tmp_path / "big.png").write_bytes(data)
    write_png(tmp_path / "ok.png", 0)
    dataset = open_path(tmp_path)
    with pytest.raises(ImageDecodeError, match=r"big\.png has a PNG iTXt chunk .* not pixel data; strip its metadata"):
        dataset[0]
    kept, failures = without_invalid(dataset)
    assert len(kept) == 1 and len(failures) == 1 and "big.png has a PNG iTXt chunk" in failures[0]


def test_png_metadata_below_the_chunk_limit_still_decodes() -> None:
    from PIL.PngImagePlugin import PngInfo

    pixels = np.random.default_rng(5).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    info = PngInfo()
    info.add_itxt("comment", "x" * 200_000)  # 200 kB of text, as generators' prompts and settings can be
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", pnginfo=info)
    assert np.array_equal(decode_image(buffer.getvalue(), "meta.png"), pixels)


# --- damaged .npz files: exit 2 and one line naming the file, never "unexpected" ----------------------------


def one_error_line(status: int, stdout: str, stderr: str) -> str:
    assert status == 2 and stdout == "", stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "unexpected" not in lines[0], stderr
    return lines[0]


def test_corrupt_deflate_data_in_an_npz_names_the_file(tmp_path: Path, loaded_once,
                                                       genuine_weights_file: Path) -> None:
    # 16 levels: deflate codes them (no stored blocks, whose damage only a CRC would show)
    images = np.random.default_rng(6).integers(0, 16, (6, 16, 16, 3), dtype=np.uint8)
    path = tmp_path / "samples.npz"
    np.savez_compressed(path, images=images)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("images.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the deflate stream
    data[start + info.compress_size * 3 // 4 : start + info.compress_size * 3 // 4 + 8] = b"\xff" * 8
    path.write_bytes(data)
    with pytest.raises(zlib.error):  # the damage is in the deflate data itself, not only its CRC
        zlib.decompressobj(-15).decompress(bytes(data[start : start + info.compress_size]))
    line = one_error_line(*run_command(str(path), "--splits", "1", "--weights", str(genuine_weights_file),
                                       "--allow-unverified-weights"))
    assert line.startswith(f"Error: {path} ") and "while decompressing" in line  # zlib's reason, after the name


def test_an_unparsable_npy_header_in_an_npz_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "samples.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (2, 8, 8, 3)})
    broken = header.getvalue().replace(b"'shape'", b"'''sha")  # an unterminated string: numpy's tokenizer fails
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", broken + bytes(2 * 8 * 8 * 3))
    line = one_error_line(*run_command(str(path), "--device", "cpu"))
    assert line.startswith(f"Error: {path} could not be read as a numpy array file")


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_an_npz_header_claiming_terabytes_is_refused_at_open(tmp_path: Path, method: int) -> None:
    """A 2 KB file whose zip directory and .npy headers claim 2.4 TiB of images (and 6.9 GB of labels):
    refused from the sizes the zip records, before any count from it sizes an allocation."""
    count = int(2.4 * 2**40) // (32 * 32 * 3)
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key, shape, dtype in (("images", (count, 32, 32, 3), np.uint8), ("labels", (count,), np.int64)):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
            info = zipfile.ZipInfo(f"{key}.npy")
            info.compress_type = method
            with archive.open(info, "w", force_zip64=True) as member:
                member.write(header.getvalue() + bytes(1000))
            # The central directory is written at close, from these: it claims what the header claims.
            info.file_size = len(header.getvalue()) + int(np.prod(shape)) * np.dtype(dtype).itemsize
            if method == zipfile.ZIP_STORED:
                info.compress_size = info.file_size
    assert path.stat().st_size < 4096
    line = one_error_line(*run_command(str(path), "--device", "cpu"))
    expected = "more than deflate can give" if method == zipfile.ZIP_DEFLATED else "past the end of the"
    assert line.startswith(f"Error: {path}: array 'images': the archive records ") and expected in line
