"""A link planted in an output folder is never followed (issue 37). Anyone who can write to the folder
a run writes in may put a symbolic link at a name the run will use, pointing at a file of the user's;
writing through it would replace that file. For every kind of file the package and reference_gan
write, this test first records every name the run opens for writing in its folder (an audit hook
sees each ``open``), then, in a fresh folder, plants a link at each of those names and at each output
name in turn, reruns, and checks that the link's target is untouched. It also checks that every
file opened for writing there was created exclusively (``O_CREAT | O_EXCL``: a temporary name
cannot be planted in advance) or opened with ``O_NOFOLLOW`` (a file written in place, such as the
rows of a logits file, refuses a link with one line). The scorer is the exact pixel projection of
``distributed_workers`` (no network needed to write files)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import distributed_workers as workers
from gan_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

# What the victim holds: a valid record line, so that a reader that meets it (a table's collector)
# goes on to the write instead of stopping early.
VICTIM_TEXT = '{"epoch": 1, "step": 1, "test_err": 0.25}\n'
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

_opened: list[tuple[str, int]] | None = None  # while recording: (absolute path, flags) of every open


def _audit(event: str, args: tuple) -> None:
    if event != "open" or _opened is None:
        return
    try:
        path, _, flags = args
        if isinstance(path, (str, bytes, os.PathLike)):
            _opened.append((os.path.abspath(os.fsdecode(path)), int(flags)))
    except Exception:  # an audit hook must never break the operation it watches
        pass


sys.addaudithook(_audit)  # stays for the session; it records only inside record_opens()


def record_opens(action: Callable[[], object]) -> tuple[object, list[tuple[str, int]]]:
    global _opened
    _opened = []
    try:
        return action(), list(_opened)
    finally:
        _opened = None


@dataclass(frozen=True)
class Scenario:
    """A run that writes ``outputs`` (names in the folder it is given); ``write(folder)`` returns None when
    it succeeded, else its error line. ``in_place``: names written in place, where a link is refused."""

    name: str
    write: Callable[[Path], str | None]
    outputs: tuple[str, ...]
    in_place: tuple[str, ...] = ()
    needs: str | None = None  # a module the scenario needs


# --- the runs ---------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("feature_stand_in")  # tests/conftest.py: the exact stand-in, with features


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two arrays of 20 images each, outside every output folder."""
    return workers.save_arrays(tmp_path_factory.mktemp("inputs"), {"a.npy": 20, "b.npy": 20})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a two-step MNIST run (for ``reference-gan sample``)."""
    return _train(tmp_path_factory.mktemp("trained"), sample_every_epochs=0) / "checkpoint.pt"


def _train(folder: Path, sample_every_epochs: int) -> Path:
    from reference_gan.presets import preset
    from reference_gan.train import Trainer

    config = preset("mnist-fm", dataset="synthetic-mnist", labels="2", out_dir=str(folder), epochs=1,
                    steps_per_epoch=2, batch_size=10, init_examples=20, sample_every_epochs=sample_every_epochs)
    Trainer(config).run(log=False)
    return folder


def _command(main, args: list[str]) -> str | None:
    outcome = CliRunner().invoke(main, args)
    if outcome.exit_code == 0:
        return None
    lines = outcome.stderr.strip().splitlines()
    refused = outcome.exit_code == 2 and lines and lines[-1].startswith("Error: ")
    assert refused and not lines[-1].startswith("Error: unexpected"), (outcome.exit_code, outcome.output,
                                                                        outcome.exception)
    return lines[-1]


def _score(*args: str) -> str | None:
    from inception_score.cli.main import main

    return _command(main, [*args, "--splits", "2", "--quiet", "--device", "cpu"])


def _refusal(action: Callable[[], object]) -> str | None:
    """None when ``action`` succeeds; the message of a refusal on purpose."""
    from inception_score.errors import InceptionScoreError
    from reference_gan.errors import ReferenceGanError

    try:
        action()
    except (InceptionScoreError, ReferenceGanError) as error:
        return str(error)
    return None


def scenarios(inputs: Path, trained: Path) -> list[Scenario]:
    a, b = str(inputs / "a.npy"), str(inputs / "b.npy")
    return [
        Scenario("--save-logits and its sidecar", lambda f: _score(a, "--save-logits", str(f / "SL.npy")),
                 ("SL.npy", "SL.npy.json"), in_place=("SL.npy",)),
        Scenario("--output", lambda f: _score(a, "--output", str(f / "p.json")), ("p.json",)),
        Scenario("--save-features", lambda f: _score(a, "--save-features", str(f / "sf.npz")), ("sf.npz",)),
        Scenario("--save-reference", lambda f: _score(a, "--save-reference", str(f / "sr.npz")), ("sr.npz",)),
        Scenario("the reference cache", lambda f: _cached_reference(a, b, f), ()),
        Scenario("--each --output", lambda f: _score(a, b, "--each", "--output", str(f / "e.json")), ("e.json",)),
        Scenario("--per-class", lambda f: _score(a, "--per-class", str(f / "pc.png")), ("pc.png",),
                 needs="matplotlib"),
        Scenario("--infinity-plot", lambda f: _score(a, "--infinity-plot", str(f / "inf.png")), ("inf.png",),
                 needs="matplotlib"),
        Scenario("checkpoint", lambda f: _refusal(lambda: _save_checkpoint(f)), ("checkpoint.pt",)),
        Scenario("reference-gan train (config, metrics, checkpoint, sample grid)",
                 lambda f: _refusal(lambda: _train(f, sample_every_epochs=1)),
                 ("config.json", "metrics.jsonl", "checkpoint.pt", "samples-epoch0001.png"),
                 in_place=("metrics.jsonl",)),
        Scenario("reference-gan sample --out", lambda f: _gan_command(
            ["sample", "--checkpoint", str(trained), "-n", "3", "--out", str(f / "s.npz")]), ("s.npz",)),
        Scenario("reference-gan ablation table (csv, figure)", lambda f: _refusal(lambda: _ablation_files(f)),
                 ("t.csv", "t.png"), needs="matplotlib"),
        Scenario("reference-gan semi-supervised table", lambda f: _refusal(lambda: _semi_supervised_table(inputs, f)),
                 ("semi-supervised-synthetic-mnist.md", "semi-supervised-synthetic-mnist.json",
                  "semi-supervised-synthetic-mnist.png",
                  "semi-supervised-synthetic-mnist-2016-06-08-labels-20-seed-1.jsonl"), needs="matplotlib"),
        Scenario("development weights", lambda f: _refusal(lambda: _dev_weights(f)), ("dev.pth",)),
        Scenario("weights download", lambda f: _refusal(lambda: _download(f)), ("w.pth",)),
    ]


# A hook for outputs still to come: add the scenario's name here until the option exists.
NOT_YET: dict[str, str] = {}


def _gan_command(args: list[str]) -> str | None:
    from reference_gan.cli import main

    return _command(main, args)


def _save_checkpoint(folder: Path) -> None:
    from reference_gan.checkpoints import save_checkpoint

    save_checkpoint({"weights": torch.arange(4.0)}, folder / "checkpoint.pt")


def _ablation_files(folder: Path) -> None:
    from reference_gan.ablation import ScoreRow, save_ablation_figure, write_ablation_csv

    write_ablation_csv([ScoreRow("real", 2.0, 0.1, 10, None), ScoreRow("our-methods", 1.5, 0.2, 10, 100)],
                       folder / "t.csv")
    save_ablation_figure({"real": workers.images(3), "our-methods": workers.images(3, seed=1)}, folder / "t.png")


def _semi_supervised_table(inputs: Path, folder: Path) -> None:
    from reference_gan.semi_supervised import write_semi_supervised_table

    runs = inputs / "runs"
    record = runs / "synthetic-mnist-2016-06-08" / "labels-20" / "seed-1" / "metrics.jsonl"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"epoch": 1, "step": 1, "test_err": 0.5}) + "\n")
    write_semi_supervised_table("synthetic-mnist", runs, folder)


def _cached_reference(samples: str, reference: str, folder: Path) -> str | None:
    """A run whose --reference images' features are cached in ``folder`` (``$INCEPTION_SCORE_CACHE``)."""
    before = os.environ.get("INCEPTION_SCORE_CACHE")
    os.environ["INCEPTION_SCORE_CACHE"] = str(folder)
    try:
        return _score(samples, "--reference", reference, "--metrics", "fid")
    finally:
        if before is None:
            del os.environ["INCEPTION_SCORE_CACHE"]
        else:
            os.environ["INCEPTION_SCORE_CACHE"] = before


