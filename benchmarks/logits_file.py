"""What the fingerprint of a ``--save-logits`` file costs next to the network, and a real full disk.

    python benchmarks/logits_file.py --folder /tmp/logits-file   # writes benchmarks/results/logits-file.md

1. The fingerprint: microseconds per image of ``file_identity`` (path, size, mtime, CRC-32 of the first
   and last 16 KiB) over a folder of 2,000 CIFAR-10 PNGs, and of ``pixel_digest`` (CRC-32 of the decoded
   pixels) on 32x32 and 256x256 uint8 images, against the network's time per image on this machine
   (the development weights, batches of 8, after a warm-up batch).
2. A full disk, for real: a 256 KiB tmpfs mounted in a user namespace (``unshare -rm``, no root
   needed where user namespaces are allowed) holds the logits file. The command with
   ``--save-logits`` on 100 CIFAR-10 images fills it and must end with status 2 and one line; the
   tmpfs is then grown (``mount -o remount``) and the same command must resume and give the score of
   a run without ``--save-logits``.

The weights are the development ones (genuine 2015 convolutions, seeded random fc): the numbers are
not Inception Scores.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402

CIFAR = "data/cifar10-partial/cifar10_prefix_partial.npz"


def cifar_images(shared: Path, count: int) -> np.ndarray:
    """The first ``count`` images of ``data_batch_1``, ``data_batch_2``, ... (the prefixes the shared
    file holds): ``(count, 32, 32, 3)`` uint8."""
    with np.load(shared / CIFAR) as data:
        rows = np.concatenate([data[f"data_batch_{batch}_data_prefix"] for batch in range(1, 6)])[:count]
    return rows.reshape(count, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def per_image_us(function, items, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - begin)
    return best / len(items) * 1e6


def network_ms_per_image(weights: Path) -> float:
    from inception_score.engine.runner import InceptionScorer

    scorer = InceptionScorer(weights, device="cpu", allow_unverified=True, progress=False)
    batch = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    scorer.logits(batch)  # warm-up
    begin = time.perf_counter()
    for _ in range(3):
        scorer.logits(batch)
    return (time.perf_counter() - begin) / 24 * 1e3


def full_disk(folder: Path, images: Path, weights: Path) -> tuple[str, list[str], float, float]:
    """The script run in the user namespace, its output (stdout and stderr together), and the means of
    the resumed run and of a direct run without --save-logits."""
    disk = folder / "disk"
    disk.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "inception_score", str(images), "--splits", "2", "--batch-size", "8",
               "--weights", str(weights), "--allow-unverified-weights", "--device", "cpu", "--quiet"]
    saving = shlex.join([*command, "--save-logits", f"{disk}/l.npy"])
    script = (f"mount -t tmpfs -o size=256k tmpfs {disk} && {saving} 2>&1; echo \"status $?\"; "
              f"grep '\"done\"' {disk}/l.npy.json; mount -o remount,size=2m {disk} && "
              f"{saving} --output {folder}/resumed.json 2>&1; echo \"status $?\"")
    run = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True)
    subprocess.run([*command, "--output", str(folder / "direct.json")], capture_output=True, check=True)
    means = [json.loads((folder / f"{name}.json").read_text())["mean"] for name in ("resumed", "direct")]
    return script, (run.stdout + run.stderr).strip().splitlines(), means[0], means[1]


@click.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--shared", type=click.Path(file_okay=False, path_type=Path), default="/work/shared",
              envvar="INCEPTION_SCORE_SHARED")
def main(folder: Path, shared: Path) -> None:
    from inception_score.network.dev_weights import write_genuine_conv_weights
    from inception_score.logits.fingerprint import file_identity, pixel_digest

    folder.mkdir(parents=True, exist_ok=True)
    weights = write_genuine_conv_weights(folder / "dev.pth")
    pixels = cifar_images(shared, 2000)
    pngs = folder / "pngs"
    pngs.mkdir(exist_ok=True)
    for index, image in enumerate(pixels):
        Image.fromarray(image).save(pngs / f"{index:04d}.png")
    paths = sorted(pngs.iterdir())
    size = sum(path.stat().st_size for path in paths) / len(paths)
    files_us = per_image_us(file_identity, paths)
    small = [torch.from_numpy(image.transpose(2, 0, 1).copy()) for image in pixels[:500]]
    large = [torch.randint(0, 256, (3, 256, 256), dtype=torch.uint8) for _ in range(100)]
    small_us, large_us = per_image_us(pixel_digest, small), per_image_us(pixel_digest, large)
    network_ms = network_ms_per_image(weights)

    images = folder / "s.npy"
    np.save(images, pixels[:100])
    script, lines, resumed, direct = full_disk(folder, images, weights)

    text = write_result("logits-file.md", [
        "# The fingerprint of a logits file, and a full disk",
        "",
        "Per image, best of 3 passes (the files in the page cache, as they are right after the reader decoded "
        "them); the network: the development weights on 32x32 inputs resized to 299x299, batches of 8, this machine "
        "(shared with other work while measured: its time per image varies).",
        "",
        "| what | per image |",
        "| --- | --- |",
        f"| `file_identity` of a CIFAR-10 PNG ({size:,.0f} bytes on average; 2,000 files) | {files_us:.1f} µs |",
        f"| `pixel_digest` of a 32x32 uint8 image | {small_us:.1f} µs |",
        f"| `pixel_digest` of a 256x256 uint8 image | {large_us:.1f} µs |",
        f"| the network (exact, CPU) | {network_ms:.1f} ms |",
        "",
        f"On this CPU the digest of a file is {files_us / 1e3 / network_ms * 100:.2g}% of the network's time per "
        f"image, that of a 256x256 image {large_us / 1e3 / network_ms * 100:.2g}%; the command computes the digests "
        "in a thread beside the network.",
        "",
        "## A full disk",
        "",
        "100 CIFAR-10 images, `--save-logits` on a 256 KiB tmpfs, then the tmpfs grown to 2 MiB and the same "
        "command again (stdout and stderr together):",
        "",
        "```text",
        f"$ unshare -rm sh -c {shlex.quote(script)}",
        *lines,
        "```",
        "",
        f"Mean of the resumed run {resumed!r}, of a run without `--save-logits` {direct!r} (relative difference "
        f"{abs(resumed - direct) / direct:.1e}: the same float32 logits, their float64 sums taken in another order).",
        "",
        provenance_markdown(),
    ])
    print(text)


if __name__ == "__main__":
    main()
