"""Peak memory of reading large ``.npz`` sample files: stored (``np.savez``) and deflated
(``np.savez_compressed``), each about 1.5 GB of uint8 images uncompressed.

    python benchmarks/memory_npz.py --folder /tmp/npz-memory   # writes its section of benchmarks/results/memory.md
    python benchmarks/memory_npz.py --folder /tmp/npz-memory --full   # the stored file scored in full

For each file, two fresh processes under ``/usr/bin/time -v`` (its "Maximum resident set size"):

- the command, ``inception-score FILE --limit 20`` with the development weights (genuine 2015
  convolutions, seeded random fc): the network, the reader, 20 images scored;
- the read path over every image: the same input pipeline the scorer uses (``image_stream`` on the
  path, batches of 64) with each batch resized to the network's 299x299 input (``to_network_input``),
  but no network: the memory the file can cost is spent by the reader, which this pass runs over the
  whole file in minutes.

With ``--full``, one process scores every image of the stored file instead (network included; about
26 images a second on a 2-core Intel Xeon for these 256x256 images).

The files hold random uint8 pixels (deflate cannot shrink them: the compressed file is as large)
and are deleted at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, time_v, write_section  # noqa: E402

SHAPE = (7_630, 256, 256, 3)  # 1.50 GB of uint8
READ_ALL = """
import sys, time
from inception_score.readers.inputs import image_stream
from inception_score.network.preprocess import to_network_input
begin, count = time.perf_counter(), 0
for batch in image_stream(sys.argv[1], batch_size=64).batches:
    to_network_input(batch)
    count += len(batch)
print(f"read {count} images in {time.perf_counter() - begin:.0f} s")
"""


def peak_rss_mb(command: list[str], status: int = 0) -> tuple[float, float, str]:
    """Peak RSS (MB) and seconds of ``command`` under ``/usr/bin/time -v``, and the last line it printed
    (its stdout; its first stderr line when ``status``, the exit status it must end with, is not 0)."""
    ended, mb, seconds, stdout, stderr = time_v(command)
    if ended != status:
        raise SystemExit(f"{' '.join(command)} ended with status {ended}, not {status}:\n{stderr[-3000:]}")
    said = stdout if status == 0 else stderr
    return mb, seconds, said.strip().splitlines()[-1 if status == 0 else 0]


def full_score(folder: Path, weights: Path, images: np.ndarray, labels: np.ndarray) -> list[str]:
    """The section of the stored file scored in full, every image through the network."""
    path = folder / "stored.npz"
    np.savez(path, images, labels)
    del images
    try:
        command = ["inception-score", str(path), "--device", "cpu", "--quiet", "--weights", str(weights),
                   "--allow-unverified-weights"]
        mb, seconds, said = peak_rss_mb(command)
        size = path.stat().st_size / 1e9
    finally:
        path.unlink(missing_ok=True)
    return [
        "", "## A large `.npz` scored in full", "",
        f"The same {SHAPE[0]:,} random images as above, written with `np.savez` ({size:.2f} GB), every image "
        "scored (development weights: not an Inception Score). Peak RSS from `/usr/bin/time -v`.", "",
        "| file | run | peak RSS (MB) | seconds |", "| --- | --- | --- | --- |",
        f"| `np.savez` ({size:.2f} GB) | `inception-score FILE` (all {SHAPE[0]:,} images: {said}) | {mb:,.0f} | {seconds:.0f} |",
        "", provenance_markdown(),
    ]


@click.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("/tmp/npz-memory"))
@click.option("--full", is_flag=True, help="score every image of the stored file instead (network included)")
def main(folder: Path, full: bool) -> None:
    from inception_score.network.dev_weights import write_genuine_conv_weights

    folder.mkdir(parents=True, exist_ok=True)
    weights = write_genuine_conv_weights(folder / "dev-weights.pth")
    images = np.random.default_rng(0).integers(0, 256, SHAPE, dtype=np.uint8)
    labels = np.random.default_rng(1).integers(0, 1000, SHAPE[0])
    if full:
        try:
            section = full_score(folder, weights, images, labels)
        finally:
            weights.unlink(missing_ok=True)
        print(write_section("memory.md", section))
        return
    files = {"np.savez": folder / "stored.npz", "np.savez_compressed": folder / "deflated.npz"}
    np.savez(files["np.savez"], images, labels)
    np.savez_compressed(files["np.savez_compressed"], images, labels)
    del images
    rows = []
    try:
        for writer, path in files.items():
            size = path.stat().st_size / 1e9
            limited = ["inception-score", str(path), "--limit", "20", "--splits", "1", "--device", "cpu", "--quiet",
                       "--weights", str(weights), "--allow-unverified-weights"]
            mb, seconds, _ = peak_rss_mb(limited)
            rows.append(f"| `{writer}` ({size:.2f} GB) | `inception-score FILE --limit 20` | {mb:,.0f} | {seconds:.0f} |")
            mb, seconds, said = peak_rss_mb([sys.executable, "-c", READ_ALL, str(path)])
            rows.append(f"| `{writer}` ({size:.2f} GB) | read path over all {SHAPE[0]:,} images ({said}) | "
                        f"{mb:,.0f} | {seconds:.0f} |")
    finally:
        for path in (*files.values(), weights):
            path.unlink(missing_ok=True)
    lines = [
        "",
        "## Large `.npz` sample files",
        "",
        f"{SHAPE[0]:,} random uint8 images of 256x256x3 (1.50 GB uncompressed) with their labels, as guided-diffusion "
        "writes them (`arr_0`, `arr_1`), once with `np.savez` (stored) and once with `np.savez_compressed` "
        "(deflated; random pixels do not shrink). Peak RSS from `/usr/bin/time -v`, one fresh process per row. "
        "\"read path over all images\" is not a full score: it runs the scorer's input pipeline (`image_stream` on the "
        "path, batches of 64, each resized to 299x299 by `to_network_input`) over every image without the network: "
        "the memory a file can cost is spent by the reader, which this pass runs over the whole file "
        "(`--full` scores the stored file in full, network included).",
        "",
        "| file | run | peak RSS (MB) | seconds |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        provenance_markdown(),
    ]
    print(write_section("memory.md", lines))


if __name__ == "__main__":
    main()
