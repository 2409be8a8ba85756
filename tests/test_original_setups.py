"""The presets against the original scripts (github.com/openai/improved-gan), fact by fact.

Every value in the tables below was read from the original code, at the commit and in the file given
beside it, with the line that says so; none was taken from this repository. Two versions:

* ``0fa06b5`` (2016-06-14), the last change to the public scripts in ``mnist_svhn_cifar10/`` (HEAD,
  4f5d1ec, has the same files; leaky ReLU 0.2 and ``init_stdv`` came in with 30d4beb the same day);
* ``bb3d27b`` (2016-06-08), the first commit, scripts at the repository root.

What no released code has (Table 3's label smoothing, VBN, historical averaging, the -L discriminator)
is our choice; ``CHOICES`` lists those values with where they come from.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest
import torch
from torch import nn

from gan_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from reference_gan.layers import GaussianNoise, WNConv2d
from reference_gan.models import Discriminator, Generator, sample_z
from reference_gan.config import model_config
from reference_gan.presets import PRESETS, SEMI_SUPERVISED_SETUPS, preset
from reference_gan.train import learning_rate

PUBLIC, FIRST = "0fa06b5", "bb3d27b"
MNIST_PUBLIC = (PUBLIC, "mnist_svhn_cifar10/train_mnist_feature_matching.py")
MNIST_FIRST = (FIRST, "train_mnist_feature_matching.py")
MINIBATCH_PUBLIC = (PUBLIC, "mnist_svhn_cifar10/train_cifar_minibatch_discrimination.py")
MINIBATCH_FIRST = (FIRST, "train_cifar_minibatch.py")
CIFAR_FM_PUBLIC = (PUBLIC, "mnist_svhn_cifar10/train_cifar_feature_matching.py")
CIFAR_FM_FIRST = (FIRST, "train_cifar_feature_matching.py")
SVHN_FM_PUBLIC = (PUBLIC, "mnist_svhn_cifar10/train_svhn_feature_matching.py")
NN_PUBLIC = (PUBLIC, "mnist_svhn_cifar10/nn.py")
NN_FIRST = (FIRST, "nn.py")

# The scripts' presets: "our-methods" stands for the minibatch-discrimination script (Table 3 adds our
# choices on top of it, checked in CHOICES).
SCRIPTS = {
    "mnist-fm": (MNIST_PUBLIC, NN_PUBLIC),
    "mnist-fm-2016-06-08": (MNIST_FIRST, NN_FIRST),
    "our-methods": (MINIBATCH_PUBLIC, NN_PUBLIC),
    "our-methods-2016-06-08": (MINIBATCH_FIRST, NN_FIRST),
    "cifar10-fm": (CIFAR_FM_PUBLIC, NN_PUBLIC),
    "cifar10-fm-2016-06-08": (CIFAR_FM_FIRST, NN_FIRST),
    "svhn-fm": (SVHN_FM_PUBLIC, NN_PUBLIC),
}

# (preset, TrainConfig field, the original's value, (commit, file), what the original code says)
FACTS: list[tuple[str, str, Any, tuple[str, str], str]] = [
    # --- MNIST, public ---------------------------------------------------------------------------------
    ("mnist-fm", "labels", "10", MNIST_PUBLIC, "parser.add_argument('--count', type=int, default=10)"),
    ("mnist-fm", "batch_size", 100, MNIST_PUBLIC, "parser.add_argument('--batch_size', type=int, default=100)"),
    ("mnist-fm", "unlabeled_weight", 1.0, MNIST_PUBLIC,
     "parser.add_argument('--unlabeled_weight', type=float, default=1.)"),
    ("mnist-fm", "seed", 1, MNIST_PUBLIC, "parser.add_argument('--seed', type=int, default=1)"),
    ("mnist-fm", "data_seed", 1, MNIST_PUBLIC, "parser.add_argument('--seed_data', type=int, default=1)"),
    ("mnist-fm", "lr", 0.003, MNIST_PUBLIC, "lr = 0.003"),
    ("mnist-fm", "epochs", 300, MNIST_PUBLIC, "for epoch in range(300):"),
    ("mnist-fm", "lr_constant_epochs", None, MNIST_PUBLIC, "no schedule: lr = 0.003 before the loop"),
    ("mnist-fm", "beta1", 0.5, MNIST_PUBLIC, "nn.adam_updates(..., lr=lr, mom1=0.5)"),
    ("mnist-fm", "feature_matching", True, MNIST_PUBLIC, "loss_gen = T.mean(T.square(mom_gen - mom_real))"),
    ("mnist-fm", "feature_matching_distance", "squared", MNIST_PUBLIC,
     "loss_gen = T.mean(T.square(mom_gen - mom_real))"),
    ("mnist-fm", "minibatch_discrimination", False, MNIST_PUBLIC, "no MinibatchLayer in D"),
    ("mnist-fm", "g_steps", 1, MNIST_PUBLIC, "one train_batch_gen(...) per train_batch_disc(...)"),
    ("mnist-fm", "generator_norm", "batch", MNIST_PUBLIC, "nn.batch_norm(LL.DenseLayer(...), g=None)"),
    ("mnist-fm", "ema_rate", 1e-4, MNIST_PUBLIC, "disc_avg_updates = [(a,a+0.0001*(p-a)) ...]"),
    ("mnist-fm", "ema_start", "zero", MNIST_PUBLIC, "disc_param_avg = [th.shared(np.cast[...](0.*p.get_value())) ...]"),
    ("mnist-fm", "init_examples", 500, MNIST_PUBLIC, "init_param(trainx[:500]) # data dependent initialization"),
    # --- MNIST, first published --------------------------------------------------------------------------
    ("mnist-fm-2016-06-08", "labels", "10", MNIST_FIRST, "parser.add_argument('--count', type=int, default=10)"),
    ("mnist-fm-2016-06-08", "batch_size", 100, MNIST_FIRST,
     "parser.add_argument('--batch_size', type=int, default=100)"),
    ("mnist-fm-2016-06-08", "lr", 0.001, MNIST_FIRST, "start_lr = 0.001"),
    ("mnist-fm-2016-06-08", "beta1", 0.5, MNIST_FIRST, "nn.adam_updates(..., lr=lr, mom1=0.5)"),
    ("mnist-fm-2016-06-08", "feature_matching_distance", "squared", MNIST_FIRST,
     "loss_gen = T.mean(T.square(mom_gen - mom_real))"),
    ("mnist-fm-2016-06-08", "g_steps", 1, MNIST_FIRST, "one train_batch_gen(...) per train_batch_disc(...)"),
    ("mnist-fm-2016-06-08", "init_examples", 500, MNIST_FIRST, "init_param(trainx[:500])"),
    ("mnist-fm-2016-06-08", "unlabeled_weight", 1.0, MNIST_FIRST,
     "parser.add_argument('--unlabeled_weight', type=float, default=1.)"),
    ("mnist-fm-2016-06-08", "seed", 1, MNIST_FIRST, "parser.add_argument('--seed', type=int, default=1)"),
    ("mnist-fm-2016-06-08", "data_seed", 1, MNIST_FIRST, "parser.add_argument('--seed_data', type=int, default=1)"),
    ("mnist-fm-2016-06-08", "feature_matching", True, MNIST_FIRST, "loss_gen = T.mean(T.square(mom_gen - mom_real))"),
    ("mnist-fm-2016-06-08", "minibatch_discrimination", False, MNIST_FIRST, "no MinibatchLayer in D"),
    ("mnist-fm-2016-06-08", "generator_norm", "batch", MNIST_FIRST, "nn.batch_norm(LL.DenseLayer(...), g=None)"),
    # --- CIFAR-10 minibatch discrimination, public -----------------------------------------------------------
    ("our-methods", "dataset", "cifar10", MINIBATCH_PUBLIC, "cifar10_data.load(args.data_dir, subset='train')"),
    ("our-methods", "labels", "400", MINIBATCH_PUBLIC, "parser.add_argument('--count', type=int, default=400)"),
    ("our-methods", "batch_size", 100, MINIBATCH_PUBLIC, "parser.add_argument('--batch_size', default=100)"),
    ("our-methods", "unlabeled_weight", 1.0, MINIBATCH_PUBLIC,
     "parser.add_argument('--unlabeled_weight', type=float, default=1.)"),
    ("our-methods", "lr", 3e-4, MINIBATCH_PUBLIC, "parser.add_argument('--learning_rate', type=float, default=0.0003)"),
    ("our-methods", "epochs", 1200, MINIBATCH_PUBLIC, "for epoch in range(1200):"),
    ("our-methods", "beta1", 0.5, MINIBATCH_PUBLIC, "nn.adam_updates(..., lr=lr, mom1=0.5)"),
    ("our-methods", "feature_matching", False, MINIBATCH_PUBLIC, "loss_gen = -T.mean(T.nnet.softplus(l_gen))"),
    ("our-methods", "generator_loss", "minimax", MINIBATCH_PUBLIC, "loss_gen = -T.mean(T.nnet.softplus(l_gen))"),
    ("our-methods", "minibatch_discrimination", True, MINIBATCH_PUBLIC,
     "nn.MinibatchLayer(disc_layers[-1], num_kernels=100)"),
    ("our-methods", "g_steps", 3, MINIBATCH_PUBLIC, "for rep in range(3): train_batch_gen(lr)"),
    ("our-methods", "d_input", "noise", MINIBATCH_PUBLIC, "ll.GaussianNoiseLayer(disc_layers[-1], sigma=0.2)"),
    ("our-methods", "d_width", 96, MINIBATCH_PUBLIC, "dnn.Conv2DDNNLayer(disc_layers[-1], 96, (3,3), pad=1, ...)"),
    ("our-methods", "leaky_relu_slope", 0.2, NN_PUBLIC, "def lrelu(x, a=0.2):"),
    ("our-methods", "output_init_scale", 0.1, MINIBATCH_PUBLIC,
     "nn.weight_norm(ll.DenseLayer(..., num_units=10, ...), train_g=True, init_stdv=0.1) (and G's last deconv)"),
    ("our-methods", "init_statistics", "per_unit", NN_PUBLIC,
     "inv_stdv = self.init_stdv/T.sqrt(T.mean(T.square(input), self.axes_to_sum))"),
    ("our-methods", "generator_data_init", True, MINIBATCH_PUBLIC,
     "temp = ll.get_output(gen_layers[-1], deterministic=False, init=True)"),
    ("our-methods", "ema_rate", 1e-4, MINIBATCH_PUBLIC, "disc_avg_updates = [(a,a+0.0001*(p-a)) ...]"),
    ("our-methods", "ema_start", "zero", MINIBATCH_PUBLIC,
     "disc_param_avg = [th.shared(np.cast[...](0.*p.get_value())) ...]"),
    ("our-methods", "init_examples", 500, MINIBATCH_PUBLIC, "init_param(trainx[:500]) # data based initialization"),
    # --- CIFAR-10 minibatch discrimination, first published ----------------------------------------------------
    ("our-methods-2016-06-08", "dataset", "cifar10", MINIBATCH_FIRST,
     "cifar10_data.load(args.data_dir, subset='train')"),
    ("our-methods-2016-06-08", "labels", "400", MINIBATCH_FIRST, "txs.append(trainx[trainy==j][:400])"),
    ("our-methods-2016-06-08", "batch_size", 100, MINIBATCH_FIRST, "parser.add_argument('--batch_size', default=100)"),
    ("our-methods-2016-06-08", "lr", 3e-4, MINIBATCH_FIRST,
     "parser.add_argument('--learning_rate', type=float, default=0.0003)"),
    ("our-methods-2016-06-08", "epochs", 500, MINIBATCH_FIRST, "for epoch in range(500):"),
    ("our-methods-2016-06-08", "beta1", 0.5, MINIBATCH_FIRST, "nn.adam_updates(..., lr=lr, mom1=0.5)"),
    ("our-methods-2016-06-08", "feature_matching", False, MINIBATCH_FIRST,
     "loss_gen = -T.mean(T.nnet.softplus(l_gen))"),
    ("our-methods-2016-06-08", "generator_loss", "minimax", MINIBATCH_FIRST,
     "loss_gen = -T.mean(T.nnet.softplus(l_gen))"),
    ("our-methods-2016-06-08", "minibatch_discrimination", True, MINIBATCH_FIRST,
     "nn.MMDLayer(disc_layers[-1], num_kernels=100)"),
    ("our-methods-2016-06-08", "g_steps", 3, MINIBATCH_FIRST, "for rep in range(3): train_batch_gen(lr)"),
    ("our-methods-2016-06-08", "d_input", "noise", MINIBATCH_FIRST,
     "ll.GaussianNoiseLayer(disc_layers[-1], sigma=0.2)"),
    ("our-methods-2016-06-08", "d_width", 96, MINIBATCH_FIRST,
     "dnn.Conv2DDNNLayer(disc_layers[-1], 96, (3,3), pad=1, ...)"),
    ("our-methods-2016-06-08", "leaky_relu_slope", 0.1, NN_FIRST, "def lrelu(x, a=0.1):"),
    ("our-methods-2016-06-08", "output_init_scale", 1.0, NN_FIRST,
     "L2NormLayer: stdv = T.sqrt(T.mean(T.square(input))); input /= stdv (no init_stdv)"),
    ("our-methods-2016-06-08", "init_statistics", "per_layer", NN_FIRST,
     "L2NormLayer: stdv = T.sqrt(T.mean(T.square(input))) (one number over every axis)"),
    ("our-methods-2016-06-08", "generator_data_init", False, MINIBATCH_FIRST,
     "only temp = ll.get_output(disc_layers[-1], x_lab, deterministic=False, init=True)"),
    ("our-methods-2016-06-08", "init_examples", 500, MINIBATCH_FIRST, "init_param(trainx[:500])"),
    # --- CIFAR-10 feature matching, public ----------------------------------------------------------------------
    ("cifar10-fm", "labels", "400", CIFAR_FM_PUBLIC, "parser.add_argument('--count', default=400)"),
    ("cifar10-fm", "batch_size", 100, CIFAR_FM_PUBLIC, "parser.add_argument('--batch_size', default=100)"),
    ("cifar10-fm", "lr", 3e-4, CIFAR_FM_PUBLIC, "parser.add_argument('--learning_rate', type=float, default=0.0003)"),
    ("cifar10-fm", "epochs", 1200, CIFAR_FM_PUBLIC, "for epoch in range(1200):"),
    ("cifar10-fm", "beta1", 0.5, CIFAR_FM_PUBLIC, "nn.adam_updates(..., lr=lr, mom1=0.5)"),
    ("cifar10-fm", "feature_matching", True, CIFAR_FM_PUBLIC, "loss_gen = T.mean(abs(m1-m2)) # feature matching loss"),
    ("cifar10-fm", "feature_matching_distance", "absolute", CIFAR_FM_PUBLIC, "loss_gen = T.mean(abs(m1-m2))"),
    ("cifar10-fm", "minibatch_discrimination", False, CIFAR_FM_PUBLIC, "no MinibatchLayer in D"),
    ("cifar10-fm", "g_steps", 1, CIFAR_FM_PUBLIC, "one train_batch_gen(...) per train_batch_disc(...)"),
    ("cifar10-fm", "generator_norm", "batch", CIFAR_FM_PUBLIC, "nn.batch_norm(..., g=None)"),
    ("cifar10-fm", "d_input", "dropout", CIFAR_FM_PUBLIC, "ll.DropoutLayer(disc_layers[-1], p=0.2)"),
    ("cifar10-fm", "d_width", 96, CIFAR_FM_PUBLIC, "dnn.Conv2DDNNLayer(disc_layers[-1], 96, (3,3), pad=1, ...)"),
    ("cifar10-fm", "leaky_relu_slope", 0.2, NN_PUBLIC, "def lrelu(x, a=0.2):"),
    ("cifar10-fm", "output_init_scale", 0.1, CIFAR_FM_PUBLIC, "..., train_g=True, init_stdv=0.1)"),
    ("cifar10-fm", "init_statistics", "per_unit", NN_PUBLIC,
     "inv_stdv = self.init_stdv/T.sqrt(T.mean(T.square(input), self.axes_to_sum))"),
    ("cifar10-fm", "generator_data_init", True, CIFAR_FM_PUBLIC,
     "temp = ll.get_output(gen_layers[-1], deterministic=False, init=True)"),
    ("cifar10-fm", "ema_rate", 1e-4, CIFAR_FM_PUBLIC, "disc_avg_updates = [(a,a+0.0001*(p-a)) ...]"),
    ("cifar10-fm", "ema_start", "zero", CIFAR_FM_PUBLIC,
     "disc_param_avg = [th.shared(np.cast[...](0.*p.get_value())) ...]"),
    # --- CIFAR-10 feature matching, first published -------------------------------------------------------------
    ("cifar10-fm-2016-06-08", "labels", "400", CIFAR_FM_FIRST, "parser.add_argument('--count', default=400)"),
    ("cifar10-fm-2016-06-08", "batch_size", 100, CIFAR_FM_FIRST, "parser.add_argument('--batch_size', default=100)"),
    ("cifar10-fm-2016-06-08", "lr", 3e-4, CIFAR_FM_FIRST,
     "parser.add_argument('--learning_rate', type=float, default=0.0003)"),
    ("cifar10-fm-2016-06-08", "epochs", 1001, CIFAR_FM_FIRST, "for epoch in range(1001):"),
    ("cifar10-fm-2016-06-08", "lr_constant_epochs", None, CIFAR_FM_FIRST,
     "lr = np.cast[th.config.floatX](args.learning_rate) # * np.minimum(2.5 - epoch/200., 1.)"),
    ("cifar10-fm-2016-06-08", "feature_matching_distance", "absolute", CIFAR_FM_FIRST, "loss_gen = T.mean(abs(m1-m2))"),
    ("cifar10-fm-2016-06-08", "minibatch_discrimination", False, CIFAR_FM_FIRST, "no MMDLayer in D"),
    ("cifar10-fm-2016-06-08", "g_steps", 1, CIFAR_FM_FIRST, "one train_batch_gen(...) per train_batch_disc(...)"),
    ("cifar10-fm-2016-06-08", "beta1", 0.5, CIFAR_FM_FIRST, "nn.adam_updates(..., lr=lr, mom1=0.5)"),
    ("cifar10-fm-2016-06-08", "feature_matching", True, CIFAR_FM_FIRST, "loss_gen = T.mean(abs(m1-m2))"),
    ("cifar10-fm-2016-06-08", "generator_norm", "batch", CIFAR_FM_FIRST, "nn.batch_norm(..., g=None)"),
    ("cifar10-fm-2016-06-08", "init_examples", 500, CIFAR_FM_FIRST, "init_param(trainx[:500])"),
    ("cifar10-fm-2016-06-08", "d_input", "dropout", CIFAR_FM_FIRST, "ll.DropoutLayer(disc_layers[-1], p=0.2)"),
    ("cifar10-fm-2016-06-08", "d_width", 96, CIFAR_FM_FIRST,
     "dnn.Conv2DDNNLayer(disc_layers[-1], 96, (3,3), pad=1, ...)"),
    ("cifar10-fm-2016-06-08", "leaky_relu_slope", 0.1, NN_FIRST, "def lrelu(x, a=0.1):"),
    ("cifar10-fm-2016-06-08", "output_init_scale", 1.0, NN_FIRST, "L2NormLayer: input /= stdv (no init_stdv)"),
    ("cifar10-fm-2016-06-08", "init_statistics", "per_layer", NN_FIRST,
     "L2NormLayer: stdv = T.sqrt(T.mean(T.square(input)))"),
    ("cifar10-fm-2016-06-08", "generator_data_init", True, CIFAR_FM_FIRST,
     "temp = ll.get_output(gen_layers[-1], deterministic=False, init=True)"),
    ("cifar10-fm-2016-06-08", "ema_rate", 1e-3, CIFAR_FM_FIRST, "disc_avg_updates = [(a,a+0.001*(p-a)) ...]"),
    ("cifar10-fm-2016-06-08", "ema_start", "initial", CIFAR_FM_FIRST,
     "disc_avg_inits = zip(disc_params_avg, disc_params); init_param(trainx[:500]); init_param2()"),
    # --- SVHN feature matching, public -----------------------------------------------------------------------------
    ("svhn-fm", "dataset", "svhn", SVHN_FM_PUBLIC, "svhn_data.load(args.data_dir,'train')"),
    ("svhn-fm", "labels", "100", SVHN_FM_PUBLIC, "parser.add_argument('--count', type=int, default=100)"),
    ("svhn-fm", "batch_size", 100, SVHN_FM_PUBLIC, "parser.add_argument('--batch_size', type=int, default=100)"),
    ("svhn-fm", "lr", 3e-4, SVHN_FM_PUBLIC, "parser.add_argument('--learning_rate', type=float, default=0.0003)"),
    ("svhn-fm", "epochs", 900, SVHN_FM_PUBLIC, "for epoch in range(900):"),
    ("svhn-fm", "feature_matching_distance", "absolute", SVHN_FM_PUBLIC, "loss_gen = T.mean(abs(m1-m2))"),
    ("svhn-fm", "g_steps", 1, SVHN_FM_PUBLIC, "one train_batch_gen(...) per train_batch_disc(...)"),
    ("svhn-fm", "d_input", "dropout", SVHN_FM_PUBLIC, "ll.DropoutLayer(disc_layers[-1], p=0.2)"),
    ("svhn-fm", "d_width", 64, SVHN_FM_PUBLIC, "dnn.Conv2DDNNLayer(disc_layers[-1], 64, (3,3), pad=1, ...)"),
    ("svhn-fm", "leaky_relu_slope", 0.2, NN_PUBLIC, "def lrelu(x, a=0.2):"),
    ("svhn-fm", "output_init_scale", 0.1, SVHN_FM_PUBLIC, "..., train_g=True, init_stdv=0.1)"),
    ("svhn-fm", "init_statistics", "per_unit", NN_PUBLIC,
     "inv_stdv = self.init_stdv/T.sqrt(T.mean(T.square(input), self.axes_to_sum))"),
    ("svhn-fm", "generator_data_init", True, SVHN_FM_PUBLIC,
     "temp = ll.get_output(gen_layers[-1], deterministic=False, init=True)"),
    ("svhn-fm", "beta1", 0.5, SVHN_FM_PUBLIC, "nn.adam_updates(..., lr=lr, mom1=0.5)"),
    ("svhn-fm", "feature_matching", True, SVHN_FM_PUBLIC, "loss_gen = T.mean(abs(m1-m2))"),
    ("svhn-fm", "minibatch_discrimination", False, SVHN_FM_PUBLIC, "no MinibatchLayer in D"),
    ("svhn-fm", "generator_norm", "batch", SVHN_FM_PUBLIC, "nn.batch_norm(..., g=None)"),
    ("svhn-fm", "ema_rate", 1e-4, SVHN_FM_PUBLIC, "disc_avg_updates = [(a,a+0.0001*(p-a)) ...]"),
    ("svhn-fm", "ema_start", "zero", SVHN_FM_PUBLIC,
     "disc_param_avg = [th.shared(np.cast[...](0.*p.get_value())) ...]"),
    ("svhn-fm", "init_examples", 500, SVHN_FM_PUBLIC, "init_param(trainx[:500]) # data based initialization"),
]

# (preset, epochs the script's loop runs, its learning rate per epoch, (commit, file), the line)
SCHEDULES: list[tuple[str, int, Callable[[int], float], tuple[str, str], str]] = [
    ("mnist-fm", 300, lambda e: 0.003, MNIST_PUBLIC, "lr = 0.003; for epoch in range(300)"),
    # range(301): its last epoch runs at lr 0, a pass that moves no weight.
    ("mnist-fm-2016-06-08", 301, lambda e: 0.001 * min(3.0 - e / 100.0, 1.0), MNIST_FIRST,
     "for epoch in range(301): lr = start_lr * np.minimum(3. - epoch/100., 1.)"),
    ("our-methods", 1200, lambda e: 3e-4 * min(3.0 - e / 400.0, 1.0), MINIBATCH_PUBLIC,
     "for epoch in range(1200): lr = args.learning_rate * np.minimum(3. - epoch/400., 1.)"),
    ("our-methods-2016-06-08", 500, lambda e: 3e-4 * min(2.5 - e / 200.0, 1.0), MINIBATCH_FIRST,
     "for epoch in range(500): lr = args.learning_rate * np.minimum(2.5 - epoch/200., 1.)"),
    ("cifar10-fm", 1200, lambda e: 3e-4 * min(3.0 - e / 400.0, 1.0), CIFAR_FM_PUBLIC,
     "for epoch in range(1200): lr = args.learning_rate * np.minimum(3. - epoch/400., 1.)"),
    ("cifar10-fm-2016-06-08", 1001, lambda e: 3e-4, CIFAR_FM_FIRST,
     "for epoch in range(1001): lr = args.learning_rate"),
    ("svhn-fm", 900, lambda e: 3e-4 * min(3.0 - e / 300.0, 1.0), SVHN_FM_PUBLIC,
     "for epoch in range(900): lr = args.learning_rate * np.minimum(3. - epoch/300., 1.)"),
]

# (data set, set-up, preset, which D the test error is read from, (commit, file), the line)
TESTED_WITH = [
    ("mnist", "public", "mnist-fm", "average", MNIST_PUBLIC, "test_batch = th.function(..., givens=disc_avg_givens)"),
    ("mnist", "2016-06-08", "mnist-fm-2016-06-08", "current", MNIST_FIRST,
     "test_batch = th.function(inputs=[x_lab,labels], outputs=test_err)"),
    ("cifar10", "public", "cifar10-fm", "average", CIFAR_FM_PUBLIC,
     "test_batch = th.function(..., givens=disc_avg_givens)"),
    ("cifar10", "2016-06-08", "cifar10-fm-2016-06-08", "average", CIFAR_FM_FIRST,
     "test_batch = th.function(..., givens=disc_avg_givens)"),
    ("svhn", "public", "svhn-fm", "average", SVHN_FM_PUBLIC, "test_batch = th.function(..., givens=disc_avg_givens)"),
]

# Table 3 on top of the minibatch script: values no released CIFAR-10 code has, with their source.
CHOICES: list[tuple[str, Any, str]] = [
    ("label_smoothing", 0.9, "the paper, Section 3.4 (the ImageNet code: 0.75)"),
    ("generator_norm", "virtual", "the paper, Section 3.5: VBN in G"),
    ("vbn_scale", True, "the ImageNet code's VBN learns gamma"),
    ("vbn_statistics", "per_example", "the paper; the ImageNet code after 9ff96a7 and e0e5ffc"),
    ("historical_averaging", 0.0, "'our methods' has no historical averaging (only the -L+HA row)"),
    ("unlabelled_single_logit", True, "ours: -L is a plain one-logit GAN"),
]
# What each row of Table 3 changes in "our methods": the paper's row names, and our choices where the
# name leaves a value open (historical-averaging weight 1; -MBF with one G step per D step).
ROWS: dict[str, dict[str, Any]] = {
    "minus-vbn-plus-bn": {"generator_norm": "batch"},
    "minus-l-plus-ha": {"labels": "none", "historical_averaging": 1.0},
    "minus-ls": {"label_smoothing": 1.0},
    "minus-l": {"labels": "none"},
    "minus-mbf": {"minibatch_discrimination": False, "g_steps": 1},
    "minus-vbn-scale": {"vbn_scale": False},  # ours, no paper row
}


@pytest.mark.parametrize("name, field, value, source, line", FACTS,
                         ids=[f"{name}:{field}" for name, field, *_ in FACTS])
def test_preset_field_equals_the_original_script(name: str, field: str, value: Any, source: tuple[str, str],
                                                 line: str) -> None:
    assert getattr(preset(name), field) == value, f"{source[0]} {source[1]}: {line}"


def test_every_script_preset_is_covered_by_the_facts() -> None:
    assert {name for name, *_ in FACTS} == set(SCRIPTS)
    assert {name for name, *_ in SCHEDULES} == set(SCRIPTS)


@pytest.mark.parametrize("name, epochs, rate, source, line", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_learning_rate_of_every_epoch_equals_the_original_loop(name: str, epochs: int, rate: Callable[[int], float],
                                                               source: tuple[str, str], line: str) -> None:
    config = preset(name)
    for epoch in range(epochs):
        if epoch < config.epochs:
            assert learning_rate(config, epoch) == pytest.approx(rate(epoch), rel=1e-12, abs=1e-15), (epoch, line)
        else:  # epochs the original loop runs beyond ours must not train
            assert rate(epoch) == 0.0, (epoch, line)
    assert config.epochs <= epochs


@pytest.mark.parametrize("dataset, setup, name, tested_with, source, line", TESTED_WITH,
                         ids=[f"{d}-{s}" for d, s, *_ in TESTED_WITH])
def test_semi_supervised_setups_name_the_script_and_its_test_classifier(dataset: str, setup: str, name: str,
                                                                        tested_with: str, source: tuple[str, str],
                                                                        line: str) -> None:
    spec = SEMI_SUPERVISED_SETUPS[dataset][setup]
    assert (spec.preset, spec.tested_with) == (name, tested_with), line


@pytest.mark.parametrize("name", [n for n in SCRIPTS if not n.startswith("mnist")])
def test_convolutional_models_built_from_a_preset_are_the_scripts(name: str) -> None:
    facts = {field: value for preset_name, field, value, *_ in FACTS if preset_name == name}
    config = preset(name)
    torch.manual_seed(0)
    model = model_config(config)
    D = Discriminator(model)
    G = Generator(model, reference_z=sample_z(4) if config.generator_norm == "virtual" else None)
    slopes = {m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {facts["leaky_relu_slope"]}
    convs = [m for m in D.body if isinstance(m, WNConv2d)]
    assert [c.v.shape[0] for c in convs] == [facts["d_width"]] * 3 + [2 * facts["d_width"]] * 6
    statistics = {c.init_statistics for c in convs} | {D.head.init_statistics, G.out.init_statistics}
    assert statistics == {facts["init_statistics"]}
    assert D.head.init_scale == G.out.init_scale == facts["output_init_scale"]
    # Before any data-dependent initialisation: a layer that will not get one is marked as done.
    assert bool(G.out.initialized) == (not facts["generator_data_init"])
    first = D.body[0]  # GaussianNoiseLayer(sigma=0.2) or DropoutLayer(p=0.2)
    expected = GaussianNoise if facts["d_input"] == "noise" else nn.Dropout
    assert type(first) is expected and (first.sigma if expected is GaussianNoise else first.p) == 0.2
    if facts["minibatch_discrimination"]:
        # nn.MinibatchLayer / nn.MMDLayer(num_kernels=100), dim_per_kernel=5 (its default), on 2W features
        assert tuple(D.minibatch.theta.shape) == (2 * facts["d_width"], 100, 5)
    else:
        assert D.minibatch is None


@pytest.mark.parametrize("setup", ["", "-2016-06-08"])
def test_table3_our_methods_adds_the_papers_techniques_as_we_chose_them(setup: str) -> None:
    config = preset(f"our-methods{setup}")
    for field, value, source in CHOICES:
        assert getattr(config, field) == value, source


@pytest.mark.parametrize("setup", ["", "-2016-06-08"])
@pytest.mark.parametrize("row", sorted(ROWS))
def test_each_table3_row_changes_only_what_its_name_says(row: str, setup: str) -> None:
    base = dataclasses.asdict(preset(f"our-methods{setup}"))
    variant = dataclasses.asdict(preset(f"{row}{setup}"))
    assert {k: v for k, v in variant.items() if base[k] != v} == ROWS[row]


def test_the_2016_06_08_table3_presets_differ_from_public_only_where_the_script_changed() -> None:
    # bb3d27b -> 0fa06b5, train_cifar_minibatch(_discrimination).py and nn.py: range(500) -> range(1200),
    # min(2.5 - e/200, 1) -> min(3 - e/400, 1), lrelu a=0.1 -> 0.2, L2NormLayer (one spread per layer, scale 1)
    # -> WeightNormLayer(init_stdv=0.1, per unit), G's output initialised from data.
    changed = {"epochs", "lr_constant_epochs", "leaky_relu_slope", "output_init_scale", "init_statistics",
               "generator_data_init"}
    for row in ["our-methods", *ROWS]:
        first, public = dataclasses.asdict(preset(f"{row}-2016-06-08")), dataclasses.asdict(preset(row))
        assert {k for k in public if public[k] != first[k]} == changed, row
    assert len([n for n in PRESETS if n.endswith("-2016-06-08")]) == len(ROWS) + 3  # + our-methods, MNIST, CIFAR fm


class _PixelProjection:
    """Stands in for the Inception network (logits = pooled pixels times a fixed matrix): this test checks
    which presets the ablation trains and what its table says, not scores."""

    def __init__(self) -> None:
        from pathlib import Path

        from inception_score.network.weights import LoadedWeights

        self.device, self.dtype = torch.device("cpu"), "float32"
        self.weights = LoadedWeights(state_dict={}, path=Path("projection"), sha256="0" * 64, verified=False)
        self.matrix = torch.randn(48, 1008, generator=torch.Generator().manual_seed(3)) * 0.05

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(batch.float(), 4).flatten(1) @ self.matrix


def test_ablation_setup_2016_06_08_trains_the_first_published_presets_and_states_its_choices(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    import inception_score
    from reference_gan.cli import main

    scorer = _PixelProjection()
    monkeypatch.setattr(inception_score, "InceptionScorer", lambda *args, **kwargs: scorer)
    outcome = CliRunner().invoke(main, ["ablation", "--preset", "tiny", "--setup", "2016-06-08", "--only",
                                        "minus-vbn-scale", "--runs", str(tmp_path / "runs"),
                                        "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 0, outcome.output
    config = json.loads((tmp_path / "runs" / "minus-vbn-scale" / "config.json").read_text())
    first = dataclasses.asdict(preset("minus-vbn-scale-2016-06-08"))
    for field in ("epochs", "lr_constant_epochs", "leaky_relu_slope", "output_init_scale", "init_statistics",
                  "generator_data_init", "vbn_scale"):
        assert config[field] == first[field], field
    assert config["leaky_relu_slope"] == 0.1 and config["vbn_scale"] is False
    table = (tmp_path / "results" / "ablation-tiny-2016-06-08.md").read_text()
    assert "set-up `2016-06-08`" in table.splitlines()[0]
    assert "| -VBN scale (ours) | — |" in table  # no paper number
    for topic in ("Historical averaging weight", "Label smoothing target", "Labels per class", "VBN statistics",
                  "VBN scale", "G steps per D step in -MBF", "D without labels", "Script version"):
        assert f"**{topic}" in table
    with open(tmp_path / "results" / "ablation-tiny-2016-06-08.csv") as handle:
        rows = handle.read().splitlines()
    assert rows[-1].startswith("minus-vbn-scale,") and rows[-1].endswith(",,")  # paper columns left empty
    assert (tmp_path / "results" / "ablation-tiny-2016-06-08.png").is_file()
