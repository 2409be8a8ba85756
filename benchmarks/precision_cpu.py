"""Fast mode on this CPU against exact: images/s of each and the deviation of the Inception Score.

    python benchmarks/precision_cpu.py --cifar10-partial ../shared/data/cifar10-partial --images 2000

Both run in this process, one after the other, on the same genuine CIFAR-10 training images (uint8
32x32, resize included), with the same weights. Without --weights it builds the development file
(genuine convolutions, seeded random fc): the scores are then NOT Inception Scores, but the deviation
of fast from exact is a property of the convolutions and the arithmetic, which are the genuine ones.
Writes ``benchmarks/results/precision-cpu.md``, with the CPU's flags: "fast" uses bfloat16 only on a
CPU with AVX512_BF16 or AMX and is exact elsewhere.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402


def training_images(cifar: str | Path, count: int) -> torch.Tensor:
    """The first ``count`` genuine CIFAR-10 training images of the partial archive in folder ``cifar``:
    ``(N, 3, 32, 32)`` uint8."""
    with np.load(Path(cifar) / "cifar10_prefix_partial.npz", allow_pickle=False) as archive:
        rows = np.concatenate([archive[f"data_batch_{i}_data_prefix"] for i in range(1, 6)])[:count]
    return torch.from_numpy(rows.reshape(-1, 3, 32, 32).copy())


@contextlib.contextmanager
def weights_file(weights: str | None) -> Iterator[str]:
    """``weights``, or else the development file (genuine convolutions, seeded random fc) built in a
    temporary folder that lasts as long as the ``with`` block."""
    if weights is not None:
        yield weights
        return
    from inception_score.network.dev_weights import write_genuine_conv_weights

    with tempfile.TemporaryDirectory() as folder:
        yield str(write_genuine_conv_weights(Path(folder) / "dev-weights.pth"))


def timed_logits(scorer, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, float]:
    scorer.logits(images[:batch_size])  # warm-up: oneDNN picks its kernels
    begin = time.perf_counter()
    logits = torch.cat([scorer.logits(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    return logits, time.perf_counter() - begin


@click.command()
@click.option("--cifar10-partial", "cifar", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--images", "count", type=int, default=2000, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None)
def main(cifar: str, count: int, batch_size: int, weights: str | None) -> None:
    from inception_score import InceptionScorer
    from inception_score.score.planned import inception_score_from_logits
    from inception_score.score.statistics import summarize
    from inception_score.network.precision import native_bf16_cpu

    images = training_images(cifar, count)
    with weights_file(weights) as path:
        exact = InceptionScorer(path, device="cpu", allow_unverified=True, progress=False)
        fast = InceptionScorer(path, device="cpu", allow_unverified=True, progress=False, precision="fast")
    note = fast.precision_note or "the scorer chose bfloat16"
    if native_bf16_cpu():
        # Measure bfloat16 even where the scorer's own timing check kept float32 (it never uses a slower mode).
        fast.bf16_on_cpu = True
    exact_logits, exact_s = timed_logits(exact, images, batch_size)
    fast_logits, fast_s = timed_logits(fast, images, batch_size)
    exact_mean = summarize(inception_score_from_logits(exact_logits, 10))[0]
    fast_mean = summarize(inception_score_from_logits(fast_logits, 10))[0]
    deviation = abs(fast_mean - exact_mean) / exact_mean
    lines = [
        "# Fast mode on this CPU against exact",
        "",
        f"Native bfloat16 on this CPU: {'yes' if native_bf16_cpu() else 'no'}; measured here in {fast.dtype}. "
        f"What `precision=\"fast\"` itself does on this machine: {note}. "
        "Development weights (genuine convolutions, seeded random fc): the means are NOT Inception Scores.",
        "",
        provenance_markdown(),
        f"- images: {len(images)} genuine CIFAR-10 training images (32x32 uint8, resize included), batch {batch_size}",
        "",
        "| precision | img/s | seconds | IS mean (10 splits) |",
        "| --- | --- | --- | --- |",
        f"| exact (float32) | {len(images) / exact_s:.2f} | {exact_s:.1f} | {exact_mean:.6f} |",
        f"| fast ({fast.dtype}) | {len(images) / fast_s:.2f} | {fast_s:.1f} | {fast_mean:.6f} |",
        "",
        f"Speed-up of fast: {exact_s / fast_s:.2f}x. Relative IS deviation of fast from exact: {deviation:.2e}; "
        f"largest logit difference: {float((fast_logits - exact_logits).abs().max()):.3g} "
        f"(logits span {float(exact_logits.min()):.1f} .. {float(exact_logits.max()):.1f}).",
    ]
    click.echo(write_result("precision-cpu.md", lines))


if __name__ == "__main__":
    main()
