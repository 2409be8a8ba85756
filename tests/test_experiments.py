"""The table-regenerating scripts (``reference-gan ablation``, ``reference-gan semi-supervised``) on tiny
configurations: what they write is checked against direct computations on the files they leave.

Weights: genuine convolutions + a seeded random fc layer (numbers are not Inception Scores)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from reference_gan.cli import main
from reference_gan.data import synthetic

# Table 3 and Table 1 of the paper (REFERENCE.md section 4), to check the printed reference columns.
PAPER_IS = {"real": 11.24, "our-methods": 8.09, "minus-vbn-plus-bn": 7.54, "minus-l-plus-ha": 6.86,
            "minus-ls": 6.83, "minus-l": 4.36, "minus-mbf": 3.87}
PAPER_MNIST_ERRORS = {20: "1677 ± 452", 50: "221 ± 136", 100: "93 ± 6.5", 200: "90 ± 4.2"}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is much faster on a busy machine
    yield
    torch.set_num_threads(threads)


def test_ablation_tiny_writes_table_csv_and_figure_with_scores_of_the_saved_samples(
    genuine_weights_file: Path, tmp_path: Path
) -> None:
    from inception_score import InceptionScorer, inception_score

    runs, results = tmp_path / "runs", tmp_path / "results"
    outcome = CliRunner().invoke(main, ["ablation", "--preset", "tiny", "--weights", str(genuine_weights_file),
                                        "--runs", str(runs), "--results", str(results)])
    assert outcome.exit_code == 0, outcome.output
    assert "expected run time" in outcome.output

    table = (results / "ablation-tiny.md").read_text()
    assert "NOT Inception Scores" in table.splitlines()[0]  # development weights: said in the title
    with open(results / "ablation-tiny.csv") as handle:
        rows = {row["variant"]: row for row in csv.DictReader(handle)}
    assert list(rows) == [*PAPER_IS, "minus-vbn-scale"]  # our extra row last, without a paper number
    assert rows["minus-vbn-scale"]["paper_mean"] == "" and "| -VBN scale (ours) | — |" in table
    scorer = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False)
    for variant, row in rows.items():
        if variant in PAPER_IS:
            assert float(row["paper_mean"]) == PAPER_IS[variant]
        if variant == "real":
            # The first 4 training images of the synthetic set, [-1, 1] floats -> uint8 NHWC, here by hand.
            data = synthetic("cifar10")
            images = np.rint((data.train_x[:4].transpose(0, 2, 3, 1) + 1.0) * 127.5).astype(np.uint8)
        else:
            with np.load(runs / variant / "samples.npz") as archive:
                images = archive["images"]
            assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
        direct = inception_score(images, splits=2, scorer=scorer)
        assert float(row["is_mean"]) == pytest.approx(direct.mean, rel=1e-5), variant
        assert float(row["is_std"]) == pytest.approx(direct.std, rel=1e-4, abs=1e-6), variant
        if variant in PAPER_IS:
            assert f"| {PAPER_IS[variant]:.2f} ±" in table
    with Image.open(results / "ablation-tiny.png") as figure:
        width, height = figure.size
    assert height > 7 * 32 and width > 4 * 32  # seven rows of four 32-pixel images at least


def _final_errors(run_dir: Path) -> dict[int, float]:
    """seed -> errors of D's current weights (MNIST's default set-up) out of the test set after the last
    epoch, read from metrics.jsonl directly."""
    errors = {}
    for metrics in sorted(run_dir.glob("seed-*/metrics.jsonl")):
        last = json.loads(metrics.read_text().splitlines()[-1])
        errors[int(metrics.parent.name.split("-")[1])] = last["test_err"] * 100  # 100 synthetic test images
    return errors


def test_semi_supervised_table_mean_std_over_seeds_resume_and_not_yet_run(tmp_path: Path) -> None:
    runs, results = tmp_path / "runs", tmp_path / "results"
    args = ["semi-supervised", "--dataset", "synthetic-mnist", "--labels", "20", "--seeds", "1,2",
            "--runs", str(runs), "--results", str(results), "--set", "epochs=2", "--set", "steps_per_epoch=2",
            "--set", "batch_size=10", "--set", "init_examples=20", "--set", "sample_every_epochs=0"]
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 0, outcome.output
    errors = _final_errors(runs / "synthetic-mnist-2016-06-08" / "labels-20")
    assert sorted(errors) == [1, 2]
    table = (results / "semi-supervised-synthetic-mnist.md").read_text()
    values = list(errors.values())
    expected = f"| 20 | 1677 ± 452 | {np.mean(values):.1f} ± {np.std(values, ddof=1):.1f} | 2 |"
    assert expected in table
    for total in (50, 100, 200):
        assert f"| {total} | {PAPER_MNIST_ERRORS[total]} | not yet run | 0 |" in table
    assert (results / "semi-supervised-synthetic-mnist.png").is_file()

    # Rerunning finds the runs finished: nothing is trained again, the table is the same.
    lines_before = (runs / "synthetic-mnist-2016-06-08" / "labels-20" / "seed-1" / "metrics.jsonl").read_text()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert (runs / "synthetic-mnist-2016-06-08" / "labels-20" / "seed-1" / "metrics.jsonl").read_text() == lines_before
    collected = CliRunner().invoke(main, ["semi-supervised", "--dataset", "synthetic-mnist", "--collect-only",
                                          "--runs", str(runs), "--results", str(results)])
    assert collected.exit_code == 0, collected.output
    assert expected in (results / "semi-supervised-synthetic-mnist.md").read_text()


def test_semi_supervised_refuses_unbalanced_label_counts(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(main, ["semi-supervised", "--dataset", "synthetic-mnist", "--labels", "25",
                                        "--runs", str(tmp_path), "--results", str(tmp_path)])
    assert outcome.exit_code == 2
    assert "25 labels cannot be balanced over 10 classes" in outcome.output
