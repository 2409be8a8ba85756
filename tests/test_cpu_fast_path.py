"""The CPU exact path's speed-ups compute the same numbers as the plain formulas.

Each test compares against an independent plain computation: ``F.relu(F.conv2d(...))`` for the
fused convolution, pool-then-convolve for the reordered pool branches, the per-plane TF1 resize
and ``(x - 128) / 128`` for the channels-last resize, and the whole batch for the pieces.

Where both sides run the same kernel on the same inputs the test asserts bit-identity. Where they
run different kernels (another matrix shape, a fused primitive), the math library may add the same
terms in another order or fuse another product, so the test asserts the float32 rounding bound of
that sum instead (written out at each test).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inception_score.network import inception as network_module
from inception_score.network.inception import ConvAvgPoolReLU, ConvReLU, Inception2015, Output, fold_batch_norm
from inception_score.network.preprocess import CHANNELS_LAST_ROW_LIMIT, normalize, tf1_resize_bilinear, to_network_input

UNIT_ROUNDOFF = 2.0**-24  # float32: one rounding moves a value by at most this much of it


def dot_product_bound(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Per output value, how far two float32 evaluations of the same convolution can differ when
    they add its terms in different orders: each is within ``K * u * (|w| * |x| + |b|)`` of the
    exact sum (K terms and the bias, u = 2^-24; Higham, Accuracy and Stability, section 3.1), so
    two are within twice that."""
    terms = conv.in_channels // conv.groups * conv.weight[0, 0].numel() + 1
    magnitude = F.conv2d(x.double().abs(), conv.weight.double().abs(), conv.bias.double().abs(), conv.stride,
                         conv.padding, conv.dilation, conv.groups)
    return 2 * terms * UNIT_ROUNDOFF * magnitude


def _conv(in_channels: int, out_channels: int, kernel, stride=1, padding=0, seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding)
    with torch.no_grad():
        conv.bias.normal_()
    return conv.eval().requires_grad_(False)


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "kernel", "stride", "padding"),
    [(3, 8, 3, 2, 0), (16, 24, 1, 1, 0), (8, 8, (1, 7), 1, (0, 3)), (8, 12, 3, 1, 1)],
)
def test_fused_convolution_relu_matches_the_two_calls_to_float32_rounding(in_channels, out_channels, kernel,
                                                                          stride, padding) -> None:
    conv = _conv(in_channels, out_channels, kernel, stride, padding)
    x = torch.randn(3, in_channels, 17, 19).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fused = ConvReLU(conv)(x)
        plain = F.relu(conv(x))
    assert network_module._onednn_conv_relu_available(), "this torch should have oneDNN's fused op on CPU"
    # The fused primitive is another kernel than the plain convolution: the sums may be ordered
    # differently (ReLU itself is exact and cannot widen a difference).
    assert ((fused.double() - plain.double()).abs() <= dot_product_bound(conv, x)).all()
    assert (fused == 0).any() and (fused > 0).any()  # the ReLU did cut something


def test_without_the_fused_op_the_plain_calls_run(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = _conv(4, 6, 3)
    x = torch.randn(2, 4, 9, 9).contiguous(memory_format=torch.channels_last)
    called = []
    monkeypatch.setattr(network_module, "_ONEDNN_CONV_RELU", False)
    monkeypatch.setattr(network_module.F, "relu", lambda t: called.append(1) or torch.clamp_min(t, 0))
    with torch.inference_mode():
        out = ConvReLU(conv)(x)
    assert called == [1]
    assert torch.equal(out, torch.clamp_min(conv(x), 0))


def test_fused_op_is_not_used_under_bfloat16_autocast() -> None:
    conv = _conv(4, 6, 3)
    x = torch.randn(2, 4, 9, 9).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = ConvReLU(conv)(x)
    assert out.dtype == torch.bfloat16


def test_pool_branch_convolves_first_with_the_same_result() -> None:
    conv = _conv(40, 8, 1, seed=3)
    x = torch.rand(2, 40, 9, 9).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reordered = ConvAvgPoolReLU(conv)(x)
        # pool first, padding excluded, as the 2015 graph does
        plain = F.relu(conv(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)))
    torch.testing.assert_close(reordered, plain, rtol=0, atol=1e-5)
    assert (plain == 0).any()


def test_folded_network_uses_the_fast_modules() -> None:
    folded = fold_batch_norm(Inception2015())
    kinds = [type(m) for m in folded.modules()]
    assert kinds.count(ConvAvgPoolReLU) == 8  # 5b-5d, 6b-6e, 7b; 7c keeps its max pool before the conv
    assert kinds.count(ConvReLU) == 94 - 8
    assert type(folded.Mixed_7c.branch_pool) is ConvReLU


