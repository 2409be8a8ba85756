"""The inception-score command end to end: inputs of every kind, JSON, the picture, bad inputs.
Weights: genuine convolutions + a seeded random fc layer (numbers are not Inception Scores)."""

from __future__ import annotations

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

import inception_score.weights as weights_module
from inception_score.cli import main

SIZE = (48, 40)  # (H, W)


def write_mixed_modes(folder: Path, rng: np.random.Generator) -> np.ndarray:
    """Ten images of one size in many modes and formats; returns their expected RGB pixels, worked out
    from the generated arrays (not by decoding the files through the package)."""
    folder.mkdir(parents=True)
    h, w = SIZE
    expected = []

    def rgb():
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)

    gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
    Image.fromarray(gray, "L").save(folder / "a_gray.png")
    expected.append(np.repeat(gray[:, :, None], 3, axis=2))

    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rng.integers(0, 256, (h, w), dtype=np.uint8)
    paletted = Image.fromarray(indices, "P")
    paletted.putpalette(palette.flatten().tolist())
    paletted.save(folder / "b_palette.png")
    expected.append(palette[indices])

    rgba = np.concatenate([rgb(), rng.integers(0, 256, (h, w, 1), dtype=np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(folder / "c_alpha.png")
    expected.append(rgba[:, :, :3])

    deep = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    Image.fromarray(deep).save(folder / "d_16bit.png")
    expected.append(np.repeat((deep >> 8).astype(np.uint8)[:, :, None], 3, axis=2))

    plain = rgb()
    Image.fromarray(plain).save(folder / "e_rgb.png")
    expected.append(plain)

    # A JPEG stored sideways (W x H) with EXIF orientation 6: shown rotated 90 degrees clockwise.
    smooth = np.kron(rng.integers(0, 256, (w // 8, h // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(smooth).save(folder / "f_rotated.jpg", quality=95, exif=exif)
    stored = np.asarray(Image.open(folder / "f_rotated.jpg").convert("RGB"))
    expected.append(np.rot90(stored, k=-1))

    bmp = rgb()
    Image.fromarray(bmp).save(folder / "g.bmp")
    expected.append(bmp)
    tif = rgb()
    Image.fromarray(tif).save(folder / "h.tif")
    expected.append(tif)
    webp = rgb()
    Image.fromarray(webp).save(folder / "i.webp", lossless=True)
    expected.append(webp)
    gif_indices = rng.integers(0, 256, (h, w), dtype=np.uint8)
    gif = Image.fromarray(gif_indices, "P")
    gif.putpalette(palette.flatten().tolist())
    gif.save(folder / "j.gif")
    expected.append(palette[gif_indices])
    return np.stack(expected)


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
    np.savez(root / "modes.npz", images=expected)
    tar_gz_of(root / "modes", root / "modes.tar.gz")
    write_mixed_sizes(root / "sizes", rng)
    tar_gz_of(root / "sizes", root / "sizes.tar.gz")
    return {"root": root, "modes": root / "modes", "npz": root / "modes.npz", "tgz": root / "modes.tar.gz",
            "sizes": root / "sizes", "sizes_tgz": root / "sizes.tar.gz"}


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(main, [*args, "--json", "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_folder_npz_and_tar_gz_give_one_score(inputs, genuine_weights_file: Path) -> None:
    weights = ["--weights", str(genuine_weights_file), "--allow-unverified-weights", "--splits", "5"]
    folder = run_json(str(inputs["modes"]), *weights)
    array = run_json(str(inputs["npz"]), *weights)
    archive = run_json(str(inputs["tgz"]), *weights)
    assert folder["num_images"] == array["num_images"] == archive["num_images"] == 10
    assert array["mean"] == pytest.approx(folder["mean"], rel=1e-6)
    assert archive["mean"] == pytest.approx(folder["mean"], rel=1e-6)
    assert folder["split_scores"] == pytest.approx(array["split_scores"], rel=1e-6)


def test_mixed_sizes_through_a_real_process_and_workers(inputs, genuine_weights_file: Path) -> None:
    env = dict(os.environ, INCEPTION_SCORE_WEIGHTS=str(genuine_weights_file))
    command = [sys.executable, "-m", "inception_score", str(inputs["sizes"]), "--splits", "4", "--allow-unverified-weights"]
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    serial = json.loads(done.stdout)
    assert serial["num_images"] == 8
    human = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert human.returncode == 0 and human.stdout.startswith(f"Inception Score: {serial['mean']:.2f} ± ")
    assert "8 images, 4 splits, UNVERIFIED weights" in human.stdout
    workers = run_json(str(inputs["sizes_tgz"]), "--splits", "4", "--num-workers", "2", "--weights",
                       str(genuine_weights_file), "--allow-unverified-weights", "--batch-size", "3")
    assert workers["mean"] == pytest.approx(serial["mean"], rel=1e-6)
    assert workers["split_scores"] == pytest.approx(serial["split_scores"], rel=1e-6)


def test_json_has_every_field_and_per_class_png(inputs, genuine_weights_file: Path, tmp_path: Path) -> None:
    picture = tmp_path / "classes.png"
    output = tmp_path / "out.json"
    report = run_json(str(inputs["sizes"]), "--splits", "2", "--limit", "6", "--weights", str(genuine_weights_file),
                      "--allow-unverified-weights", "--per-class", str(picture), "--output", str(output),
                      "--shuffle", "--seed", "3")
    for field in ("mean", "std", "split_scores", "num_images", "splits", "input", "weights", "device", "dtype",
                  "elapsed_s", "images_per_second", "version", "skipped_invalid"):
        assert field in report, field
    assert report["num_images"] == 6 and len(report["split_scores"]) == 2
    assert report["weights"]["verified"] is False and len(report["weights"]["sha256"]) == 64
    assert report["skipped_invalid"] == {"count": 0, "files": []}
    assert json.loads(output.read_text()) == report
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.size[0] > 600


def test_skip_invalid_scores_the_rest(inputs, genuine_weights_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "some-bad"
    folder.mkdir()
    for index in range(4):
        (folder / f"{index}.png").write_bytes((inputs["sizes"] / f"{index * 2}.png").read_bytes())
    (folder / "9-broken.png").write_bytes(b"not an image at all")
    weights = ["--weights", str(genuine_weights_file), "--allow-unverified-weights", "--splits", "2"]
    stopped = CliRunner().invoke(main, [str(folder), *weights])
    assert stopped.exit_code == 2 and "9-broken.png could not be decoded" in stopped.stderr
    report = run_json(str(folder), *weights, "--skip-invalid")
    assert report["num_images"] == 4 and report["skipped_invalid"]["count"] == 1
    assert "9-broken.png" in report["skipped_invalid"]["files"][0]


def _bad(tmp_path: Path, kind: str) -> tuple[list[str], str]:
    """Arguments that must fail with exit code 2, and a piece of the one-line message."""
    folder = tmp_path / kind
    folder.mkdir()
    good = Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8))
    if kind == "empty-folder":
        return [str(folder)], "is empty: give a folder that holds images"
    if kind == "no-supported-files":
        (folder / "a.txt").write_text("x")
        return [str(folder)], "none with a supported extension"
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
        return [str(folder / "a.npy")], "expected (N, H, W, 3) or (N, 3, H, W)"
    if kind == "wrong-dtype":
        np.save(folder / "a.npy", np.zeros((10, 32, 32, 3), dtype=np.int32))
        return [str(folder / "a.npy")], "holds int32 values"
    if kind == "nan":
        array = np.zeros((10, 32, 32, 3), dtype=np.float32)
        array[3, 1, 1, 0] = np.nan
        np.save(folder / "a.npy", array)
        return [str(folder / "a.npy"), "--input-range", "0,1"], "non-finite values"
    if kind == "float-without-range":
        np.save(folder / "a.npy", np.zeros((10, 32, 32, 3), dtype=np.float32))
        return [str(folder / "a.npy")], "declare their range with --input-range"
    if kind == "fewer-than-splits":
        for i in range(3):
            good.save(folder / f"{i}.png")
        return [str(folder)], "3 images cannot be divided into 10 splits"
    if kind == "unknown-device":
        good.save(folder / "0.png")
        return [str(folder), "--device", "quantum"], "unknown device 'quantum'"
    if kind == "missing-weights":
        good.save(folder / "0.png")
        return [str(folder), "--weights", str(folder / "absent.pth")], "absent.pth does not exist"
    raise AssertionError(kind)


BAD_KINDS = ["empty-folder", "no-supported-files", "unreadable", "truncated", "zero-byte", "wrong-shape",
             "wrong-dtype", "nan", "float-without-range", "fewer-than-splits", "unknown-device", "missing-weights"]


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
    import dataclasses

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("INCEPTION_SCORE_WEIGHTS", raising=False)
    monkeypatch.setattr(weights_module, "DEFAULT", dataclasses.replace(weights_module.DEFAULT, url="http://127.0.0.1:9/w.pth"))
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / "0.png")
    result = CliRunner().invoke(main, [str(folder), "--quiet"])
    assert result.exit_code == 2
    assert weights_module.PYTORCH_FID_WEIGHTS.sha256 in result.stderr and "could not download" in result.stderr


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
    time.sleep(8)  # past start-up: workers decoding, the network running
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of the group is left
