"""The ``inception-score`` command: score folders, arrays or archives of images.

    inception-score samples/ --splits 10
    inception-score samples.npz --json > score.json
    inception-score samples.tar.gz --per-class classes.png
    inception-score samples.npz --reference VIRTUAL_imagenet256_labeled.npz

Everything that can be checked before the network runs is checked first (device, inputs, image
count against splits, output paths, matplotlib), so a long run does not fail at its end. The result
goes to stdout before any file is written, so a write that fails loses no score. Errors print one
line naming the file or value and what to do, and exit with status 2 (``--debug`` shows the traceback
instead). Ctrl-C exits with status 130.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import click

from .. import __version__

from ..score import strict_json
from . import flags  # the options shared with reference-gan score
from .reference_flags import check_reference_flags, loaded_reference, reference_fields, reference_options
from .streams import guard_standard_streams, show
from ..errors import InceptionScoreError, InputError, one_line_message
from ..options import ScorerOptions
from ..protocol import NAMED_RANGES, RESCORED_DEVICE, TORCH_FIDELITY_SEED, Z_DISTRIBUTIONS
from .report import (  # the run's options and report, and the checks before scoring
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    OutputError,
    Report,
    RunOptions,
    check_outputs,
    open_inputs,
    device_name,
    json_text,
    peer_lost,
    shows_progress,
    report_from_logits,
    warn,
    warn_about,
    write_failure,
    one_line_warnings,
    warn_about_workers,
)

# torch and the network load only when scoring starts: --help and --version answer at once. The
# functions below import what they use.
if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from ..engine.distributed import Group
    from ..engine.runner import InceptionScorer


def run(options: RunOptions, group: Group | None = None, scorer: InceptionScorer | None = None) -> Report:
    """Check everything cheap first, then score, then write the outputs asked for. In a process group
    (torchrun) every rank scores its part; only rank 0 writes files and shows progress. ``scorer``: a
    network loaded already (``--each``), else it is loaded here."""
    from ..protocol import PIXEL_RANGE
    from ..score.statistics import check_split_count
    from ..api import inception_score
    from ..engine.runner import resolve_device

    main_rank = group is None or group.is_main
    if main_rank:
        check_outputs(options)
    if options.from_logits is not None:
        if group is not None:
            raise InputError("--from-logits needs no network: run it in one process, not under torchrun")
        report = report_from_logits(options.from_logits, options, description=None, skipped=(),
                                     device=RESCORED_DEVICE)
        write_outputs(report, options)
        return report
    if options.generator is not None:
        report = _score_generator_file(options, group)
        if main_rank:
            write_outputs(report, options)
        return report
    if options.save_logits is not None and group is not None:
        raise InputError("--save-logits writes one file from one process: run it without torchrun")
    device = resolve_device(options.device)
    dataset, description, skipped = open_inputs(options, group)
    count = len(dataset) if options.limit is None else min(len(dataset), options.limit)
    check_split_count(count, options.split_rule())
    if options.infinity:
        from ..score.infinity import infinity_sizes

        infinity_sizes(count)  # enough images for 15 sizes, before the network runs

    progress = shows_progress(options) and main_rank
    scorer = scorer or _scorer(options, device, progress)
    if options.save_logits is not None:
        report = _score_saving_logits(dataset, count, description, skipped, scorer, options, progress)
        write_outputs(report, options)
        return report
    result = inception_score(
        dataset, splits=options.split_rule(), options=options.scorer_options(), limit=options.limit,
        shuffle=options.shuffle, seed=options.seed, scorer=scorer, progress=progress,
        input_range=PIXEL_RANGE,  # the readers already mapped --input-range to [0, 255]; uint8 items pass as they are
        return_marginal=options.per_class is not None, distributed=group is not None,
        infinity=options.infinity, infinity_seed=options.infinity_seed,
        reference=loaded_reference(options, scorer, group), metrics=options.metrics, kid_subsets=options.kid_subsets,
        kid_subset_size=options.kid_subset_size, save_features=options.save_features,
        save_reference=options.save_reference,
    )
    report = Report(result, description, device_name(scorer.device), skipped, options)
    if main_rank:
        write_outputs(report, options)
    return report


def _scorer(options: RunOptions, device: Any, progress: bool) -> InceptionScorer:
    """The network of ``options`` (weights, precision, exact kernel) loaded on ``device``."""
    from ..engine.runner import build_scorer

    return build_scorer(options.scorer_options(), progress, device=device)


def _score_generator_file(options: RunOptions, group: Group | None) -> Report:
    """``--generator FILE``: the file's program makes the images, none written (inception_score.generator)."""
    from ..generator import load_generator_file, score_generator
    from ..engine.runner import resolve_device
    from ..generators.checks import GeneratorWarning

    assert options.generator is not None and options.z_dim is not None
    progress = shows_progress(options) and (group is None or group.is_main)
    device = resolve_device(options.device)
    generator = load_generator_file(options.generator, device, options.num_classes)  # before the network: fails fast
    scorer = _scorer(options, device, progress)
    with warnings.catch_warnings():  # each GeneratorWarning is a not_comparable reason, shown by _warn_about
        warnings.simplefilter("ignore", GeneratorWarning)
        result = score_generator(
            generator, options.num_samples, z_dim=options.z_dim, z_distribution=options.z_distribution,
            num_classes=options.num_classes, seed=options.seed, options=options.scorer_options(),
            input_range=options.input_range or (-1.0, 1.0), splits=options.split_rule(), scorer=scorer,
            progress=progress, return_marginal=options.per_class is not None, distributed=group is not None,
            infinity=options.infinity, infinity_seed=options.infinity_seed,
        )
    kind = {".onnx": "ONNX", ".pt2": "torch.export"}.get(options.generator.suffix.lower(), "TorchScript")
    return Report(result, f"{kind} generator {options.generator}", device_name(scorer.device), (), options)


