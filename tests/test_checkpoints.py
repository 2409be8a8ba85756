"""reference_gan checkpoints load no code: a crafted pickle is refused on every command that reads one,
the RNG states survive as tensors, and a save interrupted half-way leaves the previous checkpoint usable."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gan_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from reference_gan import checkpoints
from reference_gan.checkpoints import CheckpointError, load_checkpoint, rng_states, save_checkpoint, set_rng_states
from reference_gan.cli import main
from reference_gan.presets import preset
from reference_gan.train import Trainer

MARKER = "payload-ran"


class RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint does."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def crafted_checkpoint(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": checkpoints.FORMAT, "config": {"epochs": 1}, "G": RunsCode()}, path)
    return path


def tiny(tmp_path: Path, **extra) -> dict:
    return dict(dataset="synthetic-mnist", labels="2", out_dir=str(tmp_path / "run"), epochs=1, steps_per_epoch=2,
                batch_size=10, init_examples=20, sample_every_epochs=0, **extra)


def assert_refused(outcome, path: Path, cwd: Path) -> None:
    assert outcome.exit_code == 2, outcome.output
    lines = outcome.output.strip().splitlines()
    assert lines[-1].startswith("Error: refusing to load") and path.name in lines[-1], outcome.output
    assert "Traceback" not in outcome.output and "weights_only=False" not in outcome.output
    assert not (cwd / MARKER).exists()  # the payload did not run


def test_sample_refuses_a_crafted_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = crafted_checkpoint(tmp_path / "evil.pt")
    outcome = CliRunner().invoke(main, ["sample", "--checkpoint", str(evil), "-n", "3", "--out", "s.npz"])
    assert_refused(outcome, evil, tmp_path)


def test_train_resume_refuses_a_crafted_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = crafted_checkpoint(tmp_path / "evil.pt")
    outcome = CliRunner().invoke(main, ["train", "--preset", "mnist-fm", "--dataset", "synthetic-mnist", "--labels", "2",
                                        "--out", "run", "--set", "steps_per_epoch=1", "--set", "batch_size=10",
                                        "--set", "init_examples=20", "--resume", str(evil)])
    assert_refused(outcome, evil, tmp_path)


def test_semi_supervised_automatic_resume_refuses_a_crafted_checkpoint(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # The file only has to lie where the command looks for a run to continue.
    evil = crafted_checkpoint(tmp_path / "runs" / "synthetic-mnist-2016-06-08" / "labels-20" / "seed-1" / "checkpoint.pt")
    args = ["semi-supervised", "--dataset", "synthetic-mnist", "--labels", "20", "--runs", "runs", "--results", "results",
            "--set", "steps_per_epoch=1", "--set", "batch_size=4", "--set", "init_examples=8"]
    assert_refused(CliRunner().invoke(main, args), evil, tmp_path)
    # Collecting the table reads each run's config.json and metrics, never its checkpoint.
    (evil.parent / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "step": 1, "test_err": 0.5}) + "\n")
    outcome = CliRunner().invoke(main, args + ["--collect-only"])
    assert outcome.exit_code == 0, outcome.output
    assert not (tmp_path / MARKER).exists()


def test_old_checkpoints_with_pickled_numpy_state_get_a_clear_message(tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    torch.save({"config": {}, "numpy_rng": np.random.get_state()}, old)  # what versions before 0.2 wrote
    with pytest.raises(CheckpointError, match="older than 0.2"):
        load_checkpoint(old)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)  # loadable, but not a checkpoint of ours
    with pytest.raises(CheckpointError, match="not a reference-gan checkpoint"):
        load_checkpoint(plain)


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path: Path) -> None:
    np.random.seed(11)
    random.seed(12)
    torch.manual_seed(13)
    np.random.standard_normal()  # leaves a cached Gaussian in numpy's state
    random.gauss(0.0, 1.0)  # and in python's
    save_checkpoint({"rng": rng_states()}, tmp_path / "c.pt")
    expected = (np.random.standard_normal(4), random.gauss(0.0, 1.0), random.random(), torch.rand(3))
    np.random.seed(0)
    random.seed(0)
    torch.manual_seed(0)
    set_rng_states(torch.load(tmp_path / "c.pt", weights_only=True)["rng"])
    drawn = (np.random.standard_normal(4), random.gauss(0.0, 1.0), random.random(), torch.rand(3))
    np.testing.assert_array_equal(drawn[0], expected[0])
    assert drawn[1:3] == expected[1:3]
    assert torch.equal(drawn[3], expected[3])


def test_a_save_killed_half_way_leaves_the_previous_checkpoint_usable(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(preset("mnist-fm", **tiny(tmp_path)))
    trainer.run(log=False)  # saves at the end of its epoch
    path = Path(trainer.out_dir) / "checkpoint.pt"
    before = path.read_bytes()

    def dies_half_way(obj, handle) -> None:
        handle.write(before[: len(before) // 2])
        raise KeyboardInterrupt  # as a kill would stop it, mid-write

    monkeypatch.setattr(checkpoints.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        trainer.save()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 2  # still the previous one, whole


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the tiny MNIST run (two steps)."""
    folder = tmp_path_factory.mktemp("trained")
    trainer = Trainer(preset("mnist-fm", **tiny(folder)))
    trainer.run(log=False)
    return Path(trainer.out_dir) / "checkpoint.pt"


