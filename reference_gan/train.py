"""The training loop: one frozen configuration in, a trained GAN, logs, samples and checkpoints out.

The configuration is :class:`~reference_gan.config.TrainConfig`, the named ones are in
:mod:`reference_gan.presets`. Reads top to bottom: set-up (data, models, data-dependent initialisation,
optimisers), one iteration (:meth:`Trainer.d_step` on a labelled, an unlabelled and a generated batch,
then ``g_steps`` times :meth:`Trainer.g_step`), evaluation and checkpoints, then the loop. The order of
the data in epoch ``e`` depends only on ``(seed, e)`` and every other draw on the torch, numpy and
python RNG states saved in each checkpoint, so a run resumed from a checkpoint is bit-identical to an
uninterrupted one on the same device.

No step waits for the device: the training set is moved to it once, each batch is gathered there by
index, and the losses are summed there (in float64, the same additions as summing Python floats) and
read once per epoch. The opt-in switches (``amp``, ``channels_last``, ``fast_step``) change which kernels
run, so their losses agree with the default's only to float32 rounding, and then diverge as training
does; the default reproduces earlier runs bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from inception_score.score import strict_json
from inception_score.atomic import append_text, write_atomic

from .checkpoints import (CheckpointError, load_checkpoint, restore_module, rng_states, save_checkpoint,
                          saved_config, set_rng_states)
from .config import TRAIN_CONFIG_FIELDS, TrainConfig, model_config
from .data import DataSet, balanced_labelled_subset, load
from .layers import data_dependent_init
from .models import Z_DIM, Discriminator, Generator, generate_uint8, sample_z
from .optim import Adam
from .techniques import (
    ExponentialMovingAverage,
    HistoricalAverage,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    supervised_loss,
)


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
    picture = Image.fromarray(grid[:, :, 0] if c == 1 else grid)
    write_atomic(path, lambda handle: picture.save(handle, format="PNG"))


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
        # On the device once: batches are gathered there by index, with no copy from the host per step.
        self.train_x = torch.from_numpy(self.data.train_x).to(self.device)
        self.train_y = torch.from_numpy(self.data.train_y).to(self.device)
        if config.channels_last and self.train_x.ndim == 4:
            self.train_x = self.train_x.contiguous(memory_format=torch.channels_last)
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
        if config.channels_last:
            self.D.to(memory_format=torch.channels_last)
            self.G.to(memory_format=torch.channels_last)
        # Data-dependent initialisation of weight norm (and the minibatch layer) on the first examples.
        order = np.random.RandomState(config.data_seed).permutation(len(self.train_x))[: config.init_examples]
        with data_dependent_init():
            self.G(sample_z(config.batch_size, device=self.device))
            self.D(self.train_x[torch.from_numpy(order).to(self.device)])
        betas = (config.beta1, 0.999)
        self.d_params = [p for p in self.D.parameters() if p.requires_grad]
        self.opt_d = Adam(self.d_params, lr=config.lr, betas=betas)
        self.opt_g = Adam([p for p in self.G.parameters() if p.requires_grad], lr=config.lr, betas=betas)
        self.ema = ExponentialMovingAverage(self.D, config.ema_rate, start=config.ema_start)
        self.ha_d = HistoricalAverage(self.D.parameters()) if config.historical_averaging > 0 else None
        self.ha_g = HistoricalAverage(self.G.parameters()) if config.historical_averaging > 0 else None
        self.state = State()
        self.out_dir = Path(config.out_dir)
        self._offsets = torch.arange(config.batch_size, device=self.device)  # batch t: entries t*b .. t*b+b-1
        # The training passes of D and G: compiled with the fast step on CUDA (the modules themselves stay
        # as they are, for checkpoints and evaluation); elsewhere the modules.
        self._d_train, self._g_train = self.D, self.G
        if config.fast_step and self.device.type == "cuda":
            # dynamic=False: one graph per batch shape (a run has two or three), each specialised to it.
            self._d_train, self._g_train = torch.compile(self.D, dynamic=False), torch.compile(self.G, dynamic=False)
        elif config.fast_step:
            print(f"note: fast_step on {self.device.type} is the default step (torch.compile is used on CUDA only)",
                  file=sys.stderr, flush=True)
        self._inception_failed = False
        self._inception: Any = None  # the InceptionScore metric, built on first use

    # --- the data of one step ----------------------------------------------------------------
    def epoch_orders(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The data order of epoch ``epoch``, from ``(seed, epoch)`` alone: a permutation of the training
        set for D's unlabelled batches, another for G's real batches (feature matching), and the labelled
        examples, reshuffled as many times as the epoch's steps need."""
        rng = np.random.default_rng([self.config.seed, epoch])
        unl = rng.permutation(len(self.train_x))
        unl2 = rng.permutation(len(self.train_x))
        needed = self.steps_per_epoch * self.config.batch_size
        lab = np.zeros(0, dtype=np.int64)
        if len(self.labelled):
            repeats = math.ceil(needed / len(self.labelled))
            lab = np.concatenate([self.labelled[rng.permutation(len(self.labelled))] for _ in range(repeats)])
        return unl, unl2, lab

    def device_orders(self, orders: tuple[np.ndarray, ...]) -> tuple[torch.Tensor, ...]:
        """An epoch's orders (:meth:`epoch_orders`) as int64 tensors on the device: one copy per epoch."""
        return tuple(torch.from_numpy(order).to(self.device) for order in orders)

    def _take(self, order: torch.Tensor, t: int) -> torch.Tensor:
        """The indices of batch ``t`` of ``order`` (on the device), wrapping round its end."""
        return order[(self._offsets + t * self.config.batch_size) % len(order)]

    def wait(self) -> None:
        """Until the device has done every step queued so far (timings)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # --- one iteration ---------------------------------------------------------------------------
    def step(self, orders: tuple[np.ndarray | torch.Tensor, ...], t: int, lr: float) -> dict[str, torch.Tensor]:
        """Iteration ``t`` of an epoch whose data order is ``orders`` (:meth:`epoch_orders`, or
        :meth:`device_orders` of it, which saves a copy per call): one D step, then ``g_steps`` G steps with
        D frozen. Returns 0-d float32 tensors on the device, not yet read (reading one waits for the
        device): the losses (the last G step's) and D's training error (NaN without labels)."""
        for opt in (self.opt_d, self.opt_g):
            for group in opt.param_groups:
                group["lr"] = lr
        if isinstance(orders[0], np.ndarray):
            orders = self.device_orders(orders)
        unl_order, unl2_order, lab_order = orders
        losses = self.d_step(unl_order, lab_order, t)
        for p in self.d_params:
            p.requires_grad_(False)
        for _ in range(self.config.g_steps):
            loss_g = self.g_step(unl2_order, t)
        for p in self.d_params:
            p.requires_grad_(True)
        return {"loss_lab": losses["loss_lab"].detach(), "loss_unl": losses["loss_unl"].detach(),
                "loss_g": loss_g.detach(), "train_err": losses["train_err"]}

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp and self.device.type == "cuda")

    def d_step(self, unl_order: torch.Tensor, lab_order: torch.Tensor, t: int) -> dict[str, torch.Tensor]:
        """D's step on unlabelled batch ``t`` of ``unl_order``, a generated batch and (with labels) labelled
        batch ``t`` of ``lab_order``: the unlabelled loss (real against generated, the real target
        ``label_smoothing``), plus the K-way supervised loss, plus the historical-averaging penalty. Returns
        the loss tensors and D's error on the labelled batch (NaN without labels)."""
        config, dev = self.config, self.device
        batch = config.batch_size
        x_unl = self.train_x[self._take(unl_order, t)]
        with self._autocast():
            with torch.no_grad():
                fake = self._g_train(sample_z(batch, device=dev))
            # Separate forward passes where minibatch features must see one kind of batch.
            inputs = [x_unl, fake]
            if config.uses_labels:
                lab_index = self._take(lab_order, t)
                x_lab, y_lab = self.train_x[lab_index], self.train_y[lab_index]
                inputs.insert(0, x_lab)
            if self.D.batch_independent:
                outputs = self._d_train(torch.cat(inputs))[0].split(batch)
            else:
                outputs = [self._d_train(x)[0] for x in inputs]
            logits_unl, logits_fake = outputs[-2], outputs[-1]
            loss_unl = discriminator_loss(logits_unl, logits_fake, real_target=config.label_smoothing)
            loss_d = config.unlabeled_weight * loss_unl
            loss_lab = torch.zeros((), device=dev)
            train_err = torch.full((), float("nan"), device=dev)
            if config.uses_labels:
                loss_lab = supervised_loss(outputs[0].float(), y_lab)
                loss_d = loss_d + loss_lab
                train_err = (outputs[0].argmax(1) != y_lab).float().mean()
            if self.ha_d is not None:
                loss_d = loss_d + config.historical_averaging * self.ha_d.penalty()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.ema.update(self.D)  # before the step: the original's simultaneous Theano updates average the old weights
        self.opt_d.step()
        if self.ha_d is not None:
            self.ha_d.update()
        return {"loss_lab": loss_lab, "loss_unl": loss_unl, "train_err": train_err}

    def g_step(self, unl2_order: torch.Tensor, t: int) -> torch.Tensor:
        """One G step against D (whose parameters the caller has frozen): feature matching against
        unlabelled batch ``t`` of ``unl2_order``, or the GAN loss of D's logits, plus the
        historical-averaging penalty. Returns the loss."""
        config, dev = self.config, self.device
        with self._autocast():
            fake = self._g_train(sample_z(config.batch_size, device=dev))
            fake_logits, fake_features = self._d_train(fake)
            if config.feature_matching:
                with torch.no_grad():
                    real_features = self._d_train(self.train_x[self._take(unl2_order, t)])[1]
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
        return loss_g

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
        write_atomic(self.out_dir / "config.json", strict_json.dumps(dataclasses.asdict(config), indent=1) + "\n")
        # The epoch's sums of each loss, on the device in float64: the same additions as summing the
        # float32 values as Python floats, read once at the end of the epoch.
        sums: torch.Tensor | None = None
        count = 0
        begin = time.perf_counter()
        while self.state.step < total:
            epoch, t = divmod(self.state.step, self.steps_per_epoch)
            if t == 0 or count == 0:
                orders = self.device_orders(self.epoch_orders(epoch))
            losses = self.step(orders, t, learning_rate(config, epoch))
            keys = list(losses)
            values = torch.stack(list(losses.values())).double()
            sums = values if sums is None else sums + values
            count += 1
            self.state.step += 1
            end_of_epoch = self.state.step % self.steps_per_epoch == 0 or self.state.step == total
            if config.checkpoint_every_steps and self.state.step % config.checkpoint_every_steps == 0:
                self.save()
            if not end_of_epoch:
                continue
            record: dict[str, Any] = {"epoch": epoch + 1, "step": self.state.step, "lr": learning_rate(config, epoch),
                                      "seconds": time.perf_counter() - begin}
            record.update({key: value / count for key, value in zip(keys, sums.tolist())})  # the epoch's one read
            if config.eval_every_epochs and (epoch + 1) % config.eval_every_epochs == 0:
                record["test_err"] = self.test_error(use_ema=False)
                record["test_err_ema"] = self.test_error(use_ema=True)
                record["test_images"] = len(self.data.test_x[: config.test_limit])
            if config.sample_every_epochs and (epoch + 1) % config.sample_every_epochs == 0:
                save_grid(self.sample(100), self.out_dir / f"samples-epoch{epoch + 1:04d}.png")
            if config.inception_every_epochs and (epoch + 1) % config.inception_every_epochs == 0:
                record.update(self.inception_score() or {})
            self.state.history.append(record)
            append_text(metrics_path, strict_json.dumps(record) + "\n")  # a link planted there is refused
            if log:
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
                      flush=True)
            sums, count = None, 0
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
