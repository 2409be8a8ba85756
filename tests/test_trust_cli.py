"""The command says when a score is suspicious or not comparable with published ones: an input sorted
by class is flagged (stderr and JSON) and the same images in a random order are not; the JSON lists
why a score cannot stand beside the paper's. The network is a stand-in here (pooled pixels times a
fixed matrix), so that the classes of the test images are sharply distinct; the diagnostic's
calibration on genuine images is in tests/test_order_diagnostic.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import distributed_workers as workers
import inception_score.cli.main as cli
import inception_score.engine.runner as scorer_module


@pytest.fixture(autouse=True)
def stand_in_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(*args, **kwargs):
        scorer = workers.PixelProjection()
        scorer.precision = kwargs.get("precision", "exact")
        return scorer

    monkeypatch.setattr(scorer_module, "InceptionScorer", build)


@pytest.fixture(scope="module")
def by_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """class_0/ ... class_9/, 12 images each: one dominant colour per class, plus noise."""
    root = tmp_path_factory.mktemp("sorted")
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, size=(10, 3))
    for klass in range(10):
        (root / f"class_{klass}").mkdir()
        for index in range(12):
            noise = rng.integers(-30, 31, size=(16, 16, 3))
            pixels = np.clip(palette[klass] + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class_{klass}" / f"{index:02d}.png")
    return root


def run(*args: str) -> tuple[dict, str]:
    outcome = CliRunner().invoke(cli.main, [*args, "--json", "--device", "cpu"])
    assert outcome.exit_code == 0, outcome.output
    return json.loads(outcome.stdout), outcome.stderr


def test_a_class_sorted_folder_is_flagged_and_the_same_images_shuffled_are_not(by_class: Path) -> None:
    ordered, stderr = run(str(by_class))
    assert ordered["order_check"]["flagged"] and ordered["order_check"]["ratio"] > ordered["order_check"]["threshold"]
    assert stderr.count("looks ordered") == 1 and "--shuffle" in stderr
    assert any("looks ordered" in reason for reason in ordered["not_comparable"])
    shuffled, stderr = run(str(by_class), "--shuffle")
    assert not shuffled["order_check"]["flagged"] and "looks ordered" not in stderr
    assert shuffled["order_check"]["ratio"] < 2


def test_the_json_says_why_a_score_is_not_comparable(by_class: Path) -> None:
    result, stderr = run(str(by_class), "--shuffle", "--splits", "5")
    assert result["comparable"] is False
    reasons = " | ".join(result["not_comparable"])
    for part in ("not the verified 2015-12-05", "120 images (published scores use 50,000)",
                 "5 splits (published scores use 10)", "shuffled before splitting"):
        assert part in reasons
    assert "not comparable with published scores" in stderr


def test_ctrl_c_after_the_json_was_written_says_so(by_class: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_write_per_class", interrupted)
    output = tmp_path / "score.json"
    outcome = CliRunner().invoke(cli.main, [str(by_class), "--shuffle", "--device", "cpu", "--output", str(output),
                                            "--per-class", str(tmp_path / "classes.png")])
    assert outcome.exit_code == 130
    assert f"interrupted: the score was written to {output}" in outcome.stderr
    assert "no score was computed" not in outcome.stderr
    assert json.loads(output.read_text())["num_images"] == 120
