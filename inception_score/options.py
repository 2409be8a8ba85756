"""The scorer's options: one frozen dataclass that every entry point takes, so that a default is spelled
once and an option cannot be forgotten in one of them.

:func:`~inception_score.inception_score`, :class:`~inception_score.InceptionScore`,
:func:`~inception_score.score_generator`, :func:`~inception_score.save_logits` and
:class:`~inception_score.torchmetrics_adapter.InceptionScoreMetric` each accept ``options=ScorerOptions(...)``
or the same fields as keywords (``precision=``, ``exact_kernel=``, ``device=``, ``weights=``,
``allow_unverified=``, ``batch_size=``, ``num_workers=``: :data:`ScorerKeywords`). A keyword given takes the
place of the field of ``options``, which has the defaults below.

>>> from inception_score import ScorerOptions, inception_score
>>> options = ScorerOptions(device="cuda", precision="fast", batch_size=200)
>>> inception_score(images, options=options)        # or inception_score(images, precision="fast", ...)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from .arguments import whole_number
from .errors import InputError

Precision = Literal["exact", "fast"]
# How "exact" computes its float32 products: IEEE float32, or three TF32 products per product (split TF32,
# inception_score.network.split_tf32); "auto" uses split TF32 on CUDA where it measured faster, IEEE elsewhere.
ExactKernel = Literal["auto", "ieee", "split-tf32"]


@dataclass(frozen=True)
class ScorerOptions:
    """How the network is loaded and run; the same for every way of scoring.

    ``weights``: a weights file (default: the verified 2015-12-05 file, downloaded once); ``allow_unverified``:
    accept a file of unknown sha256 (its scores are then marked not comparable); ``device``: ``"auto"``
    (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; ``precision``: ``"exact"`` (float32, agrees with
    torch-fidelity) or ``"fast"`` (reduced precision where it is faster; its deviation is stated in the result);
    ``exact_kernel``: how "exact" multiplies (:data:`ExactKernel`); ``batch_size``: images per network call;
    ``num_workers``: ``DataLoader`` processes that read and decode files."""

    weights: str | os.PathLike | None = None
    device: Any = "auto"  # str or torch.device
    precision: Precision = "exact"
    exact_kernel: ExactKernel = "auto"
    allow_unverified: bool = False
    batch_size: int = 64
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_precision(self.precision, self.exact_kernel)
        object.__setattr__(self, "batch_size", whole_number(self.batch_size, "batch_size", minimum=1))
        object.__setattr__(self, "num_workers", whole_number(self.num_workers, "num_workers", minimum=0))



def check_precision(precision: Any, exact_kernel: Any) -> None:
    """Raise :class:`InputError` unless both are among the names :data:`Precision` and :data:`ExactKernel` allow."""
    if precision not in ("exact", "fast"):
        raise InputError(f"precision must be 'exact' or 'fast', got {precision!r}")
    if exact_kernel not in ("auto", "ieee", "split-tf32"):
        raise InputError(f"exact_kernel must be 'auto', 'ieee' or 'split-tf32', got {exact_kernel!r}")


OPTION_NAMES = tuple(field.name for field in dataclasses.fields(ScorerOptions))
# The same fields as keywords, for the entry points' ``**scorer: Unpack[ScorerKeywords]``: built from the
# dataclass, so that a field added there is a keyword everywhere at once.
ScorerKeywords = TypedDict(  # type: ignore[misc]
    "ScorerKeywords", {field.name: field.type for field in dataclasses.fields(ScorerOptions)}, total=False)


def scorer_options(options: ScorerOptions | None = None, **given: Any) -> ScorerOptions:
    """``options`` (default: :class:`ScorerOptions`'s defaults) with each keyword of ``given`` in place of its
    field (None: keep the field): the entry points' ``precision=``, ``device=``, ... keywords. A keyword
    that is not a field is a ``TypeError``, as for any function."""
    unknown = set(given) - set(OPTION_NAMES)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(sorted(unknown))}: the scorer's options are "
                        f"{', '.join(OPTION_NAMES)}")
    if options is not None and not isinstance(options, ScorerOptions):
        raise InputError(f"options must be a ScorerOptions, got {type(options).__name__}")
    changes = {name: value for name, value in given.items() if value is not None}
    return dataclasses.replace(options or ScorerOptions(), **changes)
