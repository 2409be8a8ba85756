"""The ``inception-score`` command: score folders, arrays or archives of images.

    inception-score samples/ --splits 10
    inception-score samples.npz --json > score.json
    inception-score samples.tar.gz --per-class classes.png

Everything that can be checked before the network runs is checked first (device, inputs, image
count against splits, output paths, matplotlib), so a long run does not fail at its end. Errors
print one line naming the file or value and what to do, and exit with status 2 (``--debug`` shows
the traceback instead). Ctrl-C exits with status 130.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import torch
from torch.utils.data import Dataset

from . import __version__
from .errors import InceptionScoreError, InputError
from .files import ITEM_RANGE, open_paths, without_invalid
from .inputs import NAMED_RANGES, InputRange
from .metric import check_split_count
from .scorer import TORCH_FIDELITY_SEED, InceptionScorer, ISResult, inception_score, resolve_device

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
_WARNINGS_SHOWN = 10  # skipped files listed on stderr; the JSON lists them all


@dataclass(frozen=True)
class RunOptions:
    """One run of the command, as given on the command line."""

    paths: tuple[Path, ...]
    splits: int = 10
    batch_size: int = 64
    device: str = "auto"
    num_workers: int = 0
    weights: Path | None = None  # None: $INCEPTION_SCORE_WEIGHTS, else the cached download
    allow_unverified: bool = False
    limit: int | None = None
    shuffle: bool = False
    seed: int = TORCH_FIDELITY_SEED
    input_range: InputRange | None = None
    skip_invalid: bool = False
    precision: str = "exact"
    per_class: Path | None = None
    labels: Path | None = None
    as_json: bool = False
    output: Path | None = None
    quiet: bool = False


@dataclass(frozen=True)
class Report:
    """What a run produced: the score, what was scored, and what was skipped."""

    result: ISResult
    description: str
    device: str
    skipped: tuple[str, ...]
    options: RunOptions

    def human_line(self) -> str:
        result = self.result
        if result.weights_verified:
            weights = "2015-12-05 weights verified"
        else:
            weights = f"UNVERIFIED weights sha256 {result.weights_sha256[:12]}…, not comparable to published scores"
        skipped = f", {len(self.skipped)} invalid skipped" if self.skipped else ""
        return (
            f"Inception Score: {result.mean:.2f} ± {result.std:.2f}  ({result.num_images} images{skipped}, "
            f"{result.splits} splits, {weights}, {_rate(result.images_per_second)} img/s on {self.device})"
        )

    def to_json(self) -> dict[str, Any]:
        result, options = self.result, self.options
        return {
            "mean": result.mean,
            "std": result.std,
            "split_scores": list(result.split_scores),
            "num_images": result.num_images,
            "splits": result.splits,
            "input": self.description,
            "shuffle": {"enabled": options.shuffle, "seed": options.seed if options.shuffle else None},
            "limit": options.limit,
            "weights": {"path": result.weights_path, "sha256": result.weights_sha256,
                        "verified": result.weights_verified},
            "device": self.device,
            "dtype": result.dtype,
            "precision": options.precision,
            "elapsed_s": result.elapsed_s,
            "images_per_second": result.images_per_second,
            "version": __version__,
            "skipped_invalid": {"count": len(self.skipped), "files": list(self.skipped)},
        }


def _rate(images_per_second: float) -> str:
    """812 -> "812", 5.5812 -> "5.58": three significant digits, no exponent."""
    return f"{images_per_second:.0f}" if images_per_second >= 100 else f"{images_per_second:.3g}"


def _device_name(device: torch.device) -> str:
    """``cuda`` -> ``cuda:0`` (the GPU actually used); others unchanged."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def _check_writable(path: Path | None, option: str) -> None:
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{option} {path}: the folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{option} {path}: the folder {folder} is not writable; choose another path")


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--per-class needs matplotlib: pip install 'inception-score[plot]'") from None


def _progress(options: RunOptions) -> bool:
    """Progress bars on stderr only when a person watches it."""
    return not options.quiet and sys.stderr.isatty()


def _warn(message: str, options: RunOptions) -> None:
    if not options.quiet:
        click.echo(f"warning: {message}", err=True)


def _inputs(options: RunOptions) -> tuple[Dataset, str, tuple[str, ...]]:
    """The images to score, their description, and the files skipped as invalid."""
    dataset = open_paths(options.paths, input_range=options.input_range)
    description = dataset.description
    skipped: list[str] = []
    if options.skip_invalid:
        dataset, skipped = without_invalid(dataset, options.num_workers, _progress(options))
        for message in skipped[:_WARNINGS_SHOWN]:
            click.echo(f"warning: skipped {message}", err=True)
        if len(skipped) > _WARNINGS_SHOWN:
            click.echo(f"warning: ... and {len(skipped) - _WARNINGS_SHOWN} more skipped (listed by --json)", err=True)
    return dataset, description, tuple(skipped)


