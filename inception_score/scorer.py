"""The batched runner and the public API: one call for a set of images, a metric object for loops.

:class:`InceptionScorer` holds the network on a device and turns batches of pixels into the
unbiased logits. :func:`inception_score` scores a whole input in one pass; :class:`InceptionScore`
has the ``update`` / ``compute`` / ``reset`` shape of a torchmetrics metric and gives the same
number on the same images.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from .errors import InputError
from .inputs import ImageBatch, InputRange, image_stream, parse_input_range, standardize_batch
from .metric import SplitStatistics, check_split_count, shuffled_positions, split_of_positions, summarize
from .network import INPUT_SIZE, NUM_CLASSES, Inception2015, Output, fold_batch_norm
from .precision import precision_scope
from .preprocess import to_network_input
from .weights import LoadedWeights, load_network

Precision = Literal["exact", "fast"]
TORCH_FIDELITY_SEED = 2020  # torch-fidelity's default rng_seed for its shuffle


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

    @property
    def images_per_second(self) -> float:
        return self.num_images / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the marginal as a list when present)."""
        data = asdict(self)
        data["split_scores"] = list(self.split_scores)
        data["marginal"] = None if self.marginal is None else self.marginal.tolist()
        data["images_per_second"] = self.images_per_second
        return data

    def __str__(self) -> str:
        verified = "2015-12-05 weights verified" if self.weights_verified else "UNVERIFIED weights"
        return f"{self.mean:.4f} ± {self.std:.4f} ({self.num_images} images, {self.splits} splits, {verified})"


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
    ``"fast"`` allows TF32 matrix products and bfloat16 on CUDA (no effect on CPU).
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

    @property
    def dtype(self) -> str:
        return "bfloat16" if self.precision == "fast" and self.device.type == "cuda" else "float32"

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
        fast = self.precision == "fast"
        # One scope for the resize (matrix products) and the network: "exact" keeps TF32 off in both,
        # and the caller's switches come back as they were (inception_score.precision).
        with precision_scope(self.device, allow_tf32=fast):
            x = self.network_input(batch).contiguous(memory_format=torch.channels_last)
            if self.device.type != "cuda":
                return self.network(x, Output(output)).cpu()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=fast):
                return self.network(x, Output(output)).float().cpu()

    def logits(self, batch: ImageBatch) -> torch.Tensor:
        """``(B, 1008)`` float32 logits without the bias, as the paper's code used them."""
        return self.outputs(batch, Output.LOGITS_UNBIASED)


class _SplitAccumulator:
    """Routes logits, in input order, to their split's statistics.

    With the image count known up front, statistics are kept per split as the images arrive
    (O(splits x 1008) memory). Without it, the float32 logits are kept until the count is known,
    which is exact too but costs 4 KB per image.
    """

    def __init__(self, splits: int, num_images: int | None, shuffle_seed: int | None) -> None:
        if num_images is not None:
            check_split_count(num_images, splits)
        elif splits < 1:
            check_split_count(0, splits)
        self.splits = splits
        self.num_images = num_images
        self.shuffle_seed = shuffle_seed
        self.seen = 0
        self.stats = SplitStatistics.zeros(splits, NUM_CLASSES)
        self.buffer: list[torch.Tensor] = []
        self.positions: np.ndarray | None = None
        if num_images is not None:
            self.positions = self._positions(num_images)

    def _positions(self, count: int) -> np.ndarray:
        if self.shuffle_seed is None:
            return np.arange(count)
        return shuffled_positions(count, self.shuffle_seed)

    def add(self, logits: torch.Tensor) -> None:
        count = logits.shape[0]
        if self.positions is None:
            self.buffer.append(logits.detach().to("cpu", torch.float32))
        else:
            if self.seen + count > len(self.positions):
                raise InputError(
                    f"more images arrived than the {len(self.positions)} announced; "
                    f"pass the right num_images or leave it out"
                )
            ids = split_of_positions(self.positions[self.seen : self.seen + count], len(self.positions), self.splits)
            self.stats.add(logits, ids)
        self.seen += count

    def finish(self) -> SplitStatistics:
        if self.positions is None:
            check_split_count(self.seen, self.splits)
            positions = self._positions(self.seen)
            stats = SplitStatistics.zeros(self.splits, NUM_CLASSES)
            start = 0
            for logits in self.buffer:
                stop = start + logits.shape[0]
                stats.add(logits, split_of_positions(positions[start:stop], self.seen, self.splits))
                start = stop
            return stats
        if self.seen != len(self.positions):
            raise InputError(f"{self.seen} images arrived but {len(self.positions)} were announced")
        return self.stats