def run_each(options: RunOptions, group: Group | None = None) -> int:
    """``--each``: score every path of ``options`` on its own with one loaded network, printing a line
    per path as it is done (JSON Lines with ``--json``). ``--output`` gets the JSON lines once every path
    is done, replaced whole: a run that stops on a path leaves the previous file as it was. A path that
    fails gives its own line under ``--skip-invalid`` and stops the run otherwise. Returns the number of
    paths that failed."""
    from ..atomic import write_atomic
    from ..readers.files import shown
    from ..engine.runner import resolve_device

    main_rank = group is None or group.is_main
    if main_rank:
        check_outputs(options)
    scorer = _scorer(options, resolve_device(options.device), shows_progress(options) and main_rank)
    options = dataclasses.replace(options, reference=loaded_reference(options, scorer, group))  # once for all paths
    failed = 0
    records: list[str] = []  # the JSON lines for --output
    for path in options.paths:
        try:
            report = run(dataclasses.replace(options, paths=(path,), output=None), group, scorer)
        except InceptionScoreError as error:
            if not options.skip_invalid:
                raise
            failed += 1
            record: dict[str, Any] = {"path": str(path), "input": str(path), "error": one_line_message(error)}
            line = f"{shown(path)}: Error: {record['error']}"
        else:
            record = {"path": str(path), **report.to_json()}
            line = f"{shown(path)}: {report.human_line()}"
        records.append(strict_json.dumps(record) + "\n")
        if main_rank:
            show(records[-1].rstrip("\n") if options.as_json else line)
    if options.output is not None and main_rank:
        try:
            write_atomic(options.output, "".join(records), devices=True)
        except OSError as error:
            raise OutputError(f"{write_failure('--output', options.output, error)} (every score was shown on "
                              "stdout)") from None
    return failed


def _score_saving_logits(dataset: Dataset, count: int, description: str, skipped: tuple[str, ...],
                         scorer: InceptionScorer, options: RunOptions, progress: bool) -> Report:
    """Score through a logits file (:func:`~inception_score.saved_logits.save_logits`, which resumes
    it), then read the score back from the complete file."""
    from ..saved_logits import save_logits

    assert options.save_logits is not None
    saved = save_logits(
        dataset, options.save_logits, scorer=scorer, options=options.scorer_options(), limit=count,
        description=description, progress=progress,
        on_resume=lambda done: warn(f"resuming {options.save_logits}: {done} of {count} images were scored already",
                                     options))
    return report_from_logits(options.save_logits, options, description, skipped, device_name(scorer.device), saved)


