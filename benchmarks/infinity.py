"""IS_n against 1/n and the IS-infinity line on genuine CIFAR-10 images, through the command's own path.

    python benchmarks/infinity.py --weights dev-weights.pth \\
        --cifar10-partial cifar10_prefix_partial.npz --images 2000 \\
        --logits-cache /tmp/order-logits.npz     # writes benchmarks/results/infinity.md and infinity.png

The logits of the first ``--images`` images of the partial CIFAR-10 come from the cache that
benchmarks/order_diagnostic.py writes (computed once when absent). They are written as a logits file
(:mod:`inception_score.logits.file`) and scored by ``inception-score --from-logits FILE --infinity
--infinity-plot ...`` (``inception_score.cli.main.run``), so every number below comes from the code users run.
With the development weights (genuine convolutions, seeded random fc) these are NOT Inception Scores.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS_DIR, provenance_markdown, write_result  # noqa: E402
from order_diagnostic import cached_logits  # noqa: E402

SEEDS = (2020, 1, 2, 3, 4)  # the default order first, then four others to show the spread


def score_file(path: Path, seed: int, plot: Path | None):
    from inception_score.cli.main import RunOptions, run

    options = RunOptions(paths=(), from_logits=path, infinity=True, infinity_seed=seed, infinity_plot=plot, quiet=True)
    return run(options).result


@click.command()
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="weights file (the development file: python -m inception_score.network.dev_weights FILE)")
@click.option("--cifar10-partial", "cifar10", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="cifar10_prefix_partial.npz")
@click.option("--images", default=2000, show_default=True)
@click.option("--logits-cache", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="npz holding the logits (benchmarks/order_diagnostic.py's cache); computed when absent")
def main(weights: Path, cifar10: Path, images: int, logits_cache: Path) -> None:
    from inception_score.logits.file import open_for_writing
    from inception_score.network.weights import file_digest

    logits, _ = cached_logits(weights, cifar10, images, logits_cache)
    plot = RESULTS_DIR / "infinity.png"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cifar10-logits.npy"
        writer = open_for_writing(path, images, file_digest(weights), str(weights), False,
                                  f"first {images} images of the partial CIFAR-10")
        writer.write(torch.from_numpy(logits))
        results = [score_file(path, seed, plot if seed == SEEDS[0] else None) for seed in SEEDS]
    first = results[0]
    n, values = (np.array(column, dtype=np.float64) for column in zip(*first.is_n))
    line = first.is_infinity + first.is_infinity_slope / n
    lines = [
        "# IS_n against 1/n and IS-infinity on genuine CIFAR-10 images (development weights)",
        "",
        provenance_markdown("cpu").rstrip("\n"),
        f"- images: the first {images} of the partial CIFAR-10 (data_batch_1, then data_batch_2); logits computed "
        "once with the development weights (genuine 2015 convolutions, seeded random fc) and scored by "
        "`inception-score --from-logits FILE --infinity --infinity-plot benchmarks/results/infinity.png`",
        "",
        "**These are development-weight numbers, NOT Inception Scores**: with a random fc layer p(y|x) means "
        "nothing about CIFAR classes. They show how IS_n depends on n and how well a line in 1/n fits it.",
        "",
        f"IS_n: the one-split score of the first n images of one seeded order (seed {first.infinity_seed}), "
        f"n = floor(linspace(N/10, N, 15)). Line: least squares of IS_n on 1/n. IS-infinity = its value at "
        f"1/n = 0: **{first.is_infinity:.4f}**; slope {first.is_infinity_slope:.1f}; rms residual "
        f"{first.is_infinity_residual:.4f}. For comparison, the usual score of the same {images} images "
        f"(10 contiguous splits of {images // 10}): {first.mean:.4f} ± {first.std:.4f}.",
        "",
        "![IS_n against 1/n with the least-squares line](infinity.png)",
        "",
        "| n | 1/n | IS_n | line | IS_n - line |",
        "| --- | --- | --- | --- | --- |",
    ]
    for size, value, fitted in zip(n, values, line):
        lines.append(f"| {int(size)} | {1 / size:.6f} | {value:.4f} | {fitted:.4f} | {value - fitted:+.4f} |")
    lines += [
        "",
        "Other seeded orders of the same images (the order decides which images make up each IS_n):",
        "",
        "| seed | IS-infinity | slope | rms residual | IS_n at n = N/10 | IS_n at n = N |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        lines.append(f"| {result.infinity_seed} | {result.is_infinity:.4f} | {result.is_infinity_slope:.1f} "
                     f"| {result.is_infinity_residual:.4f} | {result.is_n[0][1]:.4f} | {result.is_n[-1][1]:.4f} |")
    spread = np.array([r.is_infinity for r in results])
    lines += ["", f"IS-infinity over the {len(SEEDS)} orders: {spread.mean():.4f} ± {spread.std():.4f} "
              "(population sd)."]
    print(write_result("infinity.md", lines))


if __name__ == "__main__":
    main()
