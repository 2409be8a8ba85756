"""Score the 50,000 CIFAR-10 training images and print the result beside the paper's 11.24 ± 0.12.

    python benchmarks/verify_paper.py --weights pt_inception-2015-12-05-6726825d.pth --cifar10 cifar-10-batches-py

Needs the real weights (any genuine file: see the README) and the standard CIFAR-10 python batches
(``data_batch_1`` .. ``data_batch_5``). Writes ``benchmarks/results/verify-paper.md``.
About 50,000 x 11.4 GFLOP: minutes on a GPU, a few hours on a laptop CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS_DIR, provenance_markdown  # noqa: E402

PAPER_MEAN, PAPER_STD = 11.24, 0.12  # Table 3, "Real data"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def read_cifar10_training_images(folder: Path) -> np.ndarray:
    """``(N, 32, 32, 3)`` uint8 from the python batches, in file order (batch 1 first), each file checked
    against its official md5 before it is unpickled."""
    from reference_gan.data import DataError, read_cifar10_batches

    try:
        parts = read_cifar10_batches(folder, TRAIN_BATCHES)
    except DataError as error:
        raise click.ClickException(f"{error} (--cifar10 must be the cifar-10-batches-py folder)") from None
    return np.concatenate([parts[name][0].transpose(0, 2, 3, 1) for name in TRAIN_BATCHES])


@click.command()
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None, help="genuine weights file")
@click.option("--cifar10", "cifar10", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", default=100, show_default=True)
@click.option("--limit", type=int, default=None, help="score only the first N images (a quick look)")
def main(weights: str | None, cifar10: str, device: str, batch_size: int, limit: int | None) -> None:
    from inception_score import inception_score

    images = read_cifar10_training_images(Path(cifar10))
    if limit is not None:
        images = images[:limit]
    result = inception_score(images, splits=10, batch_size=batch_size, device=device, weights=weights, progress=True)
    verdict = abs(result.mean - PAPER_MEAN) <= PAPER_STD
    lines = [
        "# CIFAR-10 training set, Inception Score",
        "",
        "| | mean | std | images | weights verified |",
        "| --- | --- | --- | --- | --- |",
        f"| paper (Table 3, real data) | {PAPER_MEAN:.2f} | {PAPER_STD:.2f} | 50000 | yes |",
        f"| this package | {result.mean:.4f} | {result.std:.4f} | {result.num_images} | {result.weights_verified} |",
        "",
        f"Within the paper's one standard deviation: {'yes' if verdict else 'NO'}. "
        f"Elapsed {result.elapsed_s:.0f} s on {result.device} ({result.images_per_second:.1f} img/s).",
        "",
        provenance_markdown(result.device),
    ]
    text = "\n".join(lines)
    click.echo(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "verify-paper.md").write_text(text)


if __name__ == "__main__":
    main()