def write_outputs(report: Report, options: RunOptions) -> None:
    """The warnings, the result on stdout, then ``--output``, ``--per-class`` and ``--infinity-plot``. The
    result is shown before any file is written, so a write that fails (a full disk) loses nothing: it is
    named in an :class:`OutputError` once the others are written. An interrupt says what was written."""
    warn_about(report.result, options)
    if not options.each:  # --each prints a line per path itself; a closed stdout still gets the files
        show(json_text(report) if options.as_json else report.human_line())
    written: list[str] = []
    failed: list[str] = []
    writers = ((options.output, "--output", lambda: _write_json(report, options.output)),
               (options.per_class, "--per-class", lambda: _write_per_class(report, options)),
               (options.infinity_plot, "--infinity-plot", lambda: _write_infinity_plot(report, options)))
    try:
        for path, option, write in writers:
            if path is None:
                continue
            try:
                write()
            except (OSError, ValueError, RuntimeError) as error:  # disk full, unwritable, a format matplotlib lacks
                failed.append(write_failure(option, path, error))
            else:
                written.append(f"the score was written to {path}" if option == "--output" else f"{path} was written")
    except KeyboardInterrupt:
        raise Interrupted("; ".join(written) or "the score was shown, no file was written") from None
    if failed:
        raise OutputError("; ".join(failed) + " (the score above is complete)")


