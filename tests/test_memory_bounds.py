"""Memory bounded for every archive and every limit (issue 37, "Unbounded memory").

- An archive's index keeps at most 100 bytes a member (measured with tracemalloc on tens of thousands of
  members), and an archive past ``INCEPTION_SCORE_MAX_ARCHIVE_MEMBERS`` is refused with one line.
- A ``.tgz`` given to ``--weights`` or ``--labels`` is inflated within a limit, refused past it.
- ``--limit`` on a float array checks the values of the images scored only.
- Every limit works at any value it accepts: raised to 1 TiB or 2**63, images still score.

The full-size bombs (2 million members, 2 GiB members) are measured by ``benchmarks/memory_bombs.py``.
"""

from __future__ import annotations

import gc
import io
import json
import re
import tarfile
import warnings
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from inception_score.cli.main import main
from inception_score.readers.decode import ENV_MAX_FILE_BYTES, ENV_MAX_PIXELS, ReadLimits, read_capped
from inception_score.errors import ImageDecodeError, InputError, WeightsFormatError
from inception_score.readers.files import open_path, open_paths
from inception_score.network.labels import LABEL_MAP, SYNSET_NAMES, class_names
from inception_score.network.tf_graph import read_graph_def_bytes

ENV_MAX_ARCHIVE_MEMBERS = "INCEPTION_SCORE_MAX_ARCHIVE_MEMBERS"
MEMBERS = 20_000
IMAGENET_NAME = "n01440764/n01440764_{:05d}.JPEG"  # 30 characters, as in ImageNet's training tar


