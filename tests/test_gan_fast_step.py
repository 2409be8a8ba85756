"""The training loop reads the device once per epoch, not once per step, and that changes no number.

The loop (``Trainer.run``) sums each step's losses on the device in float64 and reads the sums at the
end of the epoch. The plain way, written out below, reads every loss as a Python float after its step
(``.item()``) and averages those. Both run the same kernels in the same order on the same inputs, and
adding float32 values in float64 on the device is the same IEEE arithmetic as adding them as Python
floats, so the epoch means must be equal bit for bit: no tolerance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from reference_gan.presets import PRESETS, preset
from reference_gan.train import Trainer, learning_rate

LOSSES = ("loss_lab", "loss_unl", "loss_g", "train_err")


def small(name: str, tmp_path: Path, **overrides) -> Trainer:
    """The real models and loop at the smallest size: batch 4 (CIFAR: D 8/16 channels wide)."""
    fields = dict(batch_size=4, init_examples=8, test_limit=8, sample_every_epochs=0, eval_every_epochs=0,
                  out_dir=str(tmp_path / name))
    if name.startswith("mnist"):
        fields.update(dataset="synthetic-mnist")
    else:
        fields.update(dataset="synthetic-cifar10", d_width=8)
    if PRESETS[name]["labels"] != "none":
        fields.update(labels="all")
    fields.update(overrides)
    return Trainer(preset(name, **fields))


def plain_epoch_means(trainer: Trainer, steps: int) -> list[dict[str, float]]:
    """Each epoch's mean of every loss, read after every step with ``.item()`` and summed as Python floats."""
    config, means, sums = trainer.config, [], {key: 0.0 for key in LOSSES}
    for step in range(steps):
        epoch, t = divmod(step, trainer.steps_per_epoch)
        losses = trainer.step(trainer.epoch_orders(epoch), t, learning_rate(config, epoch))
        for key in LOSSES:
            sums[key] += losses[key].item()
        if (step + 1) % trainer.steps_per_epoch == 0 or step + 1 == steps:
            count = t + 1
            means.append({key: sums[key] / count for key in LOSSES})
            sums = {key: 0.0 for key in LOSSES}
    return means


def same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)  # NaN (no labels: no training error) equals NaN here


# MNIST: 200 steps (4 epochs of 50); CIFAR-10 with virtual batch norm, the minibatch layer, historical
# averaging and 3 G steps (-L+HA): 6 steps (2 epochs of 3), its steps being about 20 times dearer.
@pytest.mark.parametrize("name, epochs, steps_per_epoch", [("mnist-fm", 4, 50), ("minus-l-plus-ha", 2, 3)])
def test_the_loop_reading_once_per_epoch_gives_the_plain_loops_epoch_means_bit_for_bit(
        name: str, epochs: int, steps_per_epoch: int, tmp_path: Path) -> None:
    history = small(name, tmp_path / "loop", epochs=epochs, steps_per_epoch=steps_per_epoch).run(log=False)
    plain_trainer = small(name, tmp_path / "plain", epochs=epochs, steps_per_epoch=steps_per_epoch)
    plain = plain_epoch_means(plain_trainer, epochs * steps_per_epoch)
    assert len(history) == len(plain) == epochs
    for record, expected in zip(history, plain):
        for key in LOSSES:
            assert same(record[key], expected[key]), (record["epoch"], key, record[key], expected[key])
    # The comparison has teeth: the epochs' means differ from each other, so a mean over the wrong steps fails.
    assert len({record["loss_unl"] for record in history}) == epochs


def test_an_epoch_reads_the_device_a_fixed_number_of_times_whatever_its_steps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way Python reads a tensor's value (each waits for the device) is counted during one epoch of
    3 steps and one of 12: the counts must be equal (none per step) and at least one (the sums)."""
    reads = {"count": 0}
    for method in ("item", "tolist", "__float__", "__int__", "__bool__", "numpy"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, **kwargs):
            reads["count"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    counts = []
    for steps in (3, 12):
        trainer = small("mnist-fm", tmp_path / str(steps), epochs=1, steps_per_epoch=steps)
        reads["count"] = 0
        trainer.run(log=False)
        counts.append(reads["count"])
    assert counts[0] == counts[1] >= 1, counts


def test_fast_step_on_a_cpu_is_the_default_step_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    default = small("mnist-fm", tmp_path / "default", epochs=2, steps_per_epoch=3).run(log=False)
    fast = small("mnist-fm", tmp_path / "fast", epochs=2, steps_per_epoch=3, fast_step=True).run(log=False)
    assert "fast_step on cpu is the default step" in capsys.readouterr().err
    for a, b in zip(default, fast):
        assert all(same(a[key], b[key]) for key in LOSSES), (a, b)


def test_channels_last_trains_in_nhwc_order(tmp_path: Path) -> None:
    """NHWC changes the kernels and the order the input noise is drawn in (the same distribution), so its
    losses are not the default's; what it must do is train, with the convolutions' weights in NHWC order."""
    trainer = small("minus-mbf", tmp_path, epochs=1, steps_per_epoch=2, channels_last=True)
    history = trainer.run(log=False)
    assert all(history[0][key] == history[0][key] for key in ("loss_lab", "loss_unl", "loss_g"))  # not NaN
    conv = trainer.D.body[1].v
    assert conv.ndim == 4 and conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert trainer.train_x.is_contiguous(memory_format=torch.channels_last)


def test_ablation_passes_the_speed_switches_to_every_variant_and_its_table_names_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    import inception_score
    from reference_gan.cli import main
    from test_original_setups import _PixelProjection  # a stand-in scorer: the table's text is what is tested

    scorer = _PixelProjection()
    monkeypatch.setattr(inception_score, "InceptionScorer", lambda *args, **kwargs: scorer)
    outcome = CliRunner().invoke(main, ["ablation", "--preset", "tiny", "--only", "minus-mbf", "--channels-last",
                                        "--fast-step", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 0, outcome.output
    config = json.loads((tmp_path / "runs" / "minus-mbf" / "config.json").read_text())
    assert config["channels_last"] is True and config["fast_step"] is True and config["amp"] is False
    assert "- speed switches: `channels_last, fast_step`" in (tmp_path / "results" / "ablation-tiny.md").read_text()
