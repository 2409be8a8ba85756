"""The inception-score command end to end: inputs of every kind, JSON, the picture, bad inputs.
Weights: genuine convolutions + a seeded random fc layer (numbers are not Inception Scores)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import inception_score.cli.main as cli
import inception_score.engine.runner as scorer_module
import inception_score.network.weights as weights_module
from inception_score import __version__
from inception_score.cli.main import main
from inception_score.engine.runner import InceptionScorer
from inception_score.score.result import ISResult
from inception_score.network.labels import LABEL_MAP, SYNSET_NAMES

_LOADED: dict[tuple, InceptionScorer] = {}


def _shared_scorer(weights, **options) -> InceptionScorer:
    key = (str(weights), *sorted((name, str(value)) for name, value in options.items() if name != "progress"))
    if key not in _LOADED:
        _LOADED[key] = InceptionScorer(weights, **options)  # errors are raised, never cached
    return _LOADED[key]


@pytest.fixture(autouse=True)
def reuse_loaded_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the network from a file takes seconds on 2 cores: runs in this process with the same
    weights share one loaded network (the real one). Subprocess runs load their own."""
    monkeypatch.setattr(scorer_module, "InceptionScorer", _shared_scorer)


SIZES = ((48, 40), (36, 52))  # (H, W): the first five images have the first size, the last five the second