def _result(
    stats: SplitStatistics, scorer: InceptionScorer, elapsed: float, return_marginal: bool
) -> ISResult:
    scores = stats.scores()
    mean, std = summarize(scores)
    weights: LoadedWeights = scorer.weights
    return ISResult(
        mean=mean,
        std=std,
        split_scores=tuple(float(s) for s in scores),
        num_images=int(stats.count.sum()),
        splits=stats.splits,
        weights_path=str(weights.path),
        weights_sha256=weights.sha256,
        weights_verified=weights.verified,
        device=str(scorer.device),
        dtype=scorer.dtype,
        elapsed_s=elapsed,
        marginal=stats.marginal() if return_marginal else None,
    )


def inception_score(
    images: Any,
    *,
    splits: int = 10,
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
) -> ISResult:
    """The Inception Score of ``images``, as the paper's code computes it.

    ``images``: a uint8 tensor or array ``(N, 3, H, W)`` / ``(N, H, W, 3)``; floats with
    ``input_range``; a sequence of images of any sizes; an iterable of batches; a ``Dataset`` or
    ``DataLoader`` yielding images or ``(image, label)``; or a path (folder, .npy/.npz, archive).
    Splits are contiguous in input order unless ``shuffle`` (torch-fidelity's permutation with
    ``seed``). ``num_images`` announces the length of an unsized iterable, so that memory stays flat.
    Pass a ready ``scorer`` to reuse a loaded network across calls.
    """
    if splits < 1:
        check_split_count(0, splits)  # raises the "splits must be at least 1" error
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
    accumulator = _SplitAccumulator(splits, stream.num_images, seed if shuffle else None)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=stream.num_images, unit="img", desc="Inception Score", dynamic_ncols=True)
    start = time.perf_counter()
    try:
        for batch in stream.batches:
            accumulator.add(scorer.logits(batch))
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    stats = accumulator.finish()
    return _result(stats, scorer, time.perf_counter() - start, return_marginal)


class InceptionScore:
    """The Inception Score as a metric object for training loops (``update``/``compute``/``reset``).

    ``update`` takes a batch of images (tensor or array, NCHW or NHWC, uint8 or floats with the
    ``input_range`` given here); ``compute`` returns an :class:`ISResult` equal to
    :func:`inception_score` on the same images in the same order. With ``num_images`` given, memory
    stays O(splits x 1008); without it the logits are kept until ``compute``.
    """

    def __init__(
        self,
        splits: int = 10,
        *,
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
    ) -> None:
        self.splits = splits
        self.num_images = num_images
        self.input_range = parse_input_range(input_range)
        self.shuffle_seed = seed if shuffle else None
        self.batch_size = batch_size
        self.scorer = scorer or InceptionScorer(
            weights, device=device, allow_unverified=allow_unverified, precision=precision
        )
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far (the network stays loaded)."""
        self._accumulator = _SplitAccumulator(self.splits, self.num_images, self.shuffle_seed)
        self._elapsed = 0.0

    def update(self, images: Any) -> None:
        """Add a batch ``(B, 3, H, W)`` or ``(B, H, W, 3)``; large batches run in ``batch_size`` chunks."""
        start = time.perf_counter()
        pixels = standardize_batch(images, self.input_range, "the batch given to update()")
        for chunk in pixels.split(self.batch_size):
            self._accumulator.add(self.scorer.logits(chunk))
        self._elapsed += time.perf_counter() - start

    def compute(self, return_marginal: bool = False) -> ISResult:
        """The score of every image given since the last ``reset``."""
        return _result(self._accumulator.finish(), self.scorer, self._elapsed, return_marginal)

