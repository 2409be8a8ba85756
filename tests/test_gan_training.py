"""The training loop: every preset runs, a resumed run is bit-identical, the data sets load, the CLI works."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import reference_gan.data as data_module
from gan_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from reference_gan.cli import main
from reference_gan.data import DataError, balanced_labelled_subset, load_cifar10, load_cifar10_partial, load_mnist, load_svhn
from reference_gan.layers import GaussianNoise, WNConv2d
from reference_gan.models import Discriminator
from reference_gan.config import model_config
from reference_gan.presets import PRESETS, preset
from reference_gan.train import Trainer, learning_rate


def tiny(name: str, tmp_path: Path, **overrides) -> Trainer:
    dataset = "synthetic-mnist" if PRESETS[name]["dataset"] == "mnist" else "synthetic-cifar10"
    fields = dict(dataset=dataset, batch_size=4, init_examples=8, steps_per_epoch=1, epochs=2, test_limit=8,
                  sample_every_epochs=0, out_dir=str(tmp_path / name), labels="all" if PRESETS[name].get("labels") != "none" else "none")
    fields.update(overrides)
    return Trainer(preset(name, **fields))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_without_nans_and_its_losses_move(name: str, tmp_path: Path) -> None:
    history = tiny(name, tmp_path).run(log=False)
    assert len(history) == 2
    for record in history:
        for key in ("loss_unl", "loss_g"):
            assert np.isfinite(record[key]), (name, record)
    assert history[0]["loss_unl"] != history[-1]["loss_unl"]
    assert history[0]["loss_g"] != history[-1]["loss_g"]


def parameters(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {f"D.{k}": v for k, v in trainer.D.state_dict().items()} | {f"G.{k}": v for k, v in trainer.G.state_dict().items()}


# The CIFAR case keeps historical averaging and virtual batch norm (state that must survive a resume)
# but drops the minibatch layer and the extra G steps, to stay quick on a CPU.
@pytest.mark.parametrize("name, extra", [("mnist-fm", {}), ("minus-l-plus-ha", {"minibatch_discrimination": False, "g_steps": 1})])
def test_resuming_from_a_checkpoint_is_bit_identical(name: str, extra: dict, tmp_path: Path) -> None:
    straight = tiny(name, tmp_path / "a", epochs=2, steps_per_epoch=2, **extra)
    straight.run(log=False)
    interrupted = tiny(name, tmp_path / "b", epochs=2, steps_per_epoch=2, max_steps=3, **extra)
    interrupted.run(log=False)
    checkpoint = interrupted.save(tmp_path / "mid.pt")
    resumed = tiny(name, tmp_path / "c", epochs=2, steps_per_epoch=2, **extra)
    resumed.run(resume=checkpoint, log=False)
    assert resumed.state.step == straight.state.step == 4
    expected, got = parameters(straight), parameters(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    for key, value in straight.ema.average.items():
        assert torch.equal(value, resumed.ema.average[key]), key


def test_balanced_labelled_subset_is_per_class_and_seeded() -> None:
    labels = np.repeat(np.arange(10), 50)
    chosen = balanced_labelled_subset(labels, 3, seed=1)
    assert np.array_equal(np.bincount(labels[chosen], minlength=10), np.full(10, 3))
    assert np.array_equal(chosen, balanced_labelled_subset(labels, 3, seed=1))
    assert not np.array_equal(chosen, balanced_labelled_subset(labels, 3, seed=2))
    with pytest.raises(DataError, match="only 50 examples of class 0"):
        balanced_labelled_subset(labels, 51, seed=1)


def test_mnist_from_the_standard_files(mnist_dir: Path, tmp_path: Path) -> None:
    data = load_mnist(mnist_dir)
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert data.train_x.min() == 0.0 and data.train_x.max() == 1.0
    assert np.array_equal(np.bincount(data.test_y), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for file in mnist_dir.glob("*.gz"):
        (damaged / file.name).write_bytes(file.read_bytes()[:-10] if "t10k-labels" in file.name else file.read_bytes())
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz has the wrong md5"):
        load_mnist(damaged)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz not found"):
        load_mnist(tmp_path)


def test_partial_cifar10(cifar10_partial_dir: Path) -> None:
    data = load_cifar10_partial(cifar10_partial_dir)
    assert data.train_x.shape == (5169, 3, 32, 32) and data.test_x.shape == (1017, 3, 32, 32)
    assert -1.0 <= data.train_x.min() and data.train_x.max() <= 1.0 and len(data.train_y) == 5169


def test_cifar10_python_batches_and_svhn_mat_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    md5s = {}
    for name in data_module.CIFAR10_FILES:
        rows = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        with open(tmp_path / name, "wb") as handle:
            pickle.dump({b"data": rows, b"labels": [1, 2, 3, 4]}, handle)
        md5s[name] = data_module._md5(tmp_path / name)
    monkeypatch.setattr(data_module, "CIFAR10_FILES", md5s)
    cifar = load_cifar10(tmp_path)
    assert cifar.train_x.shape == (20, 3, 32, 32) and cifar.test_x.shape == (4, 3, 32, 32)
    with open(tmp_path / "data_batch_1", "rb") as handle:
        first = pickle.load(handle)[b"data"][0]
    assert cifar.train_x[0, 1, 0, 0] == pytest.approx(first[1024] / 127.5 - 1, abs=1e-6)  # green plane starts at byte 1024

    x = rng.integers(0, 256, size=(32, 32, 3, 5), dtype=np.uint8)
    svhn_md5s = {}
    for name in data_module.SVHN_FILES:
        savemat(tmp_path / name, {"X": x, "y": np.array([[10], [1], [2], [3], [10]])})
        svhn_md5s[name] = data_module._md5(tmp_path / name)
    monkeypatch.setattr(data_module, "SVHN_FILES", svhn_md5s)
    svhn = load_svhn(tmp_path)
    assert svhn.train_x.shape == (5, 3, 32, 32) and list(svhn.train_y) == [0, 1, 2, 3, 0]
    assert svhn.train_x[4, 2, 5, 7] == pytest.approx(x[5, 7, 2, 4] / 127.5 - 1, abs=1e-6)


def test_cli_trains_and_samples_for_the_scorer(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--preset", "mnist-fm", "--dataset", "synthetic-mnist", "--out", str(out),
                                       "--epochs", "1", "--labels", "2", "--set", "steps_per_epoch=2",
                                       "--set", "batch_size=10", "--set", "init_examples=20"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 2 and "test_err" in record
    assert (out / "samples-epoch0001.png").is_file()
    samples = tmp_path / "samples.npz"
    result = CliRunner().invoke(main, ["sample", "--checkpoint", str(out / "checkpoint.pt"), "-n", "30", "--out", str(samples)])
    assert result.exit_code == 0, result.output
    images = np.load(samples)["images"]
    assert images.shape == (30, 28, 28, 1) and images.dtype == np.uint8
    from inception_score.readers.files import open_path

    assert len(open_path(samples)) == 30  # the scorer reads it as it is
    bad = CliRunner().invoke(main, ["train", "--preset", "mnist-fm", "--data-dir", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "not found" in bad.output


class FakeInceptionScore:
    """Stands in for inception_score.InceptionScore: records what it is given."""

    instances: list["FakeInceptionScore"] = []

    def __init__(self, splits: int = 10, *, num_images=None, weights=None, device="auto", **_: object) -> None:
        self.batches: list[torch.Tensor] = []
        self.resets = 0
        FakeInceptionScore.instances.append(self)

    def update(self, images: torch.Tensor) -> None:
        self.batches.append(images)

    def reset(self) -> None:
        self.resets += 1
        self.batches = []

    def compute(self):
        from types import SimpleNamespace

        count = sum(len(b) for b in self.batches)
        return SimpleNamespace(mean=float(count), std=0.5, weights_verified=False)


def test_inception_score_is_logged_through_the_metric_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inception_score

    FakeInceptionScore.instances = []
    monkeypatch.setattr(inception_score, "InceptionScore", FakeInceptionScore)
    history = tiny("mnist-fm", tmp_path, inception_every_epochs=1, inception_samples=30).run(log=False)
    assert [r["is_mean"] for r in history] == [30.0, 30.0]  # every image of each evaluation reached the metric
    (metric,) = FakeInceptionScore.instances  # built once, reset before each evaluation
    assert metric.resets == 2
    images = torch.cat(metric.batches)
    assert images.dtype == torch.uint8 and images.shape == (30, 3, 28, 28)  # grey MNIST given as RGB
    assert torch.equal(images[:, 0], images[:, 2])


def test_missing_inception_weights_warn_once_and_training_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    import inception_score
    from inception_score.errors import WeightsError

    def refuse(*args: object, **kwargs: object) -> None:
        raise WeightsError("no weights file here")

    monkeypatch.setattr(inception_score, "InceptionScore", refuse)
    history = tiny("mnist-fm", tmp_path, epochs=3, inception_every_epochs=1, inception_samples=10).run(log=False)
    assert len(history) == 3 and all("is_mean" not in r for r in history)
    assert capsys.readouterr().out.count("no Inception Score logged") == 1


def test_sample_command_needs_no_data_and_uses_the_checkpoints_generator(tmp_path: Path) -> None:
    trainer = tiny("minus-vbn-plus-bn", tmp_path, epochs=1, minibatch_discrimination=False, g_steps=1)
    trainer.run(log=False)
    checkpoint = trainer.save(tmp_path / "c.pt")
    out = tmp_path / "s.npz"
    result = CliRunner().invoke(main, ["sample", "--checkpoint", str(checkpoint), "-n", "7", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    images = np.load(out)["images"]
    assert images.shape == (7, 32, 32, 3) and images.dtype == np.uint8
    # The same images from the trained generator itself: tanh output [-1, 1] mapped to [0, 255]. z is the
    # first block of uniform [0, 1) numbers under seed 3 (inception_score.generator: SeedSequence(seed,
    # spawn_key=(0, block)) seeds a CPU torch.Generator that draws (1024, 100) at once).
    words = np.random.SeedSequence(3, spawn_key=(0, 0)).generate_state(2, np.uint32)
    rng = torch.Generator().manual_seed(int(words[0]) + (int(words[1]) << 32))
    with torch.no_grad():
        expected = trainer.G(torch.rand(1024, 100, generator=rng)[:7])
    expected = ((expected + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(images, expected)


# What the original scripts (openai/improved-gan, mnist_svhn_cifar10/) build, written out:
# D's input layer, the output channels of its nine convolutions, and lr = 3e-4 * min(3 - epoch/E, 1).
ORIGINAL_CONV_SETUPS = {
    "our-methods": (GaussianNoise, [96, 96, 96, 192, 192, 192, 192, 192, 192], 1200, 400),  # minibatch discrimination
    "cifar10-fm": (torch.nn.Dropout, [96, 96, 96, 192, 192, 192, 192, 192, 192], 1200, 400),  # feature matching
    "svhn-fm": (torch.nn.Dropout, [64, 64, 64, 128, 128, 128, 128, 128, 128], 900, 300),  # feature matching
}


@pytest.mark.parametrize("name", sorted(ORIGINAL_CONV_SETUPS))
def test_convolutional_presets_follow_the_original_scripts(name: str) -> None:
    corruption, channels, epochs, divisor = ORIGINAL_CONV_SETUPS[name]
    config = preset(name)
    discriminator = Discriminator(model_config(config))
    first = discriminator.body[0]
    assert type(first) is corruption
    assert (first.sigma if corruption is GaussianNoise else first.p) == 0.2
    assert [m.v.shape[0] for m in discriminator.body if isinstance(m, WNConv2d)] == channels
    assert config.epochs == epochs
    for epoch in (0, epochs // 2, epochs - divisor - 1, epochs - divisor, epochs - divisor // 2, epochs - 1):
        assert learning_rate(config, epoch) == pytest.approx(3e-4 * min(3 - epoch / divisor, 1.0), rel=1e-12)
