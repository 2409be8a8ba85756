"""What a score is: :class:`ISResult`, the rules that say when it cannot be set beside published
Inception Scores, and its one serialisation (:meth:`ISResult.to_dict`, which the command's JSON uses).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .evaluation import Evaluation
from .infinity import infinity_fit
from .statistics import SplitStatistics, summarize
from .order import LabelOrder, order_diagnostic
from ..protocol import PUBLISHED_IMAGES, PUBLISHED_SPLIT_SIZE, PUBLISHED_SPLITS
from .strict_json import without_non_finite
from ..wording import plural, splits_phrase

# measured by benchmarks/precision_cpu.py (see benchmarks/results/precision-cpu.md).
FAST_CPU_IS_DEVIATION: float | None = 8.4e-3
# The same on CUDA with float16 autocast plus TF32 (the default fast mode there), measured on an H200 by
# benchmarks/gpu_check.sh: 4.1e-4 on 10,000 synthetic images, 1.8e-4 on 512 genuine CIFAR-10 images
# (bfloat16 gave 3.5e-3 and 4.5e-3, and was slower at the best batch size; benchmarks/results/gpu-check.md).
FAST_CUDA_IS_DEVIATION: float | None = 4.1e-4


@dataclass(frozen=True)
class ISResult:
    """An Inception Score and everything needed to judge and reproduce it."""

    mean: float
    std: float
    split_scores: tuple[float, ...]
    num_images: int
    splits: int
    weights_path: str
    weights_sha256: str
    weights_verified: bool
    device: str
    dtype: str
    elapsed_s: float
    marginal: np.ndarray | None = field(default=None, repr=False, compare=False)
    order: str = "input order"  # the order the contiguous splits were taken in
    processes: int = 1  # processes of a torch.distributed group that scored the images together
    exchanged_bytes: int = 0  # bytes each process sent to combine the statistics (0 in one process)
    # How far the splits' class marginals differ against a random order of the same images (ratio
    # about 1); flagged: far beyond chance, as for input sorted by class (inception_score.score.order).
    order_ratio: float = float("nan")
    order_threshold: float = float("inf")
    order_flagged: bool = False
    # Why this number cannot be set beside published Inception Scores (empty: it can).
    not_comparable: tuple[str, ...] = ()
    precision: str = "exact"  # what was used: "fast" (float16 / bfloat16 / TF32) or "exact" (float32)
    precision_note: str = ""  # e.g. why "fast" fell back to exact
    precision_deviation: float | None = None  # measured relative IS deviation of this fast mode from exact
    split_size: int | None = None  # chunks of this many images, the last one shorter (None: `splits` equal parts)
    # The samples' own labels, when the input carries them (a guided-diffusion .npz): label -> images,
    # and whether they are sorted by class under these splits, a certainty (inception_score.score.order.label_order).
    label_histogram: dict[int, int] | None = None
    labels_sorted: bool = False
    # Images made by score_generator: how z was drawn (seed, distribution, rule), num_samples, batch_size.
    generator: dict[str, Any] | None = None
    # IS-infinity (inception_score.score.infinity), when asked for: the intercept at 1/n = 0 of the least-squares
    # line through the 15 points (n, IS_n), IS_n the one-split score of the first n images of one seeded
    # order; the line's slope and rms residual; the seed of that order.
    is_infinity: float | None = None
    is_n: tuple[tuple[int, float], ...] = ()
    is_infinity_slope: float | None = None
    is_infinity_residual: float | None = None
    infinity_seed: int | None = None
    # FID, sFID, KID, precision and recall against a reference, from the same pass (None: no reference).
    evaluation: Evaluation | None = None

    @property
    def comparable(self) -> bool:
        """Computed as the paper's protocol prescribes: verified weights, 50,000 images, 10 contiguous
        splits in a random-looking order, exact precision."""
        return not self.not_comparable

    @property
    def images_per_second(self) -> float:
        return self.num_images / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the marginal as a list when present; NaN and infinities as None)."""
        data = asdict(self)
        data["split_scores"] = list(self.split_scores)
        data["marginal"] = None if self.marginal is None else self.marginal.tolist()
        data["images_per_second"] = self.images_per_second
        data["comparable"] = self.comparable
        data["not_comparable"] = list(self.not_comparable)
        if self.label_histogram is not None:  # JSON keys are strings
            data["label_histogram"] = {str(label): count for label, count in self.label_histogram.items()}
        data["is_n"] = [[n, score] for n, score in self.is_n]
        data["evaluation"] = None if self.evaluation is None else self.evaluation.to_dict()
        return without_non_finite(data)  # JSON has no NaN or Infinity: an undefined measure is None

    def __str__(self) -> str:
        text = self.summary()
        if self.order_flagged:
            text += f" [input looks ordered: split marginals differ {self.order_ratio:.1f}x a random order's]"
        if self.labels_sorted:
            text += " [input sorted by class: its labels form one run per class]"
        return text

    def summary(self, decimals: int = 4, *, weights: str | None = None, images_note: str = "",
                after: tuple[str, ...] = (), gap: str = " ") -> str:
        """``mean ± std (N images, S splits[ of K images], weights[, after...])`` and, with IS-infinity, a
        second line with it: the one rendering of a result, which ``str()`` and the command both print.
        ``weights``: how to describe the weights (else verified or not); ``images_note``: text after the
        image count (such as the files skipped); ``after``: more items inside the parentheses."""
        if weights is None:
            weights = "2015-12-05 weights verified" if self.weights_verified else "UNVERIFIED weights"
        details = ", ".join((f"{plural(self.num_images, 'image')}{images_note}",
                             splits_phrase(self.num_images, self.splits, self.split_size), weights, *after))
        text = f"{self.mean:.{decimals}f} ± {self.std:.{decimals}f}{gap}({details})"
        if self.is_infinity is not None:
            text += (f"\nIS-infinity: {self.is_infinity:.{decimals}f}{gap}(line through IS_n at {len(self.is_n)} n "
                     f"from {self.is_n[0][0]} to {self.is_n[-1][0]}, residual {self.is_infinity_residual:.3g}; "
                     "not comparable with published scores)")
        if self.evaluation is not None:
            text += "\n" + self.evaluation.line(decimals)
        return text



