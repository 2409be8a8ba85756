"""What one run of the ``inception-score`` command is and what it produced: its options
(:class:`RunOptions`), the images it reads (:func:`inputs`), its :class:`Report` (the line and the
JSON, built from the result's own serialisation), the checks made before anything is scored, and the
report of a logits file."""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import __version__

from ..score import strict_json
from ..errors import InceptionScoreError, InputError, one_line_message
from ..options import ScorerOptions
from ..protocol import KID_SUBSET_SIZE, KID_SUBSETS, PUBLISHED_SPLITS, TORCH_FIDELITY_SEED, InputRange

# torch and the network load only when scoring starts: --help and --version answer at once. The
# functions below import what they use.
if TYPE_CHECKING:
    import torch

    from torch.utils.data import Dataset

    from ..engine.distributed import Group
    from ..score.result import ISResult


EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
_WARNINGS_SHOWN = 10  # skipped files listed on stderr; the JSON lists them all


@dataclass(frozen=True)
class RunOptions:
    """One run of the command, as given on the command line."""

    paths: tuple[Path, ...]
    splits: int = PUBLISHED_SPLITS
    split_size: int | None = None  # chunks of this many images instead of `splits` parts (guided-diffusion's rule)
    batch_size: int = ScorerOptions.batch_size  # the scorer's options: ScorerOptions' defaults
    device: str = ScorerOptions.device
    num_workers: int = ScorerOptions.num_workers
    weights: Path | None = None  # None: $INCEPTION_SCORE_WEIGHTS, else the cached download
    allow_unverified: bool = ScorerOptions.allow_unverified
    limit: int | None = None
    shuffle: bool = False
    seed: int = TORCH_FIDELITY_SEED
    input_range: InputRange | None = None
    skip_invalid: bool = False
    precision: str = ScorerOptions.precision
    exact_kernel: str = ScorerOptions.exact_kernel  # how "exact" multiplies: auto, ieee or split-tf32
    per_class: Path | None = None
    labels: Path | None = None
    as_json: bool = False
    output: Path | None = None
    quiet: bool = False
    save_logits: Path | None = None  # per-image logits written here (resumes an interrupted run)
    from_logits: Path | None = None  # re-score a file written by save_logits, without the network
    # --generator: a TorchScript or ONNX file (a program, run only when named) scored without PATHS.
    generator: Path | None = None
    num_samples: int = 50_000
    z_dim: int | None = None
    num_classes: int | None = None
    z_distribution: str = "normal"
    each: bool = False  # score every path on its own, the network loaded once

    def split_rule(self) -> Any:
        """The :class:`inception_score.score.statistics.SplitRule` of ``splits`` / ``split_size``."""
        from ..score.statistics import split_rule

        return split_rule(None if self.split_size is not None else self.splits, self.split_size)

    def scorer_options(self) -> ScorerOptions:
        """The network's options this run names (:class:`~inception_score.options.ScorerOptions`)."""
        return ScorerOptions(weights=self.weights, device=self.device, precision=self.precision,  # type: ignore[arg-type]
                             exact_kernel=self.exact_kernel, allow_unverified=self.allow_unverified,  # type: ignore[arg-type]
                             batch_size=self.batch_size, num_workers=self.num_workers)
    infinity: bool = False  # IS-infinity too (inception_score.score.infinity)
    infinity_seed: int = TORCH_FIDELITY_SEED  # the order whose first n images give IS_n
    infinity_plot: Path | None = None  # PNG of IS_n against 1/n with the fitted line
    # --reference (a path, or a Reference loaded once by --each) and what is computed against it
    reference: Any = None
    metrics: str | None = None
    kid_subsets: int = KID_SUBSETS
    kid_subset_size: int = KID_SUBSET_SIZE
    save_features: Path | None = None
    save_reference: Path | None = None
    reference_cache: bool = True


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
        elif self.options.from_logits is not None and self.options.weights is None:
            weights = (f"weights sha256 {result.weights_sha256[:12]}… as the logits file claims, unchecked (--weights "
                       "FILE checks them), not comparable with published scores")
        else:
            weights = f"UNVERIFIED weights sha256 {result.weights_sha256[:12]}…, not comparable with published scores"
        skipped = f", {len(self.skipped)} invalid skipped" if self.skipped else ""
        rate = _rate_on(result.images_per_second, self.device)
        return "Inception Score: " + result.summary(2, weights=weights, images_note=skipped, after=(rate,), gap="  ")

    def to_json(self) -> dict[str, Any]:
        """The command's JSON: the result's own fields (:meth:`ISResult.to_dict`, the one serialisation of a
        result), grouped, with what only the run knows (the input, the options, the files skipped)."""
        data, options = self.result.to_dict(), self.options
        fields = ("mean", "std", "split_scores", "num_images", "splits", "split_size")
        return {
            **{name: data[name] for name in fields},
            "input": self.description,
            "label_histogram": data["label_histogram"],
            # whether the labels are sorted by class: null where there are no labels to tell
            "labels_sorted": None if data["label_histogram"] is None else data["labels_sorted"],
            "shuffle": {"enabled": options.shuffle, "seed": options.seed if options.shuffle else None},
            "order": data["order"],
            "order_check": {"ratio": data["order_ratio"], "threshold": data["order_threshold"],
                            "flagged": data["order_flagged"]},
            **{name: data[name] for name in ("comparable", "not_comparable", "processes", "exchanged_bytes")},
            "limit": options.limit,
            "weights": {"path": data["weights_path"], "sha256": data["weights_sha256"],
                        "verified": data["weights_verified"],
                        "claimed_by": None if options.from_logits is None or options.weights is not None
                        else str(options.from_logits)},
            "device": self.device,
            "dtype": data["dtype"],
            "precision": data["precision"],
            "precision_requested": options.precision,
            **{name: data[name] for name in ("precision_note", "precision_deviation", "elapsed_s", "images_per_second")},
            "version": __version__,
            "skipped_invalid": {"count": len(self.skipped), "files": list(self.skipped)},
            "generator": data["generator"],
            "infinity": None if data["is_infinity"] is None else {
                "is_infinity": data["is_infinity"], "is_n": data["is_n"], "slope": data["is_infinity_slope"],
                "residual": data["is_infinity_residual"], "seed": data["infinity_seed"]},
            "evaluation": data["evaluation"],
        }