def run_command(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def one_error_line(status: int, stdout: str, stderr: str) -> str:
    assert status == 2 and stdout == "", stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def naive_inception_score(logits: torch.Tensor) -> float:
    """One split: exp(mean over images of KL(p(y|x) || p(y))), written out in float64."""
    p = torch.softmax(logits.double(), dim=1)
    kl = (p * (torch.log(p) - torch.log(p.mean(dim=0, keepdim=True)))).sum(dim=1)
    return float(torch.exp(kl.mean()))


def empty_members_tar(path: Path, count: int) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for i in range(count):
            archive.addfile(tarfile.TarInfo(IMAGENET_NAME.format(i)))
    return path


def empty_members_zip(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(count):
            archive.writestr(IMAGENET_NAME.format(i), b"")
    return path


def deep_size(root: object) -> int:
    """``sys.getsizeof`` summed over every object ``root`` holds, directly or not (numpy arrays count their
    data), classes, functions and modules aside: what a reader keeps."""
    seen, pending, total = set(), [root], 0
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        pending.extend(gc.get_referents(item))
    return total


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_an_archive_keeps_at_most_100_bytes_a_member(kind: str, tmp_path: Path) -> None:
    path = (empty_members_tar if kind == "tar.gz" else empty_members_zip)(tmp_path / f"many.{kind}", MEMBERS)
    archive = open_path(path)
    with pytest.raises(ImageDecodeError, match="is empty"):
        archive[MEMBERS - 1]  # opens this process's handle on the archive, which it keeps
    assert len(archive) == MEMBERS
    assert archive.name(MEMBERS - 1).endswith(":" + IMAGENET_NAME.format(MEMBERS - 1))
    kept = deep_size(archive) - 2**16  # the buffers of the open file (64 KiB at most)
    assert kept / MEMBERS <= 100, f"{kept / MEMBERS:.0f} bytes a member"


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_an_archive_past_the_member_limit_is_refused_in_one_line(kind: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = (empty_members_tar if kind == "tar.gz" else empty_members_zip)(tmp_path / f"eleven.{kind}", 11)
    line = one_error_line(*run_command(str(path), "--splits", "1", env={ENV_MAX_ARCHIVE_MEMBERS: "10"}))
    assert line.startswith(f"Error: {path} holds ") and "over the limit of 10 " in line
    assert ENV_MAX_ARCHIVE_MEMBERS in line
    assert len(open_path(path, limits=ReadLimits(max_archive_members=11))) == 11
    monkeypatch.setenv(ENV_MAX_ARCHIVE_MEMBERS, "0")
    with pytest.raises(InputError, match=f"\\${ENV_MAX_ARCHIVE_MEMBERS} is 0; give a positive count"):
        ReadLimits.from_environment()


class RecordingStream(io.BytesIO):
    """Bytes that remember the largest read asked of them."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size is not None else -1)
        return super().read(size)


@pytest.mark.parametrize("limit", [2**40, 2**63, 10**30])
def test_a_huge_limit_asks_only_for_the_bytes_there_are(limit: int) -> None:
    stream = RecordingStream(b"x" * 3000)
    assert read_capped(stream, "a.png", ReadLimits(max_file_bytes=limit)) == b"x" * 3000
    assert stream.largest <= 2**21  # a piece, never the limit: reading limit + 1 bytes allocates them first


def write_png(path: Path, pixels: np.ndarray) -> None:
    Image.fromarray(pixels).save(path)


def three_kinds(tmp_path: Path) -> tuple[list[np.ndarray], list[Path]]:
    """A PNG in a folder, one in a zip, two in a .tar.gz stored out of name order (so read into memory at
    open), and their pixels in scoring order."""
    rng = np.random.default_rng(7)
    pixels = [rng.integers(0, 256, (12, 12, 3), dtype=np.uint8) for _ in range(4)]
    encoded = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        encoded.append(buffer.getvalue())
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.png").write_bytes(encoded[0])
    with zipfile.ZipFile(tmp_path / "x.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("b.png", encoded[1])
    with tarfile.open(tmp_path / "x.tar.gz", "w:gz") as archive:
        for name, data in (("d.png", encoded[3]), ("c.png", encoded[2])):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return pixels, [folder, tmp_path / "x.zip", tmp_path / "x.tar.gz"]


def huge(limit: int) -> dict[str, str]:
    return {ENV_MAX_FILE_BYTES: str(limit), ENV_MAX_PIXELS: str(limit), ENV_MAX_ARCHIVE_MEMBERS: str(limit)}


@pytest.mark.parametrize("limit", [2**40, 2**63, 10**30])
def test_images_read_with_every_limit_raised_that_far(limit: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pixels, paths = three_kinds(tmp_path)
    for key, value in huge(limit).items():
        monkeypatch.setenv(key, value)
    images = open_paths(paths)
    assert [images[i].permute(1, 2, 0).numpy().tolist() for i in range(4)] == [p.tolist() for p in pixels]


def test_images_score_with_every_limit_at_2_63(tmp_path: Path, dev_scorer, loaded_once,
                                                genuine_weights_file: Path) -> None:
    pixels, paths = three_kinds(tmp_path)
    status, stdout, stderr = run_command(*map(str, paths), "--splits", "1", "--json", "--quiet",
                                         "--weights", str(genuine_weights_file), "--allow-unverified-weights",
                                         env=huge(2**63))
    assert status == 0, stderr
    result = json.loads(stdout)
    assert result["num_images"] == 4
    logits = dev_scorer.logits([torch.from_numpy(p).permute(2, 0, 1).contiguous() for p in pixels])
    assert result["mean"] == pytest.approx(naive_inception_score(logits), rel=1e-9)


def zeros_tgz(path: Path, members: dict[str, int]) -> Path:
    """A .tgz of members of zero bytes, by name and size: a bomb of about 1000:1."""
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for name, size in members.items():
            info = tarfile.TarInfo(f"inception-2015-12-05/{name}")
            info.size = size
            archive.addfile(info, io.BytesIO(bytes(size)))
    return path


def test_a_weights_tgz_whose_graph_inflates_past_the_limit_is_refused(tmp_path: Path) -> None:
    size = 160 * 2**20  # the genuine graph is 95,673,916 bytes; any of this network is about as large
    bomb = zeros_tgz(tmp_path / "inception-2015-12-05.tgz", {"classify_image_graph_def.pb": size})
    assert bomb.stat().st_size < size // 100
    with pytest.raises(WeightsFormatError, match=r"inflates to more than ([\d,]+) bytes") as caught:
        read_graph_def_bytes(bomb)
    limit = int(re.search(r"more than ([\d,]+) bytes", str(caught.value)).group(1).replace(",", ""))
    assert 95_673_916 < limit < size
    images = tmp_path / "images.npy"
    np.save(images, np.zeros((2, 8, 8, 3), dtype=np.uint8))
    line = one_error_line(*run_command(str(images), "--splits", "1", "--device", "cpu", "--weights", str(bomb),
                                       "--allow-unverified-weights"))
    assert line.startswith(f"Error: {bomb}: its classify_image_graph_def.pb inflates to more than {limit:,} bytes")


def test_a_labels_tgz_whose_file_inflates_past_the_limit_is_refused(tmp_path: Path) -> None:
    size = 20 * 2**20  # the genuine label files are under 1 MB
    bomb = zeros_tgz(tmp_path / "labels.tgz", {SYNSET_NAMES: 10, LABEL_MAP: size})
    with pytest.raises(InputError, match=f"{bomb}: its {LABEL_MAP} inflates to more than [\\d,]+ bytes, over the limit"):
        class_names(bomb)


def float_images_with_nan_after(count: int, nan_from: int) -> np.ndarray:
    images = np.random.default_rng(8).random((count, 8, 8, 3)).astype(np.float32)
    images[nan_from:] = np.nan
    return images


def test_limit_checks_only_the_float_images_scored(tmp_path: Path, loaded_once, genuine_weights_file: Path) -> None:
    path = tmp_path / "samples.npy"
    np.save(path, float_images_with_nan_after(12, nan_from=2))
    status, stdout, stderr = run_command(str(path), "--limit", "2", "--input-range", "0,1", "--splits", "1",
                                         "--json", "--quiet", "--weights", str(genuine_weights_file),
                                         "--allow-unverified-weights")
    assert status == 0, stderr
    assert json.loads(stdout)["num_images"] == 2
    with pytest.raises(InputError, match="image 2 contains non-finite values"):
        open_paths([path], input_range=(0.0, 1.0))  # all are checked when all are scored
    again = tmp_path / "samples-again.npy"  # another file (the same one twice is refused: test_wrong_scores)
    again.write_bytes(path.read_bytes())
    assert len(open_paths([path, again], input_range=(0.0, 1.0), scored=2)) == 24  # the second file: none scored


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip"])
@pytest.mark.parametrize("long_name", [False, True])  # names of one width sort as fixed-width bytes, else as objects
def test_the_index_sorts_as_python_sorts_names_and_refuses_a_repeated_name(kind: str, long_name: bool,
                                                                           tmp_path: Path) -> None:
    """Members in Python's order of their names, each with its own pixels; the same archive with one name
    twice is refused (a reader by name would score one of the two: tests/test_messages.py)."""
    names = ["b.png", "é.png", "a/z.png", "a.png", "ß/x.png", "A.png", "\U0001f600.png", "ab.png"]
    names += ["l" * 900 + ".png"] if long_name else []
    shades = {}  # name -> the gray level of its last member in the archive
    path = tmp_path / f"x.{kind}"
    archive = zipfile.ZipFile(path, "w") if kind == "zip" else tarfile.open(path, "w:gz" if kind == "tar.gz" else "w")
    with warnings.catch_warnings(), archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate name
        for shade, name in enumerate(names):
            buffer = io.BytesIO()
            Image.new("RGB", (4, 4), (shade * 20,) * 3).save(buffer, "PNG")
            data = buffer.getvalue()
            if kind == "zip":
                archive.writestr(name, data)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            shades[name] = shade * 20
    reader = open_path(path)
    expected = sorted(shades)
    assert reader.members == expected
    assert [int(reader[i][0, 0, 0]) for i in range(len(reader))] == [shades[name] for name in expected]
    twice = tmp_path / f"twice.{kind}"
    archive = zipfile.ZipFile(twice, "w") if kind == "zip" else tarfile.open(twice, "w:gz" if kind == "tar.gz" else "w")
    with warnings.catch_warnings(), archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate name
        for name in [*names, "a.png"]:
            buffer = io.BytesIO()
            Image.new("RGB", (4, 4)).save(buffer, "PNG")
            if kind == "zip":
                archive.writestr(name, buffer.getvalue())
            else:
                info = tarfile.TarInfo(name)
                info.size = len(buffer.getvalue())
                archive.addfile(info, io.BytesIO(buffer.getvalue()))
    with pytest.raises(InputError, match="2 members named 'a.png'"):
        open_path(twice)
