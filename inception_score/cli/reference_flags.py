"""The command's options for FID, sFID, KID and precision/recall against a reference, from the same pass:
``--reference``, ``--metrics``, ``--kid-subsets``, ``--kid-subset-size``, ``--save-features``,
``--save-reference`` and ``--no-reference-cache`` (``--seed`` draws KID's subsets, as torch-fidelity's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..protocol import KID_SUBSET_SIZE, KID_SUBSETS

FLAGS = ("reference", "metrics", "kid_subsets", "kid_subset_size", "save_features", "save_reference",
         "reference_cache")


def reference_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The reference options, added to ``command`` (they reach it as keywords named in :data:`FLAGS`)."""
    options = [
        click.option("--reference", type=click.Path(), default=None,
                     help="also FID, sFID, KID, precision and recall against this reference, from the same pass: a "
                          "folder, array or archive of images, guided-diffusion's reference batch (.npz), a statistics "
                          ".npz (mu, sigma [, mu_s, sigma_s]: FID and sFID only) or a --save-reference file"),
        click.option("--metrics", default=None,
                     help="with --reference, which of fid,sfid,kid,pr (comma-separated; default: all the reference "
                          "allows)"),
        click.option("--kid-subsets", type=click.IntRange(min=1), default=KID_SUBSETS, show_default=True,
                     help="KID's subsets (torch-fidelity's kid_subsets), drawn with --seed"),
        click.option("--kid-subset-size", type=click.IntRange(min=2), default=KID_SUBSET_SIZE, show_default=True,
                     help="images in each KID subset (torch-fidelity's kid_subset_size)"),
        click.option("--save-features", type=click.Path(dir_okay=False), default=None,
                     help="write pool_3 (N, 2048) and spatial (N, 2023) features, float32 in input order, to this .npz"),
        click.option("--save-reference", type=click.Path(dir_okay=False), default=None,
                     help="write these images as a reference .npz: mu, sigma, mu_s, sigma_s (float64, the layout "
                          "guided-diffusion's evaluator reads) and the pool_3 features KID and P/R need"),
        click.option("--reference-cache/--no-reference-cache", default=True, show_default=True,
                     help="keep the features of --reference images in $INCEPTION_SCORE_CACHE (default "
                          "~/.cache/inception_score), keyed by content, so that they are computed once"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def reference_fields(flags: dict[str, Any]) -> dict[str, Any]:
    """The :class:`~inception_score.cli.report.RunOptions` fields of the reference options' values."""
    def path(value: str | None) -> Path | None:
        return None if value is None else Path(value)

    return {"reference": path(flags["reference"]), "metrics": flags["metrics"], "kid_subsets": flags["kid_subsets"],
            "kid_subset_size": flags["kid_subset_size"], "save_features": path(flags["save_features"]),
            "save_reference": path(flags["save_reference"]), "reference_cache": flags["reference_cache"]}


def check_reference_flags(fields: dict[str, Any], *, generator: bool, from_logits: bool, save_logits: bool,
                          each: bool) -> None:
    """:class:`click.UsageError` for combinations that cannot work: features come from scoring PATHS of
    images in this run, and each file option names one run's file."""
    evaluation = [name for name, value in (("--reference", fields["reference"]), ("--save-features", fields["save_features"]),
                                           ("--save-reference", fields["save_reference"])) if value is not None]
    if fields["metrics"] is not None and fields["reference"] is None:
        raise click.UsageError("--metrics chooses among the numbers computed against --reference: give --reference")
    if fields["metrics"] is not None:
        from ..errors import InputError
        from ..score.evaluation import parse_metrics

        try:
            parse_metrics(fields["metrics"])
        except InputError as error:
            raise click.UsageError(f"--metrics: {error}") from None
    if evaluation and (generator or from_logits or save_logits):
        other = "--generator" if generator else "--from-logits" if from_logits else "--save-logits"
        raise click.UsageError(f"{', '.join(evaluation)} need the features of PATHS scored in this run, not {other}")
    if each and (fields["save_features"] is not None or fields["save_reference"] is not None):
        raise click.UsageError("--each scores every PATH on its own: --save-features and --save-reference name one "
                               "file, so score those one at a time")


def loaded_reference(options: Any, scorer: Any, group: Any) -> Any:
    """``--reference`` of ``options`` (:class:`~inception_score.cli.report.RunOptions`) loaded, or built and
    cached, with the run's network, saying on stderr where it came from (not with ``--quiet``); one loaded
    already (``--each`` loads it once for every path) as it is; None without one."""
    from ..api import load_reference
    from .report import shows_progress

    if options.reference is None or not isinstance(options.reference, Path):
        return options.reference
    return load_reference(options.reference, scorer=scorer, cache=options.reference_cache,
                          progress=shows_progress(options) and (group is None or group.is_main),
                          say=(lambda text: None) if options.quiet else (lambda text: click.echo(text, err=True)),
                          distributed=group is not None, metrics=options.metrics)


__all__ = ["FLAGS", "check_reference_flags", "loaded_reference", "reference_fields", "reference_options"]