def _rate_on(images_per_second: float, device: str) -> str:
    """812 -> "812 img/s on cpu", 5.5812 -> "5.58 img/s on cpu": three significant digits, no exponent;
    only the device where no time was spent (re-scored from logits)."""
    if not math.isfinite(images_per_second):
        return device
    rate = f"{images_per_second:.0f}" if images_per_second >= 100 else f"{images_per_second:.3g}"
    return f"{rate} img/s on {device}"


def device_name(device: torch.device) -> str:
    """``cuda`` -> ``cuda:0`` (the GPU actually used); others unchanged."""
    import torch

    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def _check_writable(path: Path | None, option: str) -> None:
    if path is None:
        return
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give the name of a file to write")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{option} {path}: the folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        where = path if path.exists() else f"the folder {folder}"
        raise InputError(f"{option} {path}: {where} is not writable; choose another path")


def _outputs(options: RunOptions) -> list[tuple[str, Path]]:
    """The files this run writes, with their options."""
    named = (("--output", options.output), ("--per-class", options.per_class),
             ("--save-logits", options.save_logits), ("--infinity-plot", options.infinity_plot),
             ("--save-features", options.save_features), ("--save-reference", options.save_reference))
    return [(option, path) for option, path in named if path is not None]


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.resolve() == second.resolve() or (first.exists() and second.exists() and first.samefile(second))
    except OSError:
        return False


def check_outputs(options: RunOptions) -> None:
    """Before anything is scored: every output is a writable file of its own, none of them an input (which
    writing would destroy) nor an image inside an input folder (which the next run would score), and the
    pictures have an extension matplotlib writes."""
    from ..atomic import refuse_link
    from ..readers.files import is_image_name, shown

    outputs = _outputs(options)
    read = [("input", path) for path in options.paths] + [
        (option, path) for option, path in (("--from-logits", options.from_logits), ("--weights", options.weights),
                                           ("--labels", options.labels), ("--generator", options.generator),
                                           ("--reference", options.reference))
        if isinstance(path, Path)]
    for option, written in (("--save-logits", options.save_logits), ("--save-features", options.save_features),
                            ("--save-reference", options.save_reference)):
        if written is not None:
            refuse_link(written, option)  # written in place: never through a link (inception_score.atomic)
    for index, (option, path) in enumerate(outputs):
        _check_writable(path, option)
        for kind, source in read:
            if _same_file(path, source):
                raise InputError(f"{option} {shown(path)} is also the {kind} {shown(source)}: writing it would destroy "
                                 f"what is read; choose another path")
            if kind == "input" and source.is_dir() and is_image_name(path.name) and path.resolve().is_relative_to(
                    source.resolve()):
                raise InputError(f"{option} {shown(path)} is an image inside the input folder {shown(source)}, which a "
                                 f"later run of the same command would score; write it elsewhere")
        for other_option, other in outputs[:index]:
            if _same_file(path, other):
                raise InputError(f"{option} and {other_option} both name {shown(path)}; give each its own file")
        _check_not_a_sidecar(option, path, options)
    for option, path in (("--per-class", options.per_class), ("--infinity-plot", options.infinity_plot)):
        if path is not None:
            _check_matplotlib(option)
            _check_picture_format(path, option)
    if options.per_class is not None and options.labels is not None:
        _check_labels(options.labels)


