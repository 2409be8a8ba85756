"""Float32 accuracy on TF32 tensor cores: every product of the network as three TF32 products ("3xTF32").

TF32 keeps 10 of float32's 23 explicit mantissa bits. A float32 ``x`` splits into ``hi = x`` rounded to
TF32 and the remainder ``lo = x - hi``; then ``x * w = hi_x*hi_w + hi_x*lo_w + lo_x*hi_w + lo_x*lo_w``,
and the last term, about 2^-22 of the product, is dropped. With ``lo`` rounded to TF32 too, every operand
is a TF32 value, so a tensor core multiplies it exactly (two 11-bit significands make at most 22 bits)
and adds in float32: the result carries float32's accumulation error plus about 3 * 2^-22 of
``sum |x| |w|``, against 2^-11 for one TF32 product.

:func:`split_tf32_network` gives such a copy of a folded network
(:func:`inception_score.network.inception.fold_batch_norm`): the weights are split once, each layer splits its
input. On CUDA the products run with TF32 allowed (:func:`inception_score.network.precision.precision_scope`, the
caller's switches restored after); on a CPU, which has no TF32, the same code runs the same three
products in float32 on the same TF32-valued operands, exact as well: an emulation that differs from the
tensor cores only in the order of the float32 additions, slow (three products per one), for checks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .inception import INPUT_SIZE, ConvAvgPoolReLU, ConvReLU, Inception2015, Output, avg_pool_3x3
from .outputs import OutputRequest, pick_outputs, requested_outputs
from .precision import precision_scope

# Adding half of TF32's last place (bit 12) to the bits and clearing the 13 bits float32 has beyond
# TF32 rounds the magnitude to the nearest TF32 value, ties away from zero; a carry out of the
# mantissa raises the exponent, as it should. -8192 is 0xFFFFE000 as an int32.
_HALF_TF32_ULP = 0x1000
_TF32_MASK = -8192


def round_to_tf32(x: torch.Tensor) -> torch.Tensor:
    """float32 -> float32 rounded to the nearest TF32 value (10 explicit mantissa bits), ties away from
    zero, on the bits; infinities and NaN are returned as they are. Any shape and layout."""
    if x.dtype != torch.float32:
        raise TypeError(f"round_to_tf32 takes float32, got {x.dtype}")
    rounded = ((x.view(torch.int32) + _HALF_TF32_ULP) & _TF32_MASK).view(torch.float32)
    return torch.where(torch.isfinite(x), rounded, x)


def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hi, lo)``: ``hi`` = ``x`` rounded to TF32, ``lo = x - hi``, with ``hi + lo == x`` exactly for
    finite ``x`` below 2^128 - 2^116 in magnitude (beyond it, ``hi`` rounds to an infinity, ``lo`` too).

    The subtraction is exact in float32: ``x`` and ``hi`` are both multiples of float32's last place at
    ``x``'s exponent (``hi`` has fewer bits, and a rounding up to the next power of two only coarsens
    it), and they differ by at most half of TF32's last place, 2^12 of those; so ``x - hi`` is an
    integer of at most 13 bits times that place, which float32 holds (subnormals included).
    """
    hi = round_to_tf32(x)
    return hi, x - hi


def _tf32_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``split`` with ``lo`` rounded to TF32 as well: the operands a tensor core takes exactly."""
    hi, lo = split(x)
    return hi, round_to_tf32(lo)


def three_products(x: torch.Tensor, hi_w: torch.Tensor, lo_w: torch.Tensor,
                   product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``product(x, w)`` (bilinear: a convolution, a matrix product) as ``hi_x*hi_w + (hi_x*lo_w + lo_x*hi_w)``
    in float32, ``hi_w, lo_w`` the TF32 parts of ``w``. The two small terms are added first, then to
    the large one: one rounding of the result's size."""
    hi_x, lo_x = _tf32_parts(x)
    return product(hi_x, hi_w) + (product(hi_x, lo_w) + product(lo_x, hi_w))


class _SplitWeights(nn.Module):
    """A layer's weight split once into its TF32 parts ``hi_w``, ``lo_w``; its bias kept whole."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        hi, lo = _tf32_parts(weight.detach())
        self.register_buffer("hi_w", hi)
        self.register_buffer("lo_w", lo)
        self.register_buffer("bias", bias.detach())


class _SplitConv(_SplitWeights):
    """A folded convolution (batch norm in its weight and bias) in three TF32 products."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__(conv.weight, conv.bias)
        self.stride, self.padding = conv.stride, conv.padding

    def products(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution without bias, ``(N, C, H, W)`` -> ``(N, O, H', W')``, in three TF32 products."""
        return three_products(x, self.hi_w, self.lo_w, lambda a, w: F.conv2d(a, w, None, self.stride, self.padding))

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """``conv(x) + b``: what the ReLU of :class:`~inception_score.network.inception.ConvReLU` is applied to."""
        return self.products(x) + self.bias[:, None, None]


class SplitConvReLU(_SplitConv):
    """:class:`~inception_score.network.inception.ConvReLU` in three TF32 products: ``relu(conv(x) + b)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pre_activation(x))


