"""The Inception Score of Salimans et al. (2016), exactly as the paper's code computed it.

>>> from inception_score import inception_score
>>> result = inception_score(images)            # uint8 (N, 3, H, W), a folder, a Dataset, ...
>>> print(result.mean, result.std)
"""

from .errors import (
    ImageDecodeError,
    InceptionScoreError,
    InputError,
    WeightsError,
    WeightsFormatError,
    WeightsHashError,
    WeightsNotFoundError,
)
from .metric import inception_score_from_logits, summarize
from .network import Inception2015, Output
from .scorer import InceptionScore, InceptionScorer, ISResult, inception_score
from .weights import load_network, load_weights

__version__ = "0.1.0"

__all__ = [
    "ISResult",
    "ImageDecodeError",
    "Inception2015",
    "InceptionScore",
    "InceptionScoreError",
    "InceptionScorer",
    "InputError",
    "Output",
    "WeightsError",
    "WeightsFormatError",
    "WeightsHashError",
    "WeightsNotFoundError",
    "__version__",
    "inception_score",
    "inception_score_from_logits",
    "load_network",
    "load_weights",
    "summarize",
]