def run(options: RunOptions) -> Report:
    """Check everything cheap first, then score, then write the outputs asked for."""
    device = resolve_device(options.device)
    _check_writable(options.output, "--output")
    _check_writable(options.per_class, "--per-class")
    if options.per_class is not None:
        _check_matplotlib()
    dataset, description, skipped = _inputs(options)
    count = len(dataset) if options.limit is None else min(len(dataset), options.limit)
    check_split_count(count, options.splits)

    progress = _progress(options)
    scorer = InceptionScorer(options.weights, device=device, allow_unverified=options.allow_unverified,
                             precision=options.precision, progress=progress)  # type: ignore[arg-type]
    result = inception_score(
        dataset, splits=options.splits, batch_size=options.batch_size, num_workers=options.num_workers,
        limit=options.limit, shuffle=options.shuffle, seed=options.seed, scorer=scorer, progress=progress,
        input_range=ITEM_RANGE,  # the readers already mapped --input-range to [0, 255]; uint8 items pass as they are
        return_marginal=options.per_class is not None,
    )
    report = Report(result, description, _device_name(scorer.device), skipped, options)
    if options.output is not None:
        options.output.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if options.per_class is not None:
        _write_per_class(report, options)
    return report


def _write_per_class(report: Report, options: RunOptions) -> None:
    from .labels import class_names
    from .plot import plot_marginal

    names = class_names(options.labels, report.result.weights_path)
    if not names:
        where = f"{options.labels}" if options.labels else "--labels, $INCEPTION_SCORE_LABELS or beside the weights"
        _warn(f"no class names found in {where} (inception-2015-12-05.tgz or a folder with its label files); "
              f"classes are shown by index", options)
    title = f"{report.description}: IS {report.result.mean:.2f} ± {report.result.std:.2f}"
    if not report.result.weights_verified:
        title += " (UNVERIFIED weights)"
    assert report.result.marginal is not None
    plot_marginal(report.result.marginal, options.per_class, names, title=title)  # type: ignore[arg-type]
    if not options.quiet:
        click.echo(f"wrote {options.per_class}", err=True)


def _one_line(error: BaseException) -> str:
    """The message of an error; for one re-raised from a DataLoader worker, its original last line."""
    text = str(error)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text.splitlines()[0] if text else type(error).__name__


def _optional_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--splits", type=click.IntRange(min=1), default=10, show_default=True,
              help="contiguous splits (the paper: 10)")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--num-workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="processes decoding images in parallel")
@click.option("--weights", type=click.Path(), default=None, envvar="INCEPTION_SCORE_WEIGHTS", show_envvar=True,
              help="weights file (.pth, .pb or .tgz); default: the cached download")
@click.option("--allow-unverified-weights", is_flag=True, help="accept a weights file of unknown sha256")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="score only the first N images")
@click.option("--shuffle", is_flag=True, help="shuffle before splitting, as torch-fidelity does")
@click.option("--seed", type=int, default=TORCH_FIDELITY_SEED, show_default=True, help="seed of --shuffle")
@click.option("--input-range", type=click.Choice(sorted(NAMED_RANGES)), default=None,
              help="value range of float arrays")
@click.option("--skip-invalid", is_flag=True, help="skip images that fail to decode (listed in the JSON)")
@click.option("--precision", type=click.Choice(["exact", "fast"]), default="exact", show_default=True,
              help="fast: TF32/bfloat16 on CUDA")
@click.option("--per-class", type=click.Path(dir_okay=False), default=None,
              help="write a PNG of p(y), the class distribution")
@click.option("--labels", type=click.Path(), default=None, envvar="INCEPTION_SCORE_LABELS", show_envvar=True,
              help="inception-2015-12-05.tgz (or a folder with its label files), for class names")
@click.option("--json", "as_json", is_flag=True, help="print JSON on stdout instead of the line")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="also write the JSON to this file")
@click.option("--quiet", is_flag=True, help="no progress bar or notes")
@click.option("--debug", is_flag=True, help="show tracebacks")
@click.version_option(__version__, prog_name="inception-score")
def main(paths: tuple[str, ...], splits: int, batch_size: int, device: str, num_workers: int, weights: str | None,
         allow_unverified_weights: bool, limit: int | None, shuffle: bool, seed: int, input_range: str | None,
         skip_invalid: bool, precision: str, per_class: str | None, labels: str | None, as_json: bool,
         output: str | None, quiet: bool, debug: bool) -> None:
    """Inception Score of the images in PATHS (folders, .npy/.npz, .zip/.tar/.tar.gz), as in Salimans et al. 2016.

    Several PATHS are scored as one set, in the order given.
    """
    options = RunOptions(
        paths=tuple(Path(p) for p in paths), splits=splits, batch_size=batch_size, device=device,
        num_workers=num_workers, weights=_optional_path(weights), allow_unverified=allow_unverified_weights,
        limit=limit, shuffle=shuffle, seed=seed, input_range=None if input_range is None else NAMED_RANGES[input_range],
        skip_invalid=skip_invalid, precision=precision, per_class=_optional_path(per_class),
        labels=_optional_path(labels), as_json=as_json, output=_optional_path(output), quiet=quiet,
    )
    try:
        report = run(options)
    except KeyboardInterrupt:
        click.echo("interrupted: no score was computed", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # one line for the user; the traceback with --debug
        if debug:
            raise
        if not isinstance(error, InceptionScoreError) and "Original Traceback" not in str(error):
            click.echo(f"Error: unexpected {type(error).__name__}: {error} (run again with --debug)", err=True)
            sys.exit(1)
        click.echo(f"Error: {_one_line(error)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.human_line())