def altered(trained: Path, folder: Path, change) -> Path:
    """A copy of ``trained`` with ``change(state)`` applied."""
    state = load_checkpoint(trained)
    change(state)
    state.pop("format")
    return save_checkpoint(state, folder / "altered.pt")


def widened(state: dict) -> None:
    name = next(key for key, value in state["G"].items() if value.ndim == 2)
    state["G"][name] = torch.zeros(state["G"][name].shape[0], state["G"][name].shape[1] + 1)


def assert_one_line(outcome, path: Path, *parts: str) -> None:
    """Status 2 and one line on stderr naming the checkpoint (after the set-up line of ``train``)."""
    assert outcome.exit_code == 2, outcome.output
    lines = [line for line in outcome.stderr.strip().splitlines() if not line.startswith("training mnist-fm: ")]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path} holds "), outcome.stderr
    for part in parts:
        assert part in lines[0], outcome.stderr


def resume_args(path: Path) -> list[str]:
    return ["train", "--preset", "mnist-fm", "--dataset", "synthetic-mnist", "--labels", "2", "--out", "run",
            "--epochs", "2", "--set", "steps_per_epoch=2", "--set", "batch_size=10", "--set", "init_examples=20",
            "--set", "sample_every_epochs=0", "--resume", str(path)]


@pytest.mark.parametrize("command", ["sample", "score", "resume"])
def test_a_checkpoint_of_another_shape_names_the_tensor(command: str, trained: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = altered(trained, tmp_path, widened)
    name = next(key for key, value in load_checkpoint(path)["G"].items() if value.ndim == 2)
    there = tuple(load_checkpoint(path)["G"][name].shape)
    here = (there[0], there[1] - 1)
    args = {"sample": ["sample", "--checkpoint", str(path), "-n", "2", "--out", "s.npz"],
            "score": ["score", str(path), "-n", "10", "--device", "cpu"], "resume": resume_args(path)}[command]
    outcome = CliRunner().invoke(main, args)
    assert_one_line(outcome, path, f"a generator of another shape than the ", f"{name} is {there} there, {here} expected")
    assert not (tmp_path / "s.npz").exists()


@pytest.mark.parametrize("command", ["sample", "resume"])
def test_a_checkpoint_without_its_generator_says_what_it_holds(command: str, trained: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = altered(trained, tmp_path, lambda state: state.pop("G"))
    args = ["sample", "--checkpoint", str(path), "-n", "2", "--out", "s.npz"] if command == "sample" else resume_args(path)
    outcome = CliRunner().invoke(main, args)
    assert_one_line(outcome, path, "holds no generator ('G'; it holds D, config, ema, ")


@pytest.mark.parametrize("command", ["sample", "resume"])
def test_a_checkpoint_with_an_unknown_config_key_is_another_version(command: str, trained: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = altered(trained, tmp_path, lambda state: state["config"].update(warp_factor=9))
    args = ["sample", "--checkpoint", str(path), "-n", "2", "--out", "s.npz"] if command == "sample" else resume_args(path)
    outcome = CliRunner().invoke(main, args)
    assert_one_line(outcome, path, "a configuration with 1 key this version does not know (warp_factor)",
                    "another version of reference-gan")


def test_an_unaltered_checkpoint_still_resumes_and_samples(trained: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = CliRunner().invoke(main, ["sample", "--checkpoint", str(trained), "-n", "2",
                                                        "--out", "s.npz"])
    assert outcome.exit_code == 0, outcome.stderr
    assert np.load(tmp_path / "s.npz")["images"].shape == (2, 28, 28, 1)
    outcome = CliRunner().invoke(main, resume_args(trained))
    assert outcome.exit_code == 0, outcome.stderr