def _check_labels(path: Path) -> None:
    """Labels named for --per-class (--labels, $INCEPTION_SCORE_LABELS) hold class names: a file named on
    purpose that gives none is a mistake to say before scoring, not a plot of class indices after it."""
    from ..readers.files import shown
    from ..network.labels import LABEL_MAP, SYNSET_NAMES, TGZ_NAME, names_in

    if not path.exists():
        problem = "does not exist"
    elif not names_in(path):
        problem = "holds no class names"
    else:
        return
    raise InputError(f"--labels {shown(path)} {problem}: give {TGZ_NAME} or a folder holding {LABEL_MAP} and "
                     f"{SYNSET_NAMES}, or leave --labels (and $INCEPTION_SCORE_LABELS) out to show classes by index")


def _check_not_a_sidecar(option: str, path: Path, options: RunOptions) -> None:
    """An output must not be the sidecar of the logits file written or read (compared resolved, and by
    inode for a hard link): without it the logits file can be neither resumed nor re-scored."""
    from ..readers.files import shown
    from ..logits.file import sidecar

    for owner_option, owner in (("--save-logits", options.save_logits), ("--from-logits", options.from_logits)):
        if owner is not None and _same_file(path, sidecar(owner)):
            raise InputError(f"{option} {shown(path)} is the sidecar of {owner_option} {shown(owner)} (its description, "
                             f"{sidecar(owner).name}): writing it would leave the logits file unreadable; choose "
                             "another path")


def _check_picture_format(path: Path, option: str) -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats:
        raise InputError(f"{option} {path}: matplotlib writes no format of extension {path.suffix or '(none)'!r}; "
                         f"name a .png file (or {', '.join('.' + name for name in sorted(formats) if name != 'png')})")


def _check_matplotlib(option: str = "--per-class") -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(f"{option} needs matplotlib: pip install 'inception-score[plot]'") from None


def shows_progress(options: RunOptions) -> bool:
    """Progress bars on stderr only when a person watches it."""
    return not options.quiet and sys.stderr.isatty()


def peer_lost(error: BaseException) -> bool:
    """Whether a collective broke: another process of the group is gone. Asked only in a group."""
    from ..engine.distributed import PeerLostError

    return isinstance(error, PeerLostError)


def warn(message: str, options: RunOptions) -> None:
    if not options.quiet:
        click.echo(f"warning: {message}", err=True)


