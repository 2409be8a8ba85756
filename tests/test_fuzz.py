"""Seeded fuzzing of the command (issue 37, acceptance 4): mutated PNG, JPEG, TIFF, ``.npy``, ``.npz``,
zip, tar and logits-file bytes (the ``.npy`` of logits and its ``.json`` sidecar) are given to the
command, run in this process with a stand-in network (every other image case with ``--skip-invalid``). Each run must end in a score (exit 0, a finite
mean) or a refusal (exit 2, exactly one ``Error:`` line): never exit 1, never a raw traceback, never a
hang (each case has a time limit).

The default run takes ``INCEPTION_SCORE_FUZZ_CASES`` = 12 mutations of each of the 15 starting files,
well under a minute; set it higher for a longer search, and ``INCEPTION_SCORE_FUZZ_SEED`` for other
mutations. A failure names the file kind, case and seed, and leaves the mutated bytes in the test's
temporary folder, so that the case can be run again by hand."""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import distributed_workers as workers
import inception_score.cli.main as cli
import inception_score.engine.runner as scorer_module

CASES = int(os.environ.get("INCEPTION_SCORE_FUZZ_CASES", "12"))
SEED = int(os.environ.get("INCEPTION_SCORE_FUZZ_SEED", "37"))
SECONDS_PER_CASE = 30  # far above a case's cost (a tenth of a second); only a hang reaches it
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)
INTERESTING_WORDS = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000)
# Values put in place of a sidecar field's: of other types, out of range, of no meaning.
ODD_JSON_VALUES = (None, 20.0, -1, 0, 2**63, "x", "", [], {}, True, 1e308, "0" * 64, ["a"], -0.5)


@pytest.fixture(autouse=True)
def stand_in_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer_module, "InceptionScorer", lambda *args, **kwargs: workers.PixelProjection())


class Hung(BaseException):
    """A case ran past its time limit (a BaseException: the command's ``except Exception`` lets it by)."""


