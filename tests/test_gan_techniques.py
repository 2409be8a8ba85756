"""Each technique of the paper against an independent computation written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from reference_gan.layers import MinibatchDiscrimination, VirtualBatchNorm, WNConv2d, WNLinear, data_dependent_init
from reference_gan.techniques import (
    ExponentialMovingAverage,
    HistoricalAverage,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    smoothed_targets,
    supervised_loss,
)


def test_minibatch_discrimination_against_loops_over_pairs() -> None:
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(in_features=6, num_kernels=4, kernel_dim=3)
    with torch.no_grad():
        layer.log_weight_scale.normal_(0, 0.3)
        layer.bias.normal_()
    f = torch.randn(5, 6)
    out = layer(f).detach().numpy()
    # T from theta: each (b, c) column of theta scaled to norm exp(log_weight_scale[b, c]).
    theta, scale, bias = layer.theta.detach().numpy(), layer.log_weight_scale.detach().numpy(), layer.bias.detach().numpy()
    T = np.zeros_like(theta)
    for b in range(4):
        for c in range(3):
            T[:, b, c] = theta[:, b, c] / math.sqrt(sum(v * v for v in theta[:, b, c])) * math.exp(scale[b, c])
    x = f.numpy()
    M = [[[sum(x[i, a] * T[a, b, c] for a in range(6)) for c in range(3)] for b in range(4)] for i in range(5)]
    for i in range(5):
        assert np.allclose(out[i, :6], x[i])
        for b in range(4):
            o = bias[b]
            for j in range(5):
                if j != i:
                    o += math.exp(-sum(abs(M[i][b][c] - M[j][b][c]) for c in range(3)))
            assert out[i, 6 + b] == pytest.approx(o, rel=1e-5, abs=1e-6)


def test_minibatch_features_depend_on_the_other_samples_only() -> None:
    torch.manual_seed(1)
    layer = MinibatchDiscrimination(4, 3, 2)
    f = torch.randn(3, 4)
    alone = layer(f)
    changed = layer(torch.cat([f[:2], torch.randn(1, 4)]))
    assert not torch.allclose(alone[0, 4:], changed[0, 4:])  # sample 0 sees sample 2
    assert torch.allclose(alone[0, :4], changed[0, :4])


def test_minibatch_data_dependent_init_centres_the_features() -> None:
    torch.manual_seed(2)
    layer = MinibatchDiscrimination(8, 5, 3)
    f = torch.randn(20, 8)
    with data_dependent_init():
        layer(f)
    o = layer(f)[:, 8:].detach()
    assert torch.allclose(o.mean(dim=0), torch.zeros(5), atol=1e-5)
    assert bool(layer.initialized)


def test_virtual_batch_norm_by_hand() -> None:
    torch.manual_seed(3)
    vbn = VirtualBatchNorm(2, eps=1e-5)
    with torch.no_grad():
        vbn.gamma.copy_(torch.tensor([1.5, 0.5]))
        vbn.beta.copy_(torch.tensor([0.1, -0.2]))
    ref = torch.randn(4, 2, 3, 3)
    x = torch.randn(2, 2, 3, 3) * 2 + 1
    ref_out = vbn(ref, reference=True)
    out = vbn(x)
    r, xs = ref.numpy(), x.numpy()
    for c in range(2):
        mu_r = r[:, c].mean()
        sq_r = (r[:, c] ** 2).mean()
        expected_ref = (r[:, c] - mu_r) / math.sqrt(sq_r - mu_r**2 + 1e-5) * [1.5, 0.5][c] + [0.1, -0.2][c]
        assert np.allclose(ref_out[:, c].detach().numpy(), expected_ref, atol=1e-5)
        for n in range(2):
            # The example's statistics join the reference batch's with weight 1/(R+1), R = 4.
            mu = (xs[n, c].mean() + 4 * mu_r) / 5
            sq = ((xs[n, c] ** 2).mean() + 4 * sq_r) / 5
            expected = (xs[n, c] - mu) / math.sqrt(sq - mu**2 + 1e-5) * [1.5, 0.5][c] + [0.1, -0.2][c]
            assert np.allclose(out[n, c].detach().numpy(), expected, atol=1e-5)


def test_virtual_batch_norm_output_of_one_example_ignores_the_rest_of_its_batch() -> None:
    vbn = VirtualBatchNorm(3)
    vbn(torch.randn(8, 3), reference=True)
    x = torch.randn(5, 3)
    assert torch.allclose(vbn(x)[0], vbn(x[:1])[0])


def test_historical_average_penalty_from_stored_parameters() -> None:
    torch.manual_seed(4)
    p = torch.nn.Parameter(torch.randn(3, 2))
    q = torch.nn.Parameter(torch.randn(4))
    history = HistoricalAverage([p, q])
    stored = [(p.detach().clone(), q.detach().clone())]
    for _ in range(5):
        with torch.no_grad():
            p.add_(torch.randn(3, 2))
            q.add_(torch.randn(4))
        history.update()
        stored.append((p.detach().clone(), q.detach().clone()))
    with torch.no_grad():
        p.add_(0.5)
    mean_p = sum(s[0] for s in stored) / len(stored)
    mean_q = sum(s[1] for s in stored) / len(stored)
    expected = ((p.detach() - mean_p) ** 2).sum() + ((q.detach() - mean_q) ** 2).sum()
    assert history.penalty().item() == pytest.approx(expected.item(), rel=1e-5)
    history.penalty().backward()
    assert torch.allclose(p.grad, 2 * (p.detach() - mean_p), atol=1e-5)


def kplus1_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over K+1 classes, the (K+1)-th logit fixed at 0 (Section 5)."""
    full = np.concatenate([logits, np.zeros((len(logits), 1))], axis=1)
    e = np.exp(full - full.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_k_plus_1_losses_against_the_papers_decomposition() -> None:
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(7, 10)) * 2, rng.normal(size=(6, 10)) * 2
    labels = rng.integers(0, 10, size=7)
    p_real, p_fake = kplus1_probabilities(real), kplus1_probabilities(fake)
    # L_unsupervised = -{ E_data log(1 - p(K+1|x)) + E_G log p(K+1|x) }
    paper_unsup = -(np.mean(np.log(1 - p_real[:, 10])) + np.mean(np.log(p_fake[:, 10])))
    ours = discriminator_loss(torch.from_numpy(real), torch.from_numpy(fake)).item()
    assert 2 * ours == pytest.approx(paper_unsup, rel=1e-9)  # the original code halves each term
    # L_supervised = -E log p(y | x, y < K+1)
    paper_sup = -np.mean(np.log(p_real[np.arange(7), labels] / (1 - p_real[:, 10])))
    assert supervised_loss(torch.from_numpy(real), torch.from_numpy(labels)).item() == pytest.approx(paper_sup, rel=1e-9)
    # The original's generator loss (minibatch code) is -mean softplus(log Z(G(z))) = E log p(K+1|G(z)).
    assert generator_loss(torch.from_numpy(fake), "minimax").item() == pytest.approx(np.mean(np.log(p_fake[:, 10])), rel=1e-9)
    assert generator_loss(torch.from_numpy(fake), "non_saturating").item() == pytest.approx(
        -np.mean(np.log(1 - p_fake[:, 10])), rel=1e-9)


