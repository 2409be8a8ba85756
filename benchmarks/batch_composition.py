"""How much the batches change a score: the same images scored with batch sizes 1, 7 and 64 in one
process, and by 1, 2 and 3 torchrun processes (Gloo), all with one thread per process.

    python benchmarks/batch_composition.py --cifar10-partial ../shared/data/cifar10-partial --images 37,64

Other batches mean other matrix shapes in the network, and the math library may pick another
kernel for each shape, adding a float32 sum's terms in another order: an image's logits then move by
float32 rounding, and the score with them. This script measures by how much on this machine (the
largest logit difference against batch size 64, and each mean's relative difference against one
process with batch size 64). Without --weights it builds the development file (genuine convolutions,
seeded random fc): the scores are then NOT Inception Scores. Writes
``benchmarks/results/batch-composition-rounding.md`` (or ``--output``); run it under
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`` to see an AVX2
machine's kernels on an AVX-512 one (the variables are recorded in the file).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402
from distributed import cifar_images, score  # noqa: E402


# What restricts the kernels torch, oneDNN and MKL choose (to emulate an older CPU on a newer one).
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def cpu_capability() -> str:
    import torch

    lines = [line.strip(" -") for line in torch.__config__.show().splitlines() if "CPU capability" in line]
    return lines[0] if lines else "CPU capability: not reported"


def measure(folder: Path, cifar: Path, count: int, splits: int, weights: str) -> list[str]:
    """One table: the runs on the first ``count`` images, against one process with batch size 64."""
    images = folder / f"images-{count}.npy"
    np.save(images, cifar_images(cifar, count))
    args = ["-m", "inception_score", str(images), "--weights", weights, "--allow-unverified-weights", "--json",
            "--quiet", "--device", "cpu", "--splits", str(splits)]
    results, logits = {}, {}
    for batch_size in (64, 7, 1):
        saved = folder / f"logits-{count}-{batch_size}.npy"
        results[f"1 process, batch size {batch_size}"], _ = score(
            [sys.executable, *args, "--batch-size", str(batch_size), "--save-logits", str(saved)], threads=1)
        logits[f"1 process, batch size {batch_size}"] = np.load(saved, allow_pickle=False).astype(np.float64)
    for processes in (2, 3):
        results[f"{processes} processes, batch size 64"], _ = score(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes), *args,
             "--batch-size", "64"], threads=1)
    reference = results["1 process, batch size 64"]
    lines = [f"## {count} images, {splits} splits", "",
             "| run | mean | relative difference of the mean | largest relative difference of a split score | "
             "largest logit difference |",
             "| --- | --- | --- | --- | --- |"]
    for name, result in results.items():
        mean_gap = abs(result["mean"] - reference["mean"]) / reference["mean"]
        split_gap = np.max(np.abs(np.subtract(result["split_scores"], reference["split_scores"]))
                           / np.asarray(reference["split_scores"]))
        logit_gap = (f"{np.max(np.abs(logits[name] - logits['1 process, batch size 64'])):.2e}" if name in logits
                     else "(not saved)")
        lines.append(f"| {name} | {result['mean']!r} | {mean_gap:.2e} | {split_gap:.2e} | {logit_gap} |")
    largest = float(np.abs(logits["1 process, batch size 64"]).max())
    return [*lines, "", f"The largest logit magnitude is {largest:.1f}.", ""]


def resize_gap() -> float:
    """The largest difference, in network input units, between the channels-last resize of small
    images and the per-plane formula ``normalize(tf1_resize_bilinear(x))``, on random uint8 pixels."""
    import torch

    from inception_score.network.preprocess import normalize, tf1_resize_bilinear, to_network_input

    worst = 0.0
    for size in (28, 32, 64, 100, 127):
        pixels = torch.randint(0, 256, (3, size, size + 3, 3), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(size)).permute(0, 3, 1, 2)
        for images in (pixels, pixels.contiguous()):
            got, plain = to_network_input(images), normalize(tf1_resize_bilinear(images.float()))
            worst = max(worst, float((got.double() - plain.double()).abs().max()))
    return worst


@click.command()
@click.option("--cifar10-partial", "cifar", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--images", "counts", default="37,64", show_default=True, help="image counts, comma-separated")
@click.option("--splits", type=int, default=4, show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--output", default="batch-composition-rounding.md", show_default=True,
              help="file name under benchmarks/results")
def main(cifar: str, counts: str, splits: int, weights: str | None, output: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if weights is None:
            from inception_score.network.dev_weights import write_genuine_conv_weights

            weights = str(write_genuine_conv_weights(Path(folder) / "dev-weights.pth"))
        tables = [line for count in counts.split(",") for line in
                  measure(Path(folder), Path(cifar), int(count), splits, weights)]
    lines = [
        "# Batch composition and float32 rounding, CPU",
        "",
        "Development weights (genuine convolutions, seeded random fc): the scores are NOT Inception Scores.",
        "",
        provenance_markdown(),
        f"- torch {cpu_capability()}",
        *[f"- {name}={os.environ[name]} (kernels restricted for this run)" for name in KERNEL_VARIABLES
          if name in os.environ],
        "- images: genuine CIFAR-10 training images (32x32), one thread per process",
        "",
        "Differences are against one process with batch size 64. On CPU the network runs 8 images at a time "
        "(and its stem 2 at a time); with 2 and 3 processes each process scores its contiguous share of the "
        "images, so those groups of 8 hold other images than in one process whenever the shares are not "
        "multiples of 8.",
        "",
        *tables,
        f"Resize: the channels-last resize of small images (28-127 pixels, both input layouts) differs from the "
        f"per-plane formula by at most {resize_gap():.2e} in network input units (values in [-1, 1]).",
    ]
    click.echo(write_result(output, lines))


if __name__ == "__main__":
    main()
