"""A logits file knows what it holds: --save-logits refuses rows of images that have changed (exit 2,
one line naming them), a full disk or an interrupt at any point leaves a file that resumes, two
writers are refused, --from-logits claims no more than the file says, and every JSON written is
strict (no NaN or Infinity). The network is the stand-in of tests/distributed_workers.py (pooled
pixels times a fixed matrix, each image computed on its own), so the expected scores are computed
here from its logits with the paper's formula written out."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import distributed_workers as workers
import inception_score.cli.main as cli
import inception_score.logits.file as logits_file
import inception_score.score.result as result_module
import inception_score.engine.runner as scorer_module
from inception_score.score import strict_json
from inception_score.score.result import FAST_CUDA_IS_DEVIATION

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def stand_in_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer_module, "InceptionScorer", lambda *args, **kwargs: workers.PixelProjection())


def refuse_constant(name: str) -> None:
    raise AssertionError(f"the JSON holds {name}, which JSON does not allow")


def strict_loads(text: str):
    return json.loads(text, parse_constant=refuse_constant)


def paper_score(images: np.ndarray, splits: int) -> float:
    """The mean over contiguous splits of exp(mean KL(p(y|x) || p(y))), in float64, from the stand-in's logits."""
    return float(np.mean(workers.naive_split_scores(images, splits)))


def invoke(*args: str):
    return CliRunner().invoke(cli.main, [*args, "--device", "cpu"])


def scored(*args: str) -> dict:
    outcome = invoke(*args, "--json", "--quiet")
    assert outcome.exit_code == 0, outcome.output
    return strict_loads(outcome.stdout)


def refused(outcome, *parts: str) -> str:
    """The one error line of a run that exited with status 2; each of ``parts`` is in it."""
    assert outcome.exit_code == 2, outcome.output
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and outcome.stdout == "", outcome.output
    for part in parts:
        assert part in errors[0], errors[0]
    return errors[0]


def save(images: Path, logits: Path, *more: str) -> dict:
    return scored(str(images), "--splits", "2", "--batch-size", "8", "--save-logits", str(logits), *more)


def write_folder(root: Path, pixels: np.ndarray) -> Path:
    root.mkdir(exist_ok=True)
    for index, image in enumerate(pixels):
        Image.fromarray(image).save(root / f"{index:02d}.png")
    return root


# --- case 1: stale logits -----------------------------------------------------------------------

def test_an_array_overwritten_with_other_images_is_refused_and_a_fresh_file_scores_them(tmp_path: Path) -> None:
    first, second = workers.images(40, 0), workers.images(40, 1)
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, first)
    assert save(images, logits)["mean"] == pytest.approx(paper_score(first, 2), rel=1e-6)
    again = save(images, logits)  # the same images: every row kept, none computed, so no rate
    assert again["mean"] == pytest.approx(paper_score(first, 2), rel=1e-6) and again["images_per_second"] is None
    assert paper_score(second, 2) != pytest.approx(paper_score(first, 2), rel=1e-3)  # the test can fail
    np.save(images, second)
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)),
            str(logits), "other images", "pixels of images 0-39", "s.npy[0]")
    fresh = save(images, tmp_path / "fresh.npy")
    assert fresh["mean"] == pytest.approx(paper_score(second, 2), rel=1e-6)


def test_a_folder_whose_files_are_replaced_is_refused(tmp_path: Path) -> None:
    folder, logits = write_folder(tmp_path / "images", workers.images(12, 0)), tmp_path / "l.npy"
    save(folder, logits)
    assert json.loads(logits_file.sidecar(logits).read_text())["fingerprint"] == "files"
    write_folder(folder, workers.images(12, 1))
    refused(invoke(str(folder), "--splits", "2", "--save-logits", str(logits)),
            str(logits), "size, modification time or bytes", "images 0-11", "00.png")


def test_a_file_changed_in_its_last_bytes_with_its_size_and_mtime_kept_is_refused(tmp_path: Path) -> None:
    folder, logits = write_folder(tmp_path / "images", workers.images(6, 0)), tmp_path / "l.npy"
    save(folder, logits)
    target = folder / "05.png"
    status = target.stat()
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF  # inside the IEND/IDAT tail: the same size
    target.write_bytes(bytes(data))
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert target.stat().st_size == status.st_size and target.stat().st_mtime_ns == status.st_mtime_ns
    refused(invoke(str(folder), "--splits", "2", "--save-logits", str(logits)), "other images", "05.png")


def interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int):
    """Ctrl-C during the network's ``call``-th batch (1 = the first); returns what undoes it."""
    original = workers.PixelProjection.logits
    calls = []

    def interrupted(self, batch):
        calls.append(len(batch))
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(workers.PixelProjection, "logits", interrupted)
    return lambda: monkeypatch.setattr(workers.PixelProjection, "logits", original)


def interrupted_run(folder: Path, monkeypatch: pytest.MonkeyPatch, count: int, call: int) -> tuple[np.ndarray, Path, Path]:
    """``count`` images in ``s.npy`` whose --save-logits run (batches of 8) got Ctrl-C during batch ``call``:
    the pixels, the array file and the logits file."""
    pixels = workers.images(count, 0)
    images, logits = folder / "s.npy", folder / "l.npy"
    np.save(images, pixels)
    undo = interrupt_at(monkeypatch, call)
    outcome = invoke(str(images), "--splits", "2", "--batch-size", "8", "--save-logits", str(logits))
    assert outcome.exit_code == 130, outcome.output
    undo()
    return pixels, images, logits


def test_after_an_interrupt_a_change_in_the_last_row_kept_is_refused(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pixels, images, logits = interrupted_run(tmp_path, monkeypatch, 40, 3)
    assert json.loads(logits_file.sidecar(logits).read_text())["done"] == 16  # both batches, recorded on Ctrl-C
    changed = pixels.copy()
    changed[15] = 255 - changed[15]  # the last image whose logits were kept
    np.save(images, changed)
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)), "other images", "images 0-15")


def test_after_an_interrupt_new_images_after_the_rows_kept_are_scored_as_they_are_now(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pixels, images, logits = interrupted_run(tmp_path, monkeypatch, 40, 2)
    pixels[30:] = workers.images(10, 5)  # images never scored: the resume scores them as they are now
    np.save(images, pixels)
    resumed = invoke(str(images), "--splits", "2", "--batch-size", "8", "--save-logits", str(logits), "--json")
    assert resumed.exit_code == 0 and "resuming" in resumed.stderr and "8 of 40" in resumed.stderr
    assert strict_loads(resumed.stdout)["mean"] == pytest.approx(paper_score(pixels, 2), rel=1e-6)


# --- case 7: an interrupt at any point resumes; two writers ---------------------------------------

def test_an_interrupt_during_the_first_batch_leaves_a_file_that_resumes(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pixels, images, logits = interrupted_run(tmp_path, monkeypatch, 20, 1)
    assert json.loads(logits_file.sidecar(logits).read_text())["done"] == 0
    assert save(images, logits)["mean"] == pytest.approx(paper_score(pixels, 2), rel=1e-6)


@pytest.mark.parametrize("left", ["an empty .npy, no sidecar", "a sidecar of no rows, no .npy"])
def test_a_run_killed_before_its_first_rows_resumes(tmp_path: Path, left: str) -> None:
    pixels = workers.images(20, 0)
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, pixels)
    if left.startswith("an empty"):
        logits.touch()  # killed right after the lock was taken
    else:
        save(images, logits)
        logits.unlink()  # killed after the sidecar, before the header: rewrite the sidecar to 0 rows
        info = json.loads(logits_file.sidecar(logits).read_text())
        logits_file.sidecar(logits).write_text(json.dumps({**info, "done": 0, "blocks": []}))
    assert save(images, logits)["mean"] == pytest.approx(paper_score(pixels, 2), rel=1e-6)


def test_an_npy_that_is_not_a_logits_file_is_not_overwritten(tmp_path: Path) -> None:
    images = tmp_path / "s.npy"
    np.save(images, workers.images(20, 0))
    before = images.read_bytes()
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(images)), str(images))
    other = tmp_path / "other.npy"
    np.save(other, np.zeros(3))
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(other)), str(other), "not a logits file")
    assert np.array_equal(np.load(other), np.zeros(3))
    assert images.read_bytes() == before


