"""Peak memory of refusing a PNG whose iTXt chunk holds 200 MB of text.

    python benchmarks/memory_png_chunk.py --folder /tmp/png-chunk   # writes its section of benchmarks/results/memory.md

The PNG is a valid 4x4 image with one 200 MiB uncompressed iTXt chunk before its pixels, written in
1 MiB pieces (this script never holds the chunk). It lies in a folder beside one ordinary 32x32 PNG.
Two fresh processes under ``/usr/bin/time -v`` (its "Maximum resident set size"), with the development
weights (genuine 2015 convolutions, seeded random fc):

- ``inception-score FOLDER --skip-invalid``: the PNG is refused while the images are checked, the other
  one scored (status 0);
- ``inception-score FOLDER``: the PNG is refused when scoring reaches it, the network loaded (status 2).

The files are deleted at the end.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import click
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_section, provenance_markdown  # noqa: E402
from memory_npz import peak_rss_mb  # noqa: E402

TEXT_BYTES = 200 * 2**20
PIECE = 2**20


def write_chunk(handle, kind: bytes, data: bytes) -> None:
    handle.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))


def write_png_with_big_itxt(path: Path) -> int:
    """A 4x4 RGB PNG with an iTXt chunk of ``TEXT_BYTES`` bytes of text; returns the chunk's length."""
    prefix = b"comment\x00\x00\x00\x00\x00"  # keyword, separator, not compressed, method, no language, no keyword
    length = len(prefix) + TEXT_BYTES
    rows = b"".join(b"\x00" + bytes(range(12)) for _ in range(4))  # filter 0, then 4 RGB pixels a row
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        write_chunk(handle, b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
        handle.write(struct.pack(">I", length) + b"iTXt" + prefix)
        crc = zlib.crc32(b"iTXt" + prefix)
        piece = b"x" * PIECE
        for _ in range(TEXT_BYTES // PIECE):
            handle.write(piece)
            crc = zlib.crc32(piece, crc)
        handle.write(struct.pack(">I", crc))
        write_chunk(handle, b"IDAT", zlib.compress(rows))
        write_chunk(handle, b"IEND", b"")
    return length


@click.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("/tmp/png-chunk"))
def main(folder: Path) -> None:
    from inception_score.network.dev_weights import write_genuine_conv_weights

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    weights = write_genuine_conv_weights(folder / "dev-weights.pth")
    big = images / "big-itxt.png"
    try:
        length = write_png_with_big_itxt(big)
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(images / "ok.png")
        common = ["--splits", "1", "--device", "cpu", "--quiet", "--weights", str(weights), "--allow-unverified-weights"]
        rows = []
        for extra, status in ((["--skip-invalid"], 0), ([], 2)):
            mb, seconds, said = peak_rss_mb(["inception-score", str(images), *extra, *common], status)
            run = " ".join(["inception-score FOLDER", *extra])
            rows.append(f"| `{run}` | {status} | {said} | {mb:,.0f} | {seconds:.0f} |")
        size = big.stat().st_size / 1e6
    finally:
        for path in (big, images / "ok.png", weights):
            path.unlink(missing_ok=True)
    lines = [
        "",
        "## A PNG with a 200 MB text chunk",
        "",
        f"A valid 4x4 PNG ({size:,.0f} MB) whose iTXt chunk holds {length:,} bytes of text, beside one 32x32 PNG. "
        "The reader checks each chunk's length from its header and refuses a chunk other than pixel data over "
        "16 MiB before the file is read. Peak RSS from `/usr/bin/time -v`, one fresh process per row "
        "(development weights).",
        "",
        "| run | status | last line | peak RSS (MB) | seconds |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        provenance_markdown(),
    ]
    print(write_section("memory.md", lines))


if __name__ == "__main__":
    main()