def result_from_statistics(
    stats: SplitStatistics, *, weights_path: str, weights_sha256: str, weights_verified: bool, device: str,
    dtype: str, elapsed: float, return_marginal: bool = False, order: str = "input order", processes: int = 1,
    exchanged_bytes: int = 0, shuffled: bool = False, precision: str = "exact", precision_note: str = "",
    split_size: int | None = None, labels: LabelOrder | None = None,
    buckets: SplitStatistics | None = None, infinity_seed: int | None = None, weights_note: str = "",
    caveats: tuple[str, ...] = (),
) -> ISResult:
    """The :class:`ISResult` of complete split statistics (all images, all processes), with the order
    diagnostic and the reasons, if any, why it is not comparable with published scores.

    ``split_size``: the statistics were cut in chunks of that many images (else in equal parts);
    ``labels``: what the samples' own labels say about the order (:func:`inception_score.score.order.label_order`);
    ``buckets``: the IS-infinity buckets' statistics of the same images (:mod:`.infinity`), ordered by
    ``infinity_seed``; ``weights_note``: why unverified weights are so, when not simply unknown ones;
    ``caveats``: further reasons the caller knows (a logits file whose rows carry no checksum)."""
    stats.check_finite(f"the network with the weights {weights_path}")
    scores = stats.scores()
    mean, std = summarize(scores)
    diagnostic = order_diagnostic(stats)
    num_images = int(stats.count.sum())
    reasons = []
    if not weights_verified:
        reasons.append("the weights are not the verified 2015-12-05 Inception network"
                       + (f": {weights_note}" if weights_note else ""))
    if num_images != PUBLISHED_IMAGES:
        reasons.append(f"{plural(num_images, 'image')} (published scores use {PUBLISHED_IMAGES:,})")
    if split_size is None and stats.splits != PUBLISHED_SPLITS:
        reasons.append(f"{plural(stats.splits, 'split')} (published scores use {PUBLISHED_SPLITS})")
    if split_size is not None and (num_images, split_size) != (PUBLISHED_IMAGES, PUBLISHED_SPLIT_SIZE):
        reasons.append(
            f"{splits_phrase(num_images, stats.splits, split_size, 'chunk')} (the published protocol: "
            f"{PUBLISHED_IMAGES:,} images in {PUBLISHED_SPLITS} chunks of {PUBLISHED_SPLIT_SIZE:,})")
    if shuffled:
        reasons.append("shuffled before splitting (the paper's splits are contiguous in input order)")
    if diagnostic.flagged:
        reasons.append("the input looks ordered (for example by class): its splits are not random samples")
    if labels is not None and labels.sorted_by_class:
        fewest, most = labels.classes_per_split
        reasons.append(f"the input is sorted by class (its labels form one run per class): each split holds "
                       f"{fewest}{f' to {most}' if most != fewest else ''} of the {len(labels.histogram)} classes, "
                       "so its splits are not random samples")
    if precision != "exact":
        reasons.append(f"precision {precision!r} (published scores are float32)")
    reasons.extend(caveats)
    fit = None if buckets is None else infinity_fit(buckets)
    if fit is not None:
        reasons.append("IS-infinity is extrapolated to infinitely many images in one split (Chong & Forsyth 2020): "
                       "it is not comparable with published Inception Scores")
    return ISResult(
        mean=mean,
        std=std,
        split_scores=tuple(float(s) for s in scores),
        num_images=int(stats.count.sum()),
        splits=stats.splits,
        weights_path=weights_path,
        weights_sha256=weights_sha256,
        weights_verified=weights_verified,
        device=device,
        dtype=dtype,
        elapsed_s=elapsed,
        marginal=stats.marginal() if return_marginal else None,
        order=order,
        processes=processes,
        exchanged_bytes=exchanged_bytes,
        order_ratio=diagnostic.ratio,
        order_threshold=diagnostic.threshold,
        order_flagged=diagnostic.flagged,
        not_comparable=tuple(reasons),
        precision=precision,
        precision_note=precision_note,
        precision_deviation=(None if precision != "fast" else FAST_CPU_IS_DEVIATION if device.startswith("cpu")
                             else FAST_CUDA_IS_DEVIATION if dtype == "float16" else None),  # what was measured
        split_size=split_size,
        label_histogram=None if labels is None else dict(labels.histogram),
        labels_sorted=labels is not None and labels.sorted_by_class,
        **({} if fit is None else dict(
            is_infinity=fit.intercept, is_n=tuple((int(n), float(v)) for n, v in zip(fit.sizes, fit.scores)),
            is_infinity_slope=fit.slope, is_infinity_residual=fit.residual, infinity_seed=infinity_seed)),
    )

