"""A picture of p(y), the marginal class distribution of the scored images: mode collapse shows at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InceptionScoreError
from .labels import class_label


def plot_marginal(marginal: np.ndarray, path: Path, names: dict[int, str], title: str, top: int = 15) -> Path:
    """Write a PNG: the 1008 class probabilities sorted (log scale), and the ``top`` classes by name.

    ``marginal``: ``(1008,)`` float64, p(y) averaged over all scored images (sums to 1).
    ``names``: output index -> class name (:func:`.labels.class_names`; empty: shown by index).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InceptionScoreError("--per-class needs matplotlib: pip install 'inception-score[plot]'") from None
    order = np.argsort(marginal)[::-1]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1.3, 1]})
    left.bar(np.arange(len(marginal)), marginal[order], width=1.0, color="#3b6ea8")
    left.axhline(1.0 / len(marginal), color="#c0392b", linestyle="--", linewidth=1, label="uniform (1/1008)")
    left.set_yscale("log")
    positive = marginal[marginal > 0]
    floor = max(float(positive.min()) if positive.size else 1e-8, 1e-8)  # below 1e-8 nothing is visible anyway
    left.set_ylim(floor / 2, min(1.0, float(marginal.max()) * 3))
    left.set_xlabel("classes, most probable first")
    left.set_ylabel("p(y)")
    left.legend(loc="upper right")
    effective = float(np.exp(-np.sum(marginal * np.log(np.clip(marginal, 1e-300, None)))))
    left.set_title(f"marginal p(y): {effective:.1f} effective classes (exp entropy)")
    shown = order[:top][::-1]
    right.barh([class_label(int(i), names) for i in shown], marginal[shown], color="#3b6ea8")
    right.set_xlabel("p(y)")
    right.set_title(f"top {top} classes")
    figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
