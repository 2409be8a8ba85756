"""A reference trainer for every technique of Salimans et al., "Improved Techniques for Training GANs" (2016).

>>> from reference_gan import preset, train
>>> trainer = train(preset("mnist-fm", data_dir="data/mnist", out_dir="runs/mnist"))
"""

from .layers import MinibatchDiscrimination, VirtualBatchNorm, data_dependent_init
from .techniques import (
    ExponentialMovingAverage,
    HistoricalAverage,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    smoothed_targets,
    supervised_loss,
)
from .models import Discriminator, Generator, ModelConfig, generate_uint8
from .config import TrainConfig
from .presets import PRESETS, preset
from .train import Trainer, load_generator, load_trainer, train

__all__ = [
    "Discriminator",
    "ExponentialMovingAverage",
    "Generator",
    "ModelConfig",
    "generate_uint8",
    "load_generator",
    "HistoricalAverage",
    "MinibatchDiscrimination",
    "PRESETS",
    "TrainConfig",
    "Trainer",
    "VirtualBatchNorm",
    "data_dependent_init",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_loss",
    "load_trainer",
    "preset",
    "smoothed_targets",
    "supervised_loss",
    "train",
]
