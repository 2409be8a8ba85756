"""``--per-class`` shows a collapse (issue 38, found 3): one dominant class among 1008 is drawn at its true
height. Before, 1,008 bars 0.52 px wide lost the one tall bar (class 629 with p = 0.205 showed at about
0.045).

The test reads the PNG's pixels and finds the highest pixel of the bars' colour in the p(y) panel; where
p lies on that panel is matplotlib's own transform of the drawn axes, not anything the plot computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from PIL import Image  # noqa: E402

from inception_score.cli.plot import BAR_COLOUR, marginal_figure, plot_marginal  # noqa: E402

DPI = 100  # plot_marginal's PNG resolution; the figure's transforms are in these pixels


def collapsed_marginal(top_class: int = 629, top_p: float = 0.205, seed: int = 38) -> np.ndarray:
    """``(1008,)`` p(y): one class at ``top_p``, the rest a spread-out tail (the shape of a collapse)."""
    rest = np.random.default_rng(seed).gamma(0.5, size=1008)
    rest[top_class] = 0.0
    marginal = rest / rest.sum() * (1.0 - top_p)
    marginal[top_class] = top_p
    return marginal


def colour_distance(pixels: np.ndarray, colour: str) -> np.ndarray:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    return np.linalg.norm(pixels[..., :3].astype(np.float64) - rgb, axis=-1)


@pytest.mark.parametrize("top_p", [0.205, 0.9, 0.03])
def test_the_largest_class_is_drawn_at_its_true_height(tmp_path: Path, top_p: float) -> None:
    marginal = collapsed_marginal(top_p=top_p)
    assert marginal.argmax() == 629 and marginal.sum() == pytest.approx(1.0)
    figure = marginal_figure(marginal, {}, "collapse")
    figure.set_dpi(DPI)
    figure.tight_layout()  # the layout plot_marginal saves
    axes = figure.axes[0]
    height_px = figure.get_size_inches()[1] * DPI
    # Where the top class's height lies in the image: matplotlib's data -> display transform, rows from the top.
    expected_row = height_px - axes.transData.transform((axes.get_xlim()[0], marginal.max()))[1]
    (left, bottom), (right, top) = axes.get_window_extent().get_points()
    path = plot_marginal(marginal, tmp_path / "p.png", {}, "collapse")
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert pixels.shape[0] == round(height_px)
    panel = pixels[round(height_px - top) + 2 : round(height_px - bottom) - 2, round(left) + 2 : round(right) - 2]
    bar_rows = np.flatnonzero((colour_distance(panel, BAR_COLOUR) < 40).any(axis=1))
    assert bar_rows.size, "no pixel of the bars' colour in the p(y) panel"
    drawn_row = bar_rows.min() + round(height_px - top) + 2
    assert abs(drawn_row - expected_row) <= 2, (drawn_row, expected_row)
