"""Every refusal says, in one line of its own words, what was wrong, with which file or value, and what
to do (issue 37, "Unclear messages"): no message cut mid-sentence, no advice that does not fit (a
folder called missing, an encrypted zip called damaged, a truncated download answered with
--allow-unverified-weights), no raw warning of Pillow, torch or libtiff on stderr, and no raw
ValueError or TypeError from the Python API. The network is a stand-in (pooled pixels times a fixed
matrix) wherever one is scored; the weights tests fail before any network is built."""

from __future__ import annotations

import io
import math
import os
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import distributed_workers as workers
import inception_score.cli.main as cli
import inception_score.engine.runner as scorer_module
from inception_score import InputError, inception_score
from inception_score.readers.decode import decode_image
from inception_score.errors import ImageDecodeError

DEFAULT_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's file, as its release names it


@pytest.fixture()
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer_module, "InceptionScorer", lambda *args, **kwargs: workers.PixelProjection())


@pytest.fixture()
def no_weights_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INCEPTION_SCORE_WEIGHTS", raising=False)
    monkeypatch.delenv("INCEPTION_SCORE_LABELS", raising=False)


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli.main, [*args, "--device", "cpu"], env=env)


def refused(outcome) -> str:
    """The one line of a refusal: exit 2, exactly one line on stderr, nothing on stdout."""
    lines = outcome.stderr.strip().splitlines()
    assert outcome.exit_code == 2, (outcome.exit_code, outcome.output, outcome.exception)
    assert len(lines) == 1, outcome.stderr
    assert outcome.stdout == ""
    assert lines[0].startswith("Error: ")
    return lines[0]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)


@pytest.fixture()
def array_file(tmp_path: Path) -> Path:
    path = tmp_path / "c20.npy"
    np.save(path, workers.images(20))
    return path


# --- files that are not what their name says ---------------------------------------------------------


@pytest.mark.parametrize("name", ["fake.tar", "fake.tgz", "fake.tar.gz"])
def test_a_file_named_as_a_tar_that_is_none_is_refused_in_a_whole_sentence(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"hello, not an archive\n" * 10)
    line = refused(invoke(str(path), "--splits", "2"))
    assert name in line and "not a tar archive" in line
    assert not line.rstrip().endswith(":") and "successfully" not in line


def test_a_message_that_quotes_a_library_over_several_lines_is_shown_whole_on_one() -> None:
    from inception_score.errors import one_line_message

    error = InputError("x.tar is not a readable archive (file could not be opened successfully:\n- method gz: "
                       "ReadError('not a gzip file')\n- method tar: ReadError('truncated header')); check the file")
    assert one_line_message(error) == ("x.tar is not a readable archive (file could not be opened successfully: - "
                                       "method gz: ReadError('not a gzip file') - method tar: ReadError('truncated "
                                       "header')); check the file")


def test_a_truncated_npy_is_called_truncated(tmp_path: Path, array_file: Path) -> None:
    truncated = tmp_path / "cut.npy"
    truncated.write_bytes(array_file.read_bytes()[:1000])
    line = refused(invoke(str(truncated), "--splits", "2"))
    assert "cut.npy" in line and "truncated" in line and "mmap" not in line
    whole = 20 * 16 * 16 * 3  # the data the header promises, in bytes
    assert f"{whole:,}" in line


def _encrypted(zip_bytes: bytes) -> bytes:
    """The zip with the 'encrypted' bit (bit 0 of the general purpose flags) set in its local and
    central headers, as an encrypting zip writes it."""
    data = bytearray(zip_bytes)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            data[start + flag_offset] |= 1
            start += 4
    return bytes(data)


def test_an_encrypted_zip_is_called_encrypted_not_damaged(tmp_path: Path, stand_in: None) -> None:
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        for index in range(3):
            archive.writestr(f"{index}.png", png(pixels(index)))
    path = tmp_path / "secret.zip"
    path.write_bytes(_encrypted(plain.getvalue()))
    line = refused(invoke(str(path), "--splits", "2"))
    assert "secret.zip" in line and "encrypted" in line and "password" in line
    assert "truncated or damaged" not in line


def test_a_zip_whose_headers_make_no_sense_is_refused_in_one_line(tmp_path: Path, stand_in: None) -> None:
    """Found by tests/test_fuzz.py: a member with an empty name made zipfile raise IndexError (exit 1)."""
    path = tmp_path / "nameless.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.png", png(pixels(0)))
        archive.writestr(zipfile.ZipInfo(""), png(pixels(1)))
    line = refused(invoke(str(path), "--splits", "1"))
    assert "nameless.zip" in line and "damaged" in line


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_an_archive_with_two_members_of_one_name_is_refused(tmp_path: Path, stand_in: None, kind: str) -> None:
    """A user expects every member scored: two members named a.png would score one of them only."""
    members = [("a.png", png(pixels(0))), ("a.png", png(pixels(1))), ("b.png", png(pixels(2)))]
    path = tmp_path / f"twice.{kind}"
    if kind == "zip":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile's own "Duplicate name" warning while building it
            with zipfile.ZipFile(path, "w") as archive:
                for name, data in members:
                    archive.writestr(name, data)
    else:
        with tarfile.open(path, "w") as archive:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    line = refused(invoke(str(path), "--splits", "2"))
    assert f"twice.{kind}" in line and "'a.png'" in line and "2 members" in line


