"""Generators as people write them (issue 38, found 2): one left in training mode, and a [0, 1] (sigmoid)
generator under the default range (-1, 1), each get a warning and a ``not_comparable`` reason that says
what to do; the same generators written right get neither.

The scorer is the stand-in of tests/distributed_workers.py (exact per-image logits), so these run in
seconds; what is checked is what happens around the network, not the network."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import distributed_workers as workers
from inception_score import load_generator_file, score_generator
from inception_score.cli.main import main as inception_score_main
from inception_score import GeneratorWarning, InputError


class DCGANStyle(torch.nn.Module):
    """z (8) -> (3, 8, 8): linear, batch norm, ReLU, linear, then ``tanh`` (range (-1, 1)) or ``sigmoid``
    (range [0, 1]), as DCGAN-style generators are written."""

    def __init__(self, output: str = "tanh") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = torch.nn.Linear(8, 32)
        self.bn = torch.nn.BatchNorm1d(32)
        self.out = torch.nn.Linear(32, 3 * 8 * 8)
        self.squash = torch.tanh if output == "tanh" else torch.sigmoid

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.squash(self.out(torch.relu(self.bn(self.hidden(z))))).view(-1, 3, 8, 8)


def score(generator, batch_size: int = 10, **kwargs):
    return score_generator(generator, 20, z_dim=8, batch_size=batch_size, splits=2, scorer=workers.PixelProjection(),
                           **kwargs)


def generator_reasons(result) -> list[str]:
    return [reason for reason in result.not_comparable if "generator" in reason]


def test_a_generator_in_training_mode_is_warned_about_and_marked_with_what_to_do() -> None:
    generator = DCGANStyle().train()
    with pytest.warns(GeneratorWarning, match=r"training mode \(bn \(BatchNorm1d\)\).*G\.eval\(\)"):
        result = score(generator)
    (reason,) = generator_reasons(result)
    assert "batch_size=10" in reason and "G.eval()" in reason and not result.comparable
    assert result.generator is not None and result.generator["training_mode"] is True
    # What the reason says is so: with batch statistics the score moves with the batch size.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeneratorWarning)
        assert score(generator, batch_size=4).mean != pytest.approx(result.mean, rel=1e-6)


def test_the_same_generator_in_eval_mode_gets_no_warning_and_no_reason() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneratorWarning)
        result = score(DCGANStyle().eval())
    assert generator_reasons(result) == []


def test_batch_statistics_said_to_be_meant_are_not_flagged() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneratorWarning)
        result = score(DCGANStyle().train(), batch_statistics=True)
    assert generator_reasons(result) == [] and result.generator["batch_statistics"] is True


def test_training_mode_without_layers_it_changes_is_not_flagged() -> None:
    plain = torch.nn.Sequential(torch.nn.Linear(8, 3 * 8 * 8), torch.nn.Tanh(), torch.nn.Unflatten(1, (3, 8, 8)))
    assert plain.training
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneratorWarning)
        assert generator_reasons(score(plain)) == []


def test_a_torchscript_generator_saved_in_training_mode_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "generator.pt"
    torch.jit.script(DCGANStyle().train()).save(str(path))
    with pytest.warns(GeneratorWarning, match="training mode"):
        result = score(load_generator_file(path))
    assert len(generator_reasons(result)) == 1


def test_a_sigmoid_generator_under_the_default_range_is_refused_or_warned_about_and_marked() -> None:
    """Batches of several images are refused where every float input is checked (inception_score.readers.pixels:
    an error that says what to declare); a generator whose batches hold one image each, which that check
    cannot judge, is warned about and marked once all its samples are seen."""
    generator = DCGANStyle("sigmoid").eval()
    with pytest.raises(InputError, match=r"look like floats in \[0, 1\].*input_range=\(0, 1\)"):
        score(generator)
    with pytest.warns(GeneratorWarning, match=r"never went below 0 in 20 samples.*input_range=\(0, 1\)"):
        result = score(generator, batch_size=1)
    (reason,) = generator_reasons(result)
    assert "(-1, 1)" in reason and not result.comparable
    # Declared right, it is scored without a word, and differently: [0, 1] read as (-1, 1) is washed out.
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneratorWarning)
        right = score(generator, batch_size=1, input_range=(0, 1))
    assert generator_reasons(right) == [] and right.mean != pytest.approx(result.mean, rel=1e-3)


def test_a_tanh_generator_under_the_default_range_is_not_flagged() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneratorWarning)
        assert generator_reasons(score(DCGANStyle("tanh").eval())) == []


def test_the_command_says_each_generator_problem_once_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inception_score.engine.runner as runner_module

    monkeypatch.setattr(runner_module, "InceptionScorer", lambda *args, **kwargs: workers.PixelProjection())
    path = tmp_path / "generator.pt"
    arguments = ["--generator", str(path), "--num-samples", "20", "--z-dim", "8", "--splits", "2", "--batch-size", "10",
                 "--device", "cpu"]
    torch.jit.script(DCGANStyle("tanh").train()).save(str(path))
    result = CliRunner().invoke(inception_score_main, arguments)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("training mode") == 1 and "GeneratorWarning" not in result.stderr
    # A sigmoid generator's batches are refused where every float input is checked: one line, status 2.
    torch.jit.script(DCGANStyle("sigmoid").eval()).save(str(path))
    result = CliRunner().invoke(inception_score_main, arguments)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "--input-range 0,1" in result.stderr
