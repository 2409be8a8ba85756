"""Bad input ends a reference-gan command with one line and status 2; a bug keeps its traceback. Where
the paper tables go is the caller's to say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reference_gan.cli import main
from reference_gan.config import TrainConfig
from reference_gan.errors import ConfigError, ReferenceGanError, user_errors

REPO = Path(__file__).resolve().parent.parent


def test_user_errors_turns_the_packages_errors_into_status_2_and_lets_a_bug_through(capsys) -> None:
    with pytest.raises(SystemExit) as stopped, user_errors():
        raise ConfigError("labels must be 'none', 'all' or a positive count per class, not 'x'")
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "Error: labels must be 'none', 'all' or a positive count per class, not 'x'\n"
    with pytest.raises(ValueError, match="a bug"), user_errors():  # a plain ValueError is not bad input
        raise ValueError("a bug")


@pytest.mark.parametrize("fields, message", [
    ({"labels": "ten"}, "labels must be 'none', 'all' or a positive count per class, not 'ten'"),
    ({"d_input": "blur"}, "d_input must be one of 'noise', 'dropout', not 'blur'"),
    ({"g_steps": 0}, "g_steps must be at least 1, not 0"),
    ({"label_smoothing": 1.5}, "label_smoothing (the real target) must lie in (0, 1], not 1.5"),
])
def test_a_setting_out_of_its_values_is_refused_when_the_configuration_is_made(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        TrainConfig(**fields)
    assert str(refused.value) == message
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, ReferenceGanError)


def test_train_with_a_bad_setting_says_so_in_one_line_with_status_2(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(main, ["train", "--preset", "mnist-fm", "--dataset", "synthetic-mnist", "--labels", "ten",
                                        "--out", str(tmp_path / "run")])
    assert outcome.exit_code == 2
    assert outcome.output.strip().splitlines()[-1] == (
        "Error: labels must be 'none', 'all' or a positive count per class, not 'ten'")
    assert not (tmp_path / "run").exists()


def test_a_stray_folder_among_the_runs_is_named_with_status_2(tmp_path: Path) -> None:
    metrics = tmp_path / "runs" / "synthetic-mnist-2016-06-08" / "labels-20" / "seed-x" / "metrics.jsonl"
    metrics.parent.mkdir(parents=True)
    metrics.write_text("{}\n")
    outcome = CliRunner().invoke(main, ["semi-supervised", "--dataset", "synthetic-mnist", "--collect-only",
                                        "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 2
    assert "'seed-x' is not a run folder (seed-N or seed-N-data-M)" in outcome.output


def test_tables_go_to_benchmarks_results_under_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = CliRunner().invoke(main, ["semi-supervised", "--dataset", "synthetic-mnist", "--collect-only",
                                        "--runs", str(tmp_path / "runs")])
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "benchmarks" / "results" / "semi-supervised-synthetic-mnist.md").is_file()


@pytest.mark.parametrize("script", ["ablation.py", "semi_supervised.py"])
def test_the_benchmark_scripts_default_to_their_own_results_folder(script: str, tmp_path: Path) -> None:
    shown = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--help"], cwd=tmp_path,
                           capture_output=True, text=True, env={"PYTHONPATH": str(REPO)}, check=True)
    assert f"[default: {REPO / 'benchmarks' / 'results'}]" in " ".join(shown.stdout.split())  # the help, unwrapped