# --- weights --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["TORCH_HOME is a file", "its checkpoints folder is a file"])
def test_an_unusable_torch_home_names_the_weights_and_the_way_round_it(
        tmp_path: Path, array_file: Path, no_weights_variable: None, layout: str) -> None:
    home = tmp_path / "torch-home"
    if layout == "TORCH_HOME is a file":
        home.write_text("not a folder")
    else:
        (home / "hub").mkdir(parents=True)
        (home / "hub" / "checkpoints").write_text("not a folder")
    line = refused(invoke(str(array_file), "--splits", "2", env={"TORCH_HOME": str(home)}))
    assert "TORCH_HOME" in line and "--weights" in line and DEFAULT_WEIGHTS_NAME in line


def test_weights_given_a_folder_say_it_is_a_folder(tmp_path: Path, array_file: Path) -> None:
    line = refused(invoke(str(array_file), "--weights", str(tmp_path), "--splits", "2"))
    assert "is a folder" in line and "does not exist" not in line


def test_a_truncated_cached_download_is_advised_to_be_fetched_again(
        tmp_path: Path, array_file: Path, no_weights_variable: None) -> None:
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / DEFAULT_WEIGHTS_NAME).write_bytes(b"\x80\x02" + bytes(4094))  # the first 4 KiB of a download
    line = refused(invoke(str(array_file), "--splits", "2", env={"TORCH_HOME": str(tmp_path)}))
    assert "delete it" in line.lower() and "download it again" in line and "4,096" in line
    assert "--allow-unverified-weights" not in line and "allow_unverified" not in line


@pytest.mark.parametrize("protocol, said", [(3, "lacks"), (4, "pickle protocol 4")])
def test_a_weights_file_of_another_pickle_protocol_shows_no_torch_warning(
        tmp_path: Path, array_file: Path, protocol: int, said: str) -> None:
    """Protocol 3 loads (torch warns that it is not 2: harmless, silenced; this file then lacks tensors);
    torch's tensors-only reader cannot read protocol 4 at all, which the message says."""
    path = tmp_path / f"protocol{protocol}.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, path, pickle_protocol=protocol)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = refused(invoke(str(array_file), "--weights", str(path), "--allow-unverified-weights", "--splits", "2"))
    assert path.name in line and said in line
    assert [str(w.message) for w in caught] == []


# --- logits files and labels ------------------------------------------------------------------------------


def test_from_logits_of_a_missing_file_says_it_does_not_exist(tmp_path: Path) -> None:
    line = refused(invoke("--from-logits", str(tmp_path / "missing.npy")))
    assert "missing.npy does not exist" in line and "not a logits file" not in line


@pytest.mark.parametrize("content", [None, b"neither labels nor an archive"])
def test_labels_that_cannot_be_read_are_refused_before_scoring(tmp_path: Path, array_file: Path, stand_in: None,
                                                                no_weights_variable: None, content: bytes | None) -> None:
    pytest.importorskip("matplotlib")
    labels = tmp_path / "labels.tgz"
    if content is not None:
        labels.write_bytes(content)
    plot = tmp_path / "classes.png"
    line = refused(invoke(str(array_file), "--splits", "2", "--per-class", str(plot), "--labels", str(labels)))
    assert "--labels" in line and "labels.tgz" in line
    assert ("does not exist" in line) == (content is None)
    assert not plot.exists()


# --- raw warnings and native messages on stderr -----------------------------------------------------------


def _palette_png_with_byte_transparency() -> tuple[bytes, np.ndarray]:
    """A palette PNG whose tRNS chunk gives alpha per palette entry (Pillow warns on converting it),
    and its RGB pixels looked up in its palette by hand."""
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    indices = rng.integers(0, 16, size=(8, 8), dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette.flatten().tolist())
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=bytes([0, 128] + [255] * 14))
    return buffer.getvalue(), palette[indices]


def test_palette_transparency_decodes_to_its_colours_without_a_warning() -> None:
    data, expected = _palette_png_with_byte_transparency()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = decode_image(data, "palette.png")
    assert [str(w.message) for w in caught] == []
    np.testing.assert_array_equal(decoded, expected)


