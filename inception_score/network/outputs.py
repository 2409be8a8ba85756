"""What one pass of the 2015 network gives: the :class:`Output` kinds, and the spatial features of sFID.

One pass can give several outputs (a tuple of :class:`Output`): the logits for the Inception Score, the
pool_3 features for FID, KID and precision/recall, and the spatial features for sFID, as
guided-diffusion's evaluator takes them from the same graph (``pool_3:0`` and ``mixed_6/conv:0``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum

import torch

FEATURE_DIM = 2048
NUM_CLASSES = 1008
# guided-diffusion's sFID features: ``mixed_6/conv:0``, the 1x1 branch of Mixed_6d after batch norm and ReLU,
# (N, 17, 17, 192) in TF's layout, of which its evaluator keeps channels [..., :7] flattened in height,
# width, channel order.
SPATIAL_SIZE = 17
SPATIAL_CHANNELS = 7
SPATIAL_DIM = SPATIAL_SIZE * SPATIAL_SIZE * SPATIAL_CHANNELS  # 2023


class Output(str, Enum):
    """What :meth:`Inception2015.forward` returns. A tuple of them gives a tuple of tensors, in its order,
    from one pass; the spatial features are computed only when asked for."""

    POOL3 = "pool3"  # (N, 2048) features after the 8x8 average pool
    LOGITS_UNBIASED = "logits_unbiased"  # (N, 1008) pool3 @ W.T, the paper's code's logits
    LOGITS = "logits"  # (N, 1008) pool3 @ W.T + b
    PROBABILITIES = "probabilities"  # (N, 1008) softmax of the unbiased logits
    SPATIAL = "spatial"  # (N, 2023) mixed_6/conv[..., :7] flattened height, width, channel (sFID's features)


OutputRequest = Output | str | Sequence[Output | str]
OUTPUT_DIMS = {Output.POOL3: FEATURE_DIM, Output.LOGITS_UNBIASED: NUM_CLASSES, Output.LOGITS: NUM_CLASSES,
               Output.PROBABILITIES: NUM_CLASSES, Output.SPATIAL: SPATIAL_DIM}


def requested_outputs(output: OutputRequest) -> tuple[tuple[Output, ...], bool]:
    """``(outputs, single)``: the :class:`Output` values asked for, in order, and whether one was asked
    for alone (then a tensor is returned, else a tuple of tensors)."""
    if isinstance(output, str):
        return (Output(output),), True
    outputs = tuple(Output(o) for o in output)
    if not outputs:
        raise ValueError("no output asked for: give an Output or a non-empty sequence of them")
    return outputs, False


def spatial_features(mixed_6_conv: torch.Tensor) -> torch.Tensor:
    """``(N, 192, 17, 17)`` output of Mixed_6d's 1x1 branch -> ``(N, 2023)``: its first 7 channels
    flattened in height, width, channel order, as guided-diffusion's evaluator flattens them."""
    kept = mixed_6_conv[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1)
    return kept.reshape(len(kept), -1)  # a copy: the 192-channel map is not kept alive


def pick_outputs(outputs: tuple[Output, ...], pool3: torch.Tensor, spatial: torch.Tensor | None,
                 logits: Callable[[bool], torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The tensors of ``outputs`` from one pass: ``pool3`` (N, 2048), ``spatial`` (N, 2023, or None when
    not computed) and ``logits(with_bias)`` (N, 1008), called only when logits are asked for."""
    computed: dict[Output, torch.Tensor] = {Output.POOL3: pool3}
    if spatial is not None:
        computed[Output.SPATIAL] = spatial
    for output in outputs:
        if output in computed:
            continue
        if output is Output.SPATIAL:
            raise ValueError("the spatial features were not computed in this pass")
        if output is Output.LOGITS:
            computed[output] = logits(True)
            continue
        # The paper's code multiplies pool_3 by softmax/weights and never adds softmax/biases.
        if Output.LOGITS_UNBIASED not in computed:
            computed[Output.LOGITS_UNBIASED] = logits(False)
        if output is Output.PROBABILITIES:
            computed[output] = computed[Output.LOGITS_UNBIASED].softmax(dim=1)
    return tuple(computed[output] for output in outputs)