def one_line_warnings(options: RunOptions) -> Any:
    """A ``warnings.showwarning`` that prints ``warning: <first line>`` (none under --quiet), not a
    library's file, line number and source line."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        warn(one_line_message(message) if isinstance(message, Warning) else str(message).strip(), options)

    return show


def warn_about_workers(options: RunOptions) -> None:
    """--num-workers past the CPUs: the readers start one worker per CPU at most (:mod:`.loader_workers`)."""
    from ..readers.loader_workers import usable_cpus

    cpus = usable_cpus()
    if options.paths and options.num_workers > cpus:
        warn(f"--num-workers {options.num_workers} is more than the {cpus} CPUs this process may use: {cpus} "
              f"decode (more would only take turns, each with memory of its own)", options)


def warn_about(result: ISResult, options: RunOptions) -> None:
    """What makes this score suspicious or incomparable, on stderr (the JSON has it too)."""
    if result.precision_note:
        warn(result.precision_note, options)
    if result.order_flagged:
        warn(f"the input looks ordered (for example by class): the splits' class distributions differ "
              f"{result.order_ratio:.1f} times as much as in a random order of the same images (threshold "
              f"{result.order_threshold:.1f}). The paper's protocol assumes a random order: use --shuffle, or "
              f"order the files randomly", options)
    if result.labels_sorted:
        warn("the input's labels are sorted by class (one run per class), so its contiguous splits are not random "
              "samples and the score is not the paper's: use --shuffle, or write the samples in random order", options)
    reasons = [r for r in result.not_comparable
               if "looks ordered" not in r and "verified" not in r and "sorted by class" not in r]
    if reasons:  # unverified weights are said on the result line itself
        warn("not comparable with published scores: " + "; ".join(reasons), options)


def report_from_logits(path: Path, options: RunOptions, description: str | None, skipped: tuple[str, ...],
                        device: str, saved: Any = None) -> Report:
    """The report of a complete logits file (:func:`~inception_score.saved_logits.score_logits_file`).
    ``saved``: what :func:`~inception_score.saved_logits.save_logits` returned when this process wrote
    it (its weights checked then, its images' labels); None (--from-logits): the file only claims its
    weights, checked against --weights when given."""
    from ..logits.file import read_info
    from ..saved_logits import score_logits_file

    result = score_logits_file(
        path, splits=options.split_rule(), shuffle=options.shuffle, seed=options.seed, infinity=options.infinity,
        infinity_seed=options.infinity_seed, weights=options.weights if saved is None else None, saved=saved,
        return_marginal=options.per_class is not None)
    return Report(result, description or f"{read_info(path).input} (logits from {path})", device, skipped, options)


def json_text(report: Report) -> str:
    """The JSON of ``report`` as stdout and ``--output`` get it."""
    return strict_json.dumps(report.to_json(), indent=2)


class OutputError(InceptionScoreError):
    """A file the result was to be written to could not be written (the result was shown already)."""


def write_failure(option: str, path: Path, error: Exception) -> str:
    from ..readers.files import shown

    reason = error.strerror if isinstance(error, OSError) and error.strerror else one_line_message(error)
    return f"{option} {shown(path)} could not be written ({reason})"


def open_inputs(options: RunOptions, group: Group | None = None) -> tuple[Dataset, str, tuple[str, ...]]:
    """The images to score, their description, and the files skipped as invalid. In a process group
    each rank checks only its own part of the files for ``--skip-invalid``; the verdicts are shared."""
    from torch.utils.data import Subset

    from ..engine.run import progress_bar
    from ..engine.distributed import agreeing, gather_objects, shard_bounds
    from ..readers.files import SkippedInputWarning, open_paths
    from ..readers.skip_invalid import decodable, keep_valid

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedInputWarning)
        # --limit scores the first images in input order (--shuffle permutes their splits only); after
        # --skip-invalid they could be any, so then every image is checked.
        scored = None if options.skip_invalid else options.limit
        dataset = open_paths(options.paths, input_range=options.input_range, scored=scored)
    if group is None or group.is_main:
        for warning in caught:
            if issubclass(warning.category, SkippedInputWarning):
                warn(str(warning.message), options)
    description = dataset.description
    skipped: list[str] = []
    if options.skip_invalid:
        if group is None:
            with progress_bar(shows_progress(options), len(dataset), "Checking images") as advance:
                valid, skipped = decodable(dataset, options.num_workers, advance)
        else:
            start, stop = shard_bounds(len(dataset), group.rank, group.world_size)
            with agreeing(group):  # a rank whose check fails ends every rank, none waits in the exchange
                with progress_bar(shows_progress(options) and group.is_main, stop - start, "Checking images") as advance:
                    mine, failures = decodable(Subset(dataset, range(start, stop)), options.num_workers, advance)
            verdicts = gather_objects(group, ([start + i for i in mine], failures), "the exchange of valid files")
            valid = [index for part, _ in verdicts for index in part]
            skipped = [message for _, part in verdicts for message in part]
        dataset = keep_valid(dataset, valid, skipped)
        if group is None or group.is_main:
            for message in skipped[:_WARNINGS_SHOWN]:
                click.echo(f"warning: skipped {message}", err=True)
            if len(skipped) > _WARNINGS_SHOWN:
                click.echo(f"warning: ... and {len(skipped) - _WARNINGS_SHOWN} more skipped (listed by --json)", err=True)
    return dataset, description, tuple(skipped)
