"""Pictures: p(y), the marginal class distribution of the scored images (mode collapse shows at a
glance), and IS_n against 1/n with the IS-infinity line."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic
from ..errors import InceptionScoreError
from ..network.labels import class_label


BAR_COLOUR = "#3b6ea8"


def plot_marginal(marginal: np.ndarray, path: Path, names: dict[int, str], title: str, top: int = 15) -> Path:
    """Write a PNG of :func:`marginal_figure`."""
    return save_figure(marginal_figure(marginal, names, title, top), path)


def marginal_figure(marginal: np.ndarray, names: dict[int, str], title: str, top: int = 15) -> Any:
    """The 1008 class probabilities sorted (log scale), and the ``top`` classes by name: a matplotlib Figure.

    ``marginal``: ``(1008,)`` float64, p(y) averaged over all scored images (sums to 1).
    ``names``: output index -> class name (:func:`.labels.class_names`; empty: shown by index).
    """
    plt = _pyplot("--per-class")
    order = np.argsort(marginal)[::-1]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1.3, 1]})
    positive = marginal[marginal > 0]
    floor = max(float(positive.min()) if positive.size else 1e-8, 1e-8)  # below 1e-8 nothing is visible anyway
    # One filled staircase over the ranks on a log axis: rank k spans [k, k + 1), so the most probable class
    # takes a tenth of the panel and a single dominant class (a collapse) shows at its full height; 1008
    # bars side by side on a linear axis were half a pixel wide each, and the tallest one vanished.
    ranks = np.arange(1, len(marginal) + 2)
    left.stairs(np.maximum(marginal[order], floor / 2), ranks, fill=True, baseline=floor / 2, color=BAR_COLOUR)
    left.axhline(1.0 / len(marginal), color="#c0392b", linestyle="--", linewidth=1, label="uniform (1/1008)")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlim(1, len(marginal) + 1)
    left.set_ylim(floor / 2, min(1.0, float(marginal.max()) * 3))
    left.set_xlabel("class rank, most probable first (log scale)")
    left.set_ylabel("p(y)")
    left.legend(loc="upper right")
    effective = float(np.exp(-np.sum(marginal * np.log(np.clip(marginal, 1e-300, None)))))
    left.set_title(f"marginal p(y): {effective:.1f} effective classes (exp entropy)")
    shown = order[:top][::-1]
    right.barh([class_label(int(i), names) for i in shown], marginal[shown], color=BAR_COLOUR)
    right.set_xlabel("p(y)")
    right.set_title(f"top {top} classes")
    figure.suptitle(title)
    return figure


def plot_infinity(sizes: np.ndarray, scores: np.ndarray, intercept: float, slope: float, path: Path,
                  title: str) -> Path:
    """Write a PNG of IS_n against 1/n with the least-squares line down to 1/n = 0 (IS-infinity marked).

    ``sizes`` ``(15,)`` int, ``scores`` ``(15,)`` float64: the points of :mod:`.infinity`.
    """
    plt = _pyplot("--infinity-plot")
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    axes.plot(x, scores, "o", color="#3b6ea8", label="IS_n (one split, first n of one seeded order)")
    line_x = np.array([0.0, float(x.max())])
    axes.plot(line_x, intercept + slope * line_x, "-", color="#c0392b", linewidth=1,
              label=f"least squares: {intercept:.3f} {'+' if slope >= 0 else '-'} {abs(slope):.1f} / n")
    axes.plot([0.0], [intercept], "s", color="#c0392b")
    axes.set_xlim(left=-0.03 * float(x.max()))
    axes.set_xlabel("1 / n")
    axes.set_ylabel("IS_n")
    axes.set_title(textwrap.fill(title, 70), fontsize=9)
    axes.legend(loc="best")
    return save_figure(figure, path)


def _pyplot(option: str) -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InceptionScoreError(f"{option} needs matplotlib: pip install 'inception-score[plot]'") from None
    return plt


def save_figure(figure: Any, path: Path, dpi: int = 100) -> Path:
    """Lay out a matplotlib ``figure``, write it to ``path`` in the format its extension names (``.png``
    when it has none), replaced whole and never through a link (:func:`.atomic.write_atomic`), and close
    it. Every picture of this package and of ``reference_gan`` is written here."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture_format = path.suffix.lower().lstrip(".") or "png"
    try:
        write_atomic(path, lambda handle: figure.savefig(handle, dpi=dpi, format=picture_format))
    finally:
        plt.close(figure)
    return path
