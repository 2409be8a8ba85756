"""What a training run depends on: :class:`TrainConfig`, the check of its values, and the models it
builds (:func:`model_config`).

A run's folder keeps its configuration as ``config.json`` and in each checkpoint (the fields below, by
name), so fields are only ever added, with a default that keeps earlier runs as they were.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError
from .models import ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on. ``labels``: "none", "all", or a count per class (e.g. "10").

    "Original" below is openai/improved-gan: "public" its scripts as last changed (0fa06b5 and 30d4beb,
    2016-06-14, mnist_svhn_cifar10/), "first published" its first commit (bb3d27b, 2016-06-08). Where
    no released code exists (Table 3's techniques), the comment says what we chose; ``ablation.py``
    (TABLE3_CHOICES) and the documentation (docs/reproducing.md) say why.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    # Labels per class. The scripts' --count: MNIST 10, CIFAR-10 400 (hard-coded 400 when first
    # published), SVHN 100. Table 3 does not state its count: we use the CIFAR script's 400.
    labels: str = "10"
    feature_matching: bool = True
    # ||E f(x) - E f(G(z))||: "squared" (the paper; the MNIST script: mean(square(m1 - m2))) or
    # "absolute" (the CIFAR-10 and SVHN scripts, public and first published: mean(abs(m1 - m2))).
    feature_matching_distance: Literal["squared", "absolute"] = "squared"
    minibatch_discrimination: bool = False
    # Historical averaging (Section 3.3): the weight of ||theta - mean of past theta||^2, summed over all
    # of a player's parameters, in each player's cost; 0 = off. The paper gives no weight and no released
    # code has the technique: 1.0 (the -L+HA row) is ours.
    historical_averaging: float = 0.0
    # One-sided label smoothing (Section 3.4): the target of the unlabelled real term of D's loss; 1.0 =
    # off. Table 3 uses 0.9 (the paper's value; released ImageNet code: 0.75, d_label_smooth=.25; the
    # CIFAR-10 scripts: none).
    label_smoothing: float = 1.0
    generator_norm: Literal["batch", "virtual"] = "batch"
    # Virtual batch norm (Section 3.5; no released CIFAR-10 code has it). vbn_scale: a learned scale per
    # unit (the ImageNet code's gamma; the original generators' batch norm has none, g=None).
    # vbn_statistics: the batch being normalised joins the reference batch's statistics with each
    # example's own ("per_example": the paper; the ImageNet code from 2016-06-21 for the mean and
    # 2017-05-19 for the mean square) or the whole batch's ("batch": that code as released, 2016-06-09).
    vbn_scale: bool = True
    vbn_statistics: Literal["per_example", "batch"] = "per_example"
    # Without labels ("-L"), D outputs one logit, a plain GAN (ours; no released code); False keeps the K
    # logits, D(x) = Z(x) / (Z(x) + 1), trained without the supervised term.
    unlabelled_single_logit: bool = True
    generator_loss: Literal["minimax", "non_saturating"] = "minimax"  # when not feature matching
    d_input: Literal["noise", "dropout"] = "noise"  # convolutional D: Gaussian noise or dropout (0.2) on its input
    d_width: int = 96  # convolutional D: channels of its first block (the second has twice as many)
    # Convolutional models (the MNIST scripts use ReLU and scale-1 outputs in every version):
    leaky_relu_slope: float = 0.2  # D's nonlinearity: nn.lrelu(a=0.2) public; a=0.1 first published
    # The standard deviation that data-dependent initialisation gives D's logits and G's output: public
    # init_stdv=0.1; 1 first published (no init_stdv yet).
    output_init_scale: float = 0.1
    # Data-dependent initialisation of weight norm divides by each unit's spread ("per_unit", public
    # WeightNormLayer) or by one spread for the whole layer ("per_layer", first-published L2NormLayer).
    init_statistics: Literal["per_unit", "per_layer"] = "per_unit"
    # Whether G's weight-normalised output layer gets data-dependent initialisation (public: yes; the
    # minibatch script as first published ran it through D only, leaving G's scale 1 and bias 0).
    generator_data_init: bool = True
    epochs: int = 300
    steps_per_epoch: int | None = None  # default: one pass over the unlabelled training set
    max_steps: int | None = None  # stop early (tests, smoke runs)
    batch_size: int = 100
    lr: float = 0.003
    lr_constant_epochs: int | None = None  # then linear decay to 0 at the last epoch; None: constant
    beta1: float = 0.5
    # G steps per D step: 3 in the minibatch-discrimination script, 1 in every other; -MBF takes 1 (ours).
    g_steps: int = 1
    unlabeled_weight: float = 1.0
    # The moving average of D's weights the test classifier may use: rate 1e-4 from zero (public);
    # the CIFAR-10 feature-matching script as first published: rate 1e-3 from D's initialised weights.
    ema_rate: float = 1e-4
    ema_start: Literal["zero", "initial"] = "zero"
    init_examples: int = 500
    seed: int = 1
    data_seed: int = 1
    device: str = "cpu"
    # Speed switches, off by default: each changes which kernels run, so a run's losses match the default's
    # only to float32 rounding (then training diverges as any two runs do); config.json records them.
    amp: bool = False  # bfloat16 autocast of the forward passes, on CUDA only (ignored on a CPU)
    channels_last: bool = False  # images, models and gradients in NHWC memory order
    fast_step: bool = False  # on CUDA, torch.compile of D's and G's training passes; elsewhere the default step
    out_dir: str = "runs/default"
    eval_every_epochs: int = 1
    test_limit: int | None = None  # evaluate on the first N test images only
    sample_every_epochs: int = 1
    checkpoint_every_steps: int | None = None  # besides the end of every epoch and of the run
    inception_every_epochs: int = 0  # 0 = never; else the IS of generated samples, logged
    inception_samples: int = 5000
    inception_weights: str | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def architecture(self) -> str:
        return "mnist" if "mnist" in self.dataset else "cifar10"

    @property
    def uses_labels(self) -> bool:
        return self.labels != "none"


@functools.cache
def _choices() -> dict[str, tuple[str, ...]]:
    """The allowed values of each ``Literal`` field of :class:`TrainConfig`."""
    hints = typing.get_type_hints(TrainConfig)
    return {name: typing.get_args(hint) for name, hint in hints.items() if typing.get_origin(hint) is Literal}


def _problems(config: TrainConfig) -> list[str]:
    """Each field of ``config`` that holds a value it may not take, in words (an empty list: none)."""
    problems = []
    for name, choices in _choices().items():
        if getattr(config, name) not in choices:
            problems.append(f"{name} must be one of {', '.join(map(repr, choices))}, not {getattr(config, name)!r}")
    labels = str(config.labels)
    if labels not in ("none", "all") and not (labels.isdigit() and int(labels) > 0):
        problems.append(f"labels must be 'none', 'all' or a positive count per class, not {config.labels!r}")
    for name in ("batch_size", "g_steps", "init_examples", "epochs"):
        if getattr(config, name) < 1:
            problems.append(f"{name} must be at least 1, not {getattr(config, name)!r}")
    for name in ("steps_per_epoch", "max_steps", "checkpoint_every_steps"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            problems.append(f"{name} must be at least 1 (or None), not {getattr(config, name)!r}")
    if not 0.0 < config.label_smoothing <= 1.0:
        problems.append(f"label_smoothing (the real target) must lie in (0, 1], not {config.label_smoothing!r}")
    if config.historical_averaging < 0:
        problems.append(f"historical_averaging must be 0 (off) or positive, not {config.historical_averaging!r}")
    return problems


TRAIN_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))  # what a checkpoint's config may name


def model_config(config: TrainConfig, num_classes: int = 10) -> ModelConfig:
    """The models a run trains: K logits with labels; without, one (a plain GAN) or, with
    ``unlabelled_single_logit=False``, still K."""
    return ModelConfig(
        architecture=config.architecture,  # type: ignore[arg-type]
        num_outputs=num_classes if config.uses_labels or not config.unlabelled_single_logit else 1,
        minibatch_discrimination=config.minibatch_discrimination,
        generator_norm=config.generator_norm,
        input_corruption=config.d_input,
        width=config.d_width,
        leaky_relu_slope=config.leaky_relu_slope,
        output_init_scale=config.output_init_scale,
        init_statistics=config.init_statistics,
        generator_data_init=config.generator_data_init,
        vbn_scale=config.vbn_scale,
        vbn_statistics=config.vbn_statistics,
    )
