"""The batched runner and the public API: one call for a set of images, a metric object for loops.

:class:`InceptionScorer` holds the network on a device and turns batches of pixels into the
unbiased logits. :func:`inception_score` scores a whole input in one pass; :class:`InceptionScore`
has the ``update`` / ``compute`` / ``reset`` shape of a torchmetrics metric and gives the same
number on the same images.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from torch.utils.data import Dataset, IterableDataset, Subset

from .distributed import (
    Group,
    agreeing,
    all_gather_counts,
    all_gather_seen,
    all_reduce_statistics,
    current_group,
    lockstep_steps,
    max_over_ranks,
    run_in_lockstep,
    shard_bounds,
    statistics_bytes,
    subtract_statistics,
)
from .errors import InputError
from .files import dataset_labels
from .inputs import ImageBatch, InputRange, _is_path_like, _is_single_image, image_stream, parse_input_range, standardize_batch
from .metric import (
    SplitRule,
    SplitStatistics,
    check_split_count,
    SplitPlan,
    order_text,
    split_rule,
    summarize,
)
from .infinity import POINTS as INFINITY_POINTS, infinity_buckets, infinity_fit
from .order import LabelOrder, label_order, order_diagnostic
from .protocol import PUBLISHED_IMAGES, PUBLISHED_SPLIT_SIZE, PUBLISHED_SPLITS, TORCH_FIDELITY_SEED
from .network import FEATURE_DIM, INPUT_SIZE, NUM_CLASSES, Inception2015, Output, fold_batch_norm
from .precision import native_bf16_cpu, precision_scope
from .preprocess import to_network_input
from .strict_json import without_non_finite
from .weights import LoadedWeights, load_network

Precision = Literal["exact", "fast"]
# Images per network call on CPU: 8 keeps a layer's activations in cache. Measured on a 2-core
# Xeon (AVX-512), network alone: 258 GFLOP/s at 8 images, 243 at 16, 231 at 32, 220 at 64, 206 at 128.
CPU_CHUNK = 8
# The stem's large maps (147x147 and 73x73) prefer fewer: its two largest convolutions measured
# 3.2 and 4.3 ms per image at 2 images against 4.0 and 5.2 at 8, on the same Xeon.
CPU_STEM_CHUNK = 2
# The largest relative deviation of the IS in fast mode on a CPU with native bfloat16 from exact,
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
    # about 1); flagged: far beyond chance, as for input sorted by class (inception_score.order).
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
    # and whether they are sorted by class under these splits, a certainty (inception_score.order.label_order).
    label_histogram: dict[int, int] | None = None
    labels_sorted: bool = False
    # Images made by score_generator: how z was drawn (seed, distribution, rule), num_samples, batch_size.
    generator: dict[str, Any] | None = None
    # IS-infinity (inception_score.infinity), when asked for: the intercept at 1/n = 0 of the least-squares
    # line through the 15 points (n, IS_n), IS_n the one-split score of the first n images of one seeded
    # order; the line's slope and rms residual; the seed of that order.
    is_infinity: float | None = None
    is_n: tuple[tuple[int, float], ...] = ()
    is_infinity_slope: float | None = None
    is_infinity_residual: float | None = None
    infinity_seed: int | None = None

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
        return without_non_finite(data)  # JSON has no NaN or Infinity: an undefined measure is None

    def __str__(self) -> str:
        verified = "2015-12-05 weights verified" if self.weights_verified else "UNVERIFIED weights"
        text = f"{self.mean:.4f} ± {self.std:.4f} ({self.num_images} images, {self.splits} splits, {verified})"
        if self.order_flagged:
            text += f" [input looks ordered: split marginals differ {self.order_ratio:.1f}x a random order's]"
        if self.labels_sorted:
            text += " [input sorted by class: its labels form one run per class]"
        return text


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is checked to exist."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for, but CUDA is not available here: use cpu or auto")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    elif resolved.type != "cpu":
        raise InputError(f"unsupported device {device!r}: use auto, cpu, cuda or cuda:N")
    return resolved


class InceptionScorer:
    """The 2015 network on one device: pixels in, unbiased logits (the paper's) out.

    ``precision="exact"`` computes in float32 (TF32 off on CUDA) and agrees with torch-fidelity;
    ``"fast"`` allows TF32 and float16 autocast on CUDA (``cuda_fast_dtype``; a batch that overflows
    float16 is recomputed without it), and bfloat16 on a CPU that computes it
    natively (AVX512_BF16 or AMX). On any other CPU "fast" falls back to exact, since emulated
    bfloat16 is slower than float32; ``effective_precision`` and ``precision_note`` say so.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        device: str | torch.device = "auto",
        allow_unverified: bool = False,
        precision: Precision = "exact",
        progress: bool = True,
    ) -> None:
        if precision not in ("exact", "fast"):
            raise InputError(f"precision must be 'exact' or 'fast', got {precision!r}")
        self.device = resolve_device(device)
        self.precision = precision
        network, self.weights = load_network(weights, allow_unverified=allow_unverified, progress=progress)
        # Folded batch norm and channels-last memory: the same function, measured faster on CPU and GPU.
        self.network: Inception2015 = fold_batch_norm(network).to(self.device, memory_format=torch.channels_last)
        self.bf16_on_cpu = False
        # What "fast" computes in on CUDA, besides TF32: autocast to this dtype, or None for TF32 alone.
        # float16: on an H200 it was the fastest of the three and the closest to exact after TF32 alone
        # (benchmarks/results/gpu-check.md, which times and checks each choice).
        self.cuda_fast_dtype: torch.dtype | None = torch.float16
        self.float16_overflows = 0  # batches recomputed without autocast since float16 overflowed
        # cuDNN's algorithm search per input shape (cudnn.benchmark) while scoring on CUDA: off, since
        # its cost per new shape outweighs its gain for a score (inception_score.precision.set_cuda_flags).
        self.cudnn_benchmark = False
        self.precision_note = ""
        if precision == "fast" and self.device.type == "cpu":
            if not native_bf16_cpu():
                self.precision_note = ("fast asked for, but this CPU has no native bfloat16 (AVX512_BF16 or AMX): "
                                       "scored exactly, in float32")
            else:
                float32_s, bfloat16_s = bfloat16_timing(self.network)
                self.bf16_on_cpu = bfloat16_s < 0.9 * float32_s
                if not self.bf16_on_cpu:
                    self.precision_note = (f"fast asked for, but bfloat16 measured slower than float32 on this CPU "
                                           f"({bfloat16_s:.2f} s against {float32_s:.2f} s for one batch): scored "
                                           "exactly, in float32")

    @property
    def effective_precision(self) -> str:
        """``"fast"`` when reduced precision is really used, else ``"exact"``."""
        return "fast" if self.precision == "fast" and (self.device.type == "cuda" or self.bf16_on_cpu) else "exact"

    @property
    def dtype(self) -> str:
        """What the network computes in: ``float32``, ``bfloat16``, ``float16`` or ``tf32``."""
        if self.effective_precision == "exact":
            return "float32"
        if self.device.type == "cpu":
            return "bfloat16"
        return "tf32" if self.cuda_fast_dtype is None else str(self.cuda_fast_dtype).removeprefix("torch.")

    def network_input(self, batch: ImageBatch) -> torch.Tensor:
        """Pixels -> ``(B, 3, 299, 299)`` normalised float32 on the device.

        A list of images of different sizes is resized size group by size group, each image on its
        own terms, and the groups are put back in input order.
        """
        if isinstance(batch, torch.Tensor):
            return to_network_input(batch.to(self.device, non_blocking=True))
        resized = torch.empty(len(batch), 3, INPUT_SIZE, INPUT_SIZE, device=self.device)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(batch):
            by_size.setdefault(tuple(image.shape), []).append(index)
        for indices in by_size.values():
            group = torch.stack([batch[i] for i in indices]).to(self.device, non_blocking=True)
            resized[indices] = to_network_input(group)
        return resized

    @torch.inference_mode()
    def outputs(self, batch: ImageBatch, output: Output | str = Output.LOGITS_UNBIASED) -> torch.Tensor:
        """``(B, 3, H, W)`` pixels, or a list of ``(3, H, W)`` of any sizes -> ``(B, K)`` float32 on CPU."""
        output = Output(output)
        # One scope for the resize (matrix products) and the network: "exact" keeps TF32 off in both,
        # and the caller's switches come back as they were (inception_score.precision).
        with precision_scope(self.device, allow_tf32=self.precision == "fast", benchmark=self.cudnn_benchmark):
            if self.device.type == "cuda":
                x = self.network_input(batch).contiguous(memory_format=torch.channels_last)
                return self.network_pass(x, output).cpu()
            # On CPU, resize and network run a few images at a time, so that each layer's
            # activations stay in cache (CPU_CHUNK). As with any batching, where an image falls in a
            # chunk changes its logits only at float32 rounding (measured: 3e-6 of a logit).
            parts = []
            for start in range(0, len(batch), CPU_CHUNK):
                x = self.network_input(batch[start : start + CPU_CHUNK]).contiguous(memory_format=torch.channels_last)
                parts.append(self.network_pass(x, output))
            if not parts:
                return torch.empty(0, FEATURE_DIM if output is Output.POOL3 else NUM_CLASSES)
            return torch.cat(parts)

    @torch.inference_mode()
    def network_pass(self, x: torch.Tensor, output: Output | str = Output.LOGITS_UNBIASED) -> torch.Tensor:
        """The network on ready input (:meth:`network_input`'s, channels-last) as :meth:`outputs` runs
        it, on the scorer's device: bfloat16 autocast where "fast" enables it, and on CPU the stem
        CPU_STEM_CHUNK images at a time. Float32 out; :meth:`outputs` feeds it CPU_CHUNK images at a
        time on CPU."""
        if self.device.type == "cuda":
            autocast = self.precision == "fast" and self.cuda_fast_dtype is not None
            with torch.autocast("cuda", dtype=self.cuda_fast_dtype or torch.bfloat16, enabled=autocast):
                out = self.network(x, Output(output)).float()
            if autocast and self.cuda_fast_dtype == torch.float16 and not bool(torch.isfinite(out).all()):
                # float16 stops at 65504: never return its inf or NaN. This batch again, in TF32 alone.
                out = self.network(x, Output(output)).float()
                self.float16_overflows += 1
                self.precision_note = (f"{self.float16_overflows} batch(es) overflowed float16 in fast mode and "
                                       "were recomputed without it (TF32)")
            return out
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16_on_cpu):
            return self.network(x, Output(output), stem_chunk=CPU_STEM_CHUNK).float()

    def logits(self, batch: ImageBatch) -> torch.Tensor:
        """``(B, 1008)`` float32 logits without the bias, as the paper's code used them."""
        return self.outputs(batch, Output.LOGITS_UNBIASED)


