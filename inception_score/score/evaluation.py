"""FID, sFID, KID, precision and recall of samples against a reference, from features the scoring run kept.

The numbers of guided-diffusion's evaluator (``evaluations/evaluator.py``) plus torch-fidelity's KID:

- ``fid``: the Frechet distance of pool_3 statistics (:mod:`.fid`); ``sfid``: the same on the spatial
  features (``mixed_6/conv``, 7 channels, height-width-channel order);
- ``kid``: torch-fidelity's KID on pool_3 features, its subsets drawn from ``seed`` (:mod:`.kid`);
- ``pr``: improved precision and recall on pool_3 features, k = 3, distances in float64
  (:mod:`.precision_recall`).

:func:`evaluate` computes the chosen ones from two :class:`FeatureSet` and says, in
:attr:`Evaluation.notes`, what makes a number unstable or hard to compare (few images, different
counts on the two sides).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..wording import plural
from .fid import GaussianStatistics, frechet_distance
from .kid import KID_SEED, KID_SUBSET_SIZE, KID_SUBSETS, KidResult, kernel_inception_distance
from .precision_recall import precision_recall

METRICS = ("fid", "sfid", "kid", "pr")  # what --metrics names, besides "is"
METRIC_WORDS = {"fid": "FID", "sfid": "sFID", "kid": "KID", "pr": "precision and recall"}
# Fewer images than pool_3 dimensions give a singular covariance: FID is then unstable.
STABLE_COUNT = 2048


class EvaluationWarning(UserWarning):
    """A number of the evaluation is unstable or hard to compare (the note is in the result too)."""


def parse_metrics(metrics: str | Iterable[str] | None) -> frozenset[str] | None:
    """``"fid,kid"`` or ``["fid", "kid"]`` -> the set (None: all that the reference allows). ``is`` may
    be named (the Inception Score is always computed); ``prc`` and ``precision``/``recall`` mean ``pr``."""
    if metrics is None:
        return None
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    aliases = {"prc": "pr", "precision": "pr", "recall": "pr", "isc": "is"}
    chosen = set()
    for name in names:
        name = aliases.get(name.strip().lower(), name.strip().lower())
        if name not in (*METRICS, "is"):
            raise InputError(f"unknown metric {name!r}: choose among is, {', '.join(METRICS)}")
        chosen.add(name)
    return frozenset(chosen - {"is"})


@dataclass(frozen=True)
class FeatureSet:
    """One side of a comparison: pool_3 and spatial statistics, the pool_3 vectors ``(N, 2048)`` (for KID
    and precision/recall) where kept, and the number of images (None: a statistics file without it)."""

    pool3: GaussianStatistics | None = None
    spatial: GaussianStatistics | None = None
    features: np.ndarray | None = field(default=None, repr=False)
    count: int | None = None

    def available(self) -> frozenset[str]:
        """The metrics this side can enter."""
        found = {"fid"} if self.pool3 is not None else set()
        if self.spatial is not None:
            found.add("sfid")
        if self.features is not None:
            found |= {"kid", "pr"}
        return frozenset(found)


@dataclass(frozen=True)
class Evaluation:
    """The numbers computed (None: not asked for), the counts of both sides, what the reference is
    (``reference``: its kind, source and sha256) and the notes on what makes a number hard to compare."""

    fid: float | None
    sfid: float | None
    kid: KidResult | None
    precision: float | None
    recall: float | None
    sample_count: int
    reference_count: int | None
    reference: dict[str, Any]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``kid`` as ``{mean, std, subsets, subset_size, seed}``."""
        return {
            "fid": self.fid, "sfid": self.sfid,
            "kid": None if self.kid is None else {"mean": self.kid.mean, "std": self.kid.std, "subsets": self.kid.subsets,
                                                  "subset_size": self.kid.subset_size, "seed": self.kid.seed},
            "precision": self.precision, "recall": self.recall,
            "sample_count": self.sample_count, "reference_count": self.reference_count,
            "reference": dict(self.reference), "distances": "float64", "notes": list(self.notes),
        }

    def line(self, decimals: int = 4) -> str:
        """``FID x, sFID y, KID m ± s, precision p, recall r (against <reference>)``: what was computed."""
        parts = []
        if self.fid is not None:
            parts.append(f"FID {self.fid:.{decimals}f}")
        if self.sfid is not None:
            parts.append(f"sFID {self.sfid:.{decimals}f}")
        if self.kid is not None:
            parts.append(f"KID {self.kid.mean:.{decimals + 2}f} ± {self.kid.std:.{decimals + 2}f}")
        if self.precision is not None:
            parts.append(f"precision {self.precision:.{decimals}f}, recall {self.recall:.{decimals}f}")
        against = self.reference.get("source", "the reference")
        counted = "" if self.reference_count is None else f", {plural(self.reference_count, 'image')}"
        return f"{', '.join(parts)} (against {against}{counted})"


