"""Every named set-up in one place: the training presets (``PRESETS``: Table 3's rows, the
semi-supervised scripts), the sizes of a Table 3 run (``ABLATION_PRESETS``) and the semi-supervised
tables' set-ups (``SEMI_SUPERVISED_SETUPS``). The CLI, the table writers and the benchmarks read them here.

"Public" below is openai/improved-gan's mnist_svhn_cifar10/ scripts as last changed (0fa06b5 and
30d4beb, 2016-06-14), "first published" or "2016-06-08" its first commit (bb3d27b).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import TrainConfig
from .errors import ConfigError

# --- training presets ------------------------------------------------------------------------------

# The original CIFAR-10 minibatch-discrimination script, the base of Table 3 (whose own scripts were not
# released): public (train_cifar_minibatch_discrimination.py, 2016-06-14) and as first published
# (train_cifar_minibatch.py, bb3d27b, 2016-06-08: 500 epochs, lr * min(2.5 - epoch/200, 1), lrelu 0.1,
# weight norm initialised per layer to scale 1, G not initialised from data; tested with D's current
# weights, not an average).
CIFAR10_MINIBATCH = dict(dataset="cifar10", labels="400", feature_matching=False, minibatch_discrimination=True,
                         generator_loss="minimax", g_steps=3, lr=3e-4, epochs=1200, lr_constant_epochs=800,
                         d_input="noise")
CIFAR10_MINIBATCH_2016_06_08 = {**CIFAR10_MINIBATCH, "epochs": 500, "lr_constant_epochs": 300,
                                "leaky_relu_slope": 0.1, "output_init_scale": 1.0, "init_statistics": "per_layer",
                                "generator_data_init": False}
# Table 3's "our methods": the script plus one-sided label smoothing and VBN in G (our choices: TrainConfig's comments).
TABLE3_SETUPS: dict[str, dict[str, Any]] = {
    "public": {**CIFAR10_MINIBATCH, "label_smoothing": 0.9, "generator_norm": "virtual"},
    "2016-06-08": {**CIFAR10_MINIBATCH_2016_06_08, "label_smoothing": 0.9, "generator_norm": "virtual"},
}
# Each row of Table 3: what it changes in "our methods".
TABLE3_VARIANTS: dict[str, dict[str, Any]] = {
    "our-methods": {},
    "minus-vbn-plus-bn": {"generator_norm": "batch"},
    "minus-l-plus-ha": {"labels": "none", "historical_averaging": 1.0},
    "minus-ls": {"label_smoothing": 1.0},
    "minus-l": {"labels": "none"},
    "minus-mbf": {"minibatch_discrimination": False, "g_steps": 1},
    # Not in the paper: -VBN+BN swaps VBN (learned scale) for BN (no scale), two changes; this row makes
    # one of them, so the two rows together separate the scale from the statistics.
    "minus-vbn-scale": {"vbn_scale": False},
}


def table3_preset(variant: str, setup: str = "public") -> str:
    """The preset name of a Table 3 row under a set-up: ``minus-ls``, ``minus-ls-2016-06-08``."""
    if setup not in TABLE3_SETUPS:
        raise ConfigError(f"unknown set-up {setup!r}; choose one of {', '.join(TABLE3_SETUPS)}")
    return variant if setup == "public" else f"{variant}-{setup}"


PRESETS: dict[str, dict[str, Any]] = {
    # Table 3 rows (CIFAR-10): "our methods" and the ablations, each removing or replacing one thing.
    **{table3_preset(variant, setup): {**base, **changes}
       for setup, base in TABLE3_SETUPS.items() for variant, changes in TABLE3_VARIANTS.items()},
    # Semi-supervised set-ups (Tables 1 and 2, SVHN): feature matching, K+1 discriminator.
    "mnist-fm": dict(dataset="mnist", labels="10", feature_matching=True, lr=0.003, epochs=300, g_steps=1),
    # The MNIST script as first published (openai/improved-gan bb3d27b, 2016-06-08, two days before the
    # paper): lr 0.001 * min(3 - epoch/100, 1), i.e. 0.001 for 200 epochs, then linearly to 0 at epoch
    # 300; no weight averaging (its test error is that of D's current weights).
    "mnist-fm-2016-06-08": dict(dataset="mnist", labels="10", feature_matching=True, lr=0.001, epochs=300,
                                lr_constant_epochs=200, g_steps=1),
    # As the original feature-matching scripts: dropout 0.2 on D's input (the minibatch-discrimination
    # script behind Table 3 uses Gaussian noise), G matching the mean absolute difference of the pooled
    # features; the SVHN script's D is narrower (64/128 channels) and trains 900 epochs, the last 300 decaying.
    "cifar10-fm": dict(dataset="cifar10", labels="400", feature_matching=True, feature_matching_distance="absolute",
                       lr=3e-4, epochs=1200, lr_constant_epochs=800, d_input="dropout"),
    # train_cifar_feature_matching.py as first published (bb3d27b): 1001 epochs at a constant lr 3e-4,
    # lrelu 0.1, weight norm initialised per layer to scale 1 (G too), tested with a moving average of
    # rate 1e-3 started from D's initialised weights. As published it stops at its first epoch (it shuffles
    # trainx_unl2, which it never defines); we take the second permutation of the training set that its
    # MNIST sibling and its later version define.
    "cifar10-fm-2016-06-08": dict(dataset="cifar10", labels="400", feature_matching=True,
                                  feature_matching_distance="absolute", lr=3e-4, epochs=1001, lr_constant_epochs=None,
                                  d_input="dropout", leaky_relu_slope=0.1, output_init_scale=1.0,
                                  init_statistics="per_layer", ema_rate=1e-3, ema_start="initial"),
    "svhn-fm": dict(dataset="svhn", labels="100", feature_matching=True, feature_matching_distance="absolute", lr=3e-4,
                    epochs=900, lr_constant_epochs=600, d_input="dropout", d_width=64),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """A named preset with any field overridden."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})


