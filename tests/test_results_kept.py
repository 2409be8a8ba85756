"""No result is lost (issue 37): an output may not be the sidecar of the logits file written or read
(the logits file could then be neither resumed nor re-scored); ``--each --output`` leaves the previous
file whole when a path fails; a closed stdout still gets ``--output`` written, and a closed stderr
does not stop the run. The scorer is the exact pixel projection of ``distributed_workers``, and every
score is checked against its naive float64 computation (``naive_split_scores``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import distributed_workers as workers
import inception_score
from inception_score.cli.main import main

TESTS = Path(__file__).resolve().parent
# A child process running the command with the same stand-in network (a closed stream needs a process).
CHILD = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import distributed_workers as workers
import inception_score.engine.runner as runner
runner.InceptionScorer = lambda *args, **kwargs: workers.PixelProjection()
from inception_score.cli.main import main
main()
"""


pytestmark = pytest.mark.usefixtures("exact_stand_in")  # tests/conftest.py


@pytest.fixture(scope="module")
def arrays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workers.save_arrays(tmp_path_factory.mktemp("arrays"), {"a.npy": 20, "b.npy": 12})


def expected_mean(path: Path) -> float:
    return float(workers.naive_split_scores(np.load(path), 2).mean())


def run(*args: str) -> tuple[int, str, str]:
    outcome = CliRunner().invoke(main, [*args, "--splits", "2", "--quiet", "--device", "cpu"])
    return outcome.exit_code, outcome.stdout, outcome.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and not lines[0].startswith("Error: unexpected"), stderr
    return lines[0]


def test_output_naming_the_save_logits_sidecar_is_refused_before_anything_is_written(arrays: Path,
                                                                                     tmp_path: Path) -> None:
    logits, own_sidecar = tmp_path / "S.npy", tmp_path / "S.npy.json"
    status, stdout, stderr = run(str(arrays / "a.npy"), "--save-logits", str(logits), "--output", str(own_sidecar))
    assert status == 2 and stdout == ""
    assert one_error_line(stderr) == (f"Error: --output {own_sidecar} is the sidecar of --save-logits {logits} (its "
                                      "description, S.npy.json): writing it would leave the logits file unreadable; "
                                      "choose another path")
    assert list(tmp_path.iterdir()) == []  # nothing written
    # The same sidecar under another name (a hard link), on a rerun that would resume the file.
    assert run(str(arrays / "a.npy"), "--save-logits", str(logits))[0] == 0
    kept = own_sidecar.read_bytes()
    os.link(own_sidecar, tmp_path / "H.json")
    status, _, stderr = run(str(arrays / "a.npy"), "--save-logits", str(logits), "--output", str(tmp_path / "H.json"))
    assert status == 2 and "is the sidecar of --save-logits" in one_error_line(stderr)
    assert own_sidecar.read_bytes() == kept
    status, stdout, _ = run("--from-logits", str(logits), "--json")
    assert status == 0 and json.loads(stdout)["mean"] == pytest.approx(expected_mean(arrays / "a.npy"), rel=1e-12)


def test_output_naming_the_from_logits_sidecar_is_refused_and_the_file_still_rescores(arrays: Path,
                                                                                      tmp_path: Path) -> None:
    logits = tmp_path / "L.npy"
    assert run(str(arrays / "a.npy"), "--save-logits", str(logits))[0] == 0
    kept = (tmp_path / "L.npy.json").read_bytes()
    for named in (tmp_path / "L.npy.json", tmp_path / "." / "L.npy.json"):
        status, stdout, stderr = run("--from-logits", str(logits), "--output", str(named))
        assert status == 2 and stdout == ""
        assert f"is the sidecar of --from-logits {logits}" in one_error_line(stderr)
    assert (tmp_path / "L.npy.json").read_bytes() == kept
    status, stdout, _ = run("--from-logits", str(logits), "--json")
    assert status == 0 and json.loads(stdout)["mean"] == pytest.approx(expected_mean(arrays / "a.npy"), rel=1e-12)


def test_each_output_keeps_the_previous_file_whole_when_a_path_fails(arrays: Path, tmp_path: Path) -> None:
    output = tmp_path / "each.jsonl"
    output.write_text('{"earlier": true}\n')
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"\x93NUMPY but not an array")
    status, stdout, stderr = run(str(arrays / "a.npy"), str(broken), "--each", "--json", "--output", str(output))
    assert status == 2 and json.loads(stdout.splitlines()[0])["path"] == str(arrays / "a.npy")
    assert str(broken) in one_error_line(stderr)
    assert output.read_text() == '{"earlier": true}\n'  # the previous file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.npy", "each.jsonl"]  # no temporary file left
    status, stdout, _ = run(str(arrays / "a.npy"), str(arrays / "b.npy"), "--each", "--json", "--output", str(output))
    assert status == 0 and output.read_text() == stdout
    means = [json.loads(line)["mean"] for line in output.read_text().splitlines()]
    assert means == pytest.approx([expected_mean(arrays / "a.npy"), expected_mean(arrays / "b.npy")], rel=1e-12)


def child(args: list[str], **streams) -> subprocess.CompletedProcess:
    root = str(Path(inception_score.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", CHILD, *args, "--splits", "2", "--device", "cpu"], env=env,
                          timeout=300, **streams)


@pytest.mark.skipif(sys.platform == "win32", reason="a pipe closed by its reader is a POSIX notion here")
def test_a_closed_stdout_still_gets_output_written(arrays: Path, tmp_path: Path) -> None:
    """``inception-score ... --json --output p.json | true``: the reader is gone before the JSON is printed."""
    output = tmp_path / "p.json"
    reader, writer = os.pipe()
    os.close(reader)
    try:
        finished = child([str(arrays / "a.npy"), "--json", "--output", str(output)], stdout=writer,
                         stderr=subprocess.PIPE, text=True)
    finally:
        os.close(writer)
    assert finished.returncode == 0, finished.stderr
    assert "Error" not in finished.stderr and "Exception" not in finished.stderr, finished.stderr
    assert json.loads(output.read_text())["mean"] == pytest.approx(expected_mean(arrays / "a.npy"), rel=1e-12)


@pytest.mark.skipif(sys.platform == "win32", reason="closing descriptor 2 before exec is POSIX")
def test_a_closed_stderr_does_not_stop_the_run(arrays: Path) -> None:
    """``inception-score ... 2>&-``: Python starts with ``sys.stderr`` None."""
    finished = child([str(arrays / "a.npy"), "--json"], stdout=subprocess.PIPE, text=True,
                     preexec_fn=lambda: os.close(2))
    assert finished.returncode == 0
    assert json.loads(finished.stdout)["mean"] == pytest.approx(expected_mean(arrays / "a.npy"), rel=1e-12)