def chosen_metrics(asked: frozenset[str] | None, reference: FeatureSet, where: str) -> frozenset[str]:
    """The metrics to compute: those asked for (refused when the reference cannot give one), or all that
    the reference allows."""
    available = reference.available()
    if asked is None:
        return available
    missing = sorted(asked - available)
    if missing:
        words = ", ".join(METRIC_WORDS[m] for m in missing)
        raise InputError(f"{where} cannot give {words}: it holds {describe_contents(reference)}. KID and precision/"
                         "recall need the reference's images or features, sFID its spatial statistics")
    return asked


def describe_contents(side: FeatureSet) -> str:
    held = []
    if side.pool3 is not None:
        held.append("pool_3 statistics")
    if side.spatial is not None:
        held.append("spatial statistics")
    if side.features is not None:
        held.append(f"{plural(len(side.features), 'pool_3 feature vector')}")
    return ", ".join(held) or "nothing"


def evaluation_notes(samples: FeatureSet, reference: FeatureSet, metrics: frozenset[str]) -> tuple[str, ...]:
    """What makes the numbers unstable or hard to compare: fewer than 2,048 images on a side of FID or
    sFID (a singular covariance), different numbers of images on the two sides (FID is biased in N)."""
    notes = []
    if metrics & {"fid", "sfid"}:
        for name, count in (("the samples", samples.count), ("the reference", reference.count)):
            if count is not None and count < STABLE_COUNT:
                notes.append(f"{name}: {plural(count, 'image')}, fewer than the {STABLE_COUNT:,} pool_3 dimensions: "
                             "the covariance is singular and FID is unstable; use at least 10,000 images")
        if samples.count is not None and reference.count is not None and samples.count != reference.count:
            notes.append(f"{samples.count:,} samples against {reference.count:,} reference images: FID is biased in "
                         "the number of images; compare only FIDs computed with the same numbers")
        if reference.count is None:
            notes.append("the reference statistics do not say how many images they come from")
    return tuple(notes)


def evaluate(samples: FeatureSet, reference: FeatureSet, metrics: frozenset[str], reference_info: dict[str, Any],
             kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED,
             warn: bool = True, extra_notes: tuple[str, ...] = (), optional: frozenset[str] = frozenset(),
             ) -> Evaluation:
    """The chosen ``metrics`` of ``samples`` against ``reference`` (both with what those metrics need);
    ``reference_info``: what the reference is, recorded in the result; ``warn``: the notes as
    :class:`EvaluationWarning` too (on stderr); ``extra_notes``: what the caller knows of the reference;
    ``optional``: metrics chosen by default rather than asked for, left out with a note where a side is too
    small for them (asked for, that is an :class:`InputError`)."""
    fid = sfid = precision = recall = None
    kid = None
    skipped = []
    smallest = min(count for count in (samples.count, reference.count, kid_subset_size) if count is not None)
    if "kid" in metrics and "kid" in optional and smallest < kid_subset_size:
        skipped.append(f"KID left out: {plural(smallest, 'image')} on a side, fewer than a subset of {kid_subset_size:,} "
                       "(pass a smaller kid_subset_size / --kid-subset-size)")
        metrics = metrics - {"kid"}
    if "fid" in metrics:
        fid = frechet_distance(_need(samples.pool3, "pool_3 statistics"), _need(reference.pool3, "pool_3 statistics"))
    if "sfid" in metrics:
        sfid = frechet_distance(_need(samples.spatial, "spatial statistics"), _need(reference.spatial, "spatial statistics"))
    if "kid" in metrics:  # torch-fidelity's order: the generated images first, the reference second
        kid = kernel_inception_distance(_need(samples.features, "features"), _need(reference.features, "features"),
                                        kid_subsets, kid_subset_size, seed)
    if "pr" in metrics:
        found = precision_recall(_need(reference.features, "features"), _need(samples.features, "features"))
        precision, recall = found.precision, found.recall
    notes = tuple(skipped) + evaluation_notes(samples, reference, metrics) + tuple(extra_notes)
    if warn:
        for note in notes:
            warnings.warn(note, EvaluationWarning, stacklevel=3)
    count = samples.count if samples.count is not None else 0
    return Evaluation(fid, sfid, kid, precision, recall, count, reference.count, reference_info, notes)


def _need(value: Any, what: str) -> Any:
    if value is None:
        raise InputError(f"the {what} this metric needs were not computed")
    return value


__all__ = ["Evaluation", "EvaluationWarning", "FeatureSet", "METRICS", "STABLE_COUNT", "chosen_metrics",
           "evaluate", "evaluation_notes", "parse_metrics"]
