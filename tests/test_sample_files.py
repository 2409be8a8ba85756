"""Sample files as users have them: guided-diffusion's ``np.savez(path, images, labels)`` (``arr_0``,
``arr_1``), read by rows without ever loading the array whole (stored or deflated), their labels
recorded and a class-sorted order flagged. Weights: genuine convolutions + a seeded random fc layer
(numbers are not Inception Scores)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from inception_score import InputError
from inception_score.cli.main import main
from inception_score.readers.files import dataset_labels, open_path
from inception_score.score.order import label_order
from inception_score.engine.runner import InceptionScorer


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(main, [*args, "--json", "--quiet", "--allow-unverified-weights"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_guided_diffusion_sample_file_scores_as_its_images_records_its_labels_and_flags_their_order(
        tmp_path: Path, loaded_once: InceptionScorer, genuine_weights_file: Path) -> None:
    rng = np.random.default_rng(4)
    arr = rng.integers(0, 256, (15, 32, 32, 3), dtype=np.uint8)
    label_arr = np.repeat(rng.choice(1000, 5, replace=False), 3)  # int64 classes, written class by class
    np.savez(tmp_path / "samples_15x32x32x3.npz", arr, label_arr)  # exactly as guided-diffusion's sampler writes
    np.save(tmp_path / "same.npy", arr)
    options = ["--splits", "3", "--batch-size", "8", "--weights", str(genuine_weights_file),
               "--allow-unverified-weights", "--json"]
    run = CliRunner().invoke(main, [str(tmp_path / "samples_15x32x32x3.npz"), *options], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    sample_file = json.loads(run.stdout)
    plain = run_json(str(tmp_path / "same.npy"), *options[:-1])
    assert sample_file["num_images"] == 15
    assert "['arr_0']" in sample_file["input"] and "labels ['arr_1']" in sample_file["input"]
    np.testing.assert_allclose(sample_file["split_scores"], plain["split_scores"], rtol=1e-9)
    assert sample_file["mean"] == pytest.approx(plain["mean"], rel=1e-9)
    assert sample_file["label_histogram"] == {str(label): 3 for label in label_arr}
    assert plain["label_histogram"] is None and plain["labels_sorted"] is None  # no labels: nothing to tell
    # 5 classes of 3 in runs (splits of 5 hold 2, 3 and 2 of them): a random order does that with
    # chance 5! 3!^5 / 15! = 7e-7.
    assert sample_file["labels_sorted"] is True
    assert any("sorted by class" in reason and "each split holds 2 to 3 of the 5 classes" in reason
               for reason in sample_file["not_comparable"])
    assert "labels are sorted by class" in run.stderr


def test_the_sorted_by_class_rule() -> None:
    """One run per class, at least two classes and two splits, and a random order unlikely to be so
    grouped: flagged whatever the class order; a random order, one class, one split, or labels too
    few to tell (distinct labels are one run each in any order): not flagged."""
    grouped = np.repeat([4, 1, 9, 0], 25)  # 100 images, classes in runs, not in numeric order
    order = label_order(grouped, 10)
    assert order.sorted_by_class and order.classes_per_split == (1, 2)  # splits of 10 across runs of 25
    assert order.histogram == {0: 25, 1: 25, 4: 25, 9: 25}
    assert label_order(np.repeat([2, 5], 12), 2).sorted_by_class  # chance 2 (12!)^2 / 24! = 7e-7
    assert not label_order(np.repeat([2, 5], 10), 2).sorted_by_class  # chance 2 (10!)^2 / 20! = 1e-5
    assert not label_order(np.arange(12), 3).sorted_by_class  # 12 distinct labels: one run each always
    shuffled = np.random.default_rng(0).permutation(grouped)
    assert not label_order(shuffled, 10).sorted_by_class
    assert not label_order(grouped, 10, shuffle_seed=2020).sorted_by_class  # --shuffle reorders before splitting
    assert not label_order(np.zeros(50, dtype=np.int64), 10).sorted_by_class
    assert not label_order(grouped, 1).sorted_by_class
    from inception_score.score.statistics import SplitRule

    chunks = label_order(grouped, SplitRule(splits=None, split_size=40))  # 40 + 40 + 20
    assert chunks.sorted_by_class and chunks.classes_per_split == (1, 3)  # 2, 3 and 1 of the runs of 25


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_an_npz_is_read_by_rows_and_never_whole(tmp_path: Path, writer, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (96, 64, 64, 3), dtype=np.uint8)  # 1.2 MB; one image 12 KB
    labels = rng.integers(0, 10, 96)
    path = tmp_path / "samples.npz"
    writer(path, images, labels)

    # The control: numpy's own reader allocates the whole array, and the measure below sees it.
    tracemalloc.start()
    with np.load(path) as whole:
        whole["arr_0"]
    control = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert control > images.nbytes

    def refuse(*args, **kwargs):
        raise AssertionError("np.load's whole-member read was used")

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", refuse)
    tracemalloc.start()
    dataset = open_path(path)
    for index in range(len(dataset)):
        assert np.array_equal(dataset[index].permute(1, 2, 0).numpy(), images[index])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < images.nbytes / 8, f"peak {peak:,} bytes while reading a {images.nbytes:,}-byte array"
    assert np.array_equal(dataset_labels(dataset), labels)
    assert dataset[5].shape == (3, 64, 64) and np.array_equal(dataset[5].permute(1, 2, 0).numpy(), images[5])


def test_sample_files_keep_clear_errors(tmp_path: Path) -> None:
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "two.npz", x=images, z=images)
    with pytest.raises(InputError, match=r"\['x', 'z'\] and none is named 'images' \(or 'arr_0'"):
        open_path(tmp_path / "two.npz")
    np.savez(tmp_path / "onehot.npz", images, np.eye(3))
    with pytest.raises(InputError, match=r"'arr_1' is read as the images' labels, but it is \(3, 3\) float64"):
        open_path(tmp_path / "onehot.npz")
    np.savez(tmp_path / "short.npz", images, np.arange(2))
    with pytest.raises(InputError, match=r"not one integer per image \(3,\)"):
        open_path(tmp_path / "short.npz")
    np.savez_compressed(tmp_path / "cut.npz", np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), np.uint8))
    data = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2] + data[-200:])  # the member's bytes cut short
    with pytest.raises(InputError):
        dataset = open_path(tmp_path / "cut.npz")
        for index in range(len(dataset)):
            dataset[index]


def test_the_size_limits_of_one_image_apply_to_array_files(tmp_path: Path) -> None:
    from inception_score.readers.decode import ReadLimits

    np.savez_compressed(tmp_path / "big.npz", np.zeros((2, 64, 64, 3), np.uint8))  # 4,096 pixels, 12,288 bytes each
    with pytest.raises(InputError, match="each image is 64x64 pixels, 12,288 bytes, over the limit of 1,000 pixels"):
        open_path(tmp_path / "big.npz", limits=ReadLimits(max_image_pixels=1000))
    with pytest.raises(InputError, match="over the limit of .* or 12,000 bytes"):
        open_path(tmp_path / "big.npz", limits=ReadLimits(max_file_bytes=12_000))
    assert len(open_path(tmp_path / "big.npz", limits=ReadLimits(max_image_pixels=4096, max_file_bytes=12_288))) == 2
