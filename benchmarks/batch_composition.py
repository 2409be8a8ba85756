"""How much the batches change a score: the same images scored with batch sizes 1, 7 and 64 in one
process, and by 1, 2 and 3 torchrun processes (Gloo), all with one thread per process.

    python benchmarks/batch_composition.py --cifar10-partial ../shared/data/cifar10-partial --images 64

Other batches mean other matrix shapes in the network, and the math library may pick another
kernel for each shape, adding a float32 sum's terms in another order: an image's logits then move by
float32 rounding, and the score with them. This script measures by how much on this machine (the
largest logit difference against batch size 64, and each mean's relative difference against one
process with batch size 64). Without --weights it builds the development file (genuine convolutions,
seeded random fc): the scores are then NOT Inception Scores. Writes
``benchmarks/results/batch-composition-rounding.md``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402
from distributed import cifar_images, score  # noqa: E402


def cpu_capability() -> str:
    import torch

    lines = [line.strip() for line in torch.__config__.show().splitlines() if "CPU capability" in line]
    return lines[0] if lines else "CPU capability: not reported"


@click.command()
@click.option("--cifar10-partial", "cifar", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--images", "count", type=int, default=64, show_default=True)
@click.option("--splits", type=int, default=4, show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None)
def main(cifar: str, count: int, splits: int, weights: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if weights is None:
            from inception_score.dev_weights import write_genuine_conv_weights

            weights = str(write_genuine_conv_weights(Path(folder) / "dev-weights.pth"))
        images = Path(folder) / "images.npy"
        np.save(images, cifar_images(Path(cifar), count))
        args = ["-m", "inception_score", str(images), "--weights", weights, "--allow-unverified-weights", "--json",
                "--quiet", "--device", "cpu", "--splits", str(splits)]
        by_batch, logits = {}, {}
        for batch_size in (64, 7, 1):
            saved = Path(folder) / f"logits-{batch_size}.npy"
            by_batch[batch_size], _ = score([sys.executable, *args, "--batch-size", str(batch_size),
                                             "--save-logits", str(saved)], threads=1)
            logits[batch_size] = np.load(saved, allow_pickle=False).astype(np.float64)
        by_processes = {1: by_batch[64]}
        for processes in (2, 3):
            by_processes[processes], _ = score([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                "--nproc-per-node", str(processes), *args, "--batch-size", "64"],
                                               threads=1)
    reference = by_batch[64]
    relative = lambda result: abs(result["mean"] - reference["mean"]) / reference["mean"]  # noqa: E731
    split_relative = lambda result: float(np.max(np.abs(np.subtract(result["split_scores"], reference["split_scores"]))  # noqa: E731
                                                 / np.asarray(reference["split_scores"])))
    verified = reference["weights"]["verified"]
    lines = [
        "# Batch composition and float32 rounding, CPU",
        "",
        ("Inception Scores with the verified 2015 weights." if verified else
         "Development weights (genuine convolutions, seeded random fc): the scores are NOT Inception Scores."),
        "",
        provenance_markdown(),
        f"- {cpu_capability()}",
        f"- images: {count} genuine CIFAR-10 training images (32x32), {splits} splits, one thread per process",
        "",
        "| run | mean | relative difference of the mean | largest relative difference of a split score | "
        "largest logit difference |",
        "| --- | --- | --- | --- | --- |",
    ]
    for batch_size in (64, 7, 1):
        result = by_batch[batch_size]
        gap = float(np.max(np.abs(logits[batch_size] - logits[64])))
        lines.append(f"| 1 process, batch size {batch_size} | {result['mean']!r} | {relative(result):.2e} | "
                     f"{split_relative(result):.2e} | {gap:.2e} |")
    for processes in (2, 3):
        result = by_processes[processes]
        lines.append(f"| {processes} processes, batch size 64 | {result['mean']!r} | {relative(result):.2e} | "
                     f"{split_relative(result):.2e} | (not saved) |")
    largest = float(np.abs(logits[64]).max())
    lines += [
        "",
        f"Differences are against one process with batch size 64. The largest logit magnitude is {largest:.1f}. "
        "With 2 and 3 processes each process scores its contiguous share of the images, so the batches hold "
        "other images than in one process.",
    ]
    click.echo(write_result("batch-composition-rounding.md", lines))


if __name__ == "__main__":
    main()
