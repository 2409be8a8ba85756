"""One process with T threads against K torchrun processes with T/K threads each, on the same images:
wall time, the scorer's own time, the score of each, and the bytes each process sent.

    python benchmarks/distributed.py --cifar10-partial ../shared/data/cifar10-partial --images 512

Both sides run the command line (``python -m inception_score IMAGES --json``; the second under
``torchrun --standalone --nproc-per-node K``), so start-up and model loading count in the wall time
and the scorer's ``elapsed_s`` isolates the scoring. Without --weights it builds the development file
(genuine convolutions, seeded random fc): the scores are then NOT Inception Scores, only a check that
both sides computed the same thing. Writes ``benchmarks/results/distributed-cpu.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402


def cifar_images(path: Path, count: int) -> np.ndarray:
    """The first ``count`` genuine training images of the partial CIFAR-10, uint8 NHWC."""
    with np.load(path / "cifar10_prefix_partial.npz", allow_pickle=False) as archive:
        rows = np.concatenate([archive[f"data_batch_{i}_data_prefix"] for i in range(1, 6)])
    if count > len(rows):
        raise click.ClickException(f"the partial CIFAR-10 has {len(rows)} training images, {count} asked for")
    return rows[:count].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def score(command: list[str], threads: int) -> tuple[dict, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    begin = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - begin
    if done.returncode != 0:
        raise click.ClickException(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout), wall


@click.command()
@click.option("--cifar10-partial", "cifar", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--images", "count", type=int, default=512, show_default=True)
@click.option("--processes", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="threads of the one process (split among K)")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--batch-size", type=int, default=64, show_default=True)
def main(cifar: str, count: int, processes: int, threads: int, weights: str | None, batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if weights is None:
            from inception_score.network.dev_weights import write_genuine_conv_weights

            weights = str(write_genuine_conv_weights(Path(folder) / "dev-weights.pth"))
        images = Path(folder) / "images.npy"
        np.save(images, cifar_images(Path(cifar), count))
        args = ["-m", "inception_score", str(images), "--weights", weights, "--allow-unverified-weights", "--json",
                "--quiet", "--device", "cpu", "--batch-size", str(batch_size)]
        alone, alone_wall = score([sys.executable, *args], threads)
        group, group_wall = score([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                   "--nproc-per-node", str(processes), *args], max(threads // processes, 1))
    relative = abs(group["mean"] - alone["mean"]) / alone["mean"]
    verified = alone["weights"]["verified"]
    lines = [
        f"# Scoring with {processes} torchrun processes (Gloo) against one process, CPU",
        "",
        ("Inception Scores with the verified 2015 weights." if verified else
         "Development weights (genuine convolutions, seeded random fc): the scores are NOT Inception Scores."),
        "",
        provenance_markdown(),
        f"- images: {count} genuine CIFAR-10 training images (32x32), batch size {batch_size}",
        "",
        "| run | wall time (s) | scoring time (s) | img/s (scoring) | score | bytes sent per process |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| 1 process x {threads} threads | {alone_wall:.1f} | {alone['elapsed_s']:.1f} | "
        f"{alone['images_per_second']:.2f} | {alone['mean']:.6f} ± {alone['std']:.6f} | 0 |",
        f"| {processes} processes x {max(threads // processes, 1)} thread(s) | {group_wall:.1f} | {group['elapsed_s']:.1f} | "
        f"{group['images_per_second']:.2f} | {group['mean']:.6f} ± {group['std']:.6f} | {group['exchanged_bytes']:,} |",
        "",
        f"Relative difference of the two means: {relative:.2e}. Scoring time is the slowest process's; wall time "
        "includes start-up and loading the network in every process.",
    ]
    click.echo(write_result("distributed-cpu.md", lines))


if __name__ == "__main__":
    main()
