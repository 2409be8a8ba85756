"""Improved precision and recall (Kynkaanniemi et al. 2019) as guided-diffusion's evaluator computes them.

Each set of pool_3 features estimates its manifold as the union of balls around its points, a point's
radius being its squared Euclidean distance to its k-th nearest neighbour in its own set (k = 3). The
evaluator (``evaluations/evaluator.py``, ``ManifoldEstimator``) sorts each point's distances to every
point of its set, itself included (distance 0, first), and takes the one at index k: the k-th nearest
*other* point. Then

* precision = the fraction of samples inside some reference point's ball (distance <= its radius),
* recall = the fraction of reference points inside some sample's ball.

Here the distances are float64, ``|a|^2 + |b|^2 - 2 a.b`` clipped at 0, in blocks of at most
``block`` x ``block`` (bounded memory whatever N). ``distances="float16"`` instead emulates the
evaluator's TensorFlow arithmetic, to measure what it changes: features rounded to float16; squared
norms and products accumulated in float32 and rounded to float16 (as GPU kernels do); the sum
``|a|^2 - 2 a.b + |b|^2`` formed in float16; and any 10,000 x 10,000 block holding an inf or NaN
recomputed in float32, as its ``tf.cond`` does. That emulation works on the evaluator's 10,000-row
blocks: about 1.2 GB at its peak for N >= 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..errors import InputError

NEIGHBOURHOOD = 3  # the evaluator's nhood_sizes=(3,)
EVALUATOR_BLOCK = 10_000  # the evaluator's row_batch_size and col_batch_size
BLOCK = 4096  # rows and columns of one float64 distance block here (128 MiB)
Distances = Literal["float64", "float16"]


@dataclass(frozen=True)
class PrecisionRecall:
    """Precision and recall, with the neighbourhood size and the distance arithmetic used."""

    precision: float
    recall: float
    k: int
    distances: str


def _float64_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(m, n)`` between float64 rows, clipped at 0."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * (a @ b.T)
    return d.clamp_min_(0)


def _float16_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The evaluator's ``DistanceBlock``: float16 distances, or float32 where float16 gives inf or NaN;
    returned as float32, as it returns them."""
    a16, b16 = a.to(torch.float16), b.to(torch.float16)
    norm_a = (a16 * a16).float().sum(1).to(torch.float16)  # squares rounded to float16, summed in float32
    norm_b = (b16 * b16).float().sum(1).to(torch.float16)
    products = (a16.float() @ b16.float().T).to(torch.float16)  # exact products, float32 sums, then float16
    d = torch.clamp_min(norm_a[:, None] - 2 * products + norm_b[None, :], 0)
    if bool(torch.isfinite(d).all()):
        return d.float()
    a32, b32 = a.float(), b.float()
    return torch.clamp_min((a32 * a32).sum(1)[:, None] - 2 * (a32 @ b32.T) + (b32 * b32).sum(1)[None, :], 0)


