"""The table commands beyond their first tiny run: ``reference-gan ablation`` run variant by variant and
resumed, its title with verified weights, a missing weights file; ``reference-gan semi-supervised`` for
every data set of the paper (MNIST 50 / 200 labels, CIFAR-10, SVHN) on synthetic images, and a run
that has not reached its planned epochs.

The ablation tests here check bookkeeping, so the 299x299 network is replaced by a fixed projection
of the pixels (seconds instead of a minute); ``tests/test_experiments.py`` checks the real network's
numbers in the table.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import inception_score
from gan_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from inception_score.network.weights import LoadedWeights
from reference_gan.checkpoints import load_checkpoint
from reference_gan.cli import main
from reference_gan.config import TrainConfig
from reference_gan.presets import ABLATION_PRESETS, AblationPreset, preset
from reference_gan.train import Trainer, learning_rate


class PixelProjection:
    """Stands in for the Inception network: logits = pooled pixels times a fixed matrix. Has what
    ``inception_score(..., scorer=)`` reads: ``device``, ``dtype``, ``weights``, ``logits``."""

    def __init__(self, verified: bool) -> None:
        self.device = torch.device("cpu")
        self.dtype = "float32"
        self.weights = LoadedWeights(state_dict={}, path=Path("projection"), sha256="0" * 64, verified=verified)
        self.matrix = torch.randn(3 * 4 * 4, 1008, generator=torch.Generator().manual_seed(3)) * 0.05

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(batch.float(), 4).flatten(1) @ self.matrix


@pytest.fixture
def projection_scorer(monkeypatch: pytest.MonkeyPatch) -> PixelProjection:
    scorer = PixelProjection(verified=False)
    monkeypatch.setattr(inception_score, "InceptionScorer", lambda *args, **kwargs: scorer)
    return scorer


def ablation(tmp_path: Path, *extra: str) -> str:
    outcome = CliRunner().invoke(main, ["ablation", "--preset", "tiny", "--runs", str(tmp_path / "runs"),
                                        "--results", str(tmp_path / "results"), *extra])
    assert outcome.exit_code == 0, outcome.output
    return (tmp_path / "results" / "ablation-tiny.md").read_text()


def table_rows(markdown: str) -> list[str]:
    """The first cell of every row of the results table (header and rule excluded)."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "paper IS" not in line]
    return [line.split("|")[1].strip() for line in rows if not line.startswith("| ---")]


def test_ablation_runs_one_variant_at_a_time_and_keeps_what_is_done(tmp_path: Path, projection_scorer) -> None:
    first = ablation(tmp_path, "--only", "minus-mbf")
    assert table_rows(first) == ["Real data", "-MBF"]
    assert "Not yet run: Our methods, -VBN+BN, -L+HA, -LS, -L, -VBN scale (ours)." in first
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if (p / "samples.npz").is_file()) == ["minus-mbf"]
    done = tmp_path / "runs" / "minus-mbf" / "samples.npz"
    before = done.read_bytes(), done.stat().st_mtime_ns

    second = ablation(tmp_path, "--only", "minus-l")
    assert table_rows(second) == ["Real data", "-L", "-MBF"]  # in the paper's order, not the order run
    assert (done.read_bytes(), done.stat().st_mtime_ns) == before  # not trained or sampled again

    with open(tmp_path / "results" / "ablation-tiny.csv") as handle:
        rows = {row["variant"]: row for row in csv.DictReader(handle)}
    assert list(rows) == ["real", "minus-l", "minus-mbf"]
    for variant in ("minus-l", "minus-mbf"):
        with np.load(tmp_path / "runs" / variant / "samples.npz") as archive:
            images = archive["images"]
        direct = inception_score.inception_score(images, splits=2, scorer=projection_scorer)
        assert float(rows[variant]["is_mean"]) == pytest.approx(direct.mean, rel=1e-5), variant


