"""The ``inception-score`` command: score folders, arrays or archives of images.

    inception-score samples/ --splits 10
    inception-score samples.npz --json > score.json
    inception-score samples.tar.gz --per-class classes.png

Errors print one line naming the file or value and what to do, and exit with status 2
(``--debug`` shows the traceback instead). Ctrl-C exits with status 130.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import InceptionScoreError
from .files import open_paths, without_invalid
from .inputs import NAMED_RANGES, parse_input_range
from .scorer import TORCH_FIDELITY_SEED, InceptionScorer, ISResult, inception_score


def _one_line(error: BaseException) -> str:
    """The message of an error; for one re-raised from a DataLoader worker, its original last line."""
    text = str(error)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text.splitlines()[0] if text else type(error).__name__


def human_line(result: ISResult, device: str) -> str:
    if result.weights_verified:
        weights = "2015-12-05 weights verified"
    else:
        weights = f"UNVERIFIED weights sha256 {result.weights_sha256[:12]}…, not comparable to published scores"
    return (
        f"Inception Score: {result.mean:.2f} ± {result.std:.2f}  ({result.num_images} images, {result.splits} splits, "
        f"{weights}, {result.images_per_second:.0f} img/s on {device})"
    )


def result_json(result: ISResult, description: str, skipped: list[str]) -> dict:
    return {
        "mean": result.mean,
        "std": result.std,
        "split_scores": list(result.split_scores),
        "num_images": result.num_images,
        "splits": result.splits,
        "input": description,
        "weights": {"path": result.weights_path, "sha256": result.weights_sha256, "verified": result.weights_verified},
        "device": result.device,
        "dtype": result.dtype,
        "elapsed_s": result.elapsed_s,
        "images_per_second": result.images_per_second,
        "version": __version__,
        "skipped_invalid": {"count": len(skipped), "files": skipped},
    }


def _score(paths, splits, batch_size, device, num_workers, weights, allow_unverified, limit, shuffle, seed,
           input_range, skip_invalid, precision, per_class, labels, quiet, as_json, output) -> None:
    dataset = open_paths([Path(p) for p in paths], input_range=parse_input_range(input_range))
    description = dataset.description
    skipped: list[str] = []
    if skip_invalid:
        dataset, skipped = without_invalid(dataset, num_workers)
        for message in skipped:
            click.echo(f"warning: skipped {message}", err=True)
    scorer = InceptionScorer(weights, device=device, allow_unverified=allow_unverified, precision=precision,
                             progress=not quiet)
    result = inception_score(
        dataset, splits=splits, batch_size=batch_size, num_workers=num_workers, limit=limit, shuffle=shuffle,
        seed=seed, scorer=scorer, progress=not quiet and sys.stderr.isatty(), return_marginal=per_class is not None,
    )
    report = result_json(result, description, skipped)
    if output:
        Path(output).write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(human_line(result, str(scorer.device)))
    if per_class is not None:
        from .labels import class_names
        from .plot import plot_marginal

        names = class_names(labels, result.weights_path)
        plot_marginal(result.marginal, Path(per_class), names, title=f"{description}: IS {result.mean:.2f}")
        if not quiet:
            note = "" if names else " (class names: pass --labels inception-2015-12-05.tgz)"
            click.echo(f"wrote {per_class}{note}", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--splits", default=10, show_default=True, help="contiguous splits (the paper: 10)")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--num-workers", default=0, show_default=True, help="processes decoding images")
@click.option("--weights", type=click.Path(), default=None,
              help="weights file (.pth, .pb or .tgz); default $INCEPTION_SCORE_WEIGHTS, else the cached download")
@click.option("--allow-unverified-weights", is_flag=True, help="accept a weights file of unknown sha256")
@click.option("--limit", type=int, default=None, help="score only the first N images")
@click.option("--shuffle", is_flag=True, help="shuffle before splitting, as torch-fidelity does")
@click.option("--seed", default=TORCH_FIDELITY_SEED, show_default=True, help="seed of --shuffle")
@click.option("--input-range", type=click.Choice(sorted(NAMED_RANGES)), default=None,
              help="range of float arrays")
@click.option("--skip-invalid", is_flag=True, help="skip images that fail to decode (counted in the JSON)")
@click.option("--precision", type=click.Choice(["exact", "fast"]), default="exact", show_default=True)
@click.option("--per-class", type=click.Path(dir_okay=False), default=None, help="write a PNG of p(y)")
@click.option("--labels", type=click.Path(), default=None,
              help="inception-2015-12-05.tgz (or a folder with its label files) for class names")
@click.option("--json", "as_json", is_flag=True, help="print JSON on stdout")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="also write the JSON to this file")
@click.option("--quiet", is_flag=True, help="no progress bar or notes")
@click.option("--debug", is_flag=True, help="show tracebacks")
@click.version_option(__version__, prog_name="inception-score")
def main(paths, splits, batch_size, device, num_workers, weights, allow_unverified_weights, limit, shuffle, seed,
         input_range, skip_invalid, precision, per_class, labels, as_json, output, quiet, debug) -> None:
    """Inception Score of the images in PATHS (folders, .npy/.npz, .zip/.tar/.tar.gz), as in Salimans et al. 2016."""
    try:
        _score(paths, splits, batch_size, device, num_workers, weights, allow_unverified_weights, limit, shuffle,
               seed, input_range, skip_invalid, precision, per_class, labels, quiet, as_json, output)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # one line for the user; the traceback with --debug
        if debug:
            raise
        if not isinstance(error, InceptionScoreError) and "Original Traceback" not in str(error):
            click.echo(f"Error: unexpected {type(error).__name__}: {error} (run again with --debug)", err=True)
            sys.exit(1)
        click.echo(f"Error: {_one_line(error)}", err=True)
        sys.exit(2)