# --- Table 3: how big a run is ---------------------------------------------------------------------

@dataclass(frozen=True)
class AblationPreset:
    """How big an ablation run is. ``overrides`` apply to every variant's :class:`TrainConfig`."""

    name: str
    dataset: str
    samples: int  # generated images scored per variant
    real_images: int  # training images scored for the "Real data" row
    overrides: dict[str, Any] = field(default_factory=dict)
    splits: int = 10
    device: str = "auto"
    labels: str | None = None  # labels per class for the variants that use labels (None: the preset's 400)


ABLATION_PRESETS: dict[str, AblationPreset] = {
    # The original set-up: 1200 epochs of CIFAR-10 per variant, 50,000 samples each. For a GPU.
    "paper": AblationPreset("paper", "cifar10", samples=50_000, real_images=50_000),
    # End to end on a 2-core CPU in minutes, on the partial CIFAR-10: shows the pipeline works,
    # says nothing about the paper's numbers.
    "smoke": AblationPreset("smoke", "cifar10-partial", samples=200, real_images=200, device="cpu",
                            overrides=dict(batch_size=20, max_steps=10, init_examples=100, sample_every_epochs=0,
                                           eval_every_epochs=0)),
    # For the test suite: synthetic images, two steps, a handful of samples.
    "tiny": AblationPreset("tiny", "synthetic-cifar10", samples=4, real_images=4, splits=2, device="cpu", labels="2",
                           overrides=dict(batch_size=4, max_steps=1, init_examples=20, sample_every_epochs=0,
                                          eval_every_epochs=0)),
}


# --- Tables 1 and 2 (and SVHN): the semi-supervised set-ups -----------------------------------------

@dataclass(frozen=True)
class SemiSupervisedSetup:
    """One way of running a data set's experiment: the preset it trains, which of D's weights its test
    error is read from (``"average"``: the moving average; ``"current"``: the weights as trained), and
    what it is, in words for the table."""

    preset: str
    tested_with: str
    description: str

    @property
    def error_key(self) -> str:
        """The ``metrics.jsonl`` field holding this set-up's test error."""
        return "test_err_ema" if self.tested_with == "average" else "test_err"


# Each data set has the public scripts' last version ("public"); MNIST also has the script as first
# published, two days before the paper, which trains differently and is the one that reproduces Table 1
# (seed 1, 100 labels: 92 test errors against the paper's 93 +/- 6.5; "public" gave 219), so it is
# MNIST's default.
SEMI_SUPERVISED_SETUPS: dict[str, dict[str, SemiSupervisedSetup]] = {
    "mnist": {
        "public": SemiSupervisedSetup(
            "mnist-fm", "average",
            "The original train_mnist_feature_matching.py (openai/improved-gan) as last changed (0fa06b5, "
            "2016-06-14): Adam lr 0.003 for all 300 epochs; tested with the moving average of D's weights (rate 1e-4)"),
        "2016-06-08": SemiSupervisedSetup(
            "mnist-fm-2016-06-08", "current",
            "The same script as first published (bb3d27b, 2016-06-08, two days before the paper): Adam lr 0.001 "
            "for 200 epochs, then linearly to 0 at epoch 300; no averaging, tested with D's current weights"),
    },
    "cifar10": {
        "public": SemiSupervisedSetup(
            "cifar10-fm", "average",
            "The original train_cifar_feature_matching.py (openai/improved-gan): Adam lr 3e-4, 1200 epochs, the last "
            "400 decaying linearly to 0; tested with the moving average of D's weights"),
        "2016-06-08": SemiSupervisedSetup(
            "cifar10-fm-2016-06-08", "average",
            "The same script as first published (bb3d27b, 2016-06-08): Adam lr 3e-4 constant for 1001 epochs, leaky "
            "ReLU 0.1, weight norm initialised with one spread per layer and outputs at scale 1; tested with a moving "
            "average of D's weights of rate 1e-3 started from its initialised weights. As published that script stops "
            "in its first epoch (it shuffles an array it never defines, trainx_unl2); this set-up gives it the "
            "second permutation of the training set that its later version defines"),
    },
    "svhn": {"public": SemiSupervisedSetup(
        "svhn-fm", "average",
        "The original train_svhn_feature_matching.py (openai/improved-gan): Adam lr 3e-4, 900 epochs, the last "
        "300 decaying linearly to 0; tested with the moving average of D's weights")},
}
DEFAULT_SETUPS = {"mnist": "2016-06-08", "cifar10": "public", "svhn": "public"}


def default_setup(dataset: str) -> str:
    """The set-up a data set's table and commands use unless told otherwise."""
    return DEFAULT_SETUPS[dataset.removeprefix("synthetic-")]


def semi_supervised_setup(dataset: str, setup: str | None = None) -> SemiSupervisedSetup:
    setups = SEMI_SUPERVISED_SETUPS[dataset.removeprefix("synthetic-")]
    setup = setup or default_setup(dataset)
    if setup not in setups:
        raise ConfigError(f"{dataset} has no set-up {setup!r}; choose one of {', '.join(setups)}")
    return setups[setup]
