"""What guided-diffusion's float16 distances change in precision and recall, on real pool_3 features.

    python benchmarks/precision_recall_float16.py --images 2000 --features /tmp/pr-features.npz

Features: pool_3 of genuine CIFAR-10 training images (the partial archive; uint8 32x32, the TF1 resize to
299x299), from the network with the development weights (genuine convolutions, so pool_3 is the genuine
2015 graph's; its random fc layer plays no part here). The first half of the images is the reference
set; the second half is the sample set, once as it is and once with seeded Gaussian pixel noise (a
sample set further from the reference, where precision and recall are not near their ceiling).

For each pair, precision and recall (k = 3) with exact float64 distances and with the evaluator's float16
arithmetic emulated (:mod:`inception_score.score.precision_recall`), the points whose membership differs, and
how far the float16 radii are from the exact ones. ``--features`` keeps the extracted features (and
reuses them when the file exists and holds as many images). Writes
``benchmarks/results/precision-recall-float16.md``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402
from precision_cpu import training_images, weights_file  # noqa: E402

NOISE_STD = 24.0  # pixel levels of the noisy sample set


def pool3_features(images: torch.Tensor, weights: str, batch_size: int) -> tuple[np.ndarray, float]:
    from inception_score import InceptionScorer
    from inception_score.network.outputs import Output

    scorer = InceptionScorer(weights, device="cpu", allow_unverified=True, progress=False)
    begin = time.perf_counter()
    parts = [scorer.outputs(images[i : i + batch_size], Output.POOL3) for i in range(0, len(images), batch_size)]
    return torch.cat(parts).numpy(), time.perf_counter() - begin


def noisy(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator) * NOISE_STD
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


@click.command()
@click.option("--cifar10-partial", "cifar", type=click.Path(exists=True, file_okay=False),
              default=lambda: str(Path(os.environ.get("INCEPTION_SCORE_SHARED", "")) / "data" / "cifar10-partial"),
              show_default="$INCEPTION_SCORE_SHARED/data/cifar10-partial")
@click.option("--images", "count", type=int, default=2000, show_default=True, help="genuine images, halved")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="default: the development file, built here")
@click.option("--features", "cache", type=click.Path(dir_okay=False), default=None, help="keep/reuse the features")
def main(cifar: str, count: int, batch_size: int, weights: str | None, cache: str | None) -> None:
    from inception_score.score.precision_recall import manifold_membership

    images = training_images(cifar, count)
    count = len(images)
    half = count // 2
    extract_s = None
    if cache and Path(cache).is_file() and np.load(cache)["real"].shape[0] == count:
        with np.load(cache, allow_pickle=False) as stored:
            real, distorted = stored["real"], stored["noisy"]
    else:
        with weights_file(weights) as path:
            real, seconds_real = pool3_features(images, path, batch_size)
            distorted, seconds_noisy = pool3_features(noisy(images[half:]), path, batch_size)
        extract_s = seconds_real + seconds_noisy
        if cache:
            np.savez(cache, real=real, noisy=distorted)
    reference = real[:half]
    lines = ["# Precision and recall: guided-diffusion's float16 distances against exact float64", "",
             provenance_markdown(), "",
             f"{half} reference and {count - half} sample images: pool_3 features of genuine CIFAR-10 training images "
             "(partial archive), development weights (genuine convolutions: the pool_3 features are the 2015 graph's). "
             f"Noisy samples: the same sample images plus Gaussian pixel noise of std {NOISE_STD:g} (seed 0). "
             + (f"Feature extraction: {extract_s:.0f} s for {count + count - half} images on this CPU." if extract_s
                else "Features read from the --features file."), "",
             f"Largest squared norm of a feature vector: {float(max((real ** 2).sum(1).max(), (distorted ** 2).sum(1).max())):.0f} "
             "(float16 overflows at 65504; below it the evaluator never falls back to float32).", "",
             "| samples | precision float64 | precision float16 | recall float64 | recall float16 | samples flipped | "
             "reference points flipped | radii: median / max relative difference | time float64 / float16 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, samples in (("genuine", real[half:]), ("noisy", distorted)):
        timings, members = {}, {}
        for distances in ("float64", "float16"):
            begin = time.perf_counter()
            members[distances] = manifold_membership(reference, samples, distances=distances)
            timings[distances] = time.perf_counter() - begin
        exact, half_precision = members["float64"], members["float16"]
        flipped_samples = int((exact.sample_inside != half_precision.sample_inside).sum())
        flipped_reference = int((exact.reference_inside != half_precision.reference_inside).sum())
        radii_exact = exact.reference_radii.numpy()
        relative = np.abs(half_precision.reference_radii.double().numpy() - radii_exact) / radii_exact
        lines.append(f"| {name} | {exact.sample_inside.double().mean():.4f} | {half_precision.sample_inside.double().mean():.4f} | "
                     f"{exact.reference_inside.double().mean():.4f} | {half_precision.reference_inside.double().mean():.4f} | "
                     f"{flipped_samples} of {len(samples)} | {flipped_reference} of "
                     f"{len(reference)} | {np.median(relative):.1e} / {relative.max():.1e} | "
                     f"{timings['float64']:.1f} s / {timings['float16']:.1f} s |")
    text = write_result("precision-recall-float16.md", lines)
    print(text)


if __name__ == "__main__":
    main()