def test_ablation_continues_an_interrupted_variant_from_its_checkpoint(
    tmp_path: Path, projection_scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_steps = AblationPreset("tiny", "synthetic-cifar10", samples=4, real_images=4, splits=2, device="cpu", labels="2",
                               overrides=dict(batch_size=4, epochs=2, steps_per_epoch=1, init_examples=20,
                                              sample_every_epochs=0, eval_every_epochs=0))
    monkeypatch.setitem(ABLATION_PRESETS, "tiny", two_steps)
    # What a run killed after its first epoch leaves: metrics for epoch 1 and the checkpoint of step 1.
    folder = tmp_path / "runs" / "minus-mbf"
    fields = dict(dataset="synthetic-cifar10", labels="2", out_dir=str(folder), **two_steps.overrides)
    Trainer(preset("minus-mbf", **{**fields, "max_steps": 1})).run(log=False)
    ablation(tmp_path, "--only", "minus-mbf")
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    # Started again from scratch, the log would read steps 1, 1, 2.
    assert [(r["epoch"], r["step"]) for r in records] == [(1, 1), (2, 2)]
    assert TrainConfig(**load_checkpoint(folder / "checkpoint.pt")["config"]).max_steps is None


def test_ablation_title_with_verified_weights_does_not_warn(tmp_path: Path, projection_scorer) -> None:
    projection_scorer.weights = LoadedWeights(state_dict={}, path=Path("genuine.pth"), sha256="6" * 64, verified=True)
    title = ablation(tmp_path, "--only", "minus-l").splitlines()[0]
    assert "Inception Scores with the verified 2015 network" in title and "NOT" not in title


def test_ablation_without_weights_ends_with_one_line_and_status_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pth"
    outcome = CliRunner().invoke(main, ["ablation", "--preset", "tiny", "--weights", str(missing),
                                        "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.startswith("Error: ") and f"the file {missing} does not exist" in outcome.output
    assert not (tmp_path / "runs").exists()  # refused before any training


TINY = ["--set", "epochs=2", "--set", "steps_per_epoch=1", "--set", "batch_size=4", "--set", "init_examples=8",
        "--set", "sample_every_epochs=0"]


def semi_supervised(tmp_path: Path, *args: str) -> str:
    outcome = CliRunner().invoke(main, ["semi-supervised", *args, "--runs", str(tmp_path / "runs"),
                                        "--results", str(tmp_path / "results"), *TINY])
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def last_ema_error(metrics: Path) -> float:
    return json.loads(metrics.read_text().splitlines()[-1])["test_err_ema"]


def last_error(metrics: Path) -> float:
    """The test error of D's current weights: MNIST's default set-up (2016-06-08) reports it."""
    return json.loads(metrics.read_text().splitlines()[-1])["test_err"]


def test_semi_supervised_mnist_50_and_200_labels(tmp_path: Path) -> None:
    semi_supervised(tmp_path, "--dataset", "synthetic-mnist", "--labels", "50", "--labels", "200", "--seeds", "3")
    table = (tmp_path / "results" / "semi-supervised-synthetic-mnist.md").read_text()
    assert "test errors out of 100" in table.splitlines()[0]  # the synthetic set has 100 test images
    for total, paper in ((50, "221 ± 136"), (200, "90 ± 4.2")):
        metrics = tmp_path / "runs" / "synthetic-mnist-2016-06-08" / f"labels-{total}" / "seed-3" / "metrics.jsonl"
        assert f"| {total} | {paper} | {last_error(metrics) * 100:.1f} | 1 |" in table
    for total, paper in ((20, "1677 ± 452"), (100, "93 ± 6.5")):
        assert f"| {total} | {paper} | not yet run | 0 |" in table


@pytest.mark.parametrize("dataset, paper_counts", [("cifar10", (1000, 2000, 4000, 8000)), ("svhn", (1000,))])
def test_semi_supervised_cifar10_and_svhn_commands_on_synthetic_images(
    dataset: str, paper_counts: tuple[int, ...], tmp_path: Path
) -> None:
    # The paper's counts need 100+ labels per class; the synthetic set has 20 a class, so 100 labels here.
    semi_supervised(tmp_path, "--dataset", dataset, "--labels", "100", "--seeds", "1", "--set", "dataset=synthetic-cifar10",
                    "--set", "test_limit=20")
    folder = tmp_path / "runs" / f"{dataset}-public" / "labels-100" / "seed-1"
    saved = json.loads((folder / "config.json").read_text())
    assert saved["labels"] == "10" and saved["feature_matching"] and saved["lr"] == 3e-4  # the cifar10-fm / svhn-fm set-up
    table = (tmp_path / "results" / f"semi-supervised-{dataset}.md").read_text()
    assert "test error %" in table.splitlines()[0]
    assert f"| 100 |  | {last_ema_error(folder / 'metrics.jsonl') * 100:.1f} | 1 |" in table
    for total in paper_counts:
        row = next(line for line in table.splitlines() if line.startswith(f"| {total} |"))
        assert row.endswith("| not yet run | 0 |"), row
    assert (tmp_path / "results" / f"semi-supervised-{dataset}.png").is_file()


def test_semi_supervised_run_short_of_its_epochs_is_listed_but_not_averaged(tmp_path: Path) -> None:
    semi_supervised(tmp_path, "--dataset", "synthetic-mnist", "--labels", "20", "--seeds", "1", "--set", "max_steps=1")
    table = (tmp_path / "results" / "semi-supervised-synthetic-mnist.md").read_text()
    assert "| 20 | 1677 ± 452 | running (no finished seed yet) | 0 |" in table
    metrics = tmp_path / "runs" / "synthetic-mnist-2016-06-08" / "labels-20" / "seed-1" / "metrics.jsonl"
    assert f"| 20 | 1 | 1 / ? | {last_error(metrics) * 100:.1f} |" in table


def test_mnist_schedules_follow_the_original_scripts() -> None:
    # The formulas of openai/improved-gan's train_mnist_feature_matching.py: as last published, lr = 0.003
    # throughout; as first published (bb3d27b), lr = 0.001 * min(3 - epoch / 100, 1) for epochs 0-299.
    public, first = preset("mnist-fm"), preset("mnist-fm-2016-06-08")
    assert public.epochs == first.epochs == 300
    for epoch in range(300):
        assert learning_rate(public, epoch) == 0.003
        assert learning_rate(first, epoch) == pytest.approx(0.001 * min(3 - epoch / 100, 1.0), rel=1e-12)


def test_semi_supervised_mnist_defaults_to_the_first_published_setup_and_keeps_public_as_an_option(tmp_path: Path) -> None:
    semi_supervised(tmp_path, "--dataset", "synthetic-mnist", "--labels", "20", "--seeds", "2")
    semi_supervised(tmp_path, "--dataset", "synthetic-mnist", "--labels", "20", "--seeds", "2", "--setup", "public")
    first = tmp_path / "runs" / "synthetic-mnist-2016-06-08" / "labels-20" / "seed-2"
    public = tmp_path / "runs" / "synthetic-mnist-public" / "labels-20" / "seed-2"
    saved = json.loads((first / "config.json").read_text())
    assert (saved["lr"], saved["lr_constant_epochs"], saved["labels"]) == (0.001, 200, "2")
    saved = json.loads((public / "config.json").read_text())
    assert (saved["lr"], saved["lr_constant_epochs"], saved["labels"]) == (0.003, None, "2")
    last_first = json.loads((first / "metrics.jsonl").read_text().splitlines()[-1])
    assert last_first["test_err"] != last_first["test_err_ema"]  # so that the table shows which one it reports
    table = (tmp_path / "results" / "semi-supervised-synthetic-mnist.md").read_text()
    default_section, public_section = table.split("## Set-up `public`")
    assert "## Set-up `2016-06-08` (the default)" in default_section and "D's current weights" in default_section
    assert f"| 20 | 1677 ± 452 | {last_first['test_err'] * 100:.1f} | 1 |" in default_section
    assert f"| 20 | 2 | 2 / 2 | {last_first['test_err'] * 100:.1f} |" in default_section
    assert "moving average" in public_section
    assert f"| 20 | 1677 ± 452 | {last_ema_error(public / 'metrics.jsonl') * 100:.1f} | 1 |" in public_section


def test_semi_supervised_refuses_a_setup_the_data_set_does_not_have(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(main, ["semi-supervised", "--dataset", "svhn", "--setup", "2016-06-08",
                                        "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 2
    assert "Error: svhn has no set-up '2016-06-08'; choose one of public" in outcome.output
    assert not (tmp_path / "runs").exists()


def test_ablation_automatic_resume_refuses_a_crafted_checkpoint(tmp_path: Path, projection_scorer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "minus-l"
    folder.mkdir(parents=True)

    class RunsCode:
        def __reduce__(self):
            return (os.system, ("touch payload-ran",))

    torch.save({"format": 2, "D": RunsCode()}, folder / "checkpoint.pt")
    outcome = CliRunner().invoke(main, ["ablation", "--preset", "tiny", "--runs", str(tmp_path / "runs"),
                                        "--results", str(tmp_path / "results"), "--only", "minus-l"])
    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.strip().splitlines()[-1].startswith("Error: refusing to load")
    assert "Traceback" not in outcome.output and not (tmp_path / "payload-ran").exists()


def test_data_seed_fixes_the_labelled_set_across_seeds(tmp_path: Path) -> None:
    from reference_gan.semi_supervised import semi_supervised_config

    def labelled(seed: int, data_seed: int | None) -> np.ndarray:
        config = semi_supervised_config("synthetic-mnist", 100, seed, None, tmp_path, data_seed=data_seed,
                                        epochs=1, steps_per_epoch=1, batch_size=4, init_examples=8)
        return np.sort(Trainer(config).labelled)

    same_a, same_b = labelled(2, 1), labelled(3, 1)
    assert len(same_a) == 100 and np.array_equal(same_a, same_b)  # one labelled set for both seeds
    assert np.array_equal(same_a, labelled(1, None))  # seed 1 with its own seed draws that set too
    assert not np.array_equal(same_a, labelled(2, 2))  # another data seed: another set
    assert not np.array_equal(labelled(2, None), labelled(3, None))  # the default: a new set per seed


def test_table_shows_both_protocols_lists_every_run_in_json_and_tests_the_spread(tmp_path: Path) -> None:
    from scipy import stats

    semi_supervised(tmp_path, "--dataset", "synthetic-mnist", "--labels", "20", "--seeds", "1,2,3,4", "--data-seed", "1")
    semi_supervised(tmp_path, "--dataset", "synthetic-mnist", "--labels", "20", "--seeds", "2,3")
    folder = tmp_path / "runs" / "synthetic-mnist-2016-06-08" / "labels-20"
    assert sorted(p.name for p in folder.iterdir()) == ["seed-1", "seed-2", "seed-2-data-1", "seed-3", "seed-3-data-1",
                                                        "seed-4-data-1"]
    errors = {p.name: last_error(p / "metrics.jsonl") * 100 for p in folder.iterdir()}  # 100 synthetic test images
    fixed = [errors[n] for n in ("seed-1", "seed-2-data-1", "seed-3-data-1", "seed-4-data-1")]
    new = [errors[n] for n in ("seed-1", "seed-2", "seed-3")]
    table = (tmp_path / "results" / "semi-supervised-synthetic-mnist.md").read_text()
    assert f"| 20 | 1677 ± 452 | {np.mean(new):.1f} ± {np.std(new, ddof=1):.1f} | 3 |" in table
    assert (f"| 20, one labelled set (data seed 1) for every seed | 1677 ± 452 | {np.mean(fixed):.1f} ± "
            f"{np.std(fixed, ddof=1):.1f} | 4 |") in table
    assert f"| 20 | 2 (data 1) | 2 / 2 | {errors['seed-2-data-1']:.1f} |" in table
    # The F-test of the two spreads, written out: variance ratio, two-sided p on (3, 2) degrees of freedom.
    ratio = np.var(fixed, ddof=1) / np.var(new, ddof=1)
    p = 2 * min(stats.f.sf(ratio, 3, 2), stats.f.cdf(ratio, 3, 2))
    assert f"F = {ratio:.2f} on (3, 2) degrees of freedom, two-sided p = {min(1.0, p):.3f}" in table
    listing = json.loads((tmp_path / "results" / "semi-supervised-synthetic-mnist.json").read_text())["runs"]
    assert len(listing) == 6
    by_folder = {(r["seed"], r["data_seed"]): r for r in listing}
    assert set(by_folder) == {(1, 1), (2, 1), (3, 1), (4, 1), (2, 2), (3, 3)}
    run = by_folder[(2, 1)]
    assert run["epochs"] == 2 and run["labels"] == 20 and run["setup"] == "2016-06-08" and run["finished"]
    assert run["test_errors"] == pytest.approx(errors["seed-2-data-1"], rel=1e-9)
    assert run["record"] == "semi-supervised-synthetic-mnist-2016-06-08-labels-20-seed-2-data-1.jsonl"
    assert (tmp_path / "results" / run["record"]).is_file()


def test_copied_records_stand_for_runs_whose_folders_are_gone(tmp_path: Path) -> None:
    semi_supervised(tmp_path, "--dataset", "synthetic-mnist", "--labels", "20", "--seeds", "5", "--data-seed", "1")
    import shutil

    shutil.rmtree(tmp_path / "runs")
    semi_supervised(tmp_path, "--dataset", "synthetic-mnist", "--labels", "20", "--collect-only")
    listing = json.loads((tmp_path / "results" / "semi-supervised-synthetic-mnist.json").read_text())["runs"]
    assert [(r["seed"], r["data_seed"], r["epochs"], r["finished"]) for r in listing] == [(5, 1, 2, False)]


def test_the_verdict_reads_its_f_tests_at_the_five_percent_level() -> None:
    from scipy import stats

    from reference_gan.semi_supervised import spread_verdict

    # Spreads chosen far on either side of the 5% level; each p written out from the F distribution.
    fixed, new = [92.0, 135.0, 93.0, 100.0], [92.0, 115.0, 126.0]
    ratio_new = np.var(fixed, ddof=1) / np.var(new, ddof=1)
    ratio_paper = np.var(fixed, ddof=1) / 6.5**2
    assert 2 * stats.f.sf(ratio_new, 3, 2) > 0.5 and 2 * stats.f.sf(ratio_paper, 3, 9) < 0.01
    text = spread_verdict(100, 1, fixed, new, (93.0, 6.5))
    assert text.endswith("At the 5% level, the spread with one labelled set is not distinguishable from the spread "
                         "with a new set per seed and larger than the paper's.")
    tight = [93.0, 94.0, 93.5, 92.5]  # std 0.65: a tenth of the paper's, p < 0.01 against it
    assert 2 * stats.f.cdf(np.var(tight, ddof=1) / 6.5**2, 3, 9) < 0.01
    assert spread_verdict(100, 1, tight, [], (93.0, 6.5)).endswith(
        "At the 5% level, the spread with one labelled set is smaller than the paper's.")
    assert "pending" in spread_verdict(100, 1, fixed[:3], new, (93.0, 6.5))