def _dev_weights(folder: Path) -> None:
    import inception_score.network.dev_weights as dev_weights

    original = dev_weights.genuine_conv_state_dict
    dev_weights.genuine_conv_state_dict = lambda *args: {"fc.weight": torch.zeros(2, 2)}  # the writing is tested
    try:
        dev_weights.write_genuine_conv_weights(folder / "dev.pth")
    finally:
        dev_weights.genuine_conv_state_dict = original


def _download(folder: Path) -> None:
    import urllib.request

    from inception_score.network.weights import KnownFile, download

    data = b"weights" * 100
    known = KnownFile("w.pth", len(data), hashlib.sha256(data).hexdigest(), "https://example.invalid/w.pth", "state_dict")
    original = urllib.request.urlopen
    urllib.request.urlopen = lambda *args, **kwargs: io.BytesIO(data)
    try:
        download(known, folder / "w.pth", progress=False)
    finally:
        urllib.request.urlopen = original


# --- the tests --------------------------------------------------------------------------------


SCENARIO_NAMES = ["--save-logits and its sidecar", "--output", "--save-features", "--save-reference",
                  "the reference cache", "--each --output", "--per-class", "--infinity-plot",
                  "checkpoint", "reference-gan train (config, metrics, checkpoint, sample grid)",
                  "reference-gan sample --out", "reference-gan ablation table (csv, figure)",
                  "reference-gan semi-supervised table", "development weights", "weights download"]


