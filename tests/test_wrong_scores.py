"""No wrong score with exit 0 (issue 37): floats declared with a wider range than the one they fill,
logits that are not finite, an input given twice, a logits file changed by hand, and weights or a
sidecar whose values have the wrong type are each refused (exit 2 and one line; an
``InceptionScoreError`` in Python), never scored.

The network is the stand-in of tests/distributed_workers.py (pooled pixels times a fixed matrix),
except where the weights themselves are the point; expected scores are the paper's formula written
out in tests/distributed_workers.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import distributed_workers as workers
import inception_score.cli.main as cli
import inception_score.logits.file as logits_file
import inception_score.engine.runner as runner_module
from inception_score import InceptionScore, inception_score, score_generator
from inception_score.errors import InputError, WeightsFormatError
from inception_score.score.planned import inception_score_from_logits
from inception_score.network.weights import load_weights
from test_logits_integrity import refused  # the one error line of a run that exited with status 2


class GivesLogits(workers.PixelProjection):
    """The stand-in network, with one logit of image ``row`` replaced by ``value`` (NaN, inf)."""

    def __init__(self, value: float, row: int = 3) -> None:
        super().__init__()
        self.value, self.row, self.seen = value, row, 0

    def logits(self, batch) -> torch.Tensor:
        out = super().logits(batch)
        if self.seen <= self.row < self.seen + len(out):
            out[self.row - self.seen, 7] = self.value
        self.seen += len(out)
        return out


@pytest.fixture()
def stand_in(monkeypatch: pytest.MonkeyPatch):
    """Command runs use the stand-in network (or the one put in ``stand_in.network``)."""
    class Holder:
        network: object = workers.PixelProjection()

    monkeypatch.setattr(runner_module, "InceptionScorer", lambda *args, **kwargs: Holder.network)
    return Holder


def invoke(*args: str):
    return CliRunner().invoke(cli.main, [*args, "--device", "cpu"])


def scored(*args: str) -> dict:
    outcome = invoke(*args, "--json", "--quiet")
    assert outcome.exit_code == 0, outcome.output
    return json.loads(outcome.stdout)


# --- 1. floats declared with a wider range than they fill ------------------------------------

def unit_floats(count: int = 8, seed: int = 0) -> np.ndarray:
    """``(count, 16, 16, 3)`` float32 in [0, 1], as a sigmoid or ``ToTensor`` gives them."""
    return (workers.images(count, seed) / 255.0).astype(np.float32)


def test_unit_floats_declared_minus_one_to_one_are_refused_by_the_command(tmp_path: Path, stand_in) -> None:
    np.save(tmp_path / "f.npy", unit_floats())
    refused(invoke(str(tmp_path / "f.npy"), "--input-range", "-1,1", "--splits", "2"), "[0, 1]", "--input-range 0,1")


@pytest.mark.parametrize("layout", ["tensor", "list of images", "metric object"])
def test_unit_floats_declared_minus_one_to_one_are_refused_in_python(layout: str) -> None:
    images = torch.from_numpy(unit_floats()).permute(0, 3, 1, 2)
    with pytest.raises(InputError, match=r"look like floats in \[0, 1\]"):
        if layout == "tensor":
            inception_score(images, input_range=(-1, 1), splits=2, scorer=workers.PixelProjection())
        elif layout == "list of images":
            inception_score(list(images), input_range=(-1, 1), splits=2, scorer=workers.PixelProjection())
        else:
            metric = InceptionScore(input_range=(-1, 1), splits=2, scorer=workers.PixelProjection())
            metric.update(images)


def test_a_sigmoid_generator_under_the_default_range_is_refused() -> None:
    weight = torch.randn(8, 3 * 4 * 4, generator=torch.Generator().manual_seed(1))

    def sigmoid_generator(z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z @ weight).view(-1, 3, 4, 4)

    with pytest.raises(InputError, match=r"look like floats in \[0, 1\]"):
        score_generator(sigmoid_generator, 8, z_dim=8, splits=2, scorer=workers.PixelProjection())


def test_floats_that_fill_minus_one_to_one_still_score_as_their_pixels(tmp_path: Path, stand_in) -> None:
    pixels = workers.images(8, 0)
    np.save(tmp_path / "f.npy", (pixels / 127.5 - 1.0).astype(np.float32))
    result = scored(str(tmp_path / "f.npy"), "--input-range", "-1,1", "--splits", "2")
    assert result["mean"] == pytest.approx(np.mean(workers.naive_split_scores(pixels, 2)), rel=1e-5)


# --- 2. logits that are not finite -------------------------------------------------------------

@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_logit_is_refused_by_the_command(tmp_path: Path, stand_in, value: float) -> None:
    np.save(tmp_path / "c.npy", workers.images(8, 0))
    stand_in.network = GivesLogits(value)
    refused(invoke(str(tmp_path / "c.npy"), "--splits", "2", "--json"), "NaN or infinite logits")


@pytest.mark.parametrize("entry", ["call", "metric object", "generator", "logits"])
def test_a_non_finite_logit_is_refused_in_python(entry: str) -> None:
    images = torch.from_numpy(workers.images(8, 0)).permute(0, 3, 1, 2)
    with pytest.raises(InputError, match="NaN or infinite logits"):
        if entry == "call":
            inception_score(images, splits=2, scorer=GivesLogits(float("nan")))
        elif entry == "metric object":
            metric = InceptionScore(splits=2, scorer=GivesLogits(float("nan")))
            metric.update(images)
            metric.compute()
        elif entry == "generator":
            score_generator(lambda z: images[: len(z)], 8, z_dim=4, splits=2, scorer=GivesLogits(float("inf")))
        else:
            logits = workers.PixelProjection().logits(images)
            logits[5, 0] = float("nan")
            inception_score_from_logits(logits, splits=2)


@pytest.fixture(scope="module")
def weights_state(genuine_weights_file: Path) -> dict[str, torch.Tensor]:
    return torch.load(genuine_weights_file, map_location="cpu", weights_only=True)


def weights_with(tmp_path: Path, state: dict[str, torch.Tensor], key: str, tensor: torch.Tensor) -> Path:
    path = tmp_path / "edited.pth"
    torch.save({**state, key: tensor}, path)
    return path


def test_weights_with_a_nan_give_no_score(tmp_path: Path, weights_state) -> None:
    weight = weights_state["fc.weight"].clone()
    weight[3, 5] = float("nan")
    path = weights_with(tmp_path, weights_state, "fc.weight", weight)
    np.save(tmp_path / "c.npy", workers.images(4, 0))
    refused(invoke(str(tmp_path / "c.npy"), "--splits", "2", "--weights", str(path), "--allow-unverified-weights"),
            "fc.weight", "NaN")


def test_finite_weights_whose_logits_overflow_give_no_score(tmp_path: Path, weights_state) -> None:
    """fc.weight of 1e36 is finite, but pool_3 (2048 values near 0.3) times it passes float32's 3.4e38."""
    path = weights_with(tmp_path, weights_state, "fc.weight", torch.full_like(weights_state["fc.weight"], 1e36))
    images = torch.from_numpy(workers.images(2, 0)).permute(0, 3, 1, 2)
    with pytest.raises(InputError, match="NaN or infinite logits"):
        inception_score(images, splits=1, weights=path, allow_unverified=True, device="cpu")


