"""Runs spread over devices (``--devices cpu,cpu``: one process each, a Gloo group): every variant or
seed trains as it would alone, and the table is written once and equals the one-process table (its
scores to float32 rounding: the images are scored in shards, so in other batches)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from reference_gan.cli import main


def run(args: list[str]) -> None:
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 0, outcome.output


def rows(path: Path) -> dict[str, dict]:
    with open(path) as handle:
        return {row["variant"]: row for row in csv.DictReader(handle)}


def assert_scores_agree(one: dict, two: dict, variant: str) -> None:
    """The two tables' Inception Scores, read as numbers. Each variant trains and samples alike on
    either process count (one thread, the same seeds: the same kernels on the same inputs), but two
    processes score the images in shards, so the network sees other batches and its float32 logits
    may differ by rounding. That moves a mean by at most 1e-6 of itself (measured up to 2.1e-7:
    benchmarks/results/batch-composition-rounding*.md). A split score here averages 2 images only,
    so each gets 1e-5 of itself, and the std of the 2 split scores moves by at most max |d s_i| <=
    1e-5 * (mean + std). The CSV prints 6 decimals: each printed value is within 5e-7 of its number,
    two tables within 1e-6. The variants' scores lie 1e-3 or more apart."""
    printed = 1e-6
    mean_one, mean_two = float(one["is_mean"]), float(two["is_mean"])
    std_one, std_two = float(one["is_std"]), float(two["is_std"])
    assert abs(mean_two - mean_one) <= 1e-6 * mean_one + printed, variant
    assert abs(std_two - std_one) <= 1e-5 * (mean_one + std_one) + printed, variant


def records(path: Path) -> list[dict]:
    """Each epoch's record without its wall time."""
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in path.read_text().splitlines()]


def test_ablation_on_two_processes_gives_the_one_process_table(tmp_path: Path, genuine_weights_file: Path) -> None:
    common = ["ablation", "--preset", "tiny", "--weights", str(genuine_weights_file), "--threads", "1"]
    run([*common, "--runs", str(tmp_path / "one" / "runs"), "--results", str(tmp_path / "one")])
    run([*common, "--devices", "cpu,cpu", "--runs", str(tmp_path / "two" / "runs"), "--results", str(tmp_path / "two")])
    one, two = rows(tmp_path / "one" / "ablation-tiny.csv"), rows(tmp_path / "two" / "ablation-tiny.csv")
    assert list(one) == list(two) == ["real", "our-methods", "minus-vbn-plus-bn", "minus-l-plus-ha", "minus-ls",
                                      "minus-l", "minus-mbf", "minus-vbn-scale"]
    for variant in one:
        assert two[variant]["num_images"] == one[variant]["num_images"] == "4", variant
        assert two[variant]["train_steps"] == one[variant]["train_steps"], variant
        assert_scores_agree(one[variant], two[variant], variant)
    assert len({one[variant]["is_mean"] for variant in one}) > 4  # the variants differ far beyond the bound
    assert "- processes: `2`" in (tmp_path / "two" / "ablation-tiny.md").read_text()


def test_semi_supervised_seeds_on_two_processes_train_as_alone(tmp_path: Path) -> None:
    common = ["semi-supervised", "--dataset", "synthetic-mnist", "--labels", "20", "--seeds", "1,2", "--threads", "1",
              "--set", "epochs=2", "--set", "steps_per_epoch=2", "--set", "batch_size=10", "--set", "init_examples=20",
              "--set", "sample_every_epochs=0"]
    run([*common, "--runs", str(tmp_path / "one"), "--results", str(tmp_path / "one-results")])
    run([*common, "--devices", "cpu,cpu", "--runs", str(tmp_path / "two"), "--results", str(tmp_path / "two-results")])
    for seed in (1, 2):
        folder = Path("synthetic-mnist-2016-06-08", "labels-20", f"seed-{seed}")
        alone, spread = (records(tmp_path / name / folder / "metrics.jsonl") for name in ("one", "two"))
        assert spread == alone and "loss_g" in alone[0]  # losses and errors too; only the wall time differs
    table = lambda name: [l for l in (tmp_path / name / "semi-supervised-synthetic-mnist.md").read_text().splitlines()
                          if l.startswith("| 20 |")]
    assert table("two-results") == table("one-results")
