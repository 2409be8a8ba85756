"""Logits files from Python: :func:`save_logits` scores images into one (resumable), and
:func:`score_logits_file` gives the :class:`~inception_score.score.result.ISResult` of a complete one without
the network, under any splits and order. The file format, its fingerprint of the images and its
crash-safe writing are :mod:`.logits_file`'s; ``--save-logits`` and ``--from-logits`` are these calls.

A logits file only claims its weights: its sidecar names their sha256, but anyone can write that. So
the score of a file is of verified weights only when a weights file given here has the sha256 the file
claims and is a genuine one, or when this process wrote the file with weights it checked (the
:class:`SavedLogits` record that :func:`save_logits` returned, passed as ``saved``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.data import Dataset, Subset

from .errors import InputError
from .options import ScorerOptions, ScorerKeywords, scorer_options
from .logits.fingerprint import InputFingerprint
from .logits.file import ROWS_CHECKED, open_for_writing, sidecar, statistics_and_buckets_of
from .protocol import RESCORED_DEVICE, TORCH_FIDELITY_SEED, InputRange
from .score.result import ISResult

if TYPE_CHECKING:
    from typing_extensions import Unpack

_UNRECORDED = "not recorded (a logits file of an older version)"


@dataclass(frozen=True)
class SavedLogits:
    """What :func:`save_logits` did: the file, its ``num_images`` rows, how many were ``kept`` from an
    earlier run (0 for a fresh file), the seconds spent computing the others (0.0 when every row was
    kept), whether the weights that computed them are the verified ones, and the images' own
    ``(N,)`` labels when the input had them (an ``.npz`` of samples and classes), else None."""

    path: Path
    num_images: int
    kept: int
    elapsed_s: float
    weights_verified: bool
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)


def save_logits(
    images: Any,
    path: str | os.PathLike,
    *,
    limit: int | None = None,
    input_range: str | InputRange | None = None,
    description: str | None = None,
    progress: bool = False,
    on_resume: Callable[[int], Any] | None = None,
    scorer: Any = None,
    options: ScorerOptions | None = None,
    **option_keywords: Unpack[ScorerKeywords],
) -> SavedLogits:
    """Write the ``(N, 1008)`` float32 unbiased logits of ``images``, in input order, to the logits file
    ``path`` (a ``.npy``, with its sidecar ``path.json``), batch by batch. When ``path`` already holds
    the first rows of the same images, weights and precision (an interrupted call), they are kept
    once the images behind them are found unchanged (``on_resume(kept)`` is called first), and only
    the rest are computed; images that changed since, other weights or another precision are refused
    with an :class:`InputError` naming them.

    ``images``: what can be fingerprinted, and only that: a path or a list of paths (folder, ``.npy`` /
    ``.npz``, ``.zip`` / ``.tar(.gz)``, image file), read with ``input_range`` for float arrays; or a
    dataset of the package's file readers (``inception_score.readers.files.open_paths``, whole or a ``Subset``
    of it, which mapped its input range when opened). Tensors, arrays in memory and other datasets are
    refused: save them with ``numpy.save`` and pass the file. ``limit``: only the first N images.
    ``description``: the input as the sidecar names it (default: the reader's own description); a
    resume needs the same. ``scorer``: a loaded network, else one is loaded as the scorer options
    (``options=`` or the keywords, :class:`~inception_score.options.ScorerOptions`) say.
    """
    from .engine.accumulators import LogitsSink
    from .engine.run import ScoringRun
    from .engine.runner import build_scorer
    from .readers.files import dataset_labels
    from .readers.inputs import image_stream
    from .protocol import PIXEL_RANGE

    settings = scorer_options(options, **option_keywords)
    dataset = _readers_dataset(images, input_range)
    count = len(dataset) if limit is None else min(len(dataset), limit)  # type: ignore[arg-type]
    description = description if description is not None else getattr(dataset, "description", None)
    if description is None:
        raise InputError("save_logits() needs description= to name a Subset of a reader in the logits file")
    scorer = scorer or build_scorer(settings, progress)
    fingerprint = InputFingerprint(dataset, count)
    writer = open_for_writing(Path(path), scorer, fingerprint, description)
    kept = writer.done
    elapsed = 0.0
    try:
        if kept:
            if on_resume is not None:
                on_resume(kept)
            # The kept rows' images streamed again only for a "pixels" fingerprint (files are checked by stat).
            batches = None if fingerprint.kind == "files" else image_stream(
                Subset(dataset, range(kept)), batch_size=settings.batch_size, input_range=PIXEL_RANGE,
                num_workers=settings.num_workers).batches
            writer.check_kept(fingerprint, batches)
        remaining = Subset(dataset, range(kept, count))
        if len(remaining):
            stream = image_stream(remaining, batch_size=settings.batch_size, input_range=PIXEL_RANGE,
                                  num_workers=settings.num_workers, pin_memory=scorer.device.type == "cuda")
            # The images' digests in a thread, beside the network (both release the GIL); rows as they settle.
            with ThreadPoolExecutor(1) as digesting:
                first_row = [writer.done]

                def start(batch: Any) -> Any:
                    digests = digesting.submit(fingerprint.rows, first_row[0], batch)
                    first_row[0] += len(batch)
                    return digests

                def write(logits: Any, digests: Any) -> None:
                    writer.write(logits, digests.result(), getattr(scorer, "precision_note", ""))

                run = ScoringRun(scorer, num_images=len(remaining), sink=LogitsSink(write, start), progress=progress)
                run.feed(stream.batches)
                run.close()
                elapsed = run.elapsed
    finally:
        writer.close()
    return SavedLogits(Path(path), count, kept, elapsed, bool(scorer.weights.verified), dataset_labels(dataset, count))


def _readers_dataset(images: Any, input_range: str | InputRange | None) -> Dataset:
    """The file readers' dataset of ``images`` (paths are opened here); anything else is refused."""
    from .readers.files import open_paths, reads_files
    from .readers.inputs import is_path_like
    from .readers.pixels import parse_input_range

    if is_path_like(images):
        paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        return open_paths([Path(p) for p in paths], input_range=parse_input_range(input_range))
    if isinstance(images, Dataset) and hasattr(images, "__len__") and reads_files(images):
        if input_range is not None:
            raise InputError("save_logits() got input_range with a dataset of the file readers, which mapped its "
                             "range when it was opened: give the range to open_paths(), or pass the paths")
        return images
    raise InputError(f"save_logits() writes logits files of images it can fingerprint: paths (a folder, .npy/.npz, "
                     f"an archive) or a dataset of the file readers, not a {type(images).__name__}; write the images "
                     f"to a file first (numpy.save) and pass its path")


def score_logits_file(
    path: str | os.PathLike,
    *,
    splits: int | Any = None,
    split_size: int | None = None,
    shuffle: bool = False,
    seed: int = TORCH_FIDELITY_SEED,
    infinity: bool = False,
    infinity_seed: int = TORCH_FIDELITY_SEED,
    weights: str | os.PathLike | None = None,
    saved: SavedLogits | None = None,
    labels: Any = None,
    return_marginal: bool = False,
) -> ISResult:
    """The Inception Score of the complete logits file ``path``, without the network: ``splits`` /
    ``split_size``, ``shuffle`` / ``seed`` and ``infinity`` / ``infinity_seed`` as in
    :func:`~inception_score.api.inception_score`, which gives the same numbers on the same images
    (the file holds the float32 logits that call computes). The precision, dtype, device and notes
    are the sidecar's. An incomplete or damaged file (a missing row, a NaN) is an :class:`InputError`.

    The weights: the file only claims them, so the result says ``weights_verified=False``, with a
    ``not_comparable`` reason, unless ``weights`` names a weights file to check the claim against (its
    sha256 must be the one the file names, else :class:`InputError`; verified when it is a genuine
    file), or ``saved`` is what :func:`save_logits` returned when this process wrote ``path`` (its
    weights were checked then; not with ``weights``). ``saved`` also gives the time spent computing the
    rows (``images_per_second``) and the images' labels. ``labels``: the ``(N,)`` labels of the rows'
    images (default: ``saved.labels``), for the check that the input is not sorted by class."""
    from .score.statistics import order_text, split_rule
    from .score.order import label_order
    from .score.result import result_from_statistics

    path = Path(path)
    if saved is not None and Path(saved.path) != path:
        raise InputError(f"score_logits_file({path}) was given saved= of another file, {saved.path}")
    if saved is not None and weights is not None:
        raise InputError("score_logits_file() takes weights= (a file to check the claim against) or saved= (the "
                         "weights were checked when this process wrote the file), not both")
    rule = split_rule(splits, split_size)
    shuffle_seed = seed if shuffle else None
    ordered_by = infinity_seed if infinity else None
    stats, buckets, info = statistics_and_buckets_of(path, rule, shuffle_seed, ordered_by)
    weights_note, weights_path = "", info.weights_path
    if saved is not None:
        weights_verified = saved.weights_verified
        labels = saved.labels if labels is None else labels
    else:
        weights_verified = _claimed_weights(path, info.weights_sha256, None if weights is None else Path(weights))
        if weights is None:
            weights_note = (f"the logits file only claims its weights (sha256 {info.weights_sha256[:12]}…); "
                            "--weights FILE checks them")
        else:
            weights_path = str(weights)
    return result_from_statistics(
        stats, weights_path=weights_path, weights_sha256=info.weights_sha256, weights_verified=weights_verified,
        device=info.device or RESCORED_DEVICE, dtype=info.dtype or _UNRECORDED,
        elapsed=0.0 if saved is None else saved.elapsed_s, return_marginal=return_marginal,
        order=order_text(shuffle_seed), shuffled=shuffle, precision=info.precision or _UNRECORDED,
        precision_note=info.precision_note, weights_note=weights_note, split_size=rule.split_size,
        labels=None if labels is None else label_order(np.asarray(labels), rule, shuffle_seed),
        buckets=buckets, infinity_seed=ordered_by, caveats=() if info.format >= ROWS_CHECKED else (
            f"{path} was written by an older inception-score whose rows carry no checksum, so a changed row would "
            "go unnoticed: compute it again with --save-logits to have one",),
    )


def _claimed_weights(path: Path, claimed_sha256: str, weights: Path | None) -> bool:
    """Whether the weights a logits file names are the verified ones: only when ``weights`` is given,
    has the sha256 the file claims, and is a genuine file. Other weights are an error."""
    from .network.weights import KNOWN_FILES, weights_sha256

    if weights is None:
        return False
    if not weights.is_file():
        raise InputError(f"--weights {weights} does not exist: give the weights file to check {path} against")
    digest, _ = weights_sha256(weights)
    if digest != claimed_sha256:
        raise InputError(f"--weights {weights} has sha256 {digest[:12]}…, but {sidecar(path).name} says {path} was "
                         f"computed with {claimed_sha256[:12]}…: give the weights it was computed with")
    return digest in KNOWN_FILES