def bfloat16_timing(network: Inception2015, batch: int = 4) -> tuple[float, float]:
    """Seconds for one ``batch`` of 299x299 inputs in float32 and in bfloat16 autocast, each after a
    warm-up pass: a CPU may report native bfloat16 and still run it slower (measured: 0.79x on a 2-core
    Xeon with AVX512_BF16), and "fast" must never be slower than exact."""
    x = torch.zeros(batch, 3, INPUT_SIZE, INPUT_SIZE).contiguous(memory_format=torch.channels_last)
    seconds = []
    with torch.inference_mode():
        for enabled in (False, True):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                network(x, Output.LOGITS_UNBIASED)
                begin = time.perf_counter()
                network(x, Output.LOGITS_UNBIASED)
                seconds.append(time.perf_counter() - begin)
    return seconds[0], seconds[1]


class _SplitAccumulator:
    """Routes logits to their split's statistics by each image's position in the global order.

    This process's images are positions ``[offset, offset + num_images)`` of ``total`` (one process:
    all of them). With the count known up front, statistics are kept per split as the images arrive
    (O(splits x 1008) memory). Without it, the float32 logits are kept until the count is known,
    which is exact too but costs 4 KB per image. With ``infinity_seed``, the same images also go to
    the 15 buckets of IS-infinity (:mod:`.infinity`) by their index in input order; :meth:`finish`
    leaves those statistics in ``buckets``.
    """

    def __init__(self, splits: int | SplitRule, num_images: int | None, shuffle_seed: int | None,
                 offset: int = 0, total: int | None = None, infinity_seed: int | None = None) -> None:
        total = num_images if total is None else total
        self.splits = split_rule(splits)
        self.shuffle_seed = shuffle_seed
        self.plan = None if total is None else SplitPlan.of(total, self.splits, shuffle_seed)
        self.seen = 0
        self.stats = SplitStatistics.zeros(self.splits.split_count(total or 1), NUM_CLASSES)
        self.buffer: list[torch.Tensor] = []
        self.offset = offset
        self.expected = num_images  # this process's images, when known up front: statistics as they arrive
        self.infinity_seed = infinity_seed
        self.buckets: SplitStatistics | None = None
        self.bucket_ids: np.ndarray | None = None
        if num_images is not None and total is not None and infinity_seed is not None:
            self.buckets = SplitStatistics.zeros(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
            self.bucket_ids = infinity_buckets(total, infinity_seed)[offset : offset + num_images]

    def add(self, logits: torch.Tensor) -> None:
        count = logits.shape[0]
        if self.expected is None or self.plan is None:
            self.buffer.append(logits.detach().to("cpu", torch.float32))
        else:
            if self.seen + count > self.expected:
                raise InputError(
                    f"more images arrived than the {self.expected} announced ({self.seen + count} with this "
                    f"batch); pass the right num_images or leave it out (a metric object: reset() between epochs)"
                )
            start = self.offset + self.seen
            self.stats.add(logits, self.plan.span_ids(start, start + count))
            if self.buckets is not None and self.bucket_ids is not None:
                self.buckets.add(logits, self.bucket_ids[self.seen : self.seen + count])
        self.seen += count

    def finish(self, offset: int = 0, total: int | None = None) -> SplitStatistics:
        """The statistics of the images added. Buffered logits are placed now, at ``offset`` of ``total``
        (one process: 0 of the count seen)."""
        if self.expected is None or self.plan is None:
            plan = SplitPlan.of(self.seen if total is None else total, self.splits, self.shuffle_seed)
            total = plan.num_images
            stats = SplitStatistics.zeros(plan.split_count, NUM_CLASSES)
            bucket_ids = None
            if self.infinity_seed is not None:
                self.buckets = SplitStatistics.zeros(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
                bucket_ids = infinity_buckets(total, self.infinity_seed)[offset : offset + self.seen]
            start = 0
            for logits in self.buffer:
                stop = start + logits.shape[0]
                stats.add(logits, plan.span_ids(offset + start, offset + stop))
                if self.buckets is not None and bucket_ids is not None:
                    self.buckets.add(logits, bucket_ids[start:stop])
                start = stop
            return stats
        if self.seen != self.expected:
            raise InputError(f"{self.seen} images arrived but {self.expected} were announced")
        return self.stats


def _result(
    stats: SplitStatistics, scorer: InceptionScorer, elapsed: float, return_marginal: bool,
    order: str = "input order", group: Group | None = None, shuffled: bool = False,
    split_size: int | None = None, labels: LabelOrder | None = None,
    buckets: SplitStatistics | None = None, infinity_seed: int | None = None,
) -> ISResult:
    exchanged = 0
    if group is not None:
        stats = all_reduce_statistics(group, stats)
        elapsed = max_over_ranks(group, elapsed)
        exchanged = statistics_bytes(stats.splits, stats.sum_p.shape[1])
        if buckets is not None:
            buckets = all_reduce_statistics(group, buckets)
            exchanged += statistics_bytes(buckets.splits, buckets.sum_p.shape[1], buckets.sketch.shape[1])
    weights: LoadedWeights = scorer.weights
    return result_from_statistics(
        stats, weights_path=str(weights.path), weights_sha256=weights.sha256, weights_verified=weights.verified,
        device=str(scorer.device), dtype=scorer.dtype, elapsed=elapsed, return_marginal=return_marginal, order=order,
        processes=1 if group is None else group.world_size, exchanged_bytes=exchanged, shuffled=shuffled,
        precision=getattr(scorer, "effective_precision", "exact"), precision_note=getattr(scorer, "precision_note", ""),
        split_size=split_size, labels=labels,
        buckets=buckets, infinity_seed=infinity_seed,
    )


def result_from_statistics(
    stats: SplitStatistics, *, weights_path: str, weights_sha256: str, weights_verified: bool, device: str,
    dtype: str, elapsed: float, return_marginal: bool = False, order: str = "input order", processes: int = 1,
    exchanged_bytes: int = 0, shuffled: bool = False, precision: str = "exact", precision_note: str = "",
    split_size: int | None = None, labels: LabelOrder | None = None,
    buckets: SplitStatistics | None = None, infinity_seed: int | None = None, weights_note: str = "",
) -> ISResult:
    """The :class:`ISResult` of complete split statistics (all images, all processes), with the order
    diagnostic and the reasons, if any, why it is not comparable with published scores.

    ``split_size``: the statistics were cut in chunks of that many images (else in equal parts);
    ``labels``: what the samples' own labels say about the order (:func:`inception_score.order.label_order`);
    ``buckets``: the IS-infinity buckets' statistics of the same images (:mod:`.infinity`), ordered by
    ``infinity_seed``; ``weights_note``: why unverified weights are so, when not simply unknown ones."""
    scores = stats.scores()
    mean, std = summarize(scores)
    diagnostic = order_diagnostic(stats)
    num_images = int(stats.count.sum())
    reasons = []
    if not weights_verified:
        reasons.append("the weights are not the verified 2015-12-05 Inception network"
                       + (f": {weights_note}" if weights_note else ""))
    if num_images != PUBLISHED_IMAGES:
        reasons.append(f"{num_images} images (published scores use {PUBLISHED_IMAGES:,})")
    if split_size is None and stats.splits != PUBLISHED_SPLITS:
        reasons.append(f"{stats.splits} splits (published scores use {PUBLISHED_SPLITS})")
    if split_size is not None and (num_images, split_size) != (PUBLISHED_IMAGES, PUBLISHED_SPLIT_SIZE):
        last = num_images - (stats.splits - 1) * split_size
        reasons.append(
            f"{stats.splits} chunks of {split_size} images{f', the last of {last}' if last != split_size else ''} "
            f"(the published protocol: {PUBLISHED_IMAGES:,} images in {PUBLISHED_SPLITS} chunks of "
            f"{PUBLISHED_SPLIT_SIZE:,})")
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
    fit = None if buckets is None else infinity_fit(buckets)
    if fit is not None:
        reasons.append("is_infinity is extrapolated to infinitely many images in one split (Chong & Forsyth 2020): "
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


def inception_score(
    images: Any,
    *,
    splits: int | None = None,
    split_size: int | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    weights: str | os.PathLike | None = None,
    allow_unverified: bool = False,
    input_range: str | InputRange | None = None,
    shuffle: bool = False,
    seed: int = TORCH_FIDELITY_SEED,
    num_workers: int = 0,
    limit: int | None = None,
    num_images: int | None = None,
    progress: bool = False,
    precision: Precision = "exact",
    return_marginal: bool = False,
    scorer: InceptionScorer | None = None,
    distributed: bool | None = None,
    infinity: bool = False,
    infinity_seed: int = TORCH_FIDELITY_SEED,
) -> ISResult:
    """The Inception Score of ``images``, as the paper's code computes it.

    ``images``: a uint8 tensor or array ``(N, 3, H, W)`` / ``(N, H, W, 3)``; floats with
    ``input_range``; a sequence of images of any sizes; an iterable of batches; a ``Dataset`` or
    ``DataLoader`` yielding images or ``(image, label)``; or a path (folder, .npy/.npz, archive).
    Splits are contiguous in input order unless ``shuffle`` (torch-fidelity's permutation with
    ``seed``): ``splits`` equal parts (default 10, the paper's code), or chunks of ``split_size`` images,
    the last one shorter (guided-diffusion's evaluator); not both. ``num_images`` announces the length of an unsized iterable, so that memory stays flat.
    Pass a ready ``scorer`` to reuse a loaded network across calls.

    Inside an initialised ``torch.distributed`` process group (unless ``distributed=False``), a sized
    input (tensor, array, sequence, ``Dataset``, path) is shared out: each process reads and scores its
    contiguous part, the statistics are summed once, and every process returns the result one process
    would give on the same images in the same order (:mod:`inception_score.distributed`).

    ``infinity=True`` also computes IS-infinity in the same pass (:mod:`inception_score.infinity`):
    ``is_n``, the one-split scores of the first n images of the order ``infinity_seed`` gives, for 15 n
    from N/10 to N, and ``is_infinity``, the intercept of their least-squares line against 1/n.
    """
    rule = split_rule(splits, split_size)  # raises on a bad or doubly given rule, before anything loads
    group = current_group(distributed)
    shuffle_seed = seed if shuffle else None
    order = order_text(shuffle_seed)
    ordered_by = infinity_seed if infinity else None
    if group is not None:
        return _distributed_score(group, images, rule, batch_size, device, weights, allow_unverified, input_range,
                                  shuffle_seed, order, num_workers, limit, progress, precision, return_marginal, scorer,
                                  ordered_by)
    scorer = scorer or InceptionScorer(
        weights, device=device, allow_unverified=allow_unverified, precision=precision, progress=progress
    )
    stream = image_stream(
        images,
        batch_size=batch_size,
        input_range=input_range,
        num_workers=num_workers,
        limit=limit,
        num_images=num_images,
        pin_memory=scorer.device.type == "cuda",
    )
    accumulator = _SplitAccumulator(rule, stream.num_images, shuffle_seed, infinity_seed=ordered_by)
    start = time.perf_counter()
    with progress_bar(progress, stream.num_images) as bar:
        for batch in stream.batches:
            accumulator.add(scorer.logits(batch))
            bar(len(batch))
    stats = accumulator.finish()
    labels = None if stream.labels is None else label_order(stream.labels, rule, shuffle_seed)
    return _result(stats, scorer, time.perf_counter() - start, return_marginal, order, shuffled=shuffle,
                   split_size=rule.split_size, labels=labels, buckets=accumulator.buckets, infinity_seed=ordered_by)


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int | None) -> Iterator[Callable[[int], Any]]:
    """A tqdm bar on stderr (or nothing), advanced by calling what this yields with a count."""
    if not enabled:
        yield lambda count: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="img", desc="Inception Score", dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()


def _shard(images: Any, input_range: str | InputRange | None, limit: int | None,
           group: Group) -> tuple[Any, InputRange | None, int, int, int, np.ndarray | None]:
    """This rank's part of a sized input: ``(part, its input range, global count, offset, local count,
    the labels of all the images scored or None)``. Only the part is read: files are listed, not decoded,
    before the split."""
    input_range = parse_input_range(input_range)
    if _is_path_like(images):
        from .files import open_paths

        paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        source: Any = open_paths([Path(p) for p in paths], input_range=input_range)
        # The file readers already map declared float ranges to [0, 255].
        input_range = (0.0, 255.0) if input_range is not None else None
    elif isinstance(images, (torch.Tensor, np.ndarray)):
        source = images
    elif isinstance(images, Sequence) and len(images) > 0 and _is_single_image(images[0]):
        source = images
    elif isinstance(images, Dataset) and not isinstance(images, IterableDataset) and hasattr(images, "__len__"):
        source = images
    else:
        raise InputError(
            f"in a torch.distributed group, inception_score() shares out sized inputs only (a tensor, array, "
            f"sequence of images, Dataset or path), not a {type(images).__name__}: use the InceptionScore metric "
            f"object with a DistributedSampler, or pass distributed=False to score it in this process alone"
        )
    total = len(source) if limit is None else min(len(source), limit)
    check_split_count(total, 1)
    start, stop = shard_bounds(total, group.rank, group.world_size)
    labels = None
    if isinstance(source, Dataset):
        part = Subset(source, range(start, stop))
        labels = dataset_labels(source, total)
    else:
        part = source[start:stop]
    return part, input_range, total, start, stop - start, labels


def _distributed_score(group: Group, images: Any, splits: SplitRule, batch_size: int, device: str | torch.device,
                       weights: str | os.PathLike | None, allow_unverified: bool, input_range: str | InputRange | None,
                       shuffle_seed: int | None, order: str, num_workers: int, limit: int | None, progress: bool,
                       precision: Precision, return_marginal: bool, scorer: InceptionScorer | None,
                       infinity_seed: int | None = None) -> ISResult:
    """:func:`inception_score` on this rank's shard, in lock step with the other ranks."""
    with agreeing(group):
        scorer = scorer or InceptionScorer(weights, device=device, allow_unverified=allow_unverified,
                                           precision=precision, progress=progress and group.is_main)
        part, part_range, total, offset, count, labels = _shard(images, input_range, limit, group)
        check_split_count(total, splits)
        batches: Iterable[ImageBatch] = []
        if count:
            batches = image_stream(part, batch_size=batch_size, input_range=part_range, num_workers=num_workers,
                                   pin_memory=scorer.device.type == "cuda").batches
        accumulator = _SplitAccumulator(splits, count, shuffle_seed, offset, total, infinity_seed)
    assert scorer is not None
    start = time.perf_counter()
    with progress_bar(progress and group.is_main, count) as bar:
        def work(batch: ImageBatch) -> None:
            accumulator.add(scorer.logits(batch))
            bar(len(batch))

        run_in_lockstep(group, batches, lockstep_steps(total, group.world_size, batch_size), work)
    with agreeing(group):
        stats = accumulator.finish()
    return _result(stats, scorer, time.perf_counter() - start, return_marginal,
                   f"{order}, shared out over {group.world_size} processes", group, shuffled=shuffle_seed is not None,
                   split_size=splits.split_size,
                   labels=None if labels is None else label_order(labels, splits, shuffle_seed),
                   buckets=accumulator.buckets, infinity_seed=infinity_seed)


class InceptionScore:
    """The Inception Score as a metric object for training loops (``update``/``compute``/``reset``).

    ``update`` takes a batch of images (tensor or array, NCHW or NHWC, uint8 or floats with the
    ``input_range`` given here); ``compute`` returns an :class:`ISResult` equal to
    :func:`inception_score` on the same images in the same order. With ``num_images`` given, memory
    stays O(splits x 1008); without it the logits are kept until ``compute``.

    In a ``torch.distributed`` group (unless ``distributed=False``) every process calls ``update`` with
    its own images and ``compute`` on all of them; the statistics are summed once, in float64, and every
    process gets the same result. The global position of each image, which decides its split:

    - ``update(images, indices=...)``: the images' indices in the data set of ``num_images`` images (a
      ``DistributedSampler`` loop). Statistics are kept per split as the images arrive; an index seen by
      several processes (the sampler's padding, which repeats the first indices at the end of the
      last processes' shares) is counted once, by the lowest rank that saw it.
    - without indices: rank-major order, every image of rank 0 in ``update`` order, then rank 1's, and
      so on (``ISResult.order`` says so). The logits are kept until ``compute`` (4 KB per image), since
      a rank's offset is known only when every rank's count is.

    ``infinity=True`` adds IS-infinity to the result, as :func:`inception_score` does.

    Never a stale or partial score: call ``reset()`` before a new epoch's images. With ``num_images``,
    images beyond it raise at the ``update`` that brings them (in a group, at ``compute``), fewer raise
    at ``compute``; with indices, an index a process was given again since the last ``reset()`` makes
    ``compute`` raise, with the counts.
    """

    def __init__(
        self,
        splits: int | None = None,
        *,
        split_size: int | None = None,
        num_images: int | None = None,
        weights: str | os.PathLike | None = None,
        device: str | torch.device = "auto",
        allow_unverified: bool = False,
        input_range: str | InputRange | None = None,
        shuffle: bool = False,
        seed: int = TORCH_FIDELITY_SEED,
        precision: Precision = "exact",
        batch_size: int = 64,
        scorer: InceptionScorer | None = None,
        distributed: bool | None = None,
        infinity: bool = False,
        infinity_seed: int = TORCH_FIDELITY_SEED,
    ) -> None:
        self.splits = split_rule(splits, split_size)  # 10 equal parts by default, or chunks of split_size
        self.infinity_seed = infinity_seed if infinity else None
        self.num_images = num_images
        self.input_range = parse_input_range(input_range)
        self.shuffle_seed = seed if shuffle else None
        self.order = order_text(self.shuffle_seed)
        self.batch_size = batch_size
        self.distributed = distributed
        self.scorer = scorer or InceptionScorer(
            weights, device=device, allow_unverified=allow_unverified, precision=precision
        )
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far (the network stays loaded)."""
        self._plain: _SplitAccumulator | None = None  # built at the first update: the group may come later
        self._indexed: _IndexedAccumulator | None = None
        self._elapsed = 0.0

    @property
    def _accumulator(self) -> _SplitAccumulator:
        if self._plain is None:
            # One process: images arrive in input order; several: the order is fixed at compute().
            alone = current_group(self.distributed) is None
            self._plain = _SplitAccumulator(self.splits, self.num_images if alone else None, self.shuffle_seed,
                                            infinity_seed=self.infinity_seed)
        return self._plain

    def update(self, images: Any, indices: Any = None) -> None:
        """Add a batch ``(B, 3, H, W)`` or ``(B, H, W, 3)``; large batches run in ``batch_size`` chunks.
        ``indices`` ``(B,)``: each image's index in the data set of ``num_images`` images."""
        start = time.perf_counter()
        pixels = standardize_batch(images, self.input_range, "the batch given to update()")
        if indices is not None:
            index_array = _check_indices(indices, pixels.shape[0], self.num_images)
            if self._plain is not None and self._plain.seen:
                raise InputError("update() was called both with and without indices since the last reset(); use one")
            if self._indexed is None:
                assert self.num_images is not None
                group = current_group(self.distributed)
                self._indexed = _IndexedAccumulator(self.splits, self.num_images, self.shuffle_seed,
                                                    keep_last=group.world_size if group else 0,
                                                    infinity_seed=self.infinity_seed)
        elif self._indexed is not None:
            raise InputError("update() was called both with and without indices since the last reset(); use one")
        for position, chunk in enumerate(pixels.split(self.batch_size)):
            logits = self.scorer.logits(chunk)
            if indices is None:
                self._accumulator.add(logits)
            else:
                assert self._indexed is not None
                self._indexed.add(logits, index_array[position * self.batch_size : position * self.batch_size + len(chunk)])
        self._elapsed += time.perf_counter() - start

    def compute(self, return_marginal: bool = False) -> ISResult:
        """The score of every image given since the last ``reset`` (on every process of a group)."""
        group = current_group(self.distributed)
        if group is None:
            if self._indexed is not None:
                stats = self._indexed.finish(None)
                return _result(stats, self.scorer, self._elapsed, return_marginal,
                               f"{self.order} of the data set's indices", shuffled=self.shuffle_seed is not None,
                               split_size=self.splits.split_size, buckets=self._indexed.buckets,
                               infinity_seed=self.infinity_seed)
            stats = self._accumulator.finish()
            return _result(stats, self.scorer, self._elapsed, return_marginal, self.order,
                           shuffled=self.shuffle_seed is not None, split_size=self.splits.split_size,
                           buckets=self._accumulator.buckets, infinity_seed=self.infinity_seed)
        stats: SplitStatistics | None = None
        buckets: SplitStatistics | None = None
        with agreeing(group, InputError):
            if self._indexed is not None:
                stats = self._indexed.finish(group)
                buckets = self._indexed.buckets
                order = f"{self.order} of the data set's indices"
            else:
                counts = all_gather_counts(group, self._accumulator.seen)
                if self.num_images is not None and sum(counts) != self.num_images:
                    raise InputError(f"the {group.world_size} processes received {sum(counts)} images ({counts}) "
                                     f"for the {self.num_images} announced: reset() between epochs, and announce "
                                     "the real number")
                stats = self._accumulator.finish(offset=sum(counts[: group.rank]), total=sum(counts))
                buckets = self._accumulator.buckets
                order = f"{self.order}, rank-major over {group.world_size} processes (rank 0's images first)"
        assert stats is not None
        return _result(stats, self.scorer, self._elapsed, return_marginal, order, group,
                       shuffled=self.shuffle_seed is not None, split_size=self.splits.split_size, buckets=buckets,
                       infinity_seed=self.infinity_seed)


def _check_indices(indices: Any, count: int, num_images: int | None) -> np.ndarray:
    if num_images is None:
        raise InputError("update(images, indices=...) needs num_images: the size of the data set the indices point into")
    array = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
    if array.shape != (count,) or array.dtype.kind not in "iu":
        raise InputError(f"indices must be {count} integers, one per image; got shape {array.shape}, dtype {array.dtype}")
    if count and (array.min() < 0 or array.max() >= num_images):
        raise InputError(f"indices must lie in [0, {num_images}); got [{array.min()}, {array.max()}]")
    return array.astype(np.int64)


class _IndexedAccumulator:
    """Statistics of images that come with their index in a data set of ``num_images``.

    An index seen again by this process since the last reset (a second epoch without ``reset()``: a
    sampler never gives one process an index twice in one epoch) is not counted, and :meth:`finish`
    refuses to score, after its collectives, so every process hears of it. Across processes the duplicates of a
    ``DistributedSampler`` (its padding: the first indices again, as the last item of the last ranks)
    are found at :meth:`finish` from each rank's seen-bitmap (N / 8 bytes each) and dropped by every rank
    but the lowest that saw them; for that, each rank keeps the logits of its last ``keep_last`` images.
    With ``infinity_seed``, the images also go to the IS-infinity buckets by index (``buckets`` after
    :meth:`finish`).
    """

    def __init__(self, splits: int | SplitRule, num_images: int, shuffle_seed: int | None, keep_last: int,
                 infinity_seed: int | None = None) -> None:
        self.plan = SplitPlan.of(num_images, splits, shuffle_seed)
        self.splits = self.plan.rule
        self.num_images = num_images
        self.seen = np.zeros(num_images, dtype=bool)
        self.stats = SplitStatistics.zeros(self.splits.split_count(num_images), NUM_CLASSES)
        self.bucket_ids = None if infinity_seed is None else infinity_buckets(num_images, infinity_seed)
        self.live_buckets = None if infinity_seed is None else SplitStatistics.zeros(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
        self.buckets: SplitStatistics | None = None
        self.recent: collections.deque[tuple[int, torch.Tensor]] = collections.deque(maxlen=max(keep_last, 1))
        self.repeated = 0  # images whose index this process had already seen

    def _split_ids(self, indices: np.ndarray) -> np.ndarray:
        return self.plan.split_ids(indices)

    def add(self, logits: torch.Tensor, indices: np.ndarray) -> None:
        new = ~self.seen[indices]
        _, first = np.unique(indices, return_index=True)
        keep = np.zeros(len(indices), dtype=bool)
        keep[first] = True
        keep &= new
        self.repeated += len(indices) - int(keep.sum())
        if keep.any():
            chosen = torch.from_numpy(np.flatnonzero(keep))
            self.stats.add(logits[chosen], self._split_ids(indices[keep]))
            if self.live_buckets is not None and self.bucket_ids is not None:
                self.live_buckets.add(logits[chosen], self.bucket_ids[indices[keep]])
            self.seen[indices[keep]] = True
            for index, row in zip(indices[keep], logits[chosen].detach().cpu()):
                self.recent.append((int(index), row))

    def finish(self, group: Group | None) -> SplitStatistics:
        stats = self.stats
        self.buckets = self.live_buckets
        if group is not None:
            everyone = all_gather_seen(group, self.seen)
            seen_below = np.logical_or.reduce(everyone[: group.rank], axis=0) if group.rank else np.zeros_like(self.seen)
            drop = self.seen & seen_below
            if drop.any():
                rows = {index: row for index, row in self.recent}
                missing = [int(i) for i in np.flatnonzero(drop) if int(i) not in rows]
                if missing:
                    raise InputError(
                        f"indices {missing[:5]} reached several processes, beyond the padding of a DistributedSampler; "
                        "give each process its own indices")
                dropped = np.flatnonzero(drop)
                duplicate = SplitStatistics.zeros(self.stats.splits, NUM_CLASSES)
                duplicate.add(torch.stack([rows[int(i)] for i in dropped]), self._split_ids(dropped))
                stats = subtract_statistics(stats, duplicate)
                if self.live_buckets is not None and self.bucket_ids is not None:
                    in_buckets = SplitStatistics.zeros(INFINITY_POINTS, NUM_CLASSES, sketch_size=0)
                    in_buckets.add(torch.stack([rows[int(i)] for i in dropped]), self.bucket_ids[dropped])
                    self.buckets = subtract_statistics(self.live_buckets, in_buckets)
            covered = int(np.logical_or.reduce(everyone, axis=0).sum())
        else:
            covered = int(self.seen.sum())
        if self.repeated:
            raise InputError(f"{self.repeated} images came with indices this process had already given since the "
                             f"last reset() ({int(self.seen.sum())} distinct of the {self.num_images} announced): "
                             "call reset() between epochs, and give each image once")
        if covered != self.num_images:
            raise InputError(f"the indices given cover {covered} of the {self.num_images} images announced; "
                             "score the whole data set or announce its real size")
        return stats