def test_the_command_shows_no_raw_pillow_warning(tmp_path: Path, stand_in: None) -> None:
    data, _ = _palette_png_with_byte_transparency()
    for index in range(2):
        (tmp_path / f"{index}.png").write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = invoke(str(tmp_path), "--splits", "2")
    assert outcome.exit_code == 0, outcome.output
    assert [line for line in outcome.stderr.splitlines() if "not comparable" not in line] == []
    assert [str(w.message) for w in caught] == []


def _tiff_with_damaged_deflate_data() -> bytes:
    """A deflate-compressed TIFF whose strip's compressed bytes are changed: libtiff fails on it, and
    writes its reason to stderr itself unless it is captured."""
    buffer = io.BytesIO()
    Image.fromarray(pixels(7)).save(buffer, "TIFF", compression="tiff_deflate")
    data = bytearray(buffer.getvalue())
    with Image.open(io.BytesIO(bytes(data))) as image:
        offset, count = image.tag_v2[273], image.tag_v2[279]  # StripOffsets, StripByteCounts
    offset = offset[0] if isinstance(offset, tuple) else offset
    count = count[0] if isinstance(count, tuple) else count
    for position in range(offset + 2, offset + count - 4):  # past the zlib header, before its checksum
        data[position] ^= 0x5A
    return bytes(data)


def test_libtiff_writes_nothing_on_stderr_and_its_reason_is_in_the_message(capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(ImageDecodeError) as raised:
        decode_image(_tiff_with_damaged_deflate_data(), "damaged.tif")
    assert capfd.readouterr().err == ""
    message = str(raised.value)
    assert "damaged.tif" in message and "\n" not in message
    assert "ZIPDecode" in message or "Decoding error" in message


def test_more_workers_than_cpus_is_said_in_one_line_of_our_own(tmp_path: Path, stand_in: None) -> None:
    for index in range(4):
        Image.fromarray(pixels(index)).save(tmp_path / f"{index}.png")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = invoke(str(tmp_path), "--splits", "2", "--num-workers", str(cpus + 2))
    assert outcome.exit_code == 0, outcome.output
    assert [str(w.message) for w in caught] == []
    lines = [line for line in outcome.stderr.splitlines() if "not comparable" not in line]
    assert len(lines) == 1 and lines[0].startswith(f"warning: --num-workers {cpus + 2}"), outcome.stderr
    assert "UserWarning" not in outcome.stderr


# --- what the result line says ------------------------------------------------------------------------------


def test_split_size_larger_than_the_images_is_one_split_of_all_of_them(array_file: Path, stand_in: None) -> None:
    outcome = invoke(str(array_file), "--split-size", "5000")
    assert outcome.exit_code == 0, outcome.output
    assert "20 images, 1 split of 20 images" in outcome.stdout
    assert "1 splits" not in outcome.output and "1 chunks" not in outcome.output
    assert "1 chunk of 20 images (the published protocol" in outcome.stderr


def test_split_size_that_leaves_a_shorter_last_chunk_says_so(array_file: Path, stand_in: None) -> None:
    outcome = invoke(str(array_file), "--split-size", "8")
    assert outcome.exit_code == 0, outcome.output
    assert "20 images, 3 splits of 8 images, the last of 4" in outcome.stdout


# --- the Python API -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arguments, named", [
    ({"input_range": (0, math.inf)}, "input range"),
    ({"input_range": (-math.inf, 1)}, "input range"),
    ({"input_range": "a,b"}, "'a,b'"),
    ({"input_range": (0, 1, 2)}, "input range"),
    ({"input_range": 1.0}, "input range"),
    ({"splits": 2.5}, "splits"),
    ({"splits": True}, "splits"),
    ({"splits": "2"}, "splits"),
    ({"splits": None, "split_size": 2.5}, "split_size"),
    ({"splits": None, "split_size": True}, "split_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": True}, "batch_size"),
    ({"limit": 2.5}, "limit"),
    ({"limit": True}, "limit"),
    ({"num_workers": -1}, "num_workers"),
    ({"num_workers": 1.5}, "num_workers"),
    ({"seed": 1.5, "shuffle": True}, "seed"),
])
def test_the_api_refuses_a_bad_argument_with_an_input_error_naming_it(arguments: dict, named: str) -> None:
    images = torch.from_numpy(np.random.default_rng(0).random((20, 3, 16, 16), dtype=np.float32))
    call = {"splits": 2, "input_range": (0, 1), "scorer": workers.PixelProjection(), **arguments}
    with pytest.raises(InputError) as raised:
        inception_score(images, **call)
    assert named in str(raised.value)


def test_the_api_takes_numpy_integers_as_counts() -> None:
    images = torch.from_numpy(workers.images(20)).permute(0, 3, 1, 2)
    scorer = workers.PixelProjection()
    plain = inception_score(images, splits=2, batch_size=8, scorer=scorer)
    numpy_counts = inception_score(images, splits=np.int64(2), batch_size=np.int32(8), scorer=scorer)
    assert numpy_counts.split_scores == plain.split_scores
