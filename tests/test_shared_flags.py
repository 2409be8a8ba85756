"""``inception-score`` and ``reference-gan score`` read as one family: the flags they share are defined
once (inception_score/cli/flags.py), with one name, default and help text, and ``reference-gan score``
shows the same progress bar on a terminal and is silent with ``--quiet``."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from inception_score.cli import flags
from inception_score.cli.main import main as inception_main
from inception_score.options import ScorerOptions
from inception_score.protocol import PUBLISHED_IMAGES, PUBLISHED_SPLITS
from reference_gan.cli import main as gan_main

# Flags both commands take under one name that mean different things there, and why.
DIFFERENT_ON_PURPOSE = {
    # inception-score: the seed of --shuffle and of --generator's z (torch-fidelity's 2020); reference-gan
    # score: the seed of z only, 0 as for `reference-gan sample`, so the two give the same images.
    "--seed",
}


def options_by_name(command: click.Command) -> dict[str, click.Option]:
    """Each option of ``command`` under each of its spellings (``-n``, ``--num-samples``)."""
    found = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = param
    return found


def description(option: click.Option) -> dict:
    """What a user sees of an option: names, default, help, type, environment variable."""
    return {"opts": option.opts, "name": option.name, "default": option.default, "help": option.help,
            "type": repr(option.type), "is_flag": option.is_flag, "envvar": option.envvar,
            "show_default": option.show_default}


COMMANDS = {"inception-score": inception_main, "reference-gan score": gan_main.commands["score"]}


def test_the_flags_both_commands_take_are_one_definition() -> None:
    mine, gans = (options_by_name(command) for command in COMMANDS.values())
    common = (set(mine) & set(gans)) - {"-h", "--help"}
    assert DIFFERENT_ON_PURPOSE <= common
    for name in sorted(common - DIFFERENT_ON_PURPOSE):
        for label, options in zip(COMMANDS, (mine, gans)):
            assert isinstance(options[name], flags.SharedOption), (
                f"{label} defines {name} itself: use the decorator of inception_score/cli/flags.py")
        assert description(mine[name]) == description(gans[name]), name
    # every shared flag is taken by both commands
    for label, options in zip(COMMANDS, (mine, gans)):
        shared = {option.name for option in options.values() if isinstance(option, flags.SharedOption)}
        assert shared == set(flags.SHARED), label


def test_the_shared_defaults_are_those_of_the_scorer_and_the_protocol() -> None:
    options = options_by_name(COMMANDS["reference-gan score"])
    assert options["--splits"].default == PUBLISHED_SPLITS == 10
    assert options["-n"].default == PUBLISHED_IMAGES == 50_000 and options["-n"] is options["--num-samples"]
    for flag, field in (("--device", "device"), ("--precision", "precision"), ("--exact-kernel", "exact_kernel"),
                        ("--allow-unverified-weights", "allow_unverified")):
        assert options[flag].default == getattr(ScorerOptions(), field), flag


def test_a_flag_defined_twice_is_found() -> None:
    @click.command()
    @flags.DEVICE
    @click.option("--quiet", is_flag=True, help="no progress bar or notes")
    def copy(device: str, quiet: bool) -> None:
        pass

    options = options_by_name(copy)
    assert isinstance(options["--device"], flags.SharedOption)
    assert not isinstance(options["--quiet"], flags.SharedOption)  # same text, but a second definition


def test_splits_and_split_size_together_are_refused_by_both(tmp_path: Path) -> None:
    checkpoint = tmp_path / "c.pt"
    checkpoint.write_bytes(b"")
    for command, args in ((inception_main, [str(tmp_path)]), (gan_main, ["score", str(checkpoint)])):
        outcome = CliRunner().invoke(command, [*args, "--splits", "10", "--split-size", "5"])
        assert outcome.exit_code == 2 and "give --splits or --split-size, not both" in outcome.stderr


# --- reference-gan score's progress and --quiet -----------------------------------------------------------


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a person's is."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a tiny CIFAR-10 model after one step (its 32x32 RGB images suit the stand-in)."""
    import torch

    from reference_gan import Trainer, preset

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("run")
    trainer = Trainer(preset("our-methods", dataset="synthetic-cifar10", batch_size=4, init_examples=8,
                             steps_per_epoch=1, epochs=1, test_limit=8, sample_every_epochs=0,
                             out_dir=str(folder / "run"), labels="all"))
    trainer.run(log=False)
    return trainer.save(folder / "c.pt")


def score_on_a_terminal(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[str, str]:
    """``reference-gan score`` run with a stderr that is a terminal: (stdout, stderr)."""
    stdout, stderr = io.StringIO(), Terminal()
    with monkeypatch.context() as patch, pytest.raises(SystemExit) as done:
        patch.setattr(sys, "stdout", stdout)
        patch.setattr(sys, "stderr", stderr)
        gan_main.main(["score", *args], prog_name="reference-gan")
    assert done.value.code == 0, stderr.getvalue()
    return stdout.getvalue(), stderr.getvalue()


@pytest.mark.usefixtures("exact_stand_in")  # tests/conftest.py: a fixed projection of the pixels, no weights
def test_reference_gan_score_shows_progress_on_a_terminal_and_nothing_with_quiet(
        checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = [str(checkpoint), "-n", "20", "--splits", "2", "--device", "cpu", "--json"]
    stdout, stderr = score_on_a_terminal(monkeypatch, *args)
    assert json.loads(stdout)["num_images"] == 20
    # tqdm's bar, named as inception-score names it, counting images up to 20
    assert "Inception Score" in stderr and "20/20" in stderr and "img" in stderr
    assert "warning: not comparable with published scores" in stderr
    quiet_stdout, quiet_stderr = score_on_a_terminal(monkeypatch, *args, "--quiet")
    assert quiet_stderr == ""
    assert json.loads(quiet_stdout)["split_scores"] == json.loads(stdout)["split_scores"]