def test_every_scenario_is_listed(inputs: Path) -> None:
    assert [scenario.name for scenario in scenarios(inputs, Path("unused"))] == SCENARIO_NAMES


def _safe(flags: int) -> bool:
    exclusive = flags & os.O_CREAT and flags & os.O_EXCL
    return bool(exclusive or flags & getattr(os, "O_NOFOLLOW", 0))


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="no O_NOFOLLOW (Windows): links need privileges there")
@pytest.mark.parametrize("name", SCENARIO_NAMES + [pytest.param(name, marks=pytest.mark.skip(reason=why))
                                                   for name, why in NOT_YET.items()])
def test_a_link_planted_at_any_name_a_run_writes_is_never_followed(name: str, inputs: Path, trained: Path,
                                                                   tmp_path: Path) -> None:
    scenario = next(s for s in scenarios(inputs, trained) if s.name == name)
    if scenario.needs:
        pytest.importorskip(scenario.needs)
    clean = tmp_path / "clean"
    clean.mkdir()
    outcome, opened = record_opens(lambda: scenario.write(clean))
    assert outcome is None, f"{name}: the run without links failed: {outcome}"
    written = {(Path(path).relative_to(clean).as_posix(), flags) for path, flags in opened
               if Path(path).is_relative_to(clean) and flags & _WRITING}
    victims = tmp_path / "victims"
    victims.mkdir()
    followed, not_refused, left_as_link = [], [], []
    for index, planted in enumerate(sorted(set(scenario.outputs) | {path for path, _ in written})):
        folder = tmp_path / f"planted-{index}"
        (folder / planted).parent.mkdir(parents=True, exist_ok=True)
        victim = victims / f"{index}.txt"
        victim.write_text(VICTIM_TEXT)
        inode = victim.stat().st_ino
        (folder / planted).symlink_to(victim)
        outcome = scenario.write(folder)
        if victim.read_bytes() != VICTIM_TEXT.encode() or victim.stat().st_ino != inode:
            followed.append(planted)
        if planted in scenario.in_place and (outcome is None or "symbolic link" not in outcome):
            not_refused.append((planted, outcome))
        elif outcome is None and planted in scenario.outputs and (folder / planted).is_symlink():
            left_as_link.append(planted)
    assert not followed, f"{name}: a link planted at {followed} was followed: its target was overwritten"
    assert not not_refused, f"{name}: a link at a file written in place must be refused, naming it: {not_refused}"
    assert not left_as_link, f"{name}: the output is still the planted link: {left_as_link}"
    unsafe = sorted(path for path, flags in written if not _safe(flags))
    assert not unsafe, f"{name}: opened for writing without O_EXCL or O_NOFOLLOW: {unsafe}"
