"""The paper's models, as openai/improved-gan's mnist_svhn_cifar10/ scripts build them, built from a
configuration so each technique can be switched on or off.

* CIFAR-10 / SVHN discriminator: input noise (Gaussian, sigma 0.2, as the original minibatch-discrimination
  script; or dropout 0.2, as its feature-matching scripts), nine weight-normalised convolutions
  (W, W, W/2, dropout, 2W, 2W, 2W/2, dropout, 2W valid, 2W 1x1, 2W 1x1; W = 96, or 64 in the original
  SVHN script) with leaky ReLU (slope 0.2; 0.1 in the scripts as first published), global mean pool
  (the feature-matching layer), optional minibatch discrimination, dense to K logits.
* CIFAR-10 / SVHN generator: uniform z (100) -> dense 4x4x512 -> 5x5 deconvolutions to 256@8x8 and
  128@16x16 (normalised, ReLU) -> weight-normalised deconvolution to 3@32x32, tanh.
* MNIST discriminator: MLP 784-1000-500-250-250-250-K, weight-normalised, ReLU, Gaussian noise 0.3 on
  the input and 0.5 after each hidden layer; the last hidden layer is the feature-matching layer.
* MNIST generator: uniform z (100) -> 500 -> 500 (softplus, normalised) -> 784, weight-normalised, sigmoid.

"Normalised" is batch norm without a learned scale (as the original), or virtual batch norm (with or
without a learned scale).

The convolutional models follow the public scripts (2016-06-14) by default; ``ModelConfig`` also builds
them as first published (bb3d27b, 2016-06-08): leaky ReLU 0.1, every weight-normalised layer initialised
with one spread per layer, output layers at scale 1, and (minibatch script) no data-dependent
initialisation of G.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    BatchNormNoScale,
    GaussianNoise,
    InitStatistics,
    MinibatchDiscrimination,
    VBNStatistics,
    VirtualBatchNorm,
    WNConv2d,
    WNConvTranspose2d,
    WNLinear,
)

Architecture = Literal["mnist", "cifar10"]
GeneratorNorm = Literal["batch", "virtual"]
InputCorruption = Literal["noise", "dropout"]
Z_DIM = 100
# The generator's output range, set by its last nonlinearity (sigmoid for MNIST, tanh otherwise).
OUTPUT_RANGE: dict[str, tuple[float, float]] = {"mnist": (0.0, 1.0), "cifar10": (-1.0, 1.0)}


@dataclass(frozen=True)
class ModelConfig:
    """Which models to build: ``num_outputs`` is K (10) with labels, 1 for a plain GAN."""

    architecture: Architecture
    num_outputs: int = 10
    minibatch_discrimination: bool = False
    generator_norm: GeneratorNorm = "batch"
    minibatch_kernels: int = 100
    minibatch_kernel_dim: int = 5
    # Convolutional D only: what corrupts its input (Gaussian noise sigma 0.2, or dropout p 0.2), and
    # the width W of its first block (the second block has 2W).
    input_corruption: InputCorruption = "noise"
    width: int = 96
    # Convolutional models only (the MNIST scripts use ReLU and scale-1 outputs in every version):
    leaky_relu_slope: float = 0.2  # D's hidden layers
    output_init_scale: float = 0.1  # the standard deviation D's logits and G's output start at
    init_statistics: InitStatistics = "per_unit"  # how data-dependent initialisation measures spread
    generator_data_init: bool = True  # False: G's weight-normalised output layer starts at scale 1, bias 0
    # Virtual batch norm only:
    vbn_scale: bool = True  # a learned scale per unit
    vbn_statistics: VBNStatistics = "per_example"


class Discriminator(nn.Module):
    """``forward(x) -> (logits (N, K), features (N, F))``; features feed feature matching."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        if config.architecture == "mnist":
            widths = [784, 1000, 500, 250, 250, 250]
            layers: list[nn.Module] = [nn.Flatten(), GaussianNoise(0.3)]
            for index, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
                layers += [WNLinear(a, b, std=0.1), nn.ReLU()]  # the original MNIST D: theta ~ N(0, 0.1)
                if index < len(widths) - 2:
                    layers.append(GaussianNoise(0.5))
            self.body = nn.Sequential(*layers)
            self.head_noise: nn.Module = GaussianNoise(0.5)
            feature_dim = 250
            final_scale, final_std = 1.0, 0.1
        else:
            def conv(a: int, b: int, k: int = 3, stride: int = 1, padding: int = 1) -> list[nn.Module]:
                return [WNConv2d(a, b, k, stride=stride, padding=padding, init_statistics=config.init_statistics),
                        nn.LeakyReLU(config.leaky_relu_slope)]

            if config.input_corruption not in ("noise", "dropout"):
                raise ValueError(f"input_corruption must be 'noise' or 'dropout', not {config.input_corruption!r}")
            a, b = config.width, 2 * config.width
            self.body = nn.Sequential(
                GaussianNoise(0.2) if config.input_corruption == "noise" else nn.Dropout(0.2),
                *conv(3, a), *conv(a, a), *conv(a, a, stride=2), nn.Dropout(0.5),
                *conv(a, b), *conv(b, b), *conv(b, b, stride=2), nn.Dropout(0.5),
                *conv(b, b, padding=0), *conv(b, b, k=1, padding=0), *conv(b, b, k=1, padding=0),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            self.head_noise = nn.Identity()
            feature_dim = b
            final_scale, final_std = config.output_init_scale, 0.05
        self.minibatch: nn.Module | None = None
        if config.minibatch_discrimination:
            self.minibatch = MinibatchDiscrimination(feature_dim, config.minibatch_kernels, config.minibatch_kernel_dim)
            feature_dim = self.minibatch.out_features
        statistics = config.init_statistics if config.architecture != "mnist" else "per_unit"
        self.head = WNLinear(feature_dim, config.num_outputs, init_scale=final_scale, train_scale=True, std=final_std,
                             init_statistics=statistics)

    @property
    def batch_independent(self) -> bool:
        """True when each example's output depends on that example alone (no minibatch layer), so
        batches may be concatenated into one forward pass without changing anything."""
        return self.minibatch is None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        h = self.head_noise(features)
        if self.minibatch is not None:
            h = self.minibatch(h)
        return self.head(h), features


class Generator(nn.Module):
    """``forward(z) -> images``; with virtual batch norm it first runs its fixed reference batch."""

    def __init__(self, config: ModelConfig, reference_z: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        def norm(features: int) -> nn.Module:
            if config.generator_norm == "virtual":
                return VirtualBatchNorm(features, scale=config.vbn_scale, statistics=config.vbn_statistics)
            return BatchNormNoScale(features)

        if config.architecture == "mnist":
            self.linear1 = nn.Linear(Z_DIM, 500, bias=False)
            self.norm1 = norm(500)
            self.linear2 = nn.Linear(500, 500, bias=False)
            self.norm2 = norm(500)
            self.out = WNLinear(500, 784, train_scale=True, data_init=False)
            nn.init.xavier_uniform_(self.out.v)  # Lasagne's default (Glorot uniform)
        else:
            self.linear1 = nn.Linear(Z_DIM, 4 * 4 * 512, bias=False)
            self.norm1 = norm(4 * 4 * 512)
            self.deconv1 = nn.ConvTranspose2d(512, 256, 5, stride=2, padding=2, output_padding=1, bias=False)
            self.norm2 = norm(256)
            self.deconv2 = nn.ConvTranspose2d(256, 128, 5, stride=2, padding=2, output_padding=1, bias=False)
            self.norm3 = norm(128)
            self.out = WNConvTranspose2d(128, 3, init_scale=config.output_init_scale,
                                         data_init=config.generator_data_init, init_statistics=config.init_statistics)
        for module in self.modules():
            if type(module) in (nn.Linear, nn.ConvTranspose2d):
                if config.architecture == "mnist":
                    nn.init.xavier_uniform_(module.weight)  # the original MNIST G: Lasagne's default
                else:
                    nn.init.normal_(module.weight, std=0.05)
        if config.generator_norm == "virtual":
            if reference_z is None:
                raise ValueError("virtual batch norm needs a reference batch of z")
            self.register_buffer("reference_z", reference_z.clone())
        else:
            self.reference_z = None

    @property
    def image_shape_hwc(self) -> tuple[int, int, int]:
        return (28, 28, 1) if self.config.architecture == "mnist" else (32, 32, 3)

    def _norm(self, layer: nn.Module, x: torch.Tensor, reference: bool) -> torch.Tensor:
        return layer(x, reference=reference) if isinstance(layer, VirtualBatchNorm) else layer(x)

    def _run(self, z: torch.Tensor, reference: bool) -> torch.Tensor:
        if self.config.architecture == "mnist":
            h = F.softplus(self._norm(self.norm1, self.linear1(z), reference))
            h = F.softplus(self._norm(self.norm2, self.linear2(h), reference))
            return torch.sigmoid(self.out(h)).view(-1, 1, 28, 28)
        h = F.relu(self._norm(self.norm1, self.linear1(z), reference)).view(-1, 512, 4, 4)
        h = F.relu(self._norm(self.norm2, self.deconv1(h), reference))
        h = F.relu(self._norm(self.norm3, self.deconv2(h), reference))
        return torch.tanh(self.out(h))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.reference_z is not None:
            self._run(self.reference_z, reference=True)  # the paper's second forward pass (Section 3.5)
        return self._run(z, reference=False)


def to_uint8(images: torch.Tensor, architecture: str) -> torch.Tensor:
    """Generator output ``(N, C, H, W)`` in its OUTPUT_RANGE -> uint8 ``(N, C, H, W)``, rounded to the nearest
    level: the pixels ``reference-gan sample`` writes and ``reference-gan score`` scores."""
    low, high = OUTPUT_RANGE[architecture]
    return ((images.float() - low) / (high - low) * 255.0).round().clamp(0, 255).to(torch.uint8)


class PixelGenerator:
    """``G`` as a generator of uint8 pixels for ``inception_score.score_generator``: ``(B, 100)`` z ->
    ``(B, C, H, W)`` uint8, batch statistics and all (``training`` says whether G uses them)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.training = generator.training

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return to_uint8(self.generator(z), self.generator.config.architecture)


@torch.no_grad()
def generate_uint8(generator: Generator, count: int, batch_size: int = 100,
                   device: torch.device | str = "cpu",
                   draw_z: Callable[[int, int], torch.Tensor] | None = None) -> np.ndarray:
    """``count`` images from ``generator`` (batch statistics, as in training) as uint8 ``(N, H, W, C)``:
    ``(N, 28, 28, 1)`` for MNIST, ``(N, 32, 32, 3)`` otherwise. ``draw_z(start, stop)`` gives the z of
    samples ``[start, stop)``; by default z comes from torch's global RNG."""
    chunks = []
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        z = draw_z(start, stop) if draw_z is not None else sample_z(stop - start, device=device)
        pixels = to_uint8(generator(z), generator.config.architecture)
        chunks.append(pixels.permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, *generator.image_shape_hwc), dtype=np.uint8)


def sample_z(count: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform noise in [0, 1) of shape ``(count, 100)``, as the original code (theano uniform)."""
    return torch.rand(count, Z_DIM, generator=generator, device=device)

