"""The names this module held before the runner, the results and the API got modules of their own,
kept importable from here: :mod:`.runner` (:class:`InceptionScorer`, :func:`resolve_device`),
:mod:`.result` (:class:`ISResult`), :mod:`.api` (:func:`inception_score`, :class:`InceptionScore`)."""

from .api import InceptionScore, inception_score, progress_bar
from .protocol import TORCH_FIDELITY_SEED
from .result import FAST_CPU_IS_DEVIATION, FAST_CUDA_IS_DEVIATION, ISResult, result_from_statistics
from .runner import CPU_CHUNK, CPU_STEM_CHUNK, InceptionScorer, Precision, bfloat16_timing, resolve_device

__all__ = [
    "CPU_CHUNK", "CPU_STEM_CHUNK", "FAST_CPU_IS_DEVIATION", "FAST_CUDA_IS_DEVIATION", "ISResult", "InceptionScore",
    "InceptionScorer", "Precision", "TORCH_FIDELITY_SEED", "bfloat16_timing", "inception_score", "progress_bar",
    "resolve_device", "result_from_statistics",
]
