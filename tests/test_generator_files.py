"""Generator files as the torch we pin writes them (issue 38, found 5): ``torch.export`` programs (``.pt2``)
are accepted and score as their module; a TorchScript file loads without torch's deprecation warnings
reaching the user. The scorer is the stand-in of tests/distributed_workers.py (exact per-image logits)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import distributed_workers as workers
from inception_score import GeneratorWarning, LatentSpec, latents, load_generator_file, score_generator
from inception_score.cli.main import main as inception_score_main
from inception_score.errors import InputError
from test_generator_checks import DCGANStyle


def export(module: torch.nn.Module, path: Path, dynamic: bool = True) -> Path:
    z = torch.zeros(4, 8)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.export.save(torch.export.export(module, (z,), dynamic_shapes=shapes), str(path))
    return path


def run(generator, **kwargs):
    return score_generator(generator, 20, z_dim=8, batch_size=6, splits=2, scorer=workers.PixelProjection(), **kwargs)


def test_a_pt2_generator_makes_its_modules_images_and_score(tmp_path: Path) -> None:
    module = DCGANStyle().eval()
    generator = load_generator_file(export(module, tmp_path / "G.pt2"))
    z, _ = latents(LatentSpec(8), 0, 20)
    with torch.no_grad():
        torch.testing.assert_close(generator(z), module(z), rtol=0, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneratorWarning)  # exported in eval mode: nothing to say
        ours = run(generator)
    # The same z, batches (6, 6, 6, 2) and images to float32 rounding: the stand-in's scores agree closely.
    assert ours.mean == pytest.approx(run(module).mean, rel=1e-6)
    assert [r for r in ours.not_comparable if "generator" in r] == []


def test_a_pt2_generator_exported_in_training_mode_is_flagged(tmp_path: Path) -> None:
    generator = load_generator_file(export(DCGANStyle().train(), tmp_path / "G.pt2"))
    assert generator.training is True
    with pytest.warns(GeneratorWarning, match="training mode"):
        result = run(generator)
    assert len([r for r in result.not_comparable if "training mode" in r]) == 1


def test_a_pt2_generator_of_one_batch_size_says_how_to_export_it(tmp_path: Path) -> None:
    generator = load_generator_file(export(DCGANStyle().eval(), tmp_path / "G.pt2", dynamic=False))
    with pytest.raises(InputError, match=r"does not take a batch of 6 z .*Dim\('batch'\)"):
        run(generator)


def test_a_file_that_is_not_a_pt2_program_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "G.pt2"
    path.write_bytes(b"not a program")
    with pytest.raises(InputError, match=r"is not a torch.export program .*torch\.export\.save"):
        load_generator_file(path)


def test_the_command_scores_a_pt2_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inception_score.engine.runner as runner_module

    monkeypatch.setattr(runner_module, "InceptionScorer", lambda *args, **kwargs: workers.PixelProjection())
    path = export(DCGANStyle().eval(), tmp_path / "G.pt2")
    result = CliRunner().invoke(inception_score_main, ["--generator", str(path), "--num-samples", "20", "--z-dim", "8",
                                                       "--splits", "2", "--batch-size", "6", "--device", "cpu",
                                                       "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["input"] == f"torch.export generator {path}"


def test_a_torchscript_generator_loads_without_torchs_deprecation_warnings(tmp_path: Path) -> None:
    path = tmp_path / "G.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's own notice, when the test writes it
        torch.jit.script(DCGANStyle().eval()).save(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generator = load_generator_file(path)
        generator(torch.zeros(3, 8))