def test_one_sided_label_smoothing() -> None:
    assert torch.equal(smoothed_targets(3, real=True, smoothing=0.9), torch.full((3,), 0.9))
    assert torch.equal(smoothed_targets(2, real=False, smoothing=0.9), torch.zeros(2))
    real, fake = torch.tensor([[0.3], [-1.2]], dtype=torch.float64), torch.tensor([[2.0]], dtype=torch.float64)
    d_real, d_fake = 1 / (1 + np.exp(-real.numpy()[:, 0])), 1 / (1 + np.exp(-fake.numpy()[:, 0]))
    expected = 0.5 * np.mean(-(0.9 * np.log(d_real) + 0.1 * np.log(1 - d_real))) + 0.5 * np.mean(-np.log(1 - d_fake))
    assert discriminator_loss(real, fake, real_target=0.9).item() == pytest.approx(expected, rel=1e-9)


def test_feature_matching_loss_and_its_gradient_only_reaches_the_generator_side() -> None:
    real = torch.randn(8, 5, requires_grad=True)
    fake = torch.randn(6, 5, requires_grad=True)
    expected = ((real.detach().mean(0) - fake.detach().mean(0)) ** 2).mean()
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert real.grad is None and fake.grad is not None


def test_weight_norm_data_dependent_init_standardises_outputs() -> None:
    torch.manual_seed(6)
    dense, conv = WNLinear(10, 4), WNConv2d(3, 5, 3, padding=1)
    x, images = torch.randn(64, 10) * 3 + 2, torch.randn(16, 3, 8, 8) * 2
    with data_dependent_init():
        dense(x)
        conv(images)
    y, z = dense(x).detach(), conv(images).detach()
    assert torch.allclose(y.mean(0), torch.zeros(4), atol=1e-5) and torch.allclose(y.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(5), atol=1e-5)
    # W = g v / ||v||: each row of the effective weight has norm g.
    assert torch.allclose(dense.weight().norm(dim=1), dense.g.detach(), atol=1e-5)


