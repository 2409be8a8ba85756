"""Split TF32 ("3xTF32") emulated on this CPU against IEEE float32: the largest logit difference and the
relative difference of the Inception Score.

    OMP_NUM_THREADS=1 python benchmarks/split_tf32.py --weights /root/dev-weights.pth --images 512

On a CPU the split kernel (inception_score.network.split_tf32) runs as three float32 products of TF32-valued
operands, each product exact: the same operands and products a tensor core gets, with float32 sums in
another order. Both runs are in this process on the same genuine CIFAR-10 training images (uint8 32x32,
resize included) and the same weights. Without --weights it builds the development file (genuine
convolutions, seeded random fc): the scores are then NOT Inception Scores, only a comparison of two
kernels. Writes ``benchmarks/results/split-tf32-cpu.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402
from precision_cpu import timed_logits, training_images, weights_file  # noqa: E402

TARGET = 1e-6  # the project's limit on the relative deviation of a mean


@click.command()
@click.option("--cifar10-partial", "cifar", type=click.Path(exists=True, file_okay=False),
              default=lambda: str(Path(os.environ.get("INCEPTION_SCORE_SHARED", "")) / "data" / "cifar10-partial"),
              show_default="$INCEPTION_SCORE_SHARED/data/cifar10-partial")
@click.option("--images", "count", type=int, default=512, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="default: the development file, built here")
def main(cifar: str, count: int, batch_size: int, weights: str | None) -> None:
    from inception_score import InceptionScorer
    from inception_score.score.planned import inception_score_from_logits
    from inception_score.score.statistics import summarize

    images = training_images(cifar, count)
    with weights_file(weights) as path:
        ieee = InceptionScorer(path, device="cpu", allow_unverified=True, progress=False, exact_kernel="ieee")
    split = ieee.with_policy(exact_kernel="split-tf32")
    ieee_logits, ieee_s = timed_logits(ieee, images, batch_size)
    split_logits, split_s = timed_logits(split, images, batch_size)
    ieee_scores = inception_score_from_logits(ieee_logits.double(), 10)
    split_scores = inception_score_from_logits(split_logits.double(), 10)
    ieee_mean, split_mean = summarize(ieee_scores)[0], summarize(split_scores)[0]
    deviation = abs(split_mean - ieee_mean) / ieee_mean
    split_deviation = float(np.max(np.abs(np.asarray(split_scores) - np.asarray(ieee_scores)) / np.asarray(ieee_scores)))
    difference = (split_logits.double() - ieee_logits.double()).abs()
    largest = float(ieee_logits.abs().max())
    lines = [
        "# Split TF32 emulated on this CPU against IEEE float32",
        "",
        "`exact_kernel=\"split-tf32\"` (three TF32 products per product, inception_score.network.split_tf32) against "
        "`exact_kernel=\"ieee\"` on the same images and weights. Development weights (genuine convolutions, "
        "seeded random fc): the means are NOT Inception Scores, only a comparison of the two kernels.",
        "",
        provenance_markdown(),
        f"- images: {len(images)} genuine CIFAR-10 training images (32x32 uint8, resize included), batch {batch_size}",
        "",
        "| exact kernel | dtype field | img/s | seconds | IS mean (10 splits) |",
        "| --- | --- | --- | --- | --- |",
        f"| ieee | {ieee.dtype} | {len(images) / ieee_s:.2f} | {ieee_s:.1f} | {ieee_mean:.9f} |",
        f"| split-tf32 (emulated) | {split.dtype} | {len(images) / split_s:.2f} | {split_s:.1f} | {split_mean:.9f} |",
        "",
        f"- largest logit difference: {float(difference.max()):.3g} (largest logit {largest:.3g}: "
        f"{float(difference.max()) / largest:.2e} of it; RMS difference {float(difference.square().mean().sqrt()):.3g})",
        f"- relative IS difference: {deviation:.2e} (target: at most {TARGET:g}: "
        f"{'met' if deviation <= TARGET else 'NOT met'}); largest over the 10 splits' scores: {split_deviation:.2e}",
        f"- the emulation is {split_s / ieee_s:.1f}x slower than IEEE float32 here: on a CPU it is for checks; "
        "on CUDA the three products run on TF32 tensor cores (benchmarks/gpu_check.py compares that path).",
    ]
    click.echo(write_result("split-tf32-cpu.md", lines))


if __name__ == "__main__":
    main()