# --- 6. weights of the wrong dtype ---------------------------------------------------------------

@pytest.mark.parametrize("key, dtype", [("fc.weight", torch.float16), ("Conv2d_1a_3x3.conv.weight", torch.int64),
                                        ("Mixed_7c.branch_pool.bn.running_var", torch.float64),
                                        ("fc.weight", torch.bfloat16)])
def test_a_weights_tensor_of_another_dtype_is_one_line(tmp_path: Path, weights_state, key: str,
                                                       dtype: torch.dtype) -> None:
    path = weights_with(tmp_path, weights_state, key, weights_state[key].to(dtype))
    np.save(tmp_path / "c.npy", workers.images(4, 0))
    refused(invoke(str(tmp_path / "c.npy"), "--splits", "2", "--weights", str(path), "--allow-unverified-weights"),
            key, str(dtype).removeprefix("torch."))
    with pytest.raises(WeightsFormatError, match=key):
        load_weights(path, allow_unverified=True)


# --- 3. an input given twice -----------------------------------------------------------------------

def write_folder(root: Path, count: int, seed: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(workers.images(count, seed)):
        Image.fromarray(image).save(root / f"{index:02d}.png")
    return root


def twice(tmp_path: Path, case: str) -> tuple[str, str]:
    """Two paths that are one input, or one inside the other."""
    np.save(tmp_path / "c.npy", workers.images(6, 0))
    folder = write_folder(tmp_path / "f", 4, 1)
    write_folder(folder / "sub", 4, 2)
    if case == "the same file":
        return str(tmp_path / "c.npy"), str(tmp_path / "c.npy")
    if case == "a symbolic link":
        os.symlink(tmp_path / "c.npy", tmp_path / "link.npy")
        return str(tmp_path / "c.npy"), str(tmp_path / "link.npy")
    if case == "a hard link":
        os.link(tmp_path / "c.npy", tmp_path / "hard.npy")
        return str(tmp_path / "c.npy"), str(tmp_path / "hard.npy")
    if case == "a folder and its subfolder":
        return str(folder), str(folder / "sub")
    if case == "a subfolder and its folder":
        return str(folder / "sub"), str(folder)
    if case == "a folder spelt twice":
        return str(folder), str(folder / "sub" / "..")
    if case == "a folder and a file in it":
        return str(folder), str(folder / "sub" / "01.png")
    assert case == "a folder holding a link to a file given"
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(folder / "02.png", other / "x.png")
    return str(folder / "02.png"), str(other)


CASES = ["the same file", "a symbolic link", "a hard link", "a folder and its subfolder", "a subfolder and its folder",
         "a folder spelt twice", "a folder and a file in it", "a folder holding a link to a file given"]


@pytest.mark.parametrize("case", CASES)
def test_an_input_given_twice_is_refused_naming_both(tmp_path: Path, stand_in, case: str) -> None:
    first, second = twice(tmp_path, case)
    line = refused(invoke(first, second, "--splits", "2"), "counted twice")
    assert Path(first).name in line and Path(second).name in line


def test_an_input_given_twice_is_refused_in_python(tmp_path: Path) -> None:
    first, second = twice(tmp_path, "a folder and its subfolder")
    with pytest.raises(InputError, match="counted twice"):
        inception_score([first, second], splits=2, scorer=workers.PixelProjection())


def test_two_different_inputs_still_score_as_their_images_together(tmp_path: Path, stand_in) -> None:
    np.save(tmp_path / "a.npy", workers.images(6, 0))
    np.save(tmp_path / "b.npy", workers.images(6, 1))
    result = scored(str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--splits", "2")
    together = np.concatenate([workers.images(6, 0), workers.images(6, 1)])
    assert result["mean"] == pytest.approx(np.mean(workers.naive_split_scores(together, 2)), rel=1e-9)


# --- 4. a logits file changed by hand --------------------------------------------------------------

def saved_file(tmp_path: Path, count: int = 20) -> tuple[Path, Path, np.ndarray]:
    images, logits = tmp_path / "s.npy", tmp_path / "l.npy"
    pixels = workers.images(count, 0)
    np.save(images, pixels)
    scored(str(images), "--splits", "2", "--batch-size", "64", "--save-logits", str(logits))
    return images, logits, pixels


def edit_sidecar(logits: Path, **changes) -> None:
    info = json.loads(logits_file.sidecar(logits).read_text())
    logits_file.sidecar(logits).write_text(json.dumps({**info, **changes}))


def test_one_logit_changed_by_hand_is_refused_not_scored(tmp_path: Path, stand_in) -> None:
    _, logits, _ = saved_file(tmp_path)
    rows = np.load(logits, mmap_mode="r+")
    rows[7, 3] += 0.5
    rows.flush()
    del rows
    refused(invoke("--from-logits", str(logits), "--splits", "2"), "rows 0-19", "checksum")


def test_an_unchanged_logits_file_scores_as_its_images(tmp_path: Path, stand_in) -> None:
    _, logits, pixels = saved_file(tmp_path)
    result = scored("--from-logits", str(logits), "--splits", "2")
    assert result["mean"] == pytest.approx(np.mean(workers.naive_split_scores(pixels, 2)), rel=1e-6)


def partial(tmp_path: Path) -> tuple[Path, Path]:
    """A file of 300 images interrupted after 256 (its first block), as a resume finds it."""
    images, logits, _ = saved_file(tmp_path, 300)
    info = json.loads(logits_file.sidecar(logits).read_text())
    edit_sidecar(logits, done=256, blocks=info["blocks"][:1], rows=info["rows"][:1])
    return images, logits


def test_a_partial_file_resumes_to_the_score_of_its_images(tmp_path: Path, stand_in) -> None:
    images, logits = partial(tmp_path)
    result = scored(str(images), "--splits", "2", "--save-logits", str(logits))
    assert result["mean"] == pytest.approx(np.mean(workers.naive_split_scores(workers.images(300, 0), 2)), rel=1e-6)


@pytest.mark.parametrize("field", ["blocks", "rows"])
def test_a_sidecar_with_fewer_digests_than_rows_fails_the_resume_check(tmp_path: Path, stand_in, field: str) -> None:
    images, logits = partial(tmp_path)
    edit_sidecar(logits, **{field: []})
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)), f"0 {field} digests for 256 rows")