# Two float32 evaluations of the TF1 resize, in network units ((y - 128) / 128, values in [-1, 1]):
# each output is two products along the width (weights in [0, 1] summing to 1, pixels <= 255),
# then two along the height, each pass within 2 roundings of a value <= 255, i.e. within
# 4 * u * 255 / 128 < 8u after the division by 128 (exact), and the subtraction of 1 (or of 128
# before the division) rounds once more, by at most u. Each path is within 9u of the exact value,
# so two paths are within 18u (~1.1e-6). The fused or reordered products of another kernel stay
# inside it; a wrong weight or a pixel from the wrong place would be off by ~1e-3 or more.
RESIZE_BOUND = 18 * UNIT_ROUNDOFF


def _runs_channels_last(width: int, channels: int) -> bool:
    return width * channels <= CHANNELS_LAST_ROW_LIMIT


@pytest.mark.parametrize("size", [28, 32, 64, 129, 256, 299])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_resize_equals_the_plain_formula(size: int, layout: str) -> None:
    generator = torch.Generator().manual_seed(size)
    pixels = torch.randint(0, 256, (3, size, size + 3, 3), dtype=torch.uint8, generator=generator).permute(0, 3, 1, 2)
    if size == 299:  # square 299x299 input is only normalised
        pixels = pixels[..., :299]
    if layout == "nchw":
        pixels = pixels.contiguous()
    expected = normalize(pixels.float()) if size == 299 else normalize(tf1_resize_bilinear(pixels.float()))
    got = to_network_input(pixels)
    assert got.shape == expected.shape
    if size == 299 or not _runs_channels_last(pixels.shape[-1], 3):
        # 299: only the normalisation, exact. Wide rows: the per-plane products of the same shapes as
        # the plain formula's, the row matrix divided by 128 (exact): the same kernel on the same inputs.
        assert torch.equal(got, expected)
    else:  # channels-last: other matrix shapes, so possibly another kernel and summation order
        torch.testing.assert_close(got, expected, rtol=0, atol=RESIZE_BOUND)


def test_resize_of_float_and_one_channel_input() -> None:
    images = torch.rand(2, 1, 20, 24) * 255
    assert _runs_channels_last(24, 1)  # a two-dimensional product where the plain formula batches planes
    torch.testing.assert_close(to_network_input(images), normalize(tf1_resize_bilinear(images)), rtol=0,
                               atol=RESIZE_BOUND)


@pytest.mark.parametrize("chunks", [(2,), (2, 3), (None, 2, 4), (1, 2, 3)])
def test_stages_in_pieces_are_the_same_function(chunks) -> None:
    """Each stage (stem, 35x35 blocks, the rest) run a few images at a time gives each image what the
    whole batch gives it: oneDNN may block other matrix shapes differently, so rounding-level."""
    torch.manual_seed(0)
    network = fold_batch_norm(Inception2015()).to(memory_format=torch.channels_last)
    x = torch.randn(5, 3, 299, 299).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        whole = network(x, Output.POOL3)
        alone = torch.cat([network(image[None], Output.POOL3) for image in x])  # one image per call
        sizes: dict[str, list[int]] = {}
        for name in ("stem", "mixed_35", "mixed_17_8"):  # record the size of each piece a stage is given
            stage = getattr(network, name)
            setattr(network, name, lambda t, stage=stage, name=name: sizes.setdefault(name, []).append(len(t))
                    or stage(t))
        pieces = network(x, Output.POOL3, chunks=chunks)
    expected = [[5] if c is None else [min(c, 5 - s) for s in range(0, 5, c)] for c in (*chunks, None, None)][:3]
    assert [sizes[name] for name in ("stem", "mixed_35", "mixed_17_8")] == expected
    torch.testing.assert_close(pieces, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alone, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_same_max_pool_equals_torch_s_pooling_exactly(layout) -> None:
    # Values on a coarse grid, so that windows hold ties; negatives, so that a zero padding would show.
    generator = torch.Generator().manual_seed(5)
    x = (torch.randint(-4, 5, (3, 6, 8, 7), generator=generator) / 2).contiguous(memory_format=layout)
    expected = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    with torch.inference_mode():
        got = network_module._max_pool_3x3_same(x)
    assert torch.equal(got, expected)  # a maximum does not round: every value is one of the inputs
    # the naive formula, each window cut at the border
    for i, j in ((0, 0), (7, 6), (3, 0), (4, 5)):
        window = x[:, :, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
        assert torch.equal(got[:, :, i, j], window.amax(dim=(2, 3)))
