"""The training loop: one frozen configuration in, a trained GAN, logs, samples and checkpoints out.

Reads top to bottom: configuration and presets, set-up (data, models, data-dependent initialisation,
optimisers), then the loop. Each iteration takes one D step on a labelled, an unlabelled and a
generated batch, then ``g_steps`` G steps; the order of the data in epoch ``e`` depends only on
``(seed, e)`` and every other draw on the torch, numpy and python RNG states saved in each checkpoint,
so a run resumed from a checkpoint is bit-identical to an uninterrupted one on the same device.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from inception_score import strict_json

from .checkpoints import (CheckpointError, load_checkpoint, restore_module, rng_states, save_checkpoint,
                          saved_config, set_rng_states)
from .data import DataSet, balanced_labelled_subset, load
from .layers import data_dependent_init
from .models import Z_DIM, Discriminator, Generator, ModelConfig, generate_uint8, sample_z
from .techniques import (
    ExponentialMovingAverage,
    HistoricalAverage,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    supervised_loss,
)


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
    amp: bool = False  # bfloat16 autocast on CUDA
    out_dir: str = "runs/default"
    eval_every_epochs: int = 1
    test_limit: int | None = None  # evaluate on the first N test images only
    sample_every_epochs: int = 1
    checkpoint_every_steps: int | None = None  # besides the end of every epoch and of the run
    inception_every_epochs: int = 0  # 0 = never; else the IS of generated samples, logged
    inception_samples: int = 5000
    inception_weights: str | None = None

    @property
    def architecture(self) -> str:
        return "mnist" if "mnist" in self.dataset else "cifar10"

    @property
    def uses_labels(self) -> bool:
        return self.labels != "none"


TRAIN_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))  # what a checkpoint's config may name

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
# Table 3's "our methods": the script plus one-sided label smoothing and VBN in G (our choices above).
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
        raise ValueError(f"unknown set-up {setup!r}; choose one of {', '.join(TABLE3_SETUPS)}")
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


def preset(name: str, **overrides: Any) -> TrainConfig:
    """A named preset with any field overridden."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Constant, or constant for ``lr_constant_epochs`` then linearly to 0: ``lr * min((E - e) / (E - C), 1)``
    (CIFAR-10: min(3 - e/400, 1) for E = 1200, C = 800; first published: min(2.5 - e/200, 1), E = 500, C = 300)."""
    if config.lr_constant_epochs is None:
        return config.lr
    decay = config.epochs - config.lr_constant_epochs
    return config.lr * min(1.0, (config.epochs - epoch) / decay) if decay > 0 else config.lr


def save_grid(images: np.ndarray, path: Path, columns: int = 10) -> None:
    """uint8 ``(N, H, W, C)`` -> one PNG, ``columns`` images a row."""
    from PIL import Image

    n, h, w, c = images.shape
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1, c), 255, dtype=np.uint8)
    for index, image in enumerate(images):
        r, k = divmod(index, columns)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + k * (w + 1) : 1 + k * (w + 1) + w] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[:, :, 0] if c == 1 else grid).save(path)


class Adam(torch.optim.Optimizer):
    """Adam as the original code's ``adam_updates``: ``p -= lr * m_hat / sqrt(v_hat + 1e-8)``.

    The epsilon sits inside the square root, so parameters with tiny gradients move much less than
    with ``torch.optim.Adam`` (whose epsilon is added after it); measured to matter here (MNIST).
    """

    def __init__(self, params, lr: float, betas: tuple[float, float]) -> None:
        super().__init__(params, {"lr": lr, "betas": betas})

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p].update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                self.state[p]["step"] += 1
            grads = [p.grad for p in params]
            m = [self.state[p]["m"] for p in params]
            v = [self.state[p]["v"] for p in params]
            t = self.state[params[0]]["step"]  # all parameters of a group step together
            torch._foreach_lerp_(m, grads, 1 - beta1)  # m <- beta1 m + (1 - beta1) g
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
            denominator = torch._foreach_div(v, 1 - beta2**t)
            torch._foreach_add_(denominator, 1e-8)
            torch._foreach_sqrt_(denominator)
            torch._foreach_addcdiv_(params, m, denominator, value=-group["lr"] / (1 - beta1**t))


@dataclass
class State:
    """What a checkpoint holds besides the configuration."""

    step: int = 0
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Builds everything from a :class:`TrainConfig`; :meth:`run` trains (optionally resuming)."""

    def __init__(self, config: TrainConfig, data: DataSet | None = None) -> None:
        self.config = config
        self.device = torch.device(config.device)
        torch.manual_seed(config.seed)
        self.data = data if data is not None else load(config.dataset, Path(config.data_dir) if config.data_dir else None)
        self.train_x = torch.from_numpy(self.data.train_x)
        self.train_y = torch.from_numpy(self.data.train_y)
        if config.labels == "all":
            self.labelled = np.arange(len(self.data.train_y))
        elif config.labels != "none":
            self.labelled = balanced_labelled_subset(self.data.train_y, int(config.labels), config.data_seed)
        else:
            self.labelled = np.zeros(0, dtype=np.int64)
        self.steps_per_epoch = config.steps_per_epoch or len(self.train_x) // config.batch_size

        model = model_config(config, self.data.num_classes)
        reference = sample_z(config.batch_size, torch.Generator().manual_seed(config.seed + 7919))
        self.D = Discriminator(model).to(self.device)
        self.G = Generator(model, reference_z=reference if config.generator_norm == "virtual" else None).to(self.device)
        # Data-dependent initialisation of weight norm (and the minibatch layer) on the first examples.
        order = np.random.RandomState(config.data_seed).permutation(len(self.train_x))[: config.init_examples]
        with data_dependent_init():
            self.G(sample_z(config.batch_size, device=self.device))
            self.D(self.train_x[order].to(self.device))
        betas = (config.beta1, 0.999)
        self.d_params = [p for p in self.D.parameters() if p.requires_grad]
        self.opt_d = Adam(self.d_params, lr=config.lr, betas=betas)
        self.opt_g = Adam([p for p in self.G.parameters() if p.requires_grad], lr=config.lr, betas=betas)
        self.ema = ExponentialMovingAverage(self.D, config.ema_rate, start=config.ema_start)
        self.ha_d = HistoricalAverage(self.D.parameters()) if config.historical_averaging > 0 else None
        self.ha_g = HistoricalAverage(self.G.parameters()) if config.historical_averaging > 0 else None
        self.state = State()
        self.out_dir = Path(config.out_dir)
        self._inception_failed = False
        self._inception: Any = None  # the InceptionScore metric, built on first use

    # --- the data of one step ----------------------------------------------------------------
    def _epoch_orders(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, epoch])
        unl = rng.permutation(len(self.train_x))
        unl2 = rng.permutation(len(self.train_x))
        needed = self.steps_per_epoch * self.config.batch_size
        lab = np.zeros(0, dtype=np.int64)
        if len(self.labelled):
            repeats = math.ceil(needed / len(self.labelled))
            lab = np.concatenate([self.labelled[rng.permutation(len(self.labelled))] for _ in range(repeats)])
        return unl, unl2, lab

    def _take(self, order: np.ndarray, t: int) -> np.ndarray:
        b = self.config.batch_size
        return np.take(order, np.arange(t * b, (t + 1) * b), mode="wrap")

    # --- one iteration ---------------------------------------------------------------------------
    def step(self, orders: tuple[np.ndarray, np.ndarray, np.ndarray], t: int, lr: float) -> dict[str, float]:
        config, dev = self.config, self.device
        unl_order, unl2_order, lab_order = orders
        for opt in (self.opt_d, self.opt_g):
            for group in opt.param_groups:
                group["lr"] = lr
        x_unl = self.train_x[self._take(unl_order, t)].to(dev)
        batch = config.batch_size
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=config.amp and dev.type == "cuda"):
            with torch.no_grad():
                fake = self.G(sample_z(batch, device=dev))
            # D step: separate forward passes where minibatch features must see one kind of batch.
            inputs = [x_unl, fake]
            if config.uses_labels:
                lab_index = self._take(lab_order, t)
                x_lab, y_lab = self.train_x[lab_index].to(dev), self.train_y[lab_index].to(dev)
                inputs.insert(0, x_lab)
            if self.D.batch_independent:
                outputs = self.D(torch.cat(inputs))[0].split(batch)
            else:
                outputs = [self.D(x)[0] for x in inputs]
            logits_unl, logits_fake = outputs[-2], outputs[-1]
            loss_unl = discriminator_loss(logits_unl, logits_fake, real_target=config.label_smoothing)
            loss_d = config.unlabeled_weight * loss_unl
            loss_lab = torch.zeros((), device=dev)
            train_err = float("nan")
            if config.uses_labels:
                loss_lab = supervised_loss(outputs[0].float(), y_lab)
                loss_d = loss_d + loss_lab
                train_err = (outputs[0].argmax(1) != y_lab).float().mean().item()
            if self.ha_d is not None:
                loss_d = loss_d + config.historical_averaging * self.ha_d.penalty()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.ema.update(self.D)  # before the step: the original's simultaneous Theano updates average the old weights
        self.opt_d.step()
        if self.ha_d is not None:
            self.ha_d.update()

        # G steps, D frozen.
        for p in self.d_params:
            p.requires_grad_(False)
        for _ in range(config.g_steps):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=config.amp and dev.type == "cuda"):
                fake = self.G(sample_z(batch, device=dev))
                fake_logits, fake_features = self.D(fake)
                if config.feature_matching:
                    with torch.no_grad():
                        real_features = self.D(self.train_x[self._take(unl2_order, t)].to(dev))[1]
                    loss_g = feature_matching_loss(real_features.float(), fake_features.float(),
                                                   config.feature_matching_distance)
                else:
                    loss_g = generator_loss(fake_logits.float(), config.generator_loss)
                if self.ha_g is not None:
                    loss_g = loss_g + config.historical_averaging * self.ha_g.penalty()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            if self.ha_g is not None:
                self.ha_g.update()
        for p in self.d_params:
            p.requires_grad_(True)
        return {"loss_lab": loss_lab.item(), "loss_unl": loss_unl.item(), "loss_g": loss_g.item(), "train_err": train_err}

    # --- evaluation, samples, checkpoints -----------------------------------------------------------
    @torch.no_grad()
    def test_error(self, use_ema: bool) -> float:
        """Error of D's K-way classifier on the test set (eval mode: no noise, no dropout)."""
        if not self.config.uses_labels:
            return float("nan")
        current = None
        if use_ema and self.ema.steps > 0:
            current = {k: v.clone() for k, v in self.D.state_dict().items()}
            self.D.load_state_dict(self.ema.averaged(self.D))
        self.D.eval()
        x = torch.from_numpy(self.data.test_x[: self.config.test_limit])
        y = torch.from_numpy(self.data.test_y[: self.config.test_limit])
        wrong = 0
        for start in range(0, len(x), 100):
            logits = self.D(x[start : start + 100].to(self.device))[0]
            wrong += int((logits.argmax(1).cpu() != y[start : start + 100]).sum())
        self.D.train()
        if current is not None:
            self.D.load_state_dict(current)
        return wrong / len(x)

    def sample(self, count: int, batch_size: int = 100) -> np.ndarray:
        """``count`` generated images as uint8 ``(N, H, W, C)``."""
        return generate_uint8(self.G, count, batch_size, self.device)

    def inception_score(self) -> dict[str, float] | None:
        """The Inception Score of ``inception_samples`` generated images through the ``inception_score``
        package (imported here: it is optional). Without the package or its weights: one warning, None."""
        if self._inception_failed:
            return None
        try:
            from inception_score import InceptionScore
            from inception_score.errors import WeightsError
        except ImportError as error:
            return self._no_inception(error)
        try:
            if self._inception is None:
                self._inception = InceptionScore(splits=10, weights=self.config.inception_weights,
                                                 device=self.config.device, num_images=self.config.inception_samples)
            metric = self._inception
            metric.reset()
            for start in range(0, self.config.inception_samples, 500):
                images = torch.from_numpy(self.sample(min(500, self.config.inception_samples - start)))
                metric.update(images.permute(0, 3, 1, 2).expand(-1, 3, -1, -1).contiguous())  # grey MNIST as RGB
            result = metric.compute()
        except WeightsError as error:
            return self._no_inception(error)
        return {"is_mean": result.mean, "is_std": result.std, "is_weights_verified": result.weights_verified}

    def _no_inception(self, error: Exception) -> None:
        print(f"warning: no Inception Score logged ({type(error).__name__}: {error})", flush=True)
        self._inception_failed = True
        return None

    def checkpoint(self) -> dict[str, Any]:
        state = {
            "config": dataclasses.asdict(self.config),
            "step": self.state.step,
            "history": self.state.history,
            "D": self.D.state_dict(),
            "G": self.G.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "ema": self.ema.state_dict(),
            # The data order of epoch e depends only on (seed, e); these cover every other draw.
            "rng": rng_states(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        for name, ha in (("ha_d", self.ha_d), ("ha_g", self.ha_g)):
            if ha is not None:
                state[name] = ha.state_dict()
        return state

    def save(self, path: Path | None = None) -> Path:
        return save_checkpoint(self.checkpoint(), path or self.out_dir / "checkpoint.pt")

    def load(self, path: Path) -> None:
        """Continue from the checkpoint at ``path``: it must be of this run's models (a
        :class:`CheckpointError` naming the first tensor that differs otherwise)."""
        state = load_checkpoint(path, map_location=self.device)
        saved_config(state, path, TRAIN_CONFIG_FIELDS)
        expected = f"the models of this run's configuration ({self.config.dataset})"
        restore_module(self.D, state, "D", path, "discriminator", expected)
        restore_module(self.G, state, "G", path, "generator", expected)
        names = ["opt_d", "opt_g", "ema", "step", "history", "rng"]
        names += [name for name, ha in (("ha_d", self.ha_d), ("ha_g", self.ha_g)) if ha is not None]
        absent = [name for name in names if name not in state]
        if absent:
            raise CheckpointError(f"{path} holds no {', '.join(absent)}, which resuming this run needs: it was "
                                  "written by another version or set-up; start the run afresh")
        try:
            self.opt_d.load_state_dict(state["opt_d"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.ema.load_state_dict(state["ema"])
            for name, ha in (("ha_d", self.ha_d), ("ha_g", self.ha_g)):
                if ha is not None:
                    ha.load_state_dict(state[name])
        except (KeyError, ValueError, RuntimeError, TypeError) as error:
            raise CheckpointError(f"{path}: its optimiser or averaged weights do not fit this run's "
                                  f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); start the run "
                                  "afresh") from None
        self.state = State(step=state["step"], history=state["history"])
        set_rng_states(state["rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, resume: Path | None = None, log: bool = True) -> list[dict]:
        """Train until ``epochs`` (or ``max_steps``); returns the per-epoch history."""
        config = self.config
        if resume is not None:
            self.load(Path(resume))
        total = config.epochs * self.steps_per_epoch
        if config.max_steps is not None:
            total = min(total, config.max_steps)
        metrics_path = self.out_dir / "metrics.jsonl"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # The configuration as plain JSON: tables read a run's plan without opening its checkpoint.
        (self.out_dir / "config.json").write_text(strict_json.dumps(dataclasses.asdict(config), indent=1) + "\n")
        sums: dict[str, float] = {}
        count = 0
        begin = time.perf_counter()
        while self.state.step < total:
            epoch, t = divmod(self.state.step, self.steps_per_epoch)
            if t == 0 or count == 0:
                orders = self._epoch_orders(epoch)
            losses = self.step(orders, t, learning_rate(config, epoch))
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            self.state.step += 1
            end_of_epoch = self.state.step % self.steps_per_epoch == 0 or self.state.step == total
            if config.checkpoint_every_steps and self.state.step % config.checkpoint_every_steps == 0:
                self.save()
            if not end_of_epoch:
                continue
            record: dict[str, Any] = {"epoch": epoch + 1, "step": self.state.step, "lr": learning_rate(config, epoch),
                                      "seconds": time.perf_counter() - begin}
            record.update({key: value / count for key, value in sums.items()})
            if config.eval_every_epochs and (epoch + 1) % config.eval_every_epochs == 0:
                record["test_err"] = self.test_error(use_ema=False)
                record["test_err_ema"] = self.test_error(use_ema=True)
                record["test_images"] = len(self.data.test_x[: config.test_limit])
            if config.sample_every_epochs and (epoch + 1) % config.sample_every_epochs == 0:
                save_grid(self.sample(100), self.out_dir / f"samples-epoch{epoch + 1:04d}.png")
            if config.inception_every_epochs and (epoch + 1) % config.inception_every_epochs == 0:
                record.update(self.inception_score() or {})
            self.state.history.append(record)
            with open(metrics_path, "a") as handle:
                handle.write(strict_json.dumps(record) + "\n")
            if log:
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
                      flush=True)
            sums, count = {}, 0
            begin = time.perf_counter()
            self.save()
        return self.state.history


def train(config: TrainConfig, resume: str | Path | None = None, data: DataSet | None = None) -> Trainer:
    """Build and run a :class:`Trainer`; returns it (models, history) for further use."""
    trainer = Trainer(config, data)
    trainer.run(Path(resume) if resume else None)
    return trainer


def load_trainer(checkpoint: str | Path, device: str | None = None, **overrides: Any) -> Trainer:
    """A trainer rebuilt from a checkpoint's configuration, with its weights loaded."""
    saved = load_checkpoint(Path(checkpoint))
    fields = {**saved_config(saved, Path(checkpoint), TRAIN_CONFIG_FIELDS), **overrides}
    if device is not None:
        fields["device"] = device
    trainer = Trainer(TrainConfig(**fields))
    trainer.load(Path(checkpoint))
    return trainer



def load_generator(checkpoint: str | Path, device: str = "cpu") -> Generator:
    """The generator of a checkpoint, in training mode (batch statistics), without loading any data."""
    path = Path(checkpoint)
    saved = load_checkpoint(path)
    config = TrainConfig(**saved_config(saved, path, TRAIN_CONFIG_FIELDS))
    reference = torch.zeros(config.batch_size, Z_DIM) if config.generator_norm == "virtual" else None
    generator = Generator(model_config(config), reference_z=reference)
    # The reference batch of z is a buffer: restored here.
    restore_module(generator, saved, "G", path, "generator", f"the generator its configuration builds ({config.dataset})")
    return generator.to(device)