def test_a_second_writer_of_the_same_file_is_refused(tmp_path: Path) -> None:
    pixels = workers.images(20, 0)
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, pixels)
    from inception_score.readers.files import open_paths

    dataset = open_paths([images])
    writer = logits_file.open_for_writing(logits, workers.PixelProjection(), logits_file.InputFingerprint(dataset, 20),
                                          dataset.description)
    try:
        refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)),
                str(logits), "being written by another inception-score process")
    finally:
        writer.close()
    assert save(images, logits)["mean"] == pytest.approx(paper_score(pixels, 2), rel=1e-6)


# --- case 6: a full disk ------------------------------------------------------------------------

def test_a_full_disk_is_one_line_and_the_rows_written_stay_valid(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = workers.images(40, 0)
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, pixels)
    real_pwrite = os.pwrite
    header = 128  # numpy's header of a (40, 1008) float32 array
    room = header + 20 * logits_file.ROW_BYTES + 100  # the header, 20 rows and part of the 21st fit

    def full_disk(handle, data, position):
        if position + len(data) <= room:
            return real_pwrite(handle, data, position)
        if position < room:
            return real_pwrite(handle, bytes(data)[: room - position], position)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(logits_file.os, "pwrite", full_disk)
    refused(invoke(str(images), "--splits", "2", "--batch-size", "8", "--save-logits", str(logits)),
            f"--save-logits {logits}", "no space left", "stay valid")
    done = json.loads(logits_file.sidecar(logits).read_text())["done"]
    assert done == 16  # the two batches that fit whole
    assert logits.stat().st_size == room  # ordinary writes up to the full disk, no file of N rows made up front
    data = logits.read_bytes()
    assert data[:6] == b"\x93NUMPY" and data[header - 1 : header] == b"\n"
    rows = np.frombuffer(data[header : header + done * logits_file.ROW_BYTES], dtype="<f4").reshape(done, -1)
    expected = workers.PixelProjection().logits(torch.from_numpy(pixels[:done]).permute(0, 3, 1, 2)).numpy()
    assert np.array_equal(rows, expected)  # the same stand-in on the same images: the same bits
    monkeypatch.setattr(logits_file.os, "pwrite", real_pwrite)
    resumed = invoke(str(images), "--splits", "2", "--batch-size", "8", "--save-logits", str(logits), "--json")
    assert resumed.exit_code == 0 and "16 of 40" in resumed.stderr
    assert strict_loads(resumed.stdout)["mean"] == pytest.approx(paper_score(pixels, 2), rel=1e-6)