def test_weight_normalised_layers_compute_g_v_over_norm_v_plus_b() -> None:
    torch.manual_seed(11)
    dense, conv = WNLinear(7, 3, train_scale=True), WNConv2d(2, 4, 3, stride=2, padding=1)
    for layer in (dense, conv):
        with torch.no_grad():
            layer.g.uniform_(0.5, 2.0)
            layer.bias.normal_()
    x, images = torch.randn(5, 7), torch.randn(3, 2, 9, 9)
    # Written out: row o of the weight is g_o v_o / ||v_o|| (the norm over everything but the output axis).
    v, g, b = dense.v.detach().double(), dense.g.detach().double(), dense.bias.detach().double()
    expected = x.double() @ (v * (g / v.norm(dim=1))[:, None]).T + b
    assert torch.allclose(dense(x).double(), expected, atol=1e-5)
    v, g, b = conv.v.detach().double(), conv.g.detach().double(), conv.bias.detach().double()
    kernel = v * (g / v.flatten(1).norm(dim=1))[:, None, None, None]
    expected = torch.nn.functional.conv2d(images.double(), kernel, stride=2, padding=1) + b[None, :, None, None]
    assert torch.allclose(conv(images).double(), expected, atol=1e-5)


def test_exponential_moving_average_as_the_original_from_zero_over_trainable_parameters() -> None:
    torch.manual_seed(7)
    module = torch.nn.Linear(3, 2)
    module.bias.requires_grad_(False)  # like a hidden layer's fixed weight-norm scale: not averaged
    rate = 0.2
    ema = ExponentialMovingAverage(module, rate=rate)
    seen = []
    for _ in range(4):
        with torch.no_grad():
            module.weight.add_(torch.randn(2, 3))
            module.bias.add_(torch.randn(2))
        ema.update(module)
        seen.append(module.weight.detach().clone())
    # a_t = sum_i rate (1 - rate)^(t - i) theta_i, started at zero and not debiased (the original's).
    t = len(seen)
    expected = sum(rate * (1 - rate) ** (t - 1 - i) * w for i, w in enumerate(seen))
    averaged = ema.averaged(module)
    assert torch.allclose(averaged["weight"], expected, atol=1e-6)
    assert torch.equal(averaged["bias"], module.bias.detach())  # the current value
    assert set(ema.average) == {"weight"}


def test_adam_as_the_original_with_epsilon_inside_the_square_root() -> None:
    from reference_gan.optim import Adam

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    optimiser = Adam([p], lr=0.1, betas=(0.5, 0.999))
    grads = [np.array([0.3, -1e-5, 2.0]), np.array([-0.1, 2e-5, 1.0])]
    theta, m, v = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):
        p.grad = torch.from_numpy(g.copy())
        optimiser.step()
        m = 0.5 * m + 0.5 * g
        v = 0.999 * v + 0.001 * g * g
        theta = theta - 0.1 * (m / (1 - 0.5**t)) / np.sqrt(v / (1 - 0.999**t) + 1e-8)
    assert np.allclose(p.detach().numpy(), theta, rtol=1e-12, atol=1e-12)


def test_per_layer_data_dependent_init_as_the_first_published_l2normlayer() -> None:
    # bb3d27b nn.py, L2NormLayer(init=True): m = mean per unit; input -= m; stdv = sqrt(mean(square(input)))
    # over every axis at once; b = -m/stdv; g = g/stdv (g starts at 1).
    torch.manual_seed(12)
    conv = WNConv2d(3, 4, 3, padding=1, init_statistics="per_layer")
    images = torch.randn(10, 3, 6, 6) * torch.tensor([0.5, 1.0, 3.0])[None, :, None, None] + 1.0
    with torch.no_grad():
        v = conv.v.numpy().astype(np.float64)
        kernel = v / np.sqrt((v**2).sum(axis=(1, 2, 3)))[:, None, None, None]
        t = torch.nn.functional.conv2d(images.double(), torch.from_numpy(kernel), padding=1).numpy()
    m = t.mean(axis=(0, 2, 3))
    stdv = math.sqrt(((t - m[None, :, None, None]) ** 2).mean())
    with data_dependent_init():
        conv(images)
    assert np.allclose(conv.g.detach().numpy(), 1.0 / stdv, rtol=1e-5)
    assert np.allclose(conv.bias.detach().numpy(), -m / stdv, rtol=1e-4, atol=1e-6)
    out = conv(images).detach()
    assert float(out.pow(2).mean()) == pytest.approx(1.0, rel=1e-4)  # the layer as a whole has unit spread
    assert out.std(dim=(0, 2, 3)).std() > 0.05  # its units do not, unlike the per-unit initialisation


