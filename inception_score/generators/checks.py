"""Two ways a generator as people write it gives a wrong score without failing, found and said
(:func:`~inception_score.generator.score_generator` runs both):

- **left in training mode**: batch norm then normalises each batch by its own statistics (and dropout
  drops), so a sample's image depends on the rest of its batch and the score on ``batch_size`` (as
  reported: 100 samples of a DCGAN-style generator scored 1.7018 at batch 64, 1.7158 at 25);
- **a [0, 1] generator (sigmoid output) under the default range (-1, 1)**: its images are read as
  washed-out greys, and the score is off (reported: 1.0020 against 1.0138 with the range declared).

Each gives a :class:`GeneratorWarning` (on stderr, as Python shows warnings) and a reason in the
result's ``not_comparable``, with what to do. A generator whose batch statistics are meant (the
paper's own samples were made so) is scored with ``batch_statistics=True``, unmarked.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from ..engine.distributed import Group, max_over_ranks
from ..protocol import InputRange

# Layers whose output depends on the training flag, by class name (a TorchScript module keeps the
# name as ``original_name``, not the class). A layer of another class counts when it keeps running
# statistics (a buffer ``running_mean``), as batch norm's variants do.
MODE_DEPENDENT = frozenset({
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
    "SyncBatchNorm", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
})


class GeneratorWarning(UserWarning):
    """A generator's images are made or read in a way that changes its score (this module's docstring)."""


def training_mode_layers(generator: Any) -> list[str]:
    """The layers of ``generator`` that compute differently because it is in training mode, by name
    (``"bn1 (BatchNorm2d)"``); ``["the generator"]`` for a callable that is no ``torch.nn.Module`` but
    says ``training = True``; empty when training mode changes nothing."""
    if not isinstance(generator, torch.nn.Module):
        return ["the generator"] if getattr(generator, "training", False) is True else []
    found = []
    for name, layer in generator.named_modules():
        kind = getattr(layer, "original_name", type(layer).__name__)
        keeps_statistics = "running_mean" in dict(layer.named_buffers(recurse=False))
        subclass = any(base.__name__ in MODE_DEPENDENT for base in type(layer).__mro__)
        if layer.training and (kind in MODE_DEPENDENT or subclass or keeps_statistics):
            found.append(f"{name or 'the generator'} ({kind})")
    return found


def training_mode_reason(generator: Any, batch_size: int) -> str | None:
    """Why a generator in training mode makes a score that is not comparable, or None when it is not."""
    layers = training_mode_layers(generator)
    if not layers:
        return None
    shown = ", ".join(layers[:3]) + (f" and {len(layers) - 3} more" if len(layers) > 3 else "")
    return (f"the generator is in training mode ({shown}): batch norm used each batch's own statistics, so every "
            f"image depends on the rest of its batch and the score on batch_size={batch_size}; call G.eval() "
            "before scoring (or pass batch_statistics=True where batch statistics are meant)")


class OutputRange:
    """The smallest and largest value a generator's float output took over every batch, kept on its device
    (read once, at the end). uint8 output has no declared range and is not followed."""

    def __init__(self) -> None:
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None

    def add(self, images: torch.Tensor) -> None:
        if not images.is_floating_point() or images.numel() == 0:
            return
        low, high = images.detach().amin().float(), images.detach().amax().float()
        self.low = low if self.low is None else torch.minimum(self.low, low)
        self.high = high if self.high is None else torch.maximum(self.high, high)

    def bounds(self, group: Group | None = None) -> tuple[float, float] | None:
        """``(low, high)`` over every batch (of every process in ``group``), or None without float output.
        In a group every process takes part in the exchange, one that saw no float output too."""
        low = math.inf if self.low is None else float(self.low)
        high = -math.inf if self.high is None else float(self.high)
        if group is not None:
            low, high = -max_over_ranks(group, -low), max_over_ranks(group, high)
        return None if low > high else (low, high)


def unit_range_reason(bounds: tuple[float, float] | None, input_range: InputRange | None, num_samples: int) -> str | None:
    """Why a generator's output looks like [0, 1] images under a declared range symmetric about 0 (the
    default (-1, 1)): not one of ``num_samples`` images went below 0. None when nothing says so."""
    if bounds is None or input_range is None:
        return None
    low, high = input_range
    if not (low < 0.0 < high and bounds[0] >= 0.0):
        return None
    return (f"the generator's output never went below 0 in {num_samples} samples (values in [{bounds[0]:.4g}, "
            f"{bounds[1]:.4g}]) although input_range is ({low:g}, {high:g}): it looks like a [0, 1] generator "
            "(sigmoid output), whose images were read as washed-out greys; pass input_range=(0, 1) "
            "(--input-range 0,1), or map its output to the declared range")


def warn_and_reasons(reasons: list[str | None], main: bool) -> tuple[str, ...]:
    """The reasons that apply, each warned as a :class:`GeneratorWarning` on the main process."""
    found = tuple(reason for reason in reasons if reason)
    if main:
        for reason in found:
            warnings.warn(reason, GeneratorWarning, stacklevel=3)
    return found