def _check(features: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(features) if not isinstance(features, torch.Tensor) else features)
    if tensor.ndim != 2 or len(tensor) < 2:
        raise InputError(f"precision and recall take (N, D) features with N >= 2; the {name} are {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise InputError(f"the {name} features hold inf or NaN")
    return tensor.detach().cpu()


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def manifold_radii(features: np.ndarray | torch.Tensor, k: int = NEIGHBOURHOOD, distances: Distances = "float64",
                   block: int = BLOCK) -> torch.Tensor:
    """``(N,)`` each point's squared distance to its k-th nearest other point of ``features`` ``(N, D)``:
    the value at index k of its sorted distances to all N points, itself included (as the evaluator
    takes it). float64, or float32 with ``distances="float16"`` (the evaluator's)."""
    x = _check(features, "given")
    if not 1 <= k < len(x):
        raise InputError(f"the neighbourhood size k={k} needs more than k points, got {len(x)}")
    size = block if distances == "float64" else EVALUATOR_BLOCK
    radii = torch.empty(len(x), dtype=torch.float64 if distances == "float64" else torch.float32)
    for row_start, row_stop in _blocks(len(x), size):
        nearest = None  # the k + 1 smallest distances of each row so far
        for col_start, col_stop in _blocks(len(x), size):
            d = pairwise_distances(x[row_start:row_stop], x[col_start:col_stop], distances)
            candidates = d if nearest is None else torch.cat([nearest, d], dim=1)
            nearest = candidates.topk(min(k + 1, candidates.shape[1]), dim=1, largest=False).values
        radii[row_start:row_stop] = nearest[:, k]
    return radii


@dataclass(frozen=True)
class ManifoldMembership:
    """Which points lie in the other set's manifold: ``sample_inside`` (N2,) bool, inside some reference
    ball (precision is its mean); ``reference_inside`` (N1,) bool, inside some sample ball (recall); and
    both sets' radii (float64, or float32 with ``distances="float16"``)."""

    sample_inside: torch.Tensor
    reference_inside: torch.Tensor
    reference_radii: torch.Tensor
    sample_radii: torch.Tensor


def pairwise_distances(a: torch.Tensor, b: torch.Tensor, distances: Distances = "float64") -> torch.Tensor:
    """Squared Euclidean distances ``(m, n)`` between the rows of ``a`` ``(m, D)`` and ``b`` ``(n, D)``:
    float64, or the evaluator's float16 arithmetic (returned as float32, as it returns them)."""
    if distances == "float64":
        return _float64_distances(a.double(), b.double())
    return _float16_distances(a.float(), b.float())


def manifold_membership(reference: np.ndarray | torch.Tensor, samples: np.ndarray | torch.Tensor,
                        k: int = NEIGHBOURHOOD, distances: Distances = "float64",
                        block: int = BLOCK) -> ManifoldMembership:
    """Each sample's and each reference point's membership of the other set's manifold (see
    :class:`ManifoldMembership`), for ``samples`` ``(N2, D)`` and ``reference`` ``(N1, D)`` features."""
    if distances not in ("float64", "float16"):
        raise InputError(f"distances must be 'float64' or 'float16', got {distances!r}")
    ref, sam = _check(reference, "reference"), _check(samples, "sample")
    if ref.shape[1] != sam.shape[1]:
        raise InputError(f"reference and sample features differ in dimension: {ref.shape[1]} and {sam.shape[1]}")
    ref_radii = manifold_radii(ref, k, distances, block)
    sample_radii = manifold_radii(sam, k, distances, block)
    size = block if distances == "float64" else EVALUATOR_BLOCK
    sample_inside = torch.zeros(len(sam), dtype=torch.bool)
    ref_inside = torch.zeros(len(ref), dtype=torch.bool)
    for row_start, row_stop in _blocks(len(ref), size):
        for col_start, col_stop in _blocks(len(sam), size):
            d = pairwise_distances(ref[row_start:row_stop], sam[col_start:col_stop], distances)
            sample_inside[col_start:col_stop] |= (d <= ref_radii[row_start:row_stop, None]).any(dim=0)
            ref_inside[row_start:row_stop] |= (d <= sample_radii[None, col_start:col_stop]).any(dim=1)
    return ManifoldMembership(sample_inside, ref_inside, ref_radii, sample_radii)


def precision_recall(reference: np.ndarray | torch.Tensor, samples: np.ndarray | torch.Tensor,
                     k: int = NEIGHBOURHOOD, distances: Distances = "float64", block: int = BLOCK) -> PrecisionRecall:
    """Precision and recall of ``samples`` ``(N2, D)`` against ``reference`` ``(N1, D)`` pool_3 features,
    as guided-diffusion's evaluator defines them (``distances="float16"``: as it computes them)."""
    member = manifold_membership(reference, samples, k, distances, block)
    return PrecisionRecall(float(member.sample_inside.double().mean()), float(member.reference_inside.double().mean()),
                           k, distances)


__all__ = ["BLOCK", "EVALUATOR_BLOCK", "NEIGHBOURHOOD", "ManifoldMembership", "PrecisionRecall", "manifold_membership",
           "manifold_radii", "pairwise_distances", "precision_recall"]