def test_a_kept_row_changed_by_hand_fails_the_resume_check(tmp_path: Path, stand_in) -> None:
    images, logits = partial(tmp_path)
    rows = np.load(logits, mmap_mode="r+")
    rows[100, 0] = 0.0
    rows.flush()
    del rows
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)), "rows 0-255", "checksum")


def test_a_file_without_row_checksums_is_re_scored_with_a_caveat_and_never_resumed(tmp_path: Path, stand_in) -> None:
    images, logits, pixels = saved_file(tmp_path)
    info = json.loads(logits_file.sidecar(logits).read_text())
    del info["rows"]
    logits_file.sidecar(logits).write_text(json.dumps({**info, "format": 2}))  # what the version before wrote
    result = scored("--from-logits", str(logits), "--splits", "2")
    assert result["mean"] == pytest.approx(np.mean(workers.naive_split_scores(pixels, 2)), rel=1e-6)
    assert any("no checksum" in reason for reason in result["not_comparable"])
    edit_sidecar(logits, done=10, blocks=info["blocks"])
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)), "without checksums")


# --- 6. sidecar fields of the wrong type --------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("num_images", 20.0), ("weights_sha256", None), ("done", "20"),
                                          ("done", True), ("weights_verified", 1), ("input", 3), ("blocks", [1]),
                                          ("rows", "abc"), ("format", None), ("num_images", -1), ("done", 21)])
def test_a_sidecar_field_of_the_wrong_type_is_one_line(tmp_path: Path, stand_in, field: str, value) -> None:
    images, logits, _ = saved_file(tmp_path)
    edit_sidecar(logits, **{field: value})
    refused(invoke("--from-logits", str(logits), "--splits", "2"), logits_file.sidecar(logits).name)
    refused(invoke(str(images), "--splits", "2", "--save-logits", str(logits)), logits_file.sidecar(logits).name)


def test_a_sidecar_that_is_not_an_object_is_one_line(tmp_path: Path, stand_in) -> None:
    _, logits, _ = saved_file(tmp_path)
    logits_file.sidecar(logits).write_text("[1, 2]")
    refused(invoke("--from-logits", str(logits), "--splits", "2"), logits_file.sidecar(logits).name)
