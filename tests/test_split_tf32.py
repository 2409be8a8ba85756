"""Split TF32 ("3xTF32", inception_score.network.split_tf32) keeps float32 accuracy, checked on the CPU emulation.

The rounding to TF32 is checked bit by bit against a rounding written out here in float64. The layers are
checked on the genuine 2015 convolutions (the development weights: genuine convolutions, seeded random
fc) and real CIFAR-10 images against a float64 reference, with an error bound derived below, beside IEEE
float32's own error and the plain one-pass TF32 product, which must fail the same checks. The numbers are
comparisons between implementations, not Inception Scores.
"""

from __future__ import annotations

import copy
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inception_score import InceptionScorer, inception_score, inception_score_from_logits
from inception_score.errors import InputError
from inception_score.network.inception import ConvReLU, Output
from inception_score.network.split_tf32 import (
    AGREEMENT_LIMIT, SplitConvReLU, SplitLinear, round_to_tf32, split, split_tf32_network,
)

UNIT_ROUNDOFF = 2.0**-24  # float32


def _float32_bits(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def _tf32_by_formula(bits: int) -> int:
    """The float32 of ``bits`` rounded to TF32, written out: the nearest multiple of 2^(e - 10), e the
    value's binary exponent (-126 for subnormals), ties away from zero; beyond float32's range: infinity."""
    value = struct.unpack("<f", struct.pack("<I", bits))[0]
    if not math.isfinite(value):
        return bits
    if value == 0.0:
        return bits
    exponent = max(math.frexp(abs(value))[1] - 1, -126)  # abs(value) in [2^e, 2^(e+1))
    quantum = 2.0 ** (exponent - 10)
    magnitude = math.floor(abs(value) / quantum + 0.5) * quantum  # exact in float64: 24-bit values
    if magnitude >= 2.0**128:
        magnitude = math.inf
    return _float32_bits(math.copysign(magnitude, value))


def _as_float32(bits: list[int]) -> torch.Tensor:
    return torch.tensor(np.array(bits, dtype=np.uint32).view(np.int32)).view(torch.float32)


def _special_bits() -> list[int]:
    values = [0.0, -0.0, 1.0, -1.0, 3.0, 0.1, -0.1, 2.0**-126, 2.0**-149, 2.0**-140, 1e-40, -1e-40,
              3.4028234663852886e38, -3.4028234663852886e38, math.inf, -math.inf]
    values += [2.0**e for e in range(-149, 128, 7)] + [-(2.0**e) for e in range(-140, 128, 11)]
    # ties (exactly half a TF32 place above a TF32 value), and a float32 place either side of them
    for base in (1.0, 1.0 + 2.0**-10, 1.5, -1.0, -(1.0 + 2.0**-10), 2.0**-130, 2.0**100):
        tie = base + math.copysign(2.0**-11, base) * 2.0 ** (math.frexp(abs(base))[1] - 1)
        values += [tie, np.nextafter(np.float32(tie), np.float32(0)).item(),
                   np.nextafter(np.float32(tie), np.float32(math.copysign(math.inf, base))).item()]
    bits = [_float32_bits(v) for v in values]
    bits += [0x7FC00000, 0xFFC00000, 0x7F800001, 0x7F801000, 0x7FFFFFFF]  # NaNs, low payloads included
    bits += [0x7F7FF000, 0x7F7FEFFF, 0x007FF000, 0x007FFFFF, 0x00001000, 0x00000FFF]  # carries, subnormal ties
    return bits


def test_round_to_tf32_matches_the_rounding_written_out_bit_for_bit() -> None:
    rng = np.random.default_rng(2028)
    bits = _special_bits() + [int(b) for b in rng.integers(0, 2**32, size=20000, dtype=np.uint64)]
    rounded = round_to_tf32(_as_float32(bits)).view(torch.int32).numpy().view(np.uint32)
    expected = [_tf32_by_formula(b) for b in bits]
    mismatches = [(hex(b), hex(int(r)), hex(e)) for b, r, e in zip(bits, rounded, expected) if int(r) != e]
    assert not mismatches, mismatches[:10]


def test_split_gives_a_tf32_hi_and_an_exact_remainder() -> None:
    rng = np.random.default_rng(7)
    bits = [b for b in _special_bits() + [int(b) for b in rng.integers(0, 2**32, size=20000, dtype=np.uint64)]
            if math.isfinite(struct.unpack("<f", struct.pack("<I", b))[0])]
    x = _as_float32(bits)
    hi, lo = split(x)
    # The largest TF32 value is 2^128 - 2^117: from half a place above it, the rounding overflows.
    overflows = x.double().abs() >= 2.0**128 - 2.0**116
    assert int(overflows.sum()) == 3 and torch.isinf(hi[overflows]).all()  # +-float32's largest, and one more
    hi, lo, x = hi[~overflows], lo[~overflows], x[~overflows]
    assert int((hi.view(torch.int32) & 0x1FFF).abs().max()) == 0  # the 13 bits beyond TF32 are zero
    assert torch.equal(hi + lo, x)  # in float32 ...
    assert torch.equal(hi.double() + lo.double(), x.double())  # ... and exactly
    # at most half a TF32 place: 2^-11 of the value's power of two
    assert (lo.double().abs() <= 2.0**-11 * hi.double().abs().clamp_min(2.0**-126) + 2.0**-150).all()


def test_round_to_tf32_refuses_other_dtypes() -> None:
    with pytest.raises(TypeError, match="float32"):
        round_to_tf32(torch.ones(2, dtype=torch.float64))


# --- The layers, on genuine weights and real images ---------------------------------------------------------

# Layers of every kind of shape: the stem's first (K = 27 terms) and a 3x3, a 5x5, 1x7 and 7x1, a wide 3x3
# of the last block (K = 4032), a 1x1 of a reduction block.
LAYERS = ("Conv2d_1a_3x3", "Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5b.branch5x5_2", "Mixed_6b.branch7x7_2",
          "Mixed_6e.branch7x7dbl_3", "Mixed_7a.branch3x3_1", "Mixed_7c.branch3x3dbl_2")


def cifar_images(cifar10_partial_dir: Path, count: int) -> torch.Tensor:
    with np.load(cifar10_partial_dir / "cifar10_prefix_partial.npz", allow_pickle=False) as archive:
        rows = archive["data_batch_1_data_prefix"][:count]
    return torch.from_numpy(rows.reshape(count, 3, 32, 32).copy())


@pytest.fixture(scope="module")
def layer_inputs(dev_scorer: InceptionScorer, cifar10_partial_dir: Path) -> dict[str, torch.Tensor]:
    """Each layer's float32 input in the scorer's IEEE pass over 2 genuine CIFAR-10 images, and "fc":
    the pool_3 features."""
    x = dev_scorer.network_input(cifar_images(cifar10_partial_dir, 2)).contiguous(memory_format=torch.channels_last)
    network = dev_scorer.network
    seen: dict[str, torch.Tensor] = {}
    hooks = [network.get_submodule(name).register_forward_pre_hook(
        lambda module, args, name=name: seen.__setitem__(name, args[0].clone())) for name in LAYERS]
    try:
        with torch.inference_mode():
            seen["fc"] = network(x, Output.POOL3)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def split_bound(terms: int, magnitude: torch.Tensor) -> torch.Tensor:
    """How far split TF32's ``sum_k x_k w_k + b`` can be from the exact value, per output value.

    x = hi_x + lo_x exactly, lo'_x = lo_x rounded to TF32 (the same for w); |lo| <= 2^-11 |x| and
    |lo - lo'| <= 2^-11 |lo| <= 2^-22 |x|. The three products drop lo_x lo_w and the two roundings of lo:
    hi_x (lo_w - lo'_w) + (lo_x - lo'_x) hi_w + lo_x lo_w, at most (2 (1 + 2^-11) + 1) 2^-22 |x| |w|, under
    3.01 * 2^-22 = 12.04 u of |x| |w| (u = 2^-24). Each product is exact in float32 (11-bit significands);
    each of the three float32 sums of K terms is within K u (1 + Ku) of the sum of its terms' magnitudes
    (Higham, section 3.1), which is (1 + 2^-11)^2 |x| |w| for hi_x hi_w and at most 2^-11 of it for the
    others; then three more roundings (the two small sums, their sum with the large one, the bias), each
    at most u of (1 + 2^-10) (sum |x| |w| + |b|). In all under (K + 16) u (sum |x| |w| + |b|), for K < 2^14.
    """
    return (terms + 16) * UNIT_ROUNDOFF * magnitude


def _one_pass_tf32(x: torch.Tensor, w: torch.Tensor, product) -> torch.Tensor:
    """What TF32 alone computes: each operand rounded to TF32 once, exact products, float32 sums."""
    return product(round_to_tf32(x), round_to_tf32(w))


def _check_against_float64(name: str, split_out: torch.Tensor, ieee_out: torch.Tensor, one_pass: torch.Tensor,
                           exact: torch.Tensor, bound: torch.Tensor) -> None:
    split_error = (split_out.double() - exact).abs()
    ieee_error = (ieee_out.double() - exact).abs()
    one_pass_error = (one_pass.double() - exact).abs()
    # Every value within the derived bound; the IEEE kernel is within its own (K + 1) u bound, lower.
    assert (split_error <= bound).all(), f"{name}: {float((split_error / bound).max()):.3g} of the bound"
    # And as accurate as IEEE float32 there, to a small factor: its worst value and its RMS error (the
    # dropped lo_x lo_w and the roundings of lo add about 3 * 2^-22 of |x| |w| per term, float32's sums
    # about u per addition; measured on these layers: at most 1.37x IEEE's worst and 1.18x its RMS).
    assert split_error.max() <= 3 * ieee_error.max(), name
    assert split_error.square().mean().sqrt() <= 3 * ieee_error.square().mean().sqrt(), name
    # TF32 alone is 2^-11 per operand: measured 215x to 3600x IEEE's worst error, 309x to 3600x its RMS.
    assert one_pass_error.max() > 30 * ieee_error.max(), name
    assert one_pass_error.square().mean().sqrt() > 30 * ieee_error.square().mean().sqrt(), name


@pytest.mark.parametrize("name", LAYERS)
def test_split_convolution_is_within_its_bound_and_as_accurate_as_float32(
    name: str, dev_scorer: InceptionScorer, layer_inputs: dict[str, torch.Tensor]
) -> None:
    layer = dev_scorer.network.get_submodule(name)
    assert isinstance(layer, ConvReLU)
    conv, x = layer.conv, layer_inputs[name]
    weight, bias = conv.weight.detach(), conv.bias.detach()

    def conv_of(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        return F.conv2d(a, w, b, conv.stride, conv.padding)

    with torch.inference_mode():
        split_out = SplitConvReLU(conv).pre_activation(x)
        ieee_out = conv_of(x, weight, bias)
        one_pass = _one_pass_tf32(x, weight, conv_of) + bias[:, None, None]
        exact = conv_of(x.double(), weight.double(), bias.double())
        magnitude = conv_of(x.double().abs(), weight.double().abs(), bias.double().abs())
    terms = weight[0].numel()
    bound = split_bound(terms, magnitude)
    _check_against_float64(name, split_out, ieee_out, one_pass, exact, bound)
    # The bound can fail: TF32 alone exceeds it on layers of few terms (measured: 3x to 126x at K <= 896;
    # split TF32 stays under 0.13 of it). With many terms its errors average out against a bound that
    # grows as K (0.5x at K = 4032), and the checks against IEEE above catch it there.
    if terms <= 1000:
        assert ((one_pass.double() - exact).abs() > bound).any(), name


def test_split_fc_is_within_its_bound_and_as_accurate_as_float32(
    dev_scorer: InceptionScorer, layer_inputs: dict[str, torch.Tensor]
) -> None:
    fc, features = dev_scorer.network.fc, layer_inputs["fc"]
    weight = fc.weight.detach()
    with torch.inference_mode():
        split_out = SplitLinear(fc)(features)
        ieee_out = F.linear(features, weight)
        one_pass = _one_pass_tf32(features, weight, F.linear)
        exact = F.linear(features.double(), weight.double())
        magnitude = F.linear(features.double().abs(), weight.double().abs())
    _check_against_float64("fc", split_out, ieee_out, one_pass, exact, split_bound(weight.shape[1], magnitude))
    assert torch.equal(SplitLinear(fc)(features, with_bias=True), split_out + fc.bias)


# --- The whole network and the score ------------------------------------------------------------------------


def test_split_network_logits_are_as_close_to_float64_as_float32s(
    dev_scorer: InceptionScorer, cifar10_partial_dir: Path
) -> None:
    """Two genuine images through the whole network. Bound: the layer tests give split TF32 the error of
    float32 to a factor under 2, and the network carries each layer's error on the same way in both, so
    the logits' worst difference from float64 may be at most 2x float32's; the two kernels then differ by
    at most AGREEMENT_LIMIT (5e-5) of the largest logit, what "auto" accepts on CUDA. Measured: split TF32
    1.3e-6 of the largest logit from float64, IEEE float32 1.8e-6, the two 2.2e-6 apart."""
    x = dev_scorer.network_input(cifar_images(cifar10_partial_dir, 2)).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ieee = dev_scorer.network(x, Output.LOGITS_UNBIASED).double()
        split_logits = split_tf32_network(dev_scorer.network)(x, Output.LOGITS_UNBIASED).double()
        exact = copy.deepcopy(dev_scorer.network).double()(x.double(), Output.LOGITS_UNBIASED)
    largest = exact.abs().max()
    assert (split_logits - exact).abs().max() <= 2 * (ieee - exact).abs().max()
    assert (split_logits - ieee).abs().max() <= AGREEMENT_LIMIT * largest
    assert not torch.equal(split_logits, ieee)  # another computation indeed


def test_split_network_follows_the_outputs_of_the_network(dev_scorer: InceptionScorer) -> None:
    """pool_3, logits with and without bias, probabilities: each the split version of the same formula."""
    x = torch.rand(1, 3, 96, 96).contiguous(memory_format=torch.channels_last)  # small: the net takes any size >= 75
    network = split_tf32_network(dev_scorer.network)
    with torch.inference_mode():
        features = network(x, Output.POOL3)
        unbiased = network(x, Output.LOGITS_UNBIASED)
        assert features.shape == (1, 2048)
        assert torch.equal(unbiased, network.fc(features))
        assert torch.equal(network(x, Output.LOGITS), unbiased + dev_scorer.network.fc.bias)
        assert torch.equal(network(x, Output.PROBABILITIES), unbiased.softmax(dim=1))
    # the folded network is left as it was: its layers are not the split ones
    assert isinstance(dev_scorer.network.Conv2d_1a_3x3, ConvReLU)


def test_score_in_split_tf32_on_cpu_is_as_accurate_as_ieee_float32(dev_scorer: InceptionScorer,
                                                                  cifar10_partial_dir: Path) -> None:
    """16 genuine images, 2 splits, the same float32 network input through three networks: IEEE float32,
    split TF32 (emulated), and the folded network in float64 as the reference. Both float32 computations
    must give the IS within 1e-6 relative of the float64 one (the project's limit on a mean); their
    difference from each other is then at most 2e-6, the sum of two float32 roundings (measured on a
    2-core Xeon: IEEE 6.3e-7 from float64, split TF32 2.2e-7). Then the API path with the split kernel
    reports it, and scores what the split network computes."""
    images = cifar_images(cifar10_partial_dir, 16)
    split_scorer = dev_scorer.with_policy(exact_kernel="split-tf32")
    with torch.inference_mode():
        x = dev_scorer.network_input(images).contiguous(memory_format=torch.channels_last)
        network64 = copy.deepcopy(dev_scorer.network).double()
        scores = {
            "float64": inception_score_from_logits(network64(x.double(), Output.LOGITS_UNBIASED), splits=2),
            "ieee": inception_score_from_logits(dev_scorer.network_pass(x).double(), splits=2),
            "split": inception_score_from_logits(split_scorer.network_pass(x).double(), splits=2),
        }
    means = {name: float(np.mean(split_scores)) for name, split_scores in scores.items()}
    for name in ("ieee", "split"):
        assert abs(means[name] - means["float64"]) <= 1e-6 * means["float64"], (name, means)

    result = inception_score(images, splits=2, scorer=split_scorer)
    ieee = inception_score(images, splits=2, scorer=dev_scorer)
    assert abs(result.mean - means["float64"]) <= 1e-6 * means["float64"]
    assert abs(result.mean - ieee.mean) <= 2e-6 * ieee.mean
    assert result.dtype == "float32 (split tf32)" and ieee.dtype == "float32"
    assert "emulated on this CPU" in result.precision_note and ieee.precision_note == ""
    assert result.precision == "exact" and result.to_dict()["dtype"] == "float32 (split tf32)"


def test_exact_kernel_policy(dev_scorer: InceptionScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    import inception_score.engine.runner as runner

    assert dev_scorer.exact_kernel == "auto" and not dev_scorer.split_tf32  # auto on a CPU: IEEE, nothing said
    split_scorer = dev_scorer.with_policy(exact_kernel="split-tf32")
    assert split_scorer.with_policy("exact").split_tf32  # kept by with_policy
    assert not split_scorer.with_policy("fast").split_tf32  # only "exact" has an exact kernel
    assert split_scorer.with_policy("fast").dtype in ("float32", "bfloat16")
    with pytest.raises(InputError, match="exact_kernel"):
        dev_scorer.with_policy(exact_kernel="tf32")  # type: ignore[arg-type]

    # "auto" on CUDA: split TF32 only when it measured faster AND agreed with IEEE (timing replaced here).
    for timing, chosen in (((1.0, 0.5, 2e-6), True), ((1.0, 1.2, 2e-6), False), ((1.0, 0.5, 1e-3), False)):
        monkeypatch.setattr(runner, "split_tf32_timing", lambda *args, timing=timing: timing)
        pretend = copy.copy(dev_scorer)
        pretend.device, pretend._timings, pretend._split_networks = torch.device("cuda"), {}, {}
        pretend._set_policy("exact", torch.float16, False, "auto")
        assert pretend.split_tf32 is chosen
        assert ("measured faster than IEEE float32" in pretend.precision_note) is chosen
        assert bool(pretend._split_networks) is chosen  # no split weights kept for nothing
        assert pretend.dtype == ("float32 (split tf32)" if chosen else "float32")


def test_the_command_passes_exact_kernel_to_the_scorer(dev_scorer: InceptionScorer, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import inception_score.engine.runner as runner
    from inception_score.cli.main import main

    asked: list[str] = []

    def scorer(*args, exact_kernel: str = "auto", **kwargs) -> InceptionScorer:
        asked.append(exact_kernel)
        return dev_scorer

    monkeypatch.setattr(runner, "InceptionScorer", scorer)
    images = tmp_path / "images.npy"
    np.save(images, np.zeros((2, 8, 8, 3), dtype=np.uint8))
    done = CliRunner().invoke(main, [str(images), "--splits", "1", "--exact-kernel", "ieee", "--json", "--quiet"])
    assert done.exit_code == 0, done.output
    assert asked == ["ieee"]
    refused = CliRunner().invoke(main, [str(images), "--exact-kernel", "fast"])
    assert refused.exit_code == 2 and "--exact-kernel" in refused.output


def test_split_network_runs_in_tf32_inside_the_exact_scope_and_puts_the_switches_back(
    dev_scorer: InceptionScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CUDA switches as a GPU would see them (both scopes take their CUDA branch here, the work stays on
    the CPU): the resize in IEEE float32, the split network's products with TF32 on, cudnn.benchmark as
    the scorer set it, and afterwards every switch as the caller had it."""
    import inception_score.engine.runner as runner
    import inception_score.network.split_tf32 as split_module
    from inception_score.network.precision import precision_scope
    from test_precision_scope import expected_in_effect, observed_switches, tf32_in_effect

    cuda = torch.device("cuda")
    for module in (runner, split_module):
        monkeypatch.setattr(module, "precision_scope",
                            lambda _device, allow_tf32, benchmark: precision_scope(cuda, allow_tf32, benchmark))
    resize = runner.to_network_input
    seen: dict[str, dict] = {}

    def spied_resize(*args, **kwargs) -> torch.Tensor:
        seen["resize"] = tf32_in_effect()
        return resize(*args, **kwargs)

    monkeypatch.setattr(runner, "to_network_input", spied_resize)
    split_scorer = dev_scorer.with_policy(exact_kernel="split-tf32")
    hook = split_scorer._split_network().fc.register_forward_pre_hook(
        lambda *_: seen.__setitem__("fc", tf32_in_effect()))
    before = observed_switches()
    try:
        logits = split_scorer.logits(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    finally:
        hook.remove()
    assert logits.shape == (1, 1008)
    assert seen == {"resize": expected_in_effect(False), "fc": expected_in_effect(True)}
    assert observed_switches() == before
