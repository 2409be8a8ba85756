"""The 2015-12-05 TensorFlow Inception graph as a PyTorch module.

This is the network of ``classify_image_graph_def.pb`` in ``inception-2015-12-05.tgz``, the one
behind every published Inception Score (Salimans et al. 2016). It is *not* torchvision's
``inception_v3``; the differences below change the score:

* batch norm with epsilon 0.001 and no learned scale (``bn.weight`` is all ones),
* average-pool branches that do not count the zero padding,
* a 3x3 stride-1 *max* pool in the pool branch of the last mixed block (Mixed_7c),
* 1008 output classes, no auxiliary head, no input transform.

Parameter names follow the pytorch-fid / torch-fidelity weights file
(``pt_inception-2015-12-05-6726825d.pth``), so that file loads with ``load_state_dict`` as is.
The module takes 299x299 inputs already normalised to [-1, 1); resizing and normalisation live
in :mod:`inception_score.network.preprocess`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .outputs import (FEATURE_DIM, NUM_CLASSES, Output, OutputRequest, pick_outputs, requested_outputs,
                              spatial_features)

INPUT_SIZE = 299
BN_EPS = 0.001


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001, scale fixed at 1), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _max_pool_3x3_same(x: torch.Tensor) -> torch.Tensor:
    """The 3x3 stride-1 max pool with SAME padding of Mixed_7c's pool branch."""
    if x.device.type != "cpu" or x.requires_grad:
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    # On CPU torch's pooling kernel also writes an int64 index per output. Four elementwise maxima of
    # shifted views, along the rows and then the columns (a border window has fewer terms, as padding
    # excludes), give the same values (a maximum does not round): 6.4 ms against 20.2 ms for
    # (32, 2048, 8, 8) channels-last on one thread of a 2-core Xeon.
    rows = x.clone()
    torch.maximum(rows[:, :, 1:], x[:, :, :-1], out=rows[:, :, 1:])
    torch.maximum(rows[:, :, :-1], x[:, :, 1:], out=rows[:, :, :-1])
    out = rows.clone()
    torch.maximum(out[..., 1:], rows[..., :-1], out=out[..., 1:])
    torch.maximum(out[..., :-1], rows[..., 1:], out=out[..., :-1])
    return out


def avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    """TF's 3x3 stride-1 average pool with SAME padding, which does not count the padding."""
    # TF's AvgPool with SAME padding divides by the number of real pixels in the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class AvgPoolBranch(BasicConv2d):
    """A pool branch: the 3x3 average pool (padding excluded), then a 1x1 :class:`BasicConv2d`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(avg_pool_3x3(x))


class InceptionA(nn.Module):
    """Mixed_5b, 5c, 5d (TF scopes mixed, mixed_1, mixed_2)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = AvgPoolBranch(in_channels, pool_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(x),
            ],
            dim=1,
        )


