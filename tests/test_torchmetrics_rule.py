"""torchmetrics' own InceptionScore against ours: its split rule, written out, gives its numbers from
our statistics. It permutes the images with the global torch RNG, cuts them with ``torch.chunk``
(pieces of ceil(N / splits): fewer than ``splits`` pieces when N is not a multiple) and reports the
sample std (ddof=1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import distributed_workers as workers
from inception_score import inception_score
from inception_score.score.statistics import SplitStatistics

torchmetrics_inception = pytest.importorskip("torchmetrics.image.inception")


class MildProjection(workers.PixelProjection):
    """Logits of a couple of units, so that no probability underflows in torchmetrics' float32 (where
    0 * log 0 gives NaN); halving keeps the stand-in's logits exact."""

    def __init__(self) -> None:
        super().__init__()
        self.matrix = self.matrix * 0.5


class Logits(torch.nn.Module):
    """The same logits as torchmetrics' feature extractor."""

    def __init__(self) -> None:
        super().__init__()
        self.projection = MildProjection()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection.logits(images)


def theirs(images: torch.Tensor, splits: int, seed: int) -> tuple[float, float, torch.Tensor]:
    metric = torchmetrics_inception.InceptionScore(feature=Logits(), splits=splits)
    metric.update(images)
    torch.manual_seed(seed)
    permutation = torch.randperm(len(images))  # what compute() draws first after the same seeding
    torch.manual_seed(seed)
    mean, std = metric.compute()
    return float(mean), float(std), permutation


def test_with_n_a_multiple_of_splits_theirs_is_ours_on_their_permutation_with_ddof_1() -> None:
    images = torch.from_numpy(workers.images(40)).permute(0, 3, 1, 2).contiguous()
    mean, std, permutation = theirs(images, splits=10, seed=7)
    ours = inception_score(images[permutation], splits=10, scorer=MildProjection(), distributed=False)
    assert mean == pytest.approx(ours.mean, rel=1e-5)  # they compute in float32
    assert std == pytest.approx(ours.std * math.sqrt(10 / 9), rel=1e-4)


def test_otherwise_their_chunks_are_ceil_n_over_splits_and_may_be_fewer() -> None:
    images = torch.from_numpy(workers.images(43)).permute(0, 3, 1, 2).contiguous()
    mean, std, permutation = theirs(images, splits=10, seed=3)
    size = math.ceil(43 / 10)  # 5: pieces 5, 5, ..., 5, 3 -> 9 pieces, not 10
    chunk_of_position = np.arange(43) // size
    stats = SplitStatistics.zeros(int(chunk_of_position.max()) + 1, 1008)
    stats.add(MildProjection().logits(images[permutation]), chunk_of_position)
    scores = stats.scores()
    assert len(scores) == 9
    assert mean == pytest.approx(scores.mean(), rel=1e-5)
    assert std == pytest.approx(scores.std(ddof=1), rel=1e-4)
    ours = inception_score(images[permutation], splits=10, scorer=MildProjection(), distributed=False)
    assert ours.splits == 10 and abs(ours.mean - mean) > 1e-4  # the protocols differ here
