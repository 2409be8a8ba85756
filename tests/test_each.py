"""``--each``: every PATH scored on its own with the network loaded once; JSON Lines, ``--output``,
and inputs that fail. Weights: genuine convolutions + a seeded random fc layer (numbers are not
Inception Scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import inception_score.engine.runner as scorer_module
from inception_score.cli.main import main
from inception_score.engine.runner import InceptionScorer

UNTIMED = {"elapsed_s", "images_per_second"}  # the only fields two runs of the same images may differ in


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three sample files of two 32x32 images each, as a sweep of checkpoints would leave them."""
    folder = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(6)
    paths = []
    for step in (1000, 2000, 3000):
        paths.append(folder / f"step-{step}.npz")
        np.savez(paths[-1], rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 2))
    return paths


def weights_options(weights: Path) -> list[str]:
    return ["--weights", str(weights), "--allow-unverified-weights", "--splits", "2", "--batch-size", "2", "--quiet"]


def test_each_line_equals_its_own_run_and_the_weights_load_once(
        checkpoints: list[Path], genuine_weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    real_loader = scorer_module.load_network

    def counting_loader(*args, **kwargs):
        loads.append(args)
        return real_loader(*args, **kwargs)

    monkeypatch.setattr(scorer_module, "load_network", counting_loader)
    jsonl = tmp_path / "sweep.jsonl"
    run = CliRunner().invoke(main, [*map(str, checkpoints), "--each", "--json", "--output", str(jsonl),
                                    *weights_options(genuine_weights_file)], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    assert len(loads) == 1  # three inputs, one network
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == lines  # --output: the same lines
    assert [line["path"] for line in lines] == [str(path) for path in checkpoints]

    # The separate runs share one network between them (built here: the loader counts it) to save time.
    shared: list[InceptionScorer] = []
    real_scorer = scorer_module.InceptionScorer
    monkeypatch.setattr(scorer_module, "InceptionScorer",
                        lambda *args, **kwargs: shared[0] if shared else shared.append(real_scorer(*args, **kwargs))
                        or shared[0])
    for path, line in zip(checkpoints, lines):
        alone = CliRunner().invoke(main, [str(path), "--json", *weights_options(genuine_weights_file)],
                                   catch_exceptions=False)
        assert alone.exit_code == 0, alone.output
        single = json.loads(alone.stdout)
        assert line["num_images"] == single["num_images"] == 2 and line["input"] == single["input"]
        # The same images in the same batches through the same kernels: equal but for timing.
        np.testing.assert_allclose(line["split_scores"], single["split_scores"], rtol=1e-9)
        assert line["mean"] == pytest.approx(single["mean"], rel=1e-9)
        assert line["std"] == pytest.approx(single["std"], rel=1e-9)
        same = {key for key in single if key not in UNTIMED | {"split_scores", "mean", "std"}}
        assert {key: line[key] for key in same} == {key: single[key] for key in same}
    assert len(loads) == 2  # the counter sees every network built


def test_a_failing_input_gets_its_line_under_skip_invalid_and_stops_the_run_otherwise(
        checkpoints: list[Path], genuine_weights_file: Path, tmp_path: Path, loaded_once: None) -> None:
    broken = tmp_path / "step-1500.npz"
    broken.write_bytes(b"not a zip file")
    paths = [str(broken), str(checkpoints[0])]
    skipping = CliRunner().invoke(main, [*paths, "--each", "--skip-invalid", *weights_options(genuine_weights_file)])
    assert skipping.exit_code == 2  # after the others are scored
    first, second = skipping.stdout.splitlines()
    assert first.startswith(f"{broken}: Error: ") and "could not be read as a numpy array file" in first
    assert second.startswith(f"{checkpoints[0]}: Inception Score: ")
    as_json = CliRunner().invoke(main, [*paths, "--each", "--skip-invalid", "--json",
                                        *weights_options(genuine_weights_file)])
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert records[0]["input"] == str(broken) and "error" in records[0] and records[1]["num_images"] == 2

    stopping = CliRunner().invoke(main, [*paths, "--each", *weights_options(genuine_weights_file)])
    assert stopping.exit_code == 2 and stopping.stdout == ""
    assert "could not be read as a numpy array file" in stopping.stderr


def test_each_refuses_the_options_that_name_one_file(checkpoints: list[Path]) -> None:
    result = CliRunner().invoke(main, [*map(str, checkpoints), "--each", "--per-class", "p.png"])
    assert result.exit_code == 2 and "--each scores every PATH on its own" in result.output