def _write_json(report: Report, path: Path | None) -> None:
    """The JSON of ``report`` to ``path``, replaced whole (:func:`~inception_score.atomic.write_atomic`: a
    failed write leaves the previous file, a link there is replaced, not followed); a device
    (``/dev/stdout``) is written into."""
    from ..atomic import write_atomic

    assert path is not None
    write_atomic(path, json_text(report) + "\n", devices=True)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C after the score was computed: the message says which outputs exist."""


def _write_per_class(report: Report, options: RunOptions) -> None:
    from ..network.labels import class_names
    from .plot import plot_marginal

    names = class_names(options.labels, report.result.weights_path)
    if not names:
        where = f"{options.labels}" if options.labels else "--labels, $INCEPTION_SCORE_LABELS or beside the weights"
        warn(f"no class names found in {where} (inception-2015-12-05.tgz or a folder with its label files); "
              f"classes are shown by index", options)
    title = f"{report.description}: IS {report.result.mean:.2f} ± {report.result.std:.2f}"
    if not report.result.weights_verified:
        title += " (UNVERIFIED weights)"
    assert report.result.marginal is not None
    plot_marginal(report.result.marginal, options.per_class, names, title=title)  # type: ignore[arg-type]
    if not options.quiet:
        click.echo(f"wrote {options.per_class}", err=True)


def _write_infinity_plot(report: Report, options: RunOptions) -> None:
    import numpy as np

    from .plot import plot_infinity

    result = report.result
    assert result.is_infinity is not None and result.is_infinity_slope is not None and options.infinity_plot
    sizes, scores = (np.array(column) for column in zip(*result.is_n))
    title = f"{report.description}: IS-infinity {result.is_infinity:.2f}"
    if not result.weights_verified:
        title += " (UNVERIFIED weights)"
    plot_infinity(sizes, scores, result.is_infinity, result.is_infinity_slope, options.infinity_plot, title)
    if not options.quiet:
        click.echo(f"wrote {options.infinity_plot}", err=True)


def _optional_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path())
@flags.SPLITS
@flags.SPLIT_SIZE
@click.option("--batch-size", type=click.IntRange(min=1), default=ScorerOptions.batch_size, show_default=True)
@flags.DEVICE
@click.option("--num-workers", type=click.IntRange(min=0), default=ScorerOptions.num_workers, show_default=True,
              help="processes decoding images in parallel (at most one per CPU)")
@flags.WEIGHTS
@flags.ALLOW_UNVERIFIED_WEIGHTS
@click.option("--limit", type=click.IntRange(min=1), default=None, help="score only the first N images")
@click.option("--shuffle", is_flag=True, help="shuffle before splitting, as torch-fidelity does")
@click.option("--seed", type=int, default=TORCH_FIDELITY_SEED, show_default=True,
              help="seed of --shuffle, and of z with --generator")
@click.option("--input-range", type=click.Choice(sorted(NAMED_RANGES)), default=None,
              help="value range of float arrays (with --generator, of its output; default -1,1)")
@click.option("--skip-invalid", is_flag=True, help="skip images that fail to decode (listed in the JSON)")
@flags.PRECISION
@flags.EXACT_KERNEL
@click.option("--per-class", type=click.Path(dir_okay=False), default=None,
              help="write a PNG of p(y), the class distribution")
@click.option("--labels", type=click.Path(), default=None, envvar="INCEPTION_SCORE_LABELS", show_envvar=True,
              help="inception-2015-12-05.tgz (or a folder with its label files), for class names")
@flags.JSON
@flags.OUTPUT
@flags.QUIET
@click.option("--save-logits", type=click.Path(dir_okay=False), default=None,
              help="write each image's logits to this .npy (+ .json); rerunning the same command resumes it")
@click.option("--from-logits", type=click.Path(dir_okay=False), default=None,
              help="re-score a --save-logits file (any --splits, --shuffle) without the network; no PATHS. The "
                   "weights it names are checked only against a --weights file")
@click.option("--generator", "generator_file", type=click.Path(dir_okay=False), default=None,
              help="score images made by this torch.export (.pt2), TorchScript (torch.jit.save) or ONNX (.onnx, needs "
                   "the 'onnx' extra) "
                   "generator, none written; no PATHS. The file is a program: it runs with your rights, so name only "
                   "a file you trust (nothing else this command reads runs code)")
@flags.NUM_SAMPLES
@click.option("--z-dim", type=click.IntRange(min=1), default=None, help="length of --generator's z (required with it)")
@click.option("--num-classes", type=click.IntRange(min=1), default=None,
              help="--generator is class-conditional, called as G(z, labels), labels uniform in [0, C)")
@click.option("--z-distribution", type=click.Choice(Z_DISTRIBUTIONS),
              default="normal", show_default=True,
              help="z of --generator, by each sample's position and --seed: normal, uniform [-1,1), uniform-0-1, "
                   "unit (on the sphere), sobol-normal (scrambled Sobol through the inverse normal CDF)")
@click.option("--each", is_flag=True,
              help="score every PATH on its own, the network loaded once: one line per PATH (JSON Lines with "
                   "--json, also written to --output); with --skip-invalid a PATH that fails gets its own line "
                   "and the exit status is 2 once all are done")
@click.option("--infinity", is_flag=True,
              help="also IS-infinity (Chong & Forsyth 2020): one-split IS_n of the first n images of one seeded order, "
                   "15 n from N/10 to N, extrapolated to 1/n = 0 (not comparable with published scores)")
@click.option("--infinity-seed", type=int, default=TORCH_FIDELITY_SEED, show_default=True,
              help="seed of the order --infinity takes its first n images from")
@click.option("--infinity-plot", type=click.Path(dir_okay=False), default=None,
              help="write a PNG of IS_n against 1/n with the fitted line (implies --infinity)")
@click.option("--self-check", is_flag=True, help="check this install: the network on built-in images against stored "
              "pool_3 of the genuine weights, on --device in --precision; exit 0 or 2 (no PATHS)")
@reference_options
@click.option("--debug", is_flag=True, help="show tracebacks")
@click.version_option(__version__, prog_name="inception-score")
def main(paths: tuple[str, ...], splits: int, split_size: int | None, batch_size: int, device: str, num_workers: int, weights: str | None,
         allow_unverified_weights: bool, limit: int | None, shuffle: bool, seed: int, input_range: str | None,
         skip_invalid: bool, precision: str, exact_kernel: str, per_class: str | None, labels: str | None, as_json: bool,
         output: str | None, quiet: bool, save_logits: str | None, from_logits: str | None, each: bool,
         generator_file: str | None, num_samples: int, z_dim: int | None, num_classes: int | None,
         z_distribution: str, infinity: bool, infinity_seed: int, infinity_plot: str | None, self_check: bool, debug: bool,
         **reference_flags: Any) -> None:
    """Inception Score of the images in PATHS (folders, .npy/.npz, .zip/.tar/.tar.gz), as in Salimans et al. 2016.

    Several PATHS are scored as one set, in the order given (with --each: each on its own). With --generator
    FILE, the images are made by that program and scored as they come, none written.
    """
    guard_standard_streams()  # a closed stderr or stdout (2>&-) is no error: the run scores and writes its files
    if bool(paths) + bool(from_logits) + bool(generator_file) + self_check != 1:
        raise click.UsageError("give PATHS of images, --from-logits FILE, --generator FILE or --self-check (one of them)")
    flags.check_one_split_rule(split_size)
    if each and (per_class or save_logits or from_logits or generator_file):
        raise click.UsageError("--each scores every PATH on its own: --per-class, --save-logits, --from-logits and "
                               "--generator name one input or file, so score those one at a time")
    evaluation = reference_fields(reference_flags)
    check_reference_flags(evaluation, generator=bool(generator_file), from_logits=bool(from_logits),
                          save_logits=bool(save_logits), each=each)
    if generator_file:
        if z_dim is None:
            raise click.UsageError("--generator needs --z-dim, the length of the generator's z")
        given = [name for name, value in (("--limit", limit), ("--shuffle", shuffle), ("--skip-invalid", skip_invalid),
                                          ("--save-logits", save_logits)) if value]
        if given:
            raise click.UsageError(f"{', '.join(given)} applies to PATHS of images, not to --generator")
    options = RunOptions(
        paths=tuple(Path(p) for p in paths), splits=splits, split_size=split_size, batch_size=batch_size, device=device,
        num_workers=num_workers, weights=_optional_path(weights), allow_unverified=allow_unverified_weights,
        limit=limit, shuffle=shuffle, seed=seed, input_range=None if input_range is None else NAMED_RANGES[input_range],
        skip_invalid=skip_invalid, precision=precision, exact_kernel=exact_kernel, per_class=_optional_path(per_class),
        labels=_optional_path(labels), as_json=as_json, output=_optional_path(output), quiet=quiet,
        save_logits=_optional_path(save_logits), from_logits=_optional_path(from_logits), each=each,
        generator=_optional_path(generator_file), num_samples=num_samples, z_dim=z_dim, num_classes=num_classes,
        z_distribution=z_distribution,
        infinity=infinity or infinity_plot is not None, infinity_seed=infinity_seed,
        infinity_plot=_optional_path(infinity_plot), **evaluation,
    )
    warn_about_workers(options)
    group = None
    try:
        if self_check:  # the install against stored genuine features (inception_score.cli.self_check)
            from .self_check import self_check_command

            sys.exit(self_check_command(options))
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warnings(options)  # a library's warning, in our one-line form
            from ..engine.distributed import init_from_environment, launched_by_torchrun, local_device, say_when_terminated
            from ..engine.runner import resolve_device

            if launched_by_torchrun():
                say_when_terminated()
                options = dataclasses.replace(options, device=local_device(options.device))
                group = init_from_environment(resolve_device(options.device))
            if options.each:
                failed = run_each(options, group)
            else:
                run(options, group)  # shows the result, then writes the files
    except KeyboardInterrupt as interrupt:
        outcome = str(interrupt) if isinstance(interrupt, Interrupted) else "no score was computed"
        click.echo(f"interrupted: {outcome}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # one line for the user; the traceback with --debug
        if debug:
            raise
        # In a group, rank 0 speaks for all (the failing rank's message reaches it); a lost peer is
        # reported by every survivor, since rank 0 may be the one that is gone.
        if group is None or group.is_main or peer_lost(error):
            if isinstance(error, OSError) and error.filename is not None:  # the system refused a file: not a bug
                from ..readers.files import shown

                click.echo(f"Error: {shown(error.filename)}: {error.strerror or error}; check the path and its "
                           f"permissions", err=True)
                sys.exit(EXIT_BAD_INPUT)
            if not isinstance(error, InceptionScoreError):  # a DataLoader worker re-raises with the same type
                click.echo(f"Error: unexpected {type(error).__name__}: {error} (run again with --debug)", err=True)
                sys.exit(1)
            click.echo(f"Error: {one_line_message(error)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    finally:
        if group is not None:
            import torch.distributed

            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
    if options.each and failed:  # the lines were printed as each PATH was done, the result of a run by run()
        sys.exit(EXIT_BAD_INPUT)
