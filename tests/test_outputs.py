"""No result is lost: every output path is checked before scoring, the score reaches stdout before any
file is written, and a write that fails names the file and ends with status 2, the score kept.
Weights: genuine convolutions + a seeded random fc layer (numbers are not Inception Scores)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import inception_score.api as scorer_module
from inception_score.cli.main import main

needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outputs") / "samples.npy"
    np.save(path, np.random.default_rng(11).integers(0, 256, (4, 24, 24, 3), dtype=np.uint8))
    return path


@pytest.fixture
def options(genuine_weights_file: Path, loaded_once) -> list[str]:
    return ["--splits", "2", "--quiet", "--weights", str(genuine_weights_file), "--allow-unverified-weights"]


def run_command(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def only_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "unexpected" not in lines[0], stderr
    return lines[0]


@pytest.fixture
def never_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal must come before any image is scored."""

    def refuse(*args, **kwargs):
        raise AssertionError("scoring started before the outputs were checked")

    monkeypatch.setattr(scorer_module, "inception_score", refuse)


@needs_dev_full
def test_a_full_disk_keeps_the_score_on_stdout(samples: Path, options: list[str]) -> None:
    status, clean, _ = run_command(str(samples), "--json", *options)
    assert status == 0
    status, stdout, stderr = run_command(str(samples), "--json", "--output", "/dev/full", *options)
    assert status == 2
    assert json.loads(stdout)["mean"] == json.loads(clean)["mean"]  # the same images, kernel and process
    assert only_error(stderr) == ("Error: --output /dev/full could not be written (No space left on device) "
                                  "(the score above is complete)")
    status, line, _ = run_command(str(samples), "--output", "/dev/full", *options)
    assert status == 2 and line.startswith("Inception Score: ") and len(line.splitlines()) == 1


def test_a_failed_write_leaves_no_half_written_json(samples: Path, options: list[str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "score.json"
    output.write_text('{"earlier": true}\n')

    def no_space(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    status, stdout, stderr = run_command(str(samples), "--json", "--output", str(output), *options)
    assert status == 2 and json.loads(stdout)["num_images"] == 4
    assert only_error(stderr).startswith(f"Error: --output {output} could not be written (No space left on device)")
    assert output.read_text() == '{"earlier": true}\n'  # the previous file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["score.json"]  # no temporary file left behind
    monkeypatch.undo()
    status, stdout, _ = run_command(str(samples), "--json", "--output", str(output), *options)
    assert status == 0 and json.loads(output.read_text()) == json.loads(stdout)


def test_an_unknown_picture_format_is_refused_before_scoring(samples: Path, options: list[str], tmp_path: Path,
                                                             never_scored) -> None:
    pytest.importorskip("matplotlib")
    status, stdout, stderr = run_command(str(samples), "--per-class", str(tmp_path / "pc.xyz"), *options)
    assert status == 2 and stdout == ""
    assert only_error(stderr).startswith(f"Error: --per-class {tmp_path / 'pc.xyz'}: matplotlib writes no format "
                                         f"of extension '.xyz'; name a .png file")


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(samples: Path, options: list[str], tmp_path: Path,
                                                                  never_scored) -> None:
    copy = tmp_path / "copy.npy"
    copy.write_bytes(samples.read_bytes())
    for given in (str(copy), str(tmp_path / "." / "copy.npy")):
        status, stdout, stderr = run_command(str(copy), "--output", given, *options)
        assert status == 2 and stdout == ""
        assert only_error(stderr) == (f"Error: --output {given} is also the input {copy}: writing it would destroy "
                                      f"what is read; choose another path")
    assert copy.read_bytes() == samples.read_bytes()
    link = tmp_path / "link.json"
    link.symlink_to(copy)
    status, _, stderr = run_command(str(copy), "--output", str(link), *options)
    assert status == 2 and "is also the input" in only_error(stderr)
    assert copy.read_bytes() == samples.read_bytes()


def test_other_bad_output_paths_are_refused_before_scoring(samples: Path, options: list[str], tmp_path: Path,
                                                           never_scored) -> None:
    pytest.importorskip("matplotlib")
    folder = tmp_path / "images"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((2, 8, 8, 3), np.uint8))
    cases = {
        ("--output", str(tmp_path / "missing" / "s.json")): f"the folder {tmp_path / 'missing'} does not exist",
        ("--per-class", str(folder / "pc.png")): f"--per-class {folder / 'pc.png'} is an image inside the input "
                                                 f"folder {folder}",
        ("--output", str(tmp_path / "x.png"), "--per-class", str(tmp_path / "x.png")): "both name",
    }
    for extra, message in cases.items():
        inputs = [str(folder)] if "--per-class" in extra and "x.png" not in extra[1] else [str(samples)]
        status, stdout, stderr = run_command(*inputs, *extra, *options)
        assert status == 2 and stdout == "", extra
        assert message in only_error(stderr), (extra, stderr)


@needs_dev_full
def test_each_keeps_every_line_when_its_output_fails(samples: Path, options: list[str], tmp_path: Path) -> None:
    second = tmp_path / "second.npy"
    np.save(second, np.random.default_rng(12).integers(0, 256, (4, 24, 24, 3), dtype=np.uint8))
    status, stdout, stderr = run_command(str(samples), str(second), "--each", "--json", "--output", "/dev/full",
                                         *options)
    assert status == 2
    assert [json.loads(line)["path"] for line in stdout.splitlines()] == [str(samples), str(second)]
    assert only_error(stderr).startswith("Error: --output /dev/full could not be written (No space left on device)")


def test_a_file_the_system_refuses_is_named_with_status_2(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError that names a file (permissions, a vanished file) is about the input, not a bug: no "unexpected"."""
    import inception_score.cli.main as cli

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(samples))

    monkeypatch.setattr(cli, "run", refused)
    status, stdout, stderr = run_command(str(samples), "--device", "cpu")
    assert status == 2 and stdout == ""
    assert only_error(stderr) == f"Error: {samples}: Permission denied; check the path and its permissions"


def test_reference_gan_score_refuses_to_write_over_its_checkpoint(tmp_path: Path) -> None:
    from reference_gan.cli import main as gan_main

    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"not read: the output is checked first")
    result = CliRunner().invoke(gan_main, ["score", str(checkpoint), "-n", "10", "--output", str(checkpoint)])
    assert result.exit_code == 2 and result.stdout == ""
    assert only_error(result.stderr).startswith(f"Error: --output {checkpoint} is also the input {checkpoint}")
    assert checkpoint.read_bytes() == b"not read: the output is checked first"