def test_weight_norm_without_data_init_keeps_scale_one_and_bias_zero() -> None:
    from reference_gan.layers import WNConvTranspose2d

    layer = WNConvTranspose2d(4, 3, init_scale=1.0, data_init=False)
    with data_dependent_init():
        layer(torch.randn(5, 4, 4, 4))
    assert torch.equal(layer.g.detach(), torch.ones(3)) and torch.equal(layer.bias.detach(), torch.zeros(3))


def test_virtual_batch_norm_with_batch_statistics_as_the_imagenet_code_of_2016_06_09() -> None:
    # imagenet/model.py (f9b62d3), VBN.__call__: new_mean = reduce_mean(x, [0, 1, 2]) and the same for
    # the mean square (NHWC: over the batch and space); mean = 1/(R+1) new + R/(R+1) reference;
    # out = (x - mean) / sqrt(eps + mean_sq - mean^2) * gamma + beta.
    torch.manual_seed(13)
    vbn = VirtualBatchNorm(2, eps=1e-5, statistics="batch")
    with torch.no_grad():
        vbn.gamma.copy_(torch.tensor([1.2, 0.7]))
        vbn.beta.copy_(torch.tensor([0.3, -0.1]))
    ref, x = torch.randn(6, 2, 3, 3), torch.randn(3, 2, 3, 3) * 2 + 0.5
    vbn(ref, reference=True)
    out = vbn(x).detach().numpy()
    r, xs = ref.numpy().astype(np.float64), x.numpy().astype(np.float64)
    for c in range(2):
        mean = (xs[:, c].mean() + 6 * r[:, c].mean()) / 7
        mean_sq = ((xs[:, c] ** 2).mean() + 6 * (r[:, c] ** 2).mean()) / 7
        expected = (xs[:, c] - mean) / math.sqrt(1e-5 + mean_sq - mean**2) * [1.2, 0.7][c] + [0.3, -0.1][c]
        assert np.allclose(out[:, c], expected, atol=1e-5)
    assert not torch.allclose(vbn(x)[0], vbn(x[:1])[0])  # unlike per-example statistics, the batch matters


def test_virtual_batch_norm_without_scale_learns_only_a_shift() -> None:
    torch.manual_seed(14)
    vbn = VirtualBatchNorm(3, scale=False)
    ref, x = torch.randn(8, 3), torch.randn(4, 3)
    vbn(ref, reference=True)
    out = vbn(x)
    out.sum().backward()
    assert [name for name, p in vbn.named_parameters() if p.requires_grad] == ["beta"]
    assert vbn.gamma.grad is None
    with_scale = VirtualBatchNorm(3)
    with_scale(ref, reference=True)
    assert torch.allclose(out, with_scale(x))  # the same normalisation; only the training differs


def test_feature_matching_absolute_as_the_cifar10_script() -> None:
    # train_cifar_feature_matching.py: loss_gen = T.mean(abs(m1 - m2)), m = the batch means of the features
    real, fake = torch.randn(7, 4), torch.randn(5, 4, requires_grad=True)
    m1, m2 = real.numpy().mean(axis=0), fake.detach().numpy().mean(axis=0)
    loss = feature_matching_loss(real, fake, "absolute")
    assert loss.item() == pytest.approx(float(np.abs(m1 - m2).mean()), rel=1e-6)
    loss.backward()
    assert torch.allclose(fake.grad, torch.from_numpy(np.sign(m2 - m1) / 4 / 5).float().expand(5, 4), atol=1e-7)


def test_exponential_moving_average_started_at_the_initial_weights() -> None:
    # bb3d27b train_cifar_feature_matching.py: avg <- p after the data-dependent initialisation, then
    # avg <- avg + 0.001 (p - avg) every D step.
    torch.manual_seed(15)
    module = torch.nn.Linear(2, 2)
    start = module.weight.detach().clone()
    ema = ExponentialMovingAverage(module, rate=0.001, start="initial")
    expected = start.clone()
    for _ in range(3):
        with torch.no_grad():
            module.weight.add_(torch.randn(2, 2))
        ema.update(module)
        expected = expected + 0.001 * (module.weight.detach() - expected)
    assert torch.allclose(ema.averaged(module)["weight"], expected, atol=1e-7)


def test_without_labels_d_keeps_k_logits_when_asked() -> None:
    from reference_gan.config import model_config
    from reference_gan.presets import preset

    assert model_config(preset("minus-l")).num_outputs == 1
    assert model_config(preset("minus-l", unlabelled_single_logit=False)).num_outputs == 10
    assert model_config(preset("our-methods", unlabelled_single_logit=True)).num_outputs == 10  # labels: K always
