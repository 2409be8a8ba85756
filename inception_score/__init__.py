"""The Inception Score of Salimans et al. (2016), exactly as the paper's code computed it.

>>> from inception_score import inception_score
>>> result = inception_score(images)            # uint8 (N, 3, H, W), a folder, a Dataset, ...
>>> print(result.mean, result.std)
"""

from .errors import (
    ImageDecodeError,
    InceptionScoreError,
    InputError,
    MissingDependencyError,
    WeightsError,
    WeightsFormatError,
    WeightsHashError,
    WeightsNotFoundError,
)

__version__ = "0.1.0"

# Everything else loads torch: imported on first use, so that `inception-score --help` starts at once.
_LAZY = {
    "inception_score_from_logits": "score.planned", "summarize": "score.statistics",
    "Inception2015": "network.inception", "Output": "network.inception",
    "InceptionScore": "api", "InceptionScorer": "engine.runner", "ISResult": "score.result", "inception_score": "api",
    "load_network": "network.weights", "load_weights": "network.weights",
    "LatentSpec": "generator", "latents": "generator", "load_generator_file": "generator",
    "score_generator": "generator", "GeneratorWarning": "generators.checks",
    "ScorerOptions": "options",
    "load_reference": "api", "Reference": "references.reference", "Evaluation": "score.evaluation",
    "EvaluationWarning": "score.evaluation",
    "SavedLogits": "saved_logits", "save_logits": "saved_logits", "score_logits_file": "saved_logits",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Evaluation",
    "EvaluationWarning",
    "GeneratorWarning",
    "ISResult",
    "ImageDecodeError",
    "Inception2015",
    "InceptionScore",
    "InceptionScoreError",
    "InceptionScorer",
    "InputError",
    "LatentSpec",
    "MissingDependencyError",
    "Output",
    "Reference",
    "SavedLogits",
    "ScorerOptions",
    "WeightsError",
    "WeightsFormatError",
    "WeightsHashError",
    "WeightsNotFoundError",
    "__version__",
    "inception_score",
    "inception_score_from_logits",
    "latents",
    "load_generator_file",
    "load_network",
    "load_reference",
    "load_weights",
    "save_logits",
    "score_generator",
    "score_logits_file",
    "summarize",
]