class InceptionB(nn.Module):
    """Mixed_6a (TF scope mixed_3): the 35x35 -> 17x17 reduction."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            dim=1,
        )


class InceptionC(nn.Module):
    """Mixed_6b..6e (TF scopes mixed_4..mixed_7): factorised 7x7 convolutions."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = AvgPoolBranch(in_channels, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.with_branch1x1(x)[0]

    def with_branch1x1(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and its 1x1 branch (TF ``mixed_N/conv``, after batch norm and ReLU)."""
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        d = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(d))))
        return torch.cat([b1, b7, d, self.branch_pool(x)], dim=1), b1


class InceptionD(nn.Module):
    """Mixed_7a (TF scope mixed_8): the 17x17 -> 8x8 reduction."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """Mixed_7b and Mixed_7c (TF scopes mixed_9, mixed_10).

    The 2015 graph pools with an average (padding excluded) in Mixed_7b but with a *max* pool
    in Mixed_7c; ``max_pool`` selects which.
    """

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1) if max_pool else AvgPoolBranch(in_channels, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.max_pool:
            pooled = self.branch_pool(_max_pool_3x3_same(x))
        else:
            pooled = self.branch_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(d),
                self.branch3x3dbl_3b(d),
                pooled,
            ],
            dim=1,
        )


class Inception2015(nn.Module):
    """The 2015-12-05 Inception network from normalised 299x299 input to its outputs.

    ``forward(x, output)`` takes ``(N, 3, 299, 299)`` floats, ``(pixel - 128) / 128``, and returns
    the :class:`Output` asked for. The network is randomly initialised; load weights with
    :func:`inception_score.network.weights.load_network`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    @classmethod
    def skeleton(cls) -> Inception2015:
        """The network's structure without storage (on the meta device): its state dict gives every
        tensor's name and shape, and :meth:`from_state_dict` fills it without a random initialisation."""
        with torch.device("meta"):
            return cls()

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, torch.Tensor]) -> Inception2015:
        """A network that uses ``state_dict``'s tensors as its parameters and buffers (no copy, and none
        of the second the random initialisation of 24 million parameters takes)."""
        network = cls.skeleton()
        network.load_state_dict(state_dict, assign=True)
        return network

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 299, 299)`` normalised input -> ``(N, 192, 35, 35)``, the input of Mixed_5b."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2)

    def mixed_35(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 192, 35, 35)`` -> ``(N, 768, 17, 17)``: the 35x35 blocks and the reduction after them."""
        return self.Mixed_6a(self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x))))

    def mixed_17_8(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 768, 17, 17)`` -> ``(N, 2048)`` pool_3: the 17x17 and 8x8 blocks, then the 8x8 average."""
        return self.mixed_17_8_features(x, spatial=False)[0]  # the same blocks, the branch left out

    def mixed_17_8_features(self, x: torch.Tensor, spatial: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`mixed_17_8`'s pool_3, and where ``spatial`` is asked for the ``(N, 2023)``
        :func:`spatial_features` of Mixed_6d's 1x1 branch from the same pass (else None)."""
        x = self.Mixed_6c(self.Mixed_6b(x))
        x, mixed_6_conv = self.Mixed_6d.with_branch1x1(x) if spatial else (self.Mixed_6d(x), None)
        spatial_out = None if mixed_6_conv is None else spatial_features(mixed_6_conv)
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(self.Mixed_6e(x))))
        return x.mean(dim=(2, 3)), spatial_out

    def pool3(self, x: torch.Tensor, chunks: Sequence[int | None] = ()) -> torch.Tensor:
        """``(N, 3, 299, 299)`` normalised input -> ``(N, 2048)`` pool_3 features (see :meth:`features`)."""
        return self.features(x, chunks, spatial=False)[0]

    def features(self, x: torch.Tensor, chunks: Sequence[int | None] = (),
                 spatial: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(N, 3, 299, 299)`` normalised input -> ``(N, 2048)`` pool_3 features, and the ``(N, 2023)``
        spatial features (:data:`Output.SPATIAL`) when ``spatial`` is asked for, else None.

        ``chunks`` runs the stages in order (:meth:`stem`, :meth:`mixed_35`, :meth:`mixed_17_8_features`)
        that many images at a time, each piece through the same function; a stage without one (None, or
        past the end) takes all of ``x`` at once (see :data:`inception_score.engine.runner.CPU_STAGE_CHUNKS`).
        """
        def last(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            # Without spatial features the stage is mixed_17_8 itself (its name is the stage's, as the
            # chunk tests see it); with them, the same blocks giving Mixed_6d's branch as well.
            return self.mixed_17_8_features(part, True) if spatial else (self.mixed_17_8(part), None)

        for index, stage in enumerate((self.stem, self.mixed_35, last)):
            chunk = chunks[index] if index < len(chunks) else None
            if chunk is None or chunk >= len(x):
                x = stage(x)
            elif stage is last:
                pieces = [stage(p) for p in x.split(chunk)]
                x = (torch.cat([p[0] for p in pieces]), torch.cat([p[1] for p in pieces]) if spatial else None)
            else:
                x = torch.cat([stage(p) for p in x.split(chunk)])
        return x

    def forward(self, x: torch.Tensor, output: OutputRequest = Output.LOGITS_UNBIASED,
                chunks: Sequence[int | None] = ()) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``(N, 3, 299, 299)`` normalised input -> the :class:`Output` asked for, or a tuple of tensors
        for a sequence of them, all from one pass."""
        outputs, single = requested_outputs(output)
        pool3, spatial = self.features(x, chunks, spatial=Output.SPATIAL in outputs)
        picked = pick_outputs(outputs, pool3, spatial,
                              lambda with_bias: F.linear(pool3, self.fc.weight, self.fc.bias if with_bias else None))
        return picked[0] if single else picked


def _onednn_conv_relu_available() -> bool:
    """Whether this torch has oneDNN's fused convolution + ReLU on CPU (checked once, on a tiny case)."""
    global _ONEDNN_CONV_RELU
    if _ONEDNN_CONV_RELU is None:
        try:
            x = torch.ones(1, 2, 3, 3).contiguous(memory_format=torch.channels_last)
            w = torch.ones(1, 2, 1, 1)
            y = torch.ops.mkldnn._convolution_pointwise(x, w, -torch.ones(1), [0, 0], [1, 1], [1, 1], 1, "relu", [], "")
            _ONEDNN_CONV_RELU = bool(torch.backends.mkldnn.is_available() and torch.equal(y, torch.ones(1, 1, 3, 3)))
        except (AttributeError, RuntimeError, NotImplementedError):
            _ONEDNN_CONV_RELU = False
    return _ONEDNN_CONV_RELU


_ONEDNN_CONV_RELU: bool | None = None


def _onednn_path(x: torch.Tensor) -> bool:
    """Whether the folded layers run ``x`` through oneDNN's fused convolutions: float32 channels-last
    on CPU, outside bfloat16 autocast."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and x.is_contiguous(memory_format=torch.channels_last)
        and _onednn_conv_relu_available()
    )


def _onednn_conv(x: torch.Tensor, conv: nn.Conv2d, attr: str) -> torch.Tensor:
    """``conv(x)`` followed by ``attr`` ("relu" or "none") as one oneDNN primitive."""
    return torch.ops.mkldnn._convolution_pointwise(
        x, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups, attr, [], ""
    )


class ConvReLU(nn.Module):
    """``relu(conv(x))`` for a convolution with its batch norm folded in (see :func:`fold_batch_norm`).

    On CPU, float32 channels-last input runs as one oneDNN convolution with the ReLU applied to each
    output tile while it is still in cache: the same numbers (the ReLU does not round), and one pass
    over the activations less per layer, which measured 22% of the network's time on a 2-core Xeon.
    Elsewhere (CUDA, bfloat16 autocast, other layouts) it is the plain two calls.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _onednn_conv(x, self.conv, "relu") if _onednn_path(x) else F.relu(self.conv(x))


class ConvAvgPoolReLU(nn.Module):
    """An :class:`AvgPoolBranch` with its batch norm folded in, computed in the cheaper order.

    The average pool and the 1x1 convolution are both linear, and each pooling window's weights sum
    to one, so ``relu(conv(pool(x)) + b) == relu(pool(conv(x) + b))`` up to float32 rounding. Pooling
    after the convolution pools its 32-192 output channels rather than the 192-1280 input channels;
    the bias, added by the convolution, costs no pass of its own, and the ReLU runs in place. On
    CPU the convolution is oneDNN's, as for :class:`ConvReLU` (torch's own choice for a 1x1
    convolution on one thread and few images is a slower one).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _onednn_conv(x, self.conv, "none") if _onednn_path(x) else self.conv(x)
        return F.relu(avg_pool_3x3(y), inplace=True)


def fold_batch_norm(network: Inception2015) -> Inception2015:
    """An inference copy of ``network`` with each batch norm folded into its convolution.

    ``relu(bn(conv(x)))`` becomes ``relu(conv'(x))`` with ``W' = W * s`` and ``b' = beta - mean * s``,
    ``s = gamma / sqrt(var + eps)``: the same function up to float32 rounding (about 1e-6 relative),
    one pass over memory less per layer. Each layer becomes a :class:`ConvReLU`, which on CPU also
    fuses the ReLU into the convolution, and each average-pool branch a :class:`ConvAvgPoolReLU`.
    The copy is in evaluation mode without gradients.
    """
    folded = Inception2015.from_state_dict({k: v.detach().clone() for k, v in network.state_dict().items()})
    for parent in list(folded.modules()):
        for name, module in list(parent.named_children()):
            if not isinstance(module, BasicConv2d):
                continue
            conv, bn = module.conv, module.bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused = nn.Conv2d(
                conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                device="meta",
            )
            with torch.no_grad():
                fused.weight = nn.Parameter(conv.weight * scale[:, None, None, None])
                fused.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
            setattr(parent, name, (ConvAvgPoolReLU if isinstance(module, AvgPoolBranch) else ConvReLU)(fused))
    return folded.eval().requires_grad_(False)