def test_a_real_full_file_system_gives_enospc_with_a_message(tmp_path: Path) -> None:
    """A 64 KiB tmpfs mounted in a user namespace (``unshare -rm``): room for about 15 of 40 rows."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rm (a user namespace to mount a tiny tmpfs in) is not allowed here")
    pixels = workers.images(40, 0)
    images, disk = tmp_path / "s.npy", tmp_path / "disk"
    np.save(images, pixels)
    disk.mkdir()
    program = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import distributed_workers as w; "
               "import inception_score.engine.runner as s; s.InceptionScorer = lambda *a, **k: w.PixelProjection(); "
               "from inception_score.cli.main import main; main()")
    command = (f"mount -t tmpfs -o size=64k tmpfs {disk} && {sys.executable} -c '{program}' {TESTS} {images} "
               f"--splits 2 --batch-size 4 --device cpu --save-logits {disk}/l.npy; echo status $?; "
               f"cat {disk}/l.npy.json")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])})
    assert "status 2" in done.stdout, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "no space left on the device" in errors[0] and "stay valid" in errors[0], done.stderr
    info = json.loads(done.stdout.split("status 2", 1)[1])
    assert 0 < info["done"] < 40 and info["done"] % 4 == 0


# --- case 2: --from-logits is honest -----------------------------------------------------------

def test_a_sidecar_that_claims_verified_genuine_weights_is_not_believed(tmp_path: Path) -> None:
    from inception_score.network.weights import PYTORCH_FID_WEIGHTS

    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, workers.images(20, 0))
    save(images, logits)
    info = json.loads(logits_file.sidecar(logits).read_text())
    logits_file.sidecar(logits).write_text(json.dumps({**info, "weights_sha256": PYTORCH_FID_WEIGHTS.sha256,
                                                       "weights_verified": True}))
    line = invoke("--from-logits", str(logits), "--splits", "2")
    assert line.exit_code == 0 and "verified" not in line.stdout and "as the logits file claims" in line.stdout
    result = scored("--from-logits", str(logits), "--splits", "2")
    assert result["weights"]["verified"] is False and result["weights"]["claimed_by"] == str(logits)
    assert result["weights"]["sha256"] == PYTORCH_FID_WEIGHTS.sha256
    assert any("only claims its weights" in reason for reason in result["not_comparable"])
    # Checked against a file: other weights are refused, naming both hashes.
    other = tmp_path / "other.pth"
    other.write_bytes(b"not the weights")
    refused(invoke("--from-logits", str(logits), "--splits", "2", "--weights", str(other)),
            f"--weights {other}", PYTORCH_FID_WEIGHTS.sha256[:12])


def test_weights_given_with_from_logits_are_checked_against_its_claim(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"some weights")
    sha = hashlib.sha256(b"some weights").hexdigest()
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, workers.images(20, 0))
    save(images, logits)
    info = json.loads(logits_file.sidecar(logits).read_text())
    logits_file.sidecar(logits).write_text(json.dumps({**info, "weights_sha256": sha}))
    result = scored("--from-logits", str(logits), "--splits", "2", "--weights", str(weights))
    assert result["weights"] == {"path": str(weights), "sha256": sha, "verified": False, "claimed_by": None}
    # Were that file a genuine one, the check would make the weights verified.
    import inception_score.network.weights as weights_module

    monkeypatch.setattr(weights_module, "KNOWN_FILES", {sha: weights_module.PYTORCH_FID_WEIGHTS})
    line = invoke("--from-logits", str(logits), "--splits", "2", "--weights", str(weights))
    assert line.exit_code == 0 and "2015-12-05 weights verified" in line.stdout
    assert scored("--from-logits", str(logits), "--splits", "2", "--weights", str(weights))["weights"]["verified"]


def test_a_nan_row_is_an_error_naming_it(tmp_path: Path) -> None:
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, workers.images(20, 0))
    save(images, logits)
    rows = np.load(logits, mmap_mode="r+")
    rows[13, 7] = np.nan
    rows.flush()
    del rows
    refused(invoke("--from-logits", str(logits), "--splits", "2"), str(logits), "row 13", "NaN")


def test_a_network_that_gives_nan_is_stopped_before_the_row_is_written(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    original = workers.PixelProjection.logits

    def broken(self, batch):
        logits = original(self, batch)
        if len(batch) == 4:  # the last batch of 20 images in batches of 8: images 16-19
            logits[2, 0] = float("nan")
        return logits

    monkeypatch.setattr(workers.PixelProjection, "logits", broken)
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, workers.images(20, 0))
    refused(invoke(str(images), "--splits", "2", "--batch-size", "8", "--save-logits", str(logits)),
            "NaN or infinite logits for image 18", str(logits))
    assert json.loads(logits_file.sidecar(logits).read_text())["done"] == 16


def test_a_truncated_logits_file_is_an_error_naming_it(tmp_path: Path) -> None:
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, workers.images(20, 0))
    save(images, logits)
    os.truncate(logits, logits.stat().st_size - 100)
    refused(invoke("--from-logits", str(logits), "--splits", "2"), str(logits), "truncated")


def test_shuffle_and_the_precision_of_the_run_reach_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fast(*args, **kwargs):
        scorer = workers.PixelProjection()
        scorer.device = torch.device("cpu")
        scorer.dtype, scorer.effective_precision = "bfloat16", "fast"
        scorer.precision_note = "a note of the fast run"
        return scorer

    monkeypatch.setattr(scorer_module, "InceptionScorer", fast)
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, workers.images(20, 0))
    direct = save(images, logits, "--precision", "fast")
    again = scored("--from-logits", str(logits), "--splits", "2", "--shuffle")
    for result in (direct, again):
        assert (result["precision"], result["dtype"], result["precision_note"]) == (
            "fast", "bfloat16", "a note of the fast run")
        assert result["precision_deviation"] == result_module.FAST_CPU_IS_DEVIATION
        assert any("precision 'fast'" in reason for reason in result["not_comparable"])
    assert any("shuffled before splitting" in reason for reason in again["not_comparable"])
    assert not any("shuffled" in reason for reason in direct["not_comparable"])
    # A CUDA fast run's file says so too (its deviation is the CUDA one, and it is not "exact").
    info = json.loads(logits_file.sidecar(logits).read_text())
    logits_file.sidecar(logits).write_text(json.dumps({**info, "device": "cuda", "dtype": "float16"}))
    cuda = scored("--from-logits", str(logits), "--splits", "2")
    assert (cuda["precision"], cuda["dtype"], cuda["precision_deviation"]) == ("fast", "float16", FAST_CUDA_IS_DEVIATION)


def test_a_resume_in_another_precision_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, images, logits = interrupted_run(tmp_path, monkeypatch, 20, 2)
    info = json.loads(logits_file.sidecar(logits).read_text())
    logits_file.sidecar(logits).write_text(json.dumps({**info, "dtype": "bfloat16", "precision": "fast"}))
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)), "bfloat16", "same --precision")


def test_a_file_of_an_older_version_is_re_scored_but_never_resumed(tmp_path: Path) -> None:
    pixels = workers.images(20, 0)
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    np.save(images, pixels)
    save(images, logits)
    info = json.loads(logits_file.sidecar(logits).read_text())
    old = {key: info[key] for key in ("num_images", "done", "weights_sha256", "weights_path", "weights_verified",
                                       "input")}  # what version 1 wrote
    logits_file.sidecar(logits).write_text(json.dumps(old))
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)), "older inception-score", "--from-logits")
    result = scored("--from-logits", str(logits), "--splits", "2")
    assert result["mean"] == pytest.approx(paper_score(pixels, 2), rel=1e-6)
    assert result["precision"].startswith("not recorded") and not result["comparable"]


# --- case 3: strict JSON ------------------------------------------------------------------------

def test_every_json_written_is_strict(tmp_path: Path) -> None:
    images, logits, output = tmp_path / "s.npy", tmp_path / "l.npy", tmp_path / "out.json"
    np.save(images, workers.images(20, 0))
    save(images, logits)
    strict_loads(logits_file.sidecar(logits).read_text())
    outcome = invoke("--from-logits", str(logits), "--splits", "1", "--json", "--output", str(output))
    assert outcome.exit_code == 0, outcome.output
    for text in (outcome.stdout, output.read_text()):
        result = strict_loads(text)
        assert result["images_per_second"] is None  # no time spent: null, not Infinity
        assert result["order_check"]["ratio"] is None  # one split: no ratio
    each = invoke(str(images), str(images), "--each", "--splits", "2", "--json")
    assert each.exit_code == 0 and [strict_loads(line)["num_images"] for line in each.stdout.splitlines()] == [20, 20]


def test_the_package_writes_json_only_through_the_strict_writer() -> None:
    root = TESTS.parent
    for source in [*root.glob("inception_score/*.py"), *root.glob("reference_gan/*.py")]:
        if source.name != "strict_json.py":  # json.dump(s) itself, not strict_json.dumps
            assert not re.search(r"(?<!\w)json\.dump", source.read_text()), \
                f"{source} writes JSON without inception_score.score.strict_json"


def test_the_api_result_and_the_json_writer_have_no_nan_or_infinity() -> None:
    data = {"a": float("nan"), "b": [1.0, float("inf"), (2, -float("inf"))], "c": {"d": np.float64("nan")}}
    assert strict_loads(strict_json.dumps(data)) == {"a": None, "b": [1.0, None, [2, None]], "c": {"d": None}}
    result = result_module.ISResult(mean=1.0, std=0.0, split_scores=(1.0,), num_images=1, splits=1, weights_path="w",
                                    weights_sha256="0", weights_verified=False, device="cpu", dtype="float32",
                                    elapsed_s=0.0)
    dumped = json.dumps(result.to_dict(), allow_nan=False)  # raises on NaN or Infinity
    assert strict_loads(dumped)["images_per_second"] is None
