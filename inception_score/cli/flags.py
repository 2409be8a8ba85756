"""The options that ``inception-score`` and ``reference-gan score`` share, each defined once.

Both commands take these decorators, so a flag has one name, one default and one help text in both; the
defaults come from :class:`~inception_score.options.ScorerOptions` and the published protocol
(:mod:`inception_score.protocol`). ``tests/test_shared_flags.py`` compares the two commands' options and
fails where one of them defines a shared flag on its own.

    @click.command()
    @flags.SPLITS
    @flags.SPLIT_SIZE
    def command(splits: int, split_size: int | None) -> None:
        flags.check_one_split_rule(split_size)
"""

from __future__ import annotations

from typing import Any, Callable

import click

from ..options import ScorerOptions
from ..protocol import PUBLISHED_IMAGES, PUBLISHED_SPLITS


class SharedOption(click.Option):
    """An option made by :func:`shared_option`: the same in every command that takes it."""


SHARED: list[str] = []  # the shared options' names, in the order defined here


def shared_option(*declarations: str, **attributes: Any) -> Callable[[Any], Any]:
    """A ``click.option`` decorator of a :class:`SharedOption`, recorded in :data:`SHARED`."""
    decorator = click.option(*declarations, cls=SharedOption, **attributes)
    SHARED.append(SharedOption(declarations, **attributes).name or "")
    return decorator


SPLITS = shared_option("--splits", type=click.IntRange(min=1), default=PUBLISHED_SPLITS, show_default=True,
                       help="contiguous splits of equal size (the paper: 10)")
SPLIT_SIZE = shared_option("--split-size", type=click.IntRange(min=1), default=None,
                           help="contiguous chunks of this many images instead, the last one shorter, as "
                                "guided-diffusion's evaluator (5000); not with --splits")
DEVICE = shared_option("--device", default=ScorerOptions.device, show_default=True, help="auto, cpu, cuda or cuda:N")
WEIGHTS = shared_option("--weights", type=click.Path(), default=None, envvar="INCEPTION_SCORE_WEIGHTS", show_envvar=True,
                        help="weights file (.pth, .pb or .tgz); default: the cached download")
ALLOW_UNVERIFIED_WEIGHTS = shared_option("--allow-unverified-weights", is_flag=True,
                                         default=ScorerOptions.allow_unverified,
                                         help="accept a weights file of unknown sha256")
PRECISION = shared_option("--precision", type=click.Choice(["exact", "fast"]), default=ScorerOptions.precision,
                          show_default=True,
                          help="fast: TF32 and float16 on CUDA, bfloat16 on a CPU with native bfloat16 (else exact, "
                               "said so)")
EXACT_KERNEL = shared_option("--exact-kernel", type=click.Choice(["auto", "ieee", "split-tf32"]),
                             default=ScorerOptions.exact_kernel, show_default=True,
                             help="how exact multiplies: ieee float32, or split-tf32 (three TF32 products, float32 "
                                  "accuracy on tensor cores; emulated, slowly, on a CPU); auto: split-tf32 on CUDA "
                                  "where measured faster")
JSON = shared_option("--json", "as_json", is_flag=True, help="print JSON on stdout instead of the line")
OUTPUT = shared_option("--output", type=click.Path(dir_okay=False), default=None,
                       help="also write the JSON to this file")
QUIET = shared_option("--quiet", is_flag=True, help="no progress bar or notes")
NUM_SAMPLES = shared_option("-n", "--num-samples", type=click.IntRange(min=1), default=PUBLISHED_IMAGES,
                            show_default=True, help="images to draw from the generator")


def check_one_split_rule(split_size: int | None) -> None:
    """Refuse ``--splits`` given beside ``--split-size`` (a ``click.UsageError``): they are two split rules.
    Called inside the command, where ``--splits`` has its default unless the user gave it."""
    if split_size is not None and click.get_current_context().get_parameter_source("splits") not in (
            click.core.ParameterSource.DEFAULT, None):
        raise click.UsageError("give --splits or --split-size, not both")
