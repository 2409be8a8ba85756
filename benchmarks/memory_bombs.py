"""Peak memory on three hostile archives: a .tar.gz of 2 million empty members, and .tgz files
given to ``--weights`` and ``--labels`` whose one member inflates to 2 GiB.

    python benchmarks/memory_bombs.py --folder /tmp/bombs --before /tmp/before
    # writes its section of benchmarks/results/memory.md

``--before`` names a copy of the package before the fix (``git archive 4b52137 | tar -x -C /tmp/before``),
measured in the same run; without it only this tree is. Each command runs in a fresh process as
``python -m inception_score`` (``PYTHONPATH`` picks the tree) under ``/usr/bin/time -v``, with the
development weights (genuine 2015 convolutions, seeded random fc) on 20 random 32x32 images where it
scores. The archives are built in ``--folder`` at run time, written as a stream (never held in memory),
and deleted at the end.
"""

from __future__ import annotations

import gzip
import os
import sys
import tarfile
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, time_v, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 2_000_000
BOMB_BYTES = 2 * 2**30
PIECE = 2**20
GRAPH = "classify_image_graph_def.pb"
LABEL_MAP = "imagenet_2012_challenge_label_map_proto.pbtxt"
SYNSET_NAMES = "imagenet_synset_to_human_label_map.txt"


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def write_empty_members(path: Path, count: int) -> None:
    """A .tar.gz of ``count`` empty members named as ImageNet's (32 characters), stored in name order."""
    template = bytearray(_header("x", 0))
    template[0] = 0
    template[148:156] = b" " * 8
    base = sum(template)
    with gzip.open(path, "wb", compresslevel=9) as stream:
        for first in range(0, count, 10_000):
            block = []
            for i in range(first, min(first + 10_000, count)):
                name = f"n{i // 1300:08d}/n{i // 1300:08d}_{i:07d}.JPEG".encode()
                block.append(name.ljust(100, b"\0") + template[100:148] + b"%06o\0 " % (base + sum(name))
                             + template[156:])
            stream.write(b"".join(block))
        stream.write(bytes(1024))


def write_zeros_tgz(path: Path, members: list[tuple[str, int]]) -> None:
    """A .tgz of members of zeros (the first of each size given), streamed in 1 MiB pieces."""
    with gzip.open(path, "wb", compresslevel=9) as stream:
        for name, size in members:
            stream.write(_header(f"inception-2015-12-05/{name}", size))
            for start in range(0, size, PIECE):
                stream.write(bytes(min(PIECE, size - start)))
            stream.write(bytes(-size % 512))
        stream.write(bytes(1024))


def measure(tree: Path, arguments: list[str]) -> tuple[int, float, float, str]:
    """Status, peak RSS (MB), seconds and last line of ``python -m inception_score ARGUMENTS`` on ``tree``
    (run in ``tree``: ``-m`` puts the working folder first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    status, mb, seconds, stdout, stderr = time_v([sys.executable, "-m", "inception_score", *arguments], env, tree)
    lines = (stdout if status == 0 else stderr).strip().splitlines()
    return status, mb, seconds, lines[-1] if lines else ""


@click.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("/tmp/bombs"))
@click.option("--before", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="a copy of the package before the fix, measured in the same run")
def main(folder: Path, before: Path | None) -> None:
    from inception_score.network.dev_weights import write_genuine_conv_weights

    folder.mkdir(parents=True, exist_ok=True)
    files = {"weights": folder / "dev-weights.pth", "images": folder / "c20.npy", "many": folder / "many.tar.gz",
             "weights bomb": folder / "inception-2015-12-05.tgz", "labels bomb": folder / "labels-bomb.tgz",
             "plot": folder / "classes.png"}
    try:
        write_genuine_conv_weights(files["weights"])
        np.save(files["images"], np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8))
        write_empty_members(files["many"], MEMBERS)
        write_zeros_tgz(files["weights bomb"], [(GRAPH, BOMB_BYTES)])
        write_zeros_tgz(files["labels bomb"], [(LABEL_MAP, BOMB_BYTES), (SYNSET_NAMES, 1000)])
        w = ["--weights", str(files["weights"]), "--allow-unverified-weights", "--device", "cpu", "--splits", "2"]
        cases = [
            (f"{MEMBERS:,} empty members in a .tar.gz ({files['many'].stat().st_size / 1e6:.1f} MB), at most 950 MB",
             "inception-score many.tar.gz $W", [str(files["many"]), *w]),
            (f"`--weights` .tgz whose graph inflates to 2 GiB ({files['weights bomb'].stat().st_size / 1e6:.1f} MB), "
             "at most 1,000 MB", "inception-score c20.npy --weights bomb.tgz --allow-unverified-weights --device cpu "
             "--splits 2", [str(files["images"]), *w[:1], str(files["weights bomb"]), *w[2:]]),
            (f"`--labels` .tgz whose label map inflates to 2 GiB ({files['labels bomb'].stat().st_size / 1e6:.1f} MB), "
             "at most 1,000 MB", "inception-score c20.npy $W --labels bomb.tgz --per-class classes.png",
             [str(files["images"]), *w, "--labels", str(files["labels bomb"]), "--per-class", str(files["plot"])]),
        ]
        trees = ([("before", before)] if before is not None else []) + [("after", ROOT)]
        rows = []
        for case, shown, arguments in cases:
            for label, tree in trees:
                status, mb, seconds, said = measure(tree, arguments)
                rows.append(f"| {case} | `{shown}` | {label} | {status} | {said.replace('|', '/')[:160]} | "
                            f"{mb:,.0f} | {seconds:.0f} |")
                click.echo(rows[-1], err=True)
    finally:
        for path in files.values():
            path.unlink(missing_ok=True)
    lines = [
        "",
        "## Archive bombs: many members, and .tgz weights and labels",
        "",
        "Peak RSS from `/usr/bin/time -v`, one fresh process per row, `$W` = `--weights DEV.pth "
        "--allow-unverified-weights --device cpu --splits 2` (development weights). \"before\": the package at "
        "4b52137; \"after\": this tree. The archives are built at run time and deleted: the many-member one as "
        "ImageNet-like names (32 characters) in name order, every member empty (so the run stops at the first "
        "image, exit 2, once the archive is indexed and the network loaded); the bombs as zeros.",
        "",
        "| case and bound | command | code | status | last line | peak RSS (MB) | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        provenance_markdown(),
    ]
    click.echo(write_section("memory.md", lines))


if __name__ == "__main__":
    main()
