"""The paper's training techniques as pure functions and small stateful helpers (Section 3 and 5).

Layers (minibatch discrimination, virtual batch norm, weight norm) live in :mod:`.layers`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor,
                          distance: Literal["squared", "absolute"] = "squared") -> torch.Tensor:
    """Feature matching (Section 3.1): ``|| E f(x) - E f(G(z)) ||^2`` over an intermediate layer of D,
    averaged over the features as the original code: ``mean((m_real - m_fake)^2)`` (the MNIST script,
    and the paper); ``distance="absolute"``: ``mean(|m_real - m_fake|)``, what the original CIFAR-10 and
    SVHN scripts minimise. ``(N, F)`` features in, a scalar out.
    The real statistics are a target: no gradient flows into D through them."""
    difference = real_features.detach().mean(dim=0) - fake_features.mean(dim=0)
    if distance == "squared":
        return difference.pow(2).mean()
    if distance == "absolute":
        return difference.abs().mean()
    raise ValueError(f"feature matching distance must be 'squared' or 'absolute', not {distance!r}")


def smoothed_targets(count: int, real: bool, smoothing: float = 0.9, like: torch.Tensor | None = None) -> torch.Tensor:
    """One-sided label smoothing (Section 3.4): targets ``smoothing`` for real data, 0 for generated
    (dtype and device of ``like`` when given)."""
    options = {} if like is None else {"dtype": like.dtype, "device": like.device}
    return torch.full((count,), smoothing if real else 0.0, **options)


def gan_logit(logits: torch.Tensor) -> torch.Tensor:
    """The logit of D(x) = "x is real".

    With K class logits and l_{K+1} fixed at 0 (Section 5): ``D(x) = Z(x) / (Z(x) + 1)``,
    ``Z = sum_k exp(l_k)``, i.e. ``D(x) = sigmoid(logsumexp_k l_k)``. With one output, that output.
    """
    return logits[:, 0] if logits.shape[1] == 1 else torch.logsumexp(logits, dim=1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Unsupervised D loss ``-1/2 { E_data log D(x) + E_G log(1 - D(G(z))) }`` as the original's
    ``loss_unl``; ``real_target < 1`` applies one-sided label smoothing to the real term."""
    real, fake = gan_logit(real_logits), gan_logit(fake_logits)
    targets = smoothed_targets(len(real), True, real_target, like=real)
    return 0.5 * F.binary_cross_entropy_with_logits(real, targets) + 0.5 * F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
    )


def supervised_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``-E log p(y | x, y < K+1)``: cross-entropy over the K real classes (Section 5)."""
    return F.cross_entropy(logits, labels)


def generator_loss(fake_logits: torch.Tensor, kind: str = "minimax") -> torch.Tensor:
    """``minimax``: minimise ``E log(1 - D(G(z)))`` (the original minibatch-discrimination code's
    ``-mean(softplus(l_gen))``); ``non_saturating``: minimise ``-E log D(G(z))``."""
    logit = gan_logit(fake_logits)
    if kind == "minimax":
        return -F.softplus(logit).mean()
    if kind == "non_saturating":
        return F.softplus(-logit).mean()
    raise ValueError(f"unknown generator loss {kind!r}")


class HistoricalAverage:
    """Historical averaging (Section 3.3): ``|| theta - (1/t) sum_{i<=t} theta[i] ||^2``.

    :meth:`update` adds the current parameters to the online mean (call after each step);
    :meth:`penalty` is the squared distance of the parameters to that mean (differentiable).
    """

    def __init__(self, parameters: Iterable[nn.Parameter]) -> None:
        self.parameters = [p for p in parameters if p.requires_grad]
        self.mean = [p.detach().clone() for p in self.parameters]
        self.count = 1

    def update(self) -> None:
        self.count += 1
        with torch.no_grad():
            for mean, p in zip(self.mean, self.parameters):
                mean.add_((p - mean) / self.count)

    def penalty(self) -> torch.Tensor:
        return sum(((p - m) ** 2).sum() for p, m in zip(self.parameters, self.mean))

    def state_dict(self) -> dict:
        return {"mean": [m.clone() for m in self.mean], "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        for mean, saved in zip(self.mean, state["mean"]):
            mean.copy_(saved)
        self.count = state["count"]


class ExponentialMovingAverage:
    """The exponential moving average of D's weights that the test classifier uses, exactly as the
    original code: ``a_t = a_{t-1} + rate * (theta_t - a_{t-1})`` with ``a_0 = 0`` (rate 1e-4), over
    D's trainable parameters only.

    :meth:`averaged` returns a state dict holding ``a_t`` itself (not debiased) for the trainable
    parameters and the module's current values for everything else (for example the fixed weight
    scales of the hidden weight-normalised layers, which the original does not average). Started at
    zero, ``a_t`` is shrunk by ``1 - (1 - rate)^t`` (0.06 after one MNIST epoch): in a weight-normalised
    layer that leaves the directions alone and shrinks the biases, which is what the original's test
    error measures early in training (its MNIST run, checked here: 29% after epoch 1).

    ``start="initial"`` starts the average at the module's current parameters instead of zero, as the
    CIFAR-10 feature-matching script as first published (bb3d27b: the average is copied from D's
    parameters right after their data-dependent initialisation, then moves at rate 1e-3).
    """

    def __init__(self, module: nn.Module, rate: float = 1e-4, start: Literal["zero", "initial"] = "zero") -> None:
        if start not in ("zero", "initial"):
            raise ValueError(f"the moving average starts at 'zero' or 'initial', not {start!r}")
        self.rate = rate
        self.steps = 0
        self.average = {name: torch.zeros_like(p.detach()) if start == "zero" else p.detach().clone()
                        for name, p in module.named_parameters() if p.requires_grad}

    def update(self, module: nn.Module) -> None:
        self.steps += 1
        current = dict(module.named_parameters())
        with torch.no_grad():
            names = list(self.average)
            torch._foreach_lerp_([self.average[n] for n in names], [current[n].detach() for n in names], self.rate)

    def averaged(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``module``'s state dict with the averaged trainable parameters, for ``load_state_dict``."""
        state = {k: v.clone() for k, v in module.state_dict().items()}
        state.update({k: v.clone() for k, v in self.average.items()})
        return state

    def state_dict(self) -> dict:
        return {"rate": self.rate, "steps": self.steps, "average": {k: v.clone() for k, v in self.average.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.rate = state["rate"]
        self.steps = state["steps"]
        for key, value in state["average"].items():
            self.average[key].copy_(value)