@pytest.fixture(autouse=True)
def time_limit() -> None:
    def hung(signum, frame):
        raise Hung(f"a case ran for more than {SECONDS_PER_CASE} s")

    previous = signal.signal(signal.SIGALRM, hung)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def mutate(data: bytes, rng: np.random.RandomState) -> bytes:
    """1 to 6 of: a bit flipped, a byte or a 4-byte word set to a boundary value, random bytes
    inserted, a run deleted, a run repeated, and (rarely) the end cut off."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 7)):
        if not out:
            out = bytearray(b"\x00")
        position = rng.randint(len(out))
        operation = rng.choice(["flip", "byte", "word", "insert", "delete", "repeat", "cut"],
                               p=[0.25, 0.2, 0.15, 0.1, 0.1, 0.1, 0.1])
        if operation == "flip":
            out[position] ^= 1 << rng.randint(8)
        elif operation == "byte":
            out[position] = int(rng.choice(INTERESTING + (rng.randint(256),)))
        elif operation == "word":
            word = int(rng.choice(INTERESTING_WORDS)).to_bytes(4, "big" if rng.randint(2) else "little")
            out[position:position + 4] = word
        elif operation == "insert":
            out[position:position] = rng.randint(0, 256, rng.randint(1, 17)).astype(np.uint8).tobytes()
        elif operation == "delete":
            del out[position:position + rng.randint(1, 33)]
        elif operation == "repeat":
            out[position:position] = out[position:position + rng.randint(1, 65)]
        else:
            del out[position:]
    return bytes(out)


def mutate_sidecar(data: bytes, rng: np.random.RandomState) -> bytes:
    """Half the time bytes as :func:`mutate`; else one field set to an odd value, or dropped."""
    if rng.randint(2):
        return mutate(data, rng)
    fields = json.loads(data)
    key = sorted(fields)[rng.randint(len(fields))]
    if rng.randint(6) == 0:
        del fields[key]
    else:
        fields[key] = ODD_JSON_VALUES[rng.randint(len(ODD_JSON_VALUES))]
    return json.dumps(fields).encode()


# --- the starting files: small and valid ---------------------------------------------------------------------


def encoded(format: str, **options) -> Callable[[], bytes]:
    def build() -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(workers.images(1, seed=3)[0]).save(buffer, format, **options)
        return buffer.getvalue()

    return build


def palette_png() -> bytes:
    image = Image.fromarray(workers.images(1, seed=4)[0]).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=bytes([0, 128] + [255] * 6))
    return buffer.getvalue()


def npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, workers.images(3))
    return buffer.getvalue()


def npz(compressed: bool) -> Callable[[], bytes]:
    def build() -> bytes:
        buffer = io.BytesIO()
        (np.savez_compressed if compressed else np.savez)(buffer, images=workers.images(3),
                                                          labels=np.arange(3, dtype=np.int64))
        return buffer.getvalue()

    return build


def members() -> list[tuple[str, bytes]]:
    return [(f"{index}.png", encoded("PNG")()) for index in range(3)]


def zip_archive(compression: int) -> Callable[[], bytes]:
    def build() -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, data in members():
                archive.writestr(name, data)
        return buffer.getvalue()

    return build


def tar_archive(mode: str) -> Callable[[], bytes]:
    def build() -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as archive:
            for name, data in members():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    return build


IMAGE_KINDS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "png": (".png", encoded("PNG")),
    "png-palette": (".png", palette_png),
    "jpeg": (".jpg", encoded("JPEG", quality=90)),
    "tiff": (".tif", encoded("TIFF")),
    "tiff-deflate": (".tif", encoded("TIFF", compression="tiff_deflate")),
    "npy": (".npy", npy),
    "npz": (".npz", npz(compressed=False)),
    "npz-deflate": (".npz", npz(compressed=True)),
    "zip": (".zip", zip_archive(zipfile.ZIP_DEFLATED)),
    "zip-stored": (".zip", zip_archive(zipfile.ZIP_STORED)),  # its members' bytes mutated inside a sound archive
    "tar": (".tar", tar_archive("w")),
    "tar.gz": (".tar.gz", tar_archive("w:gz")),
    "tar.xz": (".tar.xz", tar_archive("w:xz")),
}


# --- the check of one run ----------------------------------------------------------------------------------------


def assert_score_or_one_line(args: list[str], case: str) -> None:
    signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_CASE)
    try:
        outcome = CliRunner().invoke(cli.main, [*args, "--splits", "1", "--device", "cpu"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise AssertionError(f"{case}: raw {type(outcome.exception).__name__}: {outcome.exception}")
    lines = [line for line in outcome.stderr.splitlines() if not line.startswith("warning: ")]
    assert outcome.exit_code in (0, 2), f"{case}: exit {outcome.exit_code}: {outcome.stderr}"
    if outcome.exit_code == 2:
        assert len(lines) == 1 and lines[0].startswith("Error: "), f"{case}: not one line: {outcome.stderr}"
        assert not lines[0].startswith("Error: unexpected ") and "Traceback" not in outcome.output, f"{case}: {lines[0]}"
        return
    assert lines == [], f"{case}: exit 0 with other lines on stderr: {outcome.stderr}"
    score = re.match(r"Inception Score: (\S+) ± (\S+) ", outcome.stdout)
    assert score is not None, f"{case}: exit 0 without a score: {outcome.stdout!r}"
    assert math.isfinite(float(score[1])) and math.isfinite(float(score[2])), f"{case}: {outcome.stdout}"


@pytest.mark.parametrize("kind", sorted(IMAGE_KINDS))
def test_mutated_inputs_give_a_score_or_one_line(tmp_path: Path, kind: str) -> None:
    suffix, build = IMAGE_KINDS[kind]
    original = build()
    seed = SEED * 1000 + sorted(IMAGE_KINDS).index(kind)
    rng = np.random.RandomState(seed)
    assert_score_or_one_line([str(_written(tmp_path / f"original{suffix}", original))], f"{kind} unchanged")
    failures = []
    for case in range(CASES):
        path = _written(tmp_path / f"case{case}{suffix}", mutate(original, rng))
        skip = ["--skip-invalid"] if case % 2 else []  # every other case through the check that skips
        failures += _failure([str(path), *skip], f"{kind} case {case} {' '.join(skip)}(seed {seed}, bytes in {path})")
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:10])


@pytest.fixture(scope="module")
def logits_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """The bytes of a complete logits file of 4 images and of its sidecar, as --save-logits writes them."""
    folder = tmp_path_factory.mktemp("logits")
    images = folder / "c4.npy"
    np.save(images, workers.images(4))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scorer_module, "InceptionScorer", lambda *args, **kwargs: workers.PixelProjection())
        saved = CliRunner().invoke(cli.main, [str(images), "--save-logits", str(folder / "L.npy"), "--splits", "1",
                                              "--device", "cpu", "--quiet"])
    assert saved.exit_code == 0, saved.output
    return (folder / "L.npy").read_bytes(), (folder / "L.npy.json").read_bytes()


@pytest.mark.parametrize("part", ["rows", "sidecar"])
def test_mutated_logits_files_give_a_score_or_one_line(tmp_path: Path, logits_file: tuple[bytes, bytes],
                                                       part: str) -> None:
    rows, sidecar = logits_file
    seed = SEED * 1000 + 100 + (part == "sidecar")
    rng = np.random.RandomState(seed)
    failures = []
    for case in range(CASES):
        path = tmp_path / f"case{case}.npy"
        _written(path, mutate(rows, rng) if part == "rows" else rows)
        _written(tmp_path / f"case{case}.npy.json", mutate_sidecar(sidecar, rng) if part == "sidecar" else sidecar)
        failures += _failure(["--from-logits", str(path)], f"logits {part} case {case} (seed {seed}, in {path})")
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:10])


def _failure(args: list[str], case: str) -> list[str]:
    """[] when the case ends in a score or one line, else [what went wrong]."""
    try:
        assert_score_or_one_line(args, case)
    except AssertionError as error:
        return [" ".join(str(error).split())[:600]]
    return []


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