def write_mixed_modes(folder: Path, rng: np.random.Generator) -> list[np.ndarray]:
    """Ten images in many modes and formats, of two sizes; returns their expected RGB pixels in
    file-name order, worked out from the generated arrays (not by decoding through the package)."""
    folder.mkdir(parents=True)
    expected = []

    def size(index: int) -> tuple[int, int]:
        return SIZES[index // 5]

    h, w = size(0)
    gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
    Image.fromarray(gray, "L").save(folder / "a_gray.png")
    expected.append(np.repeat(gray[:, :, None], 3, axis=2))

    h, w = size(1)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rng.integers(0, 256, (h, w), dtype=np.uint8)
    paletted = Image.fromarray(indices, "P")
    paletted.putpalette(palette.flatten().tolist())
    paletted.save(folder / "b_palette.png")
    expected.append(palette[indices])

    h, w = size(2)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "c_alpha.png")
    expected.append(rgba[:, :, :3])

    h, w = size(3)
    deep = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    Image.fromarray(deep).save(folder / "d_16bit.png")
    expected.append(np.repeat((deep // 256).astype(np.uint8)[:, :, None], 3, axis=2))

    h, w = size(4)
    plain = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(plain).save(folder / "e_rgb.png")
    expected.append(plain)

    # A JPEG stored sideways (W x H) with EXIF orientation 6: shown rotated 90 degrees clockwise.
    # Its pixels are decoded here with PIL alone and rotated with numpy.
    h, w = size(5)
    smooth = np.kron(rng.integers(0, 256, (w // 4, h // 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(smooth).save(folder / "f_rotated.jpg", quality=95, exif=exif)
    with Image.open(folder / "f_rotated.jpg") as stored:
        assert stored.size == (h, w)  # PIL's size is (width, height): stored sideways
        expected.append(np.rot90(np.asarray(stored.convert("RGB")), k=-1))

    h, w = size(6)
    for name in ("g.bmp", "h.tif"):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
        expected.append(pixels)
    webp = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(webp).save(folder / "i.webp", lossless=True)
    expected.append(webp)
    gif_indices = rng.integers(0, 256, (h, w), dtype=np.uint8)
    gif = Image.fromarray(gif_indices, "P")
    gif.putpalette(palette.flatten().tolist())
    gif.save(folder / "j.gif")
    expected.append(palette[gif_indices])
    assert [e.shape[:2] for e in expected] == [size(i) for i in range(10)]
    return expected


def write_mixed_sizes(folder: Path, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True)
    for index, (h, w) in enumerate([(32, 32), (64, 48), (20, 33), (32, 32), (100, 80), (32, 32), (299, 299), (7, 9)]):
        sub = folder / ("deep" if index % 2 else "")
        sub.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(sub / f"{index}.png")


def tar_gz_of(folder: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.add(file, arcname=str(file.relative_to(folder)))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    expected = write_mixed_modes(root / "modes", rng)
    np.savez(root / "modes-1.npz", images=np.stack(expected[:5]))  # an npz holds one size: two files,
    np.savez(root / "modes-2.npz", images=np.stack(expected[5:]))  # given in order, are the same ten images
    tar_gz_of(root / "modes", root / "modes.tar.gz")
    write_mixed_sizes(root / "sizes", rng)
    tar_gz_of(root / "sizes", root / "sizes.tar.gz")
    return {"root": root, "modes": root / "modes", "npz-1": root / "modes-1.npz", "npz-2": root / "modes-2.npz",
            "tgz": root / "modes.tar.gz", "sizes": root / "sizes", "sizes_tgz": root / "sizes.tar.gz"}


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(main, [*args, "--json", "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def dev_weights(path: Path) -> list[str]:
    return ["--weights", str(path), "--allow-unverified-weights"]


def test_folder_npz_and_tar_gz_give_one_score(inputs, genuine_weights_file: Path) -> None:
    options = [*dev_weights(genuine_weights_file), "--splits", "5"]
    folder = run_json(str(inputs["modes"]), *options)
    arrays = run_json(str(inputs["npz-1"]), str(inputs["npz-2"]), *options)
    archive = run_json(str(inputs["tgz"]), *options)
    assert folder["num_images"] == arrays["num_images"] == archive["num_images"] == 10
    for other in (arrays, archive):
        assert other["mean"] == pytest.approx(folder["mean"], rel=1e-6)
        assert other["split_scores"] == pytest.approx(folder["split_scores"], rel=1e-6)
    assert len(set(folder["split_scores"])) == 5  # the splits differ, so a reordering would show
    floats = inputs["root"] / "modes-1-float.npy"
    np.save(floats, np.load(inputs["npz-1"])["images"].astype(np.float32) / 127.5 - 1)
    mixed = run_json(str(floats), str(inputs["npz-2"]), "--input-range", "-1,1", *options)
    assert mixed["split_scores"] == pytest.approx(folder["split_scores"], rel=1e-5)


def test_human_line_for_verified_and_unverified_weights() -> None:
    result = ISResult(mean=11.2449, std=0.1161, split_scores=(11.1, 11.4), num_images=50000, splits=10,
                      weights_path="w.pth", weights_sha256="6726825d0af5f729" + "0" * 48, weights_verified=True,
                      device="cuda", dtype="float32", elapsed_s=50000 / 812.4)
    report = cli.Report(result, "folder x", "cuda:0", (), cli.RunOptions(paths=(Path("x"),)))
    assert report.human_line() == ("Inception Score: 11.24 ± 0.12  (50000 images, 10 splits, "
                                   "2015-12-05 weights verified, 812 img/s on cuda:0)")
    slow = dataclasses.replace(result, weights_verified=False, elapsed_s=100 / 5.5812, num_images=100)
    line = cli.Report(slow, "x", "cpu", ("a.png bad",), report.options).human_line()
    assert "(100 images, 1 invalid skipped, 10 splits, UNVERIFIED weights sha256 6726825d0af5…, " in line
    assert line.endswith("not comparable with published scores, 5.58 img/s on cpu)")


def console_script() -> Path:
    script = Path(sys.executable).with_name("inception-score")
    assert script.is_file(), f"{script} missing: pip install -e . creates the console script declared in pyproject"
    return script


def test_console_script_and_workers_give_one_score(inputs, genuine_weights_file: Path, tmp_path: Path) -> None:
    env = dict(os.environ, INCEPTION_SCORE_WEIGHTS=str(genuine_weights_file))
    saved = tmp_path / "serial.json"
    done = subprocess.run(
        [str(console_script()), str(inputs["sizes"]), "--splits", "4", "--allow-unverified-weights",
         "--output", str(saved)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    serial = json.loads(saved.read_text())
    assert serial["num_images"] == 8 and serial["weights"]["path"] == str(genuine_weights_file)
    line = done.stdout.strip()
    assert line.startswith(f"Inception Score: {serial['mean']:.2f} ± {serial['std']:.2f}  (8 images, 4 splits, ")
    assert f"UNVERIFIED weights sha256 {serial['weights']['sha256'][:12]}…, not comparable with published" in line
    assert line.endswith(" img/s on cpu)") and len(done.stdout.splitlines()) == 1
    assert "Inception Score" not in done.stderr  # no progress bar when stderr is not a terminal
    workers = run_json(str(inputs["sizes_tgz"]), "--splits", "4", "--num-workers", "2", "--batch-size", "3",
                       *dev_weights(genuine_weights_file))
    assert workers["mean"] == pytest.approx(serial["mean"], rel=1e-6)
    assert workers["split_scores"] == pytest.approx(serial["split_scores"], rel=1e-6)


def write_label_folder(folder: Path) -> Path:
    """Label files in the format of inception-2015-12-05.tgz, with made-up synsets and names."""
    folder.mkdir()
    entries = "".join(f'entry {{\n  target_class: {i}\n  target_class_string: "n{i:08d}"\n}}\n' for i in range(1, 1001))
    (folder / LABEL_MAP).write_text(entries)
    (folder / SYNSET_NAMES).write_text("".join(f"n{i:08d}\tmade-up {i}, other name\n" for i in range(1, 1001)))
    return folder


def test_json_has_every_field_and_per_class_png(inputs, genuine_weights_file: Path, tmp_path: Path) -> None:
    picture = tmp_path / "classes.png"
    output = tmp_path / "out.json"
    result = CliRunner().invoke(main, [
        str(inputs["sizes"]), "--splits", "2", "--limit", "6", *dev_weights(genuine_weights_file), "--json",
        "--per-class", str(picture), "--output", str(output), "--shuffle", "--seed", "3",
        "--labels", str(write_label_folder(tmp_path / "labels"))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for field in ("mean", "std", "split_scores", "num_images", "splits", "input", "weights", "device", "dtype",
                  "elapsed_s", "images_per_second", "version", "skipped_invalid", "shuffle", "limit", "precision"):
        assert field in report, field
    assert report["num_images"] == 6 and len(report["split_scores"]) == 2 and report["splits"] == 2
    assert report["std"] == pytest.approx(np.std(report["split_scores"]))
    assert report["mean"] == pytest.approx(np.mean(report["split_scores"]))
    assert report["weights"]["verified"] is False and len(report["weights"]["sha256"]) == 64
    assert report["input"].startswith(f"folder {inputs['sizes']} (8 images")
    assert report["shuffle"] == {"enabled": True, "seed": 3} and report["limit"] == 6
    assert report["device"] == "cpu" and report["dtype"] == "float32" and report["version"] == __version__
    assert report["images_per_second"] == pytest.approx(6 / report["elapsed_s"])
    assert report["skipped_invalid"] == {"count": 0, "files": []}
    assert json.loads(output.read_text()) == report
    assert "no class names found" not in result.stderr
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.size[0] > 600


def test_skip_invalid_scores_the_rest(inputs, genuine_weights_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "some-bad"
    folder.mkdir()
    for index in range(4):
        (folder / f"{index}.png").write_bytes((inputs["sizes"] / f"{index * 2}.png").read_bytes())
    (folder / "2-broken.png").write_bytes(b"not an image at all")
    options = [*dev_weights(genuine_weights_file), "--splits", "2"]
    skipped = CliRunner().invoke(main, [str(folder), *options, "--skip-invalid", "--json"])
    assert skipped.exit_code == 0, skipped.output
    assert "warning: skipped" in skipped.stderr and "2-broken.png" in skipped.stderr
    report = json.loads(skipped.stdout)
    assert report["num_images"] == 4 and report["skipped_invalid"]["count"] == 1
    assert "2-broken.png" in report["skipped_invalid"]["files"][0]
    clean = tmp_path / "clean"
    clean.mkdir()
    for index in range(4):
        (clean / f"{index}.png").write_bytes((folder / f"{index}.png").read_bytes())
    assert run_json(str(clean), *options)["split_scores"] == pytest.approx(report["split_scores"], rel=1e-6)


def test_a_corrupt_image_in_a_worker_gives_one_line(genuine_weights_file: Path, tmp_path: Path) -> None:
    for index in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * index, np.uint8)).save(tmp_path / f"{index}.png")
    (tmp_path / "3-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = CliRunner().invoke(main, [str(tmp_path), "--splits", "2", "--num-workers", "2", "--batch-size", "2",
                                       *dev_weights(genuine_weights_file)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {tmp_path / '3-broken.png'} could not be decoded")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _bad(tmp_path: Path, kind: str) -> tuple[list[str], str]:
    """Arguments that must fail with exit code 2, and a piece of the one-line message."""
    folder = tmp_path / kind
    folder.mkdir()
    good = Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8))
    if kind == "empty-folder":
        return [str(folder)], "is empty: give a folder that holds images"
    if kind == "no-supported-files":
        (folder / "a.txt").write_text("x")
        return [str(folder)], "none is an image with a supported extension"
    if kind in ("unreadable", "truncated", "zero-byte"):
        for i in range(10):
            good.save(folder / f"{i}.png")
        if kind == "unreadable":
            (folder / "z.png").write_bytes(b"\x89PNG garbage")
        elif kind == "truncated":
            buffer = io.BytesIO()
            Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
            (folder / "z.png").write_bytes(buffer.getvalue()[:2000])
        else:
            (folder / "z.png").write_bytes(b"")
        return [str(folder)], {"unreadable": "z.png could not be decoded", "truncated": "z.png could not be decoded",
                               "zero-byte": "z.png is empty (0 bytes)"}[kind]
    if kind == "wrong-shape":
        np.save(folder / "a.npy", np.zeros((10, 32, 32), dtype=np.uint8))
        return [str(folder / "a.npy")], "expected images (N, H, W, 3) or (N, 3, H, W)"
    if kind == "wrong-dtype":
        np.save(folder / "a.npy", np.zeros((10, 32, 32, 3), dtype=np.int32))
        return [str(folder / "a.npy")], "holds int32 values"
    if kind == "nan":
        array = np.zeros((10, 32, 32, 3), dtype=np.float32)
        array[3, 1, 1, 0] = np.nan
        np.save(folder / "a.npy", array)
        return [str(folder / "a.npy"), "--input-range", "0,1"], "a.npy: image 3 contains non-finite values"
    if kind == "float-without-range":
        np.save(folder / "a.npy", np.zeros((10, 32, 32, 3), dtype=np.float32))
        return [str(folder / "a.npy")], "a.npy holds floats (float32); declare their range"
    if kind == "fewer-than-splits":
        for i in range(3):
            good.save(folder / f"{i}.png")
        return [str(folder)], "3 images cannot be divided into 10 splits"
    if kind == "unknown-device":
        good.save(folder / "0.png")
        return [str(folder), "--device", "quantum"], "unknown device 'quantum'"
    if kind == "output-folder-missing":
        good.save(folder / "0.png")
        return [str(folder), "--output", str(folder / "absent" / "x.json")], "absent does not exist; create it"
    if kind == "missing-weights":
        good.save(folder / "0.png")
        return [str(folder), "--splits", "1", "--weights", str(folder / "absent.pth")], "absent.pth does not exist"
    raise AssertionError(kind)


BAD_KINDS = ["empty-folder", "no-supported-files", "unreadable", "truncated", "zero-byte", "wrong-shape",
             "wrong-dtype", "nan", "float-without-range", "fewer-than-splits", "unknown-device", "missing-weights",
             "output-folder-missing"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_exits_2_with_one_line(kind: str, tmp_path: Path, genuine_weights_file: Path) -> None:
    args, message = _bad(tmp_path, kind)
    if "--weights" not in args:
        args += ["--weights", str(genuine_weights_file), "--allow-unverified-weights"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert message in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_offline_without_weights_says_what_to_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("INCEPTION_SCORE_WEIGHTS", raising=False)
    monkeypatch.setattr(weights_module, "DEFAULT", dataclasses.replace(weights_module.DEFAULT, url="http://127.0.0.1:9/w.pth"))
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / "0.png")
    result = CliRunner().invoke(main, [str(folder), "--splits", "1", "--quiet"])
    assert result.exit_code == 2
    assert weights_module.PYTORCH_FID_WEIGHTS.sha256 in result.stderr and "could not download" in result.stderr


def processes_in_group(group: int) -> list[int]:
    """Ids of the live processes whose process group is ``group`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:  # fields after the name: state, ppid, pgrp
            found.append(int(stat.parent.name))
    return found


def test_ctrl_c_exits_130_and_leaves_no_workers(inputs, genuine_weights_file: Path, tmp_path: Path) -> None:
    import signal
    import time

    folder = tmp_path / "many"
    folder.mkdir()
    source = (inputs["sizes"] / "0.png").read_bytes()
    for index in range(200):
        (folder / f"{index:03d}.png").write_bytes(source)
    env = dict(os.environ, INCEPTION_SCORE_WEIGHTS=str(genuine_weights_file))
    process = subprocess.Popen(
        [sys.executable, "-m", "inception_score", str(folder), "--allow-unverified-weights", "--num-workers", "2",
         "--batch-size", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        # A shell that runs us in the background ignores SIGINT, and children inherit that; a
        # terminal's Ctrl-C reaches a foreground program with the default disposition.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(processes_in_group(process.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)  # until both decoding workers run: past start-up, the network running
    assert len(processes_in_group(process.pid)) >= 3, process.communicate()[1]
    time.sleep(1)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of the group is left
