"""Layers of the paper's models: weight normalisation with data-dependent initialisation, Gaussian
noise, minibatch discrimination (Section 3.2) and virtual batch normalisation (Section 3.5).

Data-dependent initialisation (Salimans & Kingma 2016, used by the paper's code): inside
``with data_dependent_init():`` the first forward pass of each weight-normalised layer (and of the
minibatch layer) sets its scale and bias from the statistics of the batch it sees, so that its
outputs start with zero mean and unit variance.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

_INIT = {"active": False}
# How data-dependent initialisation measures the spread it divides by: one standard deviation per output
# unit (the public code's WeightNormLayer, 2016-06-14) or one for the whole layer, over every unit,
# example and position at once (the code as first published, bb3d27b's L2NormLayer:
# ``stdv = T.sqrt(T.mean(T.square(input)))`` after centring each unit).
InitStatistics = Literal["per_unit", "per_layer"]
# Which statistics virtual batch norm combines with the reference batch's for the batch being normalised:
# each example's own (the paper, Section 3.5, and the ImageNet code after its fixes of 2016-06-21 and
# 2017-05-19) or the whole batch's (that code as released on 2016-06-09, at the time of the paper).
VBNStatistics = Literal["per_example", "batch"]


@contextlib.contextmanager
def data_dependent_init() -> Iterator[None]:
    """Forward passes inside this block initialise the layers they run through (once each)."""
    _INIT["active"] = True
    try:
        with torch.no_grad():
            yield
    finally:
        _INIT["active"] = False


class _WeightNormed(nn.Module):
    """``W = g * V / ||V||`` (norm over all but the output axis), plus a bias; data-dependent init."""

    def __init__(self, weight_shape: tuple[int, ...], out_axis: int, init_scale: float = 1.0, train_scale: bool = False,
                 std: float = 0.05, data_init: bool = True, init_statistics: InitStatistics = "per_unit") -> None:
        super().__init__()
        if init_statistics not in ("per_unit", "per_layer"):
            raise ValueError(f"init_statistics must be 'per_unit' or 'per_layer', not {init_statistics!r}")
        self.out_axis = out_axis
        self.init_scale = init_scale
        self.init_statistics = init_statistics
        self.v = nn.Parameter(torch.randn(weight_shape) * std)
        out = weight_shape[out_axis]
        # As the original: hidden layers keep the scale set by the data-dependent initialisation
        # (train_g=False); only output layers learn it.
        self.g = nn.Parameter(torch.ones(out), requires_grad=train_scale)
        self.bias = nn.Parameter(torch.zeros(out))
        # data_init=False: the original's older "l2normalize" (unit-norm rows, scale 1, bias 0, no
        # data-dependent initialisation), used on the MNIST generator's output.
        self.register_buffer("initialized", torch.tensor(not data_init))

    def scale(self) -> torch.Tensor:
        """``g / ||V||`` per output unit, shape ``(out,)``."""
        dims = [d for d in range(self.v.ndim) if d != self.out_axis]
        return self.g / torch.linalg.vector_norm(self.v, dim=dims)

    def weight(self) -> torch.Tensor:
        shape = [1] * self.v.ndim
        shape[self.out_axis] = -1
        return self.v * self.scale().view(shape)

    def _linear_map(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _INIT["active"] and not bool(self.initialized):
            with torch.no_grad():
                self.g.fill_(1.0)
                t = self._linear_map(x, self.weight())
                dims = [d for d in range(t.ndim) if d != 1]
                mean = t.mean(dim=dims)
                if self.init_statistics == "per_unit":
                    std = t.std(dim=dims, unbiased=False)
                else:  # one spread for all units: the root mean square of every unit's centred outputs
                    shape = [1] * t.ndim
                    shape[1] = -1
                    std = (t - mean.view(shape)).pow(2).mean().sqrt().expand_as(mean)
                self.g.copy_(self.init_scale / (std + 1e-8))
                self.bias.copy_(-mean * self.g)
                self.initialized.fill_(True)
        # (x V^T) * g/||V|| + b equals x (g V/||V||)^T + b, and scales the (N, out) output rather than
        # the whole weight on every call: several times less work for the MNIST D's batches of 100. For a
        # convolution it costs nothing extra either: the bias needs its one pass over the output anyway.
        out = self._linear_map(x, self.v)
        shape = [1] * out.ndim
        shape[1] = -1
        return torch.addcmul(self.bias.view(shape), out, self.scale().view(shape))


class WNLinear(_WeightNormed):
    def __init__(self, in_features: int, out_features: int, init_scale: float = 1.0, train_scale: bool = False,
                 std: float = 0.05, data_init: bool = True, init_statistics: InitStatistics = "per_unit") -> None:
        super().__init__((out_features, in_features), out_axis=0, init_scale=init_scale, train_scale=train_scale,
                         std=std, data_init=data_init, init_statistics=init_statistics)

    def _linear_map(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight)


class WNConv2d(_WeightNormed):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 init_scale: float = 1.0, init_statistics: InitStatistics = "per_unit") -> None:
        super().__init__((out_channels, in_channels, kernel_size, kernel_size), out_axis=0, init_scale=init_scale,
                         init_statistics=init_statistics)
        self.stride, self.padding = stride, padding

    def _linear_map(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, stride=self.stride, padding=self.padding)


class WNConvTranspose2d(_WeightNormed):
    """A 5x5 stride-2 transposed convolution doubling the size (the original's Deconv2DLayer).
    ``data_init=False``: scale 1, bias 0 until trained (the generator of the minibatch script as first
    published, whose data-dependent initialisation ran through D only)."""

    def __init__(self, in_channels: int, out_channels: int, init_scale: float = 1.0, train_scale: bool = True,
                 data_init: bool = True, init_statistics: InitStatistics = "per_unit") -> None:
        super().__init__((in_channels, out_channels, 5, 5), out_axis=1, init_scale=init_scale, train_scale=train_scale,
                         data_init=data_init, init_statistics=init_statistics)

    def _linear_map(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, weight, stride=2, padding=2, output_padding=1)


class GaussianNoise(nn.Module):
    """Adds N(0, sigma^2) noise in training mode; the identity in evaluation mode."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0:
            return x
        return torch.randn_like(x).mul_(self.sigma).add_(x)  # in place: one pass over the noise, no temporaries


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Section 3.2): lets D see how alike the samples of a batch are.

    ``f(x_i)`` (A values) times ``T`` (A x B x C) gives ``M_i`` (B x C);
    ``c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1)``; ``o(x_i)_b = sum_{j != i} c_b(x_i, x_j) + bias_b``;
    the output is ``[f(x_i), o(x_i)]`` (A + B values). As in the original, ``T`` is weight-normalised
    per kernel entry (over A) with a learned log-scale, ``j = i`` is excluded by adding a large
    constant to the self-distance, the bias starts at -1, and data-dependent initialisation sets the
    scale so that the closest other sample sits at distance 2 on average and centres ``o``.
    Real and generated batches must go through it separately.
    """

    def __init__(self, in_features: int, num_kernels: int = 100, kernel_dim: int = 5) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.randn(in_features, num_kernels, kernel_dim) * 0.05)
        self.log_weight_scale = nn.Parameter(torch.zeros(num_kernels, kernel_dim))
        self.bias = nn.Parameter(torch.full((num_kernels,), -1.0))
        self.register_buffer("initialized", torch.tensor(False))
        self.out_features = in_features + num_kernels

    def tensor(self) -> torch.Tensor:
        """``T`` (A, B, C) after weight normalisation."""
        norm = self.theta.pow(2).sum(dim=0, keepdim=True).sqrt()
        return self.theta * (self.log_weight_scale.exp() / norm)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = features.flatten(1)
        m = torch.einsum("na,abc->nbc", features, self.tensor())  # (N, B, C)
        distance = (m[:, None] - m[None, :]).abs().sum(dim=3)  # (N, N, B), L1 over C
        eye = torch.eye(len(features), device=features.device, dtype=features.dtype)
        distance = distance + 1e6 * eye[:, :, None]
        if _INIT["active"] and not bool(self.initialized):
            with torch.no_grad():
                closest = 0.5 * distance.min(dim=1).values.mean(dim=0)  # (B,)
                self.log_weight_scale.sub_(closest.log()[:, None])
                distance = distance / closest
                o = torch.exp(-distance).sum(dim=1)
                self.bias.copy_(-o.mean(dim=0))
                self.initialized.fill_(True)
        o = torch.exp(-distance).sum(dim=1) + self.bias  # (N, B)
        return torch.cat([features, o], dim=1)


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalisation (Section 3.5).

    Each example is normalised with statistics of a reference batch, fixed at the start of training,
    combined with the example itself: with reference means ``mu_r = E_ref[x]``, ``s_r = E_ref[x^2]``
    over a reference batch of size ``R`` (and over space),
    ``mu = (x_mean + R mu_r) / (R + 1)``, ``s = (x_sq_mean + R s_r) / (R + 1)``, ``var = s - mu^2``,
    where ``x_mean``, ``x_sq_mean`` are the example's own (spatial) means. The reference batch itself is
    normalised with its own statistics. Call :meth:`forward` with ``reference=True`` on the reference
    batch first (this stores its statistics, keeping their gradient), then on the batch to normalise.

    ``statistics="batch"``: ``x_mean``, ``x_sq_mean`` are the whole batch's means instead (over the batch
    and space), as the released ImageNet code until its fixes (2016-06-21, 2017-05-19); an example's output
    then depends on the rest of its batch. ``scale=False``: no learned scale ``gamma`` (fixed at 1), as the
    batch norm of the original generators (``g=None``).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, scale: bool = True,
                 statistics: VBNStatistics = "per_example") -> None:
        super().__init__()
        if statistics not in ("per_example", "batch"):
            raise ValueError(f"statistics must be 'per_example' or 'batch', not {statistics!r}")
        self.eps = eps
        self.statistics = statistics
        # Without a scale gamma stays a (frozen) parameter, as BatchNormNoScale's weight: the same state dict.
        self.gamma = nn.Parameter(torch.ones(num_features), requires_grad=scale)
        self.beta = nn.Parameter(torch.zeros(num_features))
        self._reference: tuple[torch.Tensor, torch.Tensor, int] | None = None

    def _affine(self, x: torch.Tensor, mean: torch.Tensor, mean_sq: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (x.ndim - 2)
        var = mean_sq - mean.pow(2)
        return (x - mean) / torch.sqrt(var + self.eps) * self.gamma.view(shape) + self.beta.view(shape)

    def forward(self, x: torch.Tensor, reference: bool = False) -> torch.Tensor:
        dims = [0] + list(range(2, x.ndim))  # batch and space
        if reference:
            mean = x.mean(dim=dims)
            mean_sq = x.pow(2).mean(dim=dims)
            self._reference = (mean, mean_sq, x.shape[0])
            shape = [1, -1] + [1] * (x.ndim - 2)
            return self._affine(x, mean.view(shape), mean_sq.view(shape))
        if self._reference is None:
            raise RuntimeError("VirtualBatchNorm needs a forward pass on the reference batch first")
        ref_mean, ref_mean_sq, size = self._reference
        shape = [1, -1] + [1] * (x.ndim - 2)
        if self.statistics == "batch":
            own_mean, own_mean_sq = x.mean(dim=dims).view(shape), x.pow(2).mean(dim=dims).view(shape)
        else:
            space = list(range(2, x.ndim))
            own_mean = x.mean(dim=space, keepdim=True) if space else x
            own_mean_sq = x.pow(2).mean(dim=space, keepdim=True) if space else x.pow(2)
        new = 1.0 / (size + 1)
        mean = new * own_mean + (1 - new) * ref_mean.view(shape)
        mean_sq = new * own_mean_sq + (1 - new) * ref_mean_sq.view(shape)
        return self._affine(x, mean, mean_sq)


class BatchNormNoScale(nn.modules.batchnorm._BatchNorm):
    """Batch norm as in the original generators (``g=None``: no learned scale, a learned shift), for
    ``(N, C)`` or ``(N, C, H, W)`` inputs."""

    def __init__(self, num_features: int) -> None:
        # batch statistics always; epsilon 1e-6 as the original's BatchNormLayer
        super().__init__(num_features, eps=1e-6, affine=True, track_running_stats=False)
        self.weight.requires_grad_(False)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 4):
            raise ValueError(f"expected a 2-D or 4-D input, got {input.dim()}-D")