class SplitConvAvgPoolReLU(_SplitConv):
    """:class:`~inception_score.network.inception.ConvAvgPoolReLU` in three TF32 products: ``relu(pool(conv(x) + b))``,
    the same order as the folded network."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(avg_pool_3x3(self.pre_activation(x)))


class SplitLinear(_SplitWeights):
    """The fc layer ``(N, 2048) -> (N, 1008)`` in three TF32 products; the bias only when asked for."""

    def __init__(self, fc: nn.Linear) -> None:
        super().__init__(fc.weight, fc.bias)

    def forward(self, features: torch.Tensor, with_bias: bool = False) -> torch.Tensor:
        logits = three_products(features, self.hi_w, self.lo_w, F.linear)
        return logits + self.bias if with_bias else logits


class SplitTf32Network(nn.Module):
    """A folded :class:`~inception_score.network.inception.Inception2015` computed in split TF32, called as the
    network is: ``forward(x, output, chunks)``, ``(N, 3, 299, 299)`` normalised float32 in. Pooling,
    ReLU, concatenation and the final mean are the folded network's own code."""

    def __init__(self, folded: Inception2015) -> None:
        super().__init__()
        # A copy of the module tree sharing the folded network's tensors, whose convolutions are then
        # replaced: the folded network itself stays as it is, for the IEEE path.
        shared = {id(t): t for t in (*folded.parameters(), *folded.buffers())}
        self.body = copy.deepcopy(folded, memo=shared)
        for parent in list(self.body.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, ConvAvgPoolReLU):
                    setattr(parent, name, SplitConvAvgPoolReLU(child.conv))
                elif isinstance(child, ConvReLU):
                    setattr(parent, name, SplitConvReLU(child.conv))
        self.fc = SplitLinear(folded.fc)

    def forward(self, x: torch.Tensor, output: OutputRequest = Output.LOGITS_UNBIASED,
                chunks: Sequence[int | None] = ()) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outputs, single = requested_outputs(output)
        # TF32 on for the products (exact on TF32-valued operands), cudnn.benchmark as the caller has it;
        # both put back after. Nothing on a CPU.
        with precision_scope(x.device, allow_tf32=True, benchmark=torch.backends.cudnn.benchmark):
            features, spatial = self.body.features(x, chunks, spatial=Output.SPATIAL in outputs)
            picked = pick_outputs(outputs, features, spatial, lambda with_bias: self.fc(features, with_bias))
        return picked[0] if single else picked


def split_tf32_network(folded: Inception2015) -> SplitTf32Network:
    """The split-TF32 copy of a folded network (:func:`inception_score.network.inception.fold_batch_norm`), on its
    device, in evaluation mode without gradients."""
    return SplitTf32Network(folded).eval().requires_grad_(False)


# The largest logit difference from IEEE float32, relative to the largest logit, that "auto" accepts on CUDA
# before it uses split TF32. The CPU emulation measured 2.2e-6 on 2 genuine CIFAR-10 images and 3.7e-6 on
# 512 (tests/test_split_tf32.py, benchmarks/results/split-tf32-cpu.md): both float32, rounded differently.
# TF32 alone (operands rounded once) measured 3.5e-3. A difference beyond this limit means the hardware
# or its library did not compute what the split assumes (say, a convolution algorithm that rounds its
# own intermediate values to TF32).
AGREEMENT_LIMIT = 5e-5


def split_tf32_timing(network: Inception2015, split_network: SplitTf32Network, device: torch.device,
                      batch: int = 32) -> tuple[float, float, float]:
    """``(ieee_s, split_s, difference)``: seconds of one ``batch`` of 299x299 inputs in IEEE float32 and in
    split TF32, each after a warm-up pass, and the largest logit difference between the two relative to
    the largest logit, on seeded random inputs in [-1, 1)."""
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE, generator=generator) * 2 - 1).to(device)
    x = x.contiguous(memory_format=torch.channels_last)
    seconds, logits = [], []
    with torch.inference_mode(), precision_scope(device, allow_tf32=False, benchmark=torch.backends.cudnn.benchmark):
        for run in (network, split_network):
            run(x, Output.LOGITS_UNBIASED)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            begin = time.perf_counter()
            logits.append(run(x, Output.LOGITS_UNBIASED).double())
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds.append(time.perf_counter() - begin)
    difference = float((logits[1] - logits[0]).abs().max() / logits[0].abs().max().clamp_min(1e-30))
    return seconds[0], seconds[1], difference
