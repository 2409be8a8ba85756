"""``reference-gan``: train the paper's models from presets, and sample them for the scorer.

    reference-gan train --dataset mnist --data-dir data/mnist --preset mnist-fm --out runs/mnist
    reference-gan train --dataset cifar10 --data-dir cifar-10-batches-py --preset our-methods --epochs 10
    reference-gan sample --checkpoint runs/mnist/checkpoint.pt -n 50000 --out samples.npz
    reference-gan score runs/mnist/checkpoint.pt -n 50000 --json
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import click
import numpy as np
from inception_score.cli import flags

from .config import TrainConfig
from .errors import user_errors
from .models import Z_DIM, PixelGenerator, generate_uint8
from .presets import PRESETS, preset
from .train import Trainer, load_generator

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _parse_overrides(pairs: tuple[str, ...]) -> dict:
    """``--set key=value`` pairs, each value converted to the field's type."""
    overrides = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        key = key.replace("-", "_")
        if key not in FIELDS:
            raise click.BadParameter(f"unknown setting {key!r}; known: {', '.join(FIELDS)}")
        default = FIELDS[key].default
        if raw.lower() in ("none", "null"):
            value = None
        elif isinstance(default, bool):
            value = raw.lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int) and not isinstance(default, bool):
            value = int(raw)
        elif isinstance(default, float):
            value = float(raw)
        elif key in ("steps_per_epoch", "max_steps", "lr_constant_epochs", "test_limit", "checkpoint_every_steps"):
            value = int(raw)
        else:
            value = raw
        overrides[key] = value
    return overrides


def say(line: str) -> None:
    """Progress lines on stderr (a module-level function: processes started per device receive it)."""
    click.echo(line, err=True)


def _device_list(devices: str | None) -> list[str] | None:
    return [d.strip() for d in devices.split(",") if d.strip()] if devices else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The reference GAN trainer of inception-score (Salimans et al. 2016)."""


@main.command("train")
@click.option("--preset", "preset_name", type=click.Choice(sorted(PRESETS)), required=True)
@click.option("--dataset", default=None, help="mnist, cifar10, svhn, cifar10-partial, synthetic-mnist, synthetic-cifar10")
@click.option("--data-dir", type=click.Path(), default=None)
@click.option("--out", "out_dir", type=click.Path(), default=None, help="output folder (default runs/<preset>)")
@click.option("--epochs", type=int, default=None)
@click.option("--labels", default=None, help="none, all, or a count per class")
@click.option("--seed", type=int, default=None)
@click.option("--device", default=None, help="cpu, cuda, cuda:N")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), default=None, help="a checkpoint.pt")
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch (on a busy machine 1 is often fastest); default: torch's choice")
@click.option("--amp", is_flag=True, default=None, help="bfloat16 autocast on CUDA (amp=true; not comparable bit for bit)")
@click.option("--channels-last", is_flag=True, default=None, help="NHWC memory order (channels_last=true)")
@click.option("--fast-step", is_flag=True, default=None,
              help="torch.compile of the training passes on CUDA (fast_step=true); on a CPU the default step")
@click.option("--set", "settings", multiple=True, help="any TrainConfig field, key=value (repeatable)")
def train_command(preset_name, dataset, data_dir, out_dir, epochs, labels, seed, device, resume, threads, amp,
                  channels_last, fast_step, settings) -> None:
    """Train a preset; every TrainConfig field can be overridden."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    overrides = _parse_overrides(settings)
    for key, value in (("dataset", dataset), ("data_dir", data_dir), ("epochs", epochs), ("labels", labels),
                       ("seed", seed), ("device", device), ("amp", amp), ("channels_last", channels_last),
                       ("fast_step", fast_step)):
        if value is not None:
            overrides[key] = value
    overrides.setdefault("out_dir", out_dir or f"runs/{preset_name}")
    with user_errors():
        config = preset(preset_name, **overrides)
        click.echo(f"training {preset_name}: {config}", err=True)
        Trainer(config).run(Path(resume) if resume else None)


# Where the paper tables go unless --results says otherwise: a folder of the current one (the
# repository's, when run from its root; benchmarks/ablation.py and semi_supervised.py pass their own).
RESULTS = "benchmarks/results"

# The generator runs in batches of this many z, in training mode (batch statistics), as in training;
# `sample` and `score` share it, so that the same seed gives them the same images.
GENERATOR_BATCH = 100


def latent_spec(seed: int):
    """The paper's z (100 numbers uniform in [0, 1)), drawn by each sample's position under ``seed``."""
    from inception_score.generator import LatentSpec

    return LatentSpec(Z_DIM, "uniform-0-1", seed)


@main.command("sample")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("-n", "count", type=int, default=50_000, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="a .npz (key 'images', uint8 NHWC)")
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="the seed of z (the same images as `score --seed`)")
def sample_command(checkpoint: str, count: int, out: str, device: str, seed: int) -> None:
    """Write N generated images in the format the inception-score command reads."""
    from inception_score.atomic import write_atomic
    from inception_score.generator import LatentDraw

    with user_errors():
        generator = load_generator(checkpoint, device=device)
        draw = LatentDraw(latent_spec(seed), device)
    images = generate_uint8(generator, count, GENERATOR_BATCH, device, draw_z=lambda start, stop: draw.draw(start, stop)[0])
    path = out if out.endswith(".npz") else out + ".npz"  # the name np.savez(out) gave it
    write_atomic(path, lambda handle: np.savez(handle, images=images))
    click.echo(f"wrote {path}: {images.shape} uint8", err=True)


@main.command("score")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@flags.NUM_SAMPLES
@flags.SPLITS
@flags.SPLIT_SIZE
@click.option("--seed", type=int, default=0, show_default=True, help="the seed of z (the same images as `sample --seed`)")
@flags.DEVICE
@flags.PRECISION
@flags.EXACT_KERNEL
@flags.WEIGHTS
@flags.ALLOW_UNVERIFIED_WEIGHTS
@flags.JSON
@flags.OUTPUT
@flags.QUIET
def score_command(checkpoint: str, num_samples: int, splits: int, split_size: int | None, seed: int, device: str,
                  precision: str, exact_kernel: str, weights: str | None, allow_unverified_weights: bool, as_json: bool,
                  output: str | None, quiet: bool) -> None:
    """Inception Score of N images from CHECKPOINT's generator, none written. It equals the score of `sample`
    (same -n and --seed) followed by `inception-score --batch-size 100` on its file. The flags it shares with
    inception-score mean the same there (inception_score.cli.flags)."""
    from inception_score.cli.main import Report, RunOptions, check_outputs, device_name, write_outputs
    from inception_score.cli.report import shows_progress
    from inception_score.generator import score_generator
    from inception_score.engine.runner import build_scorer, resolve_device

    flags.check_one_split_rule(split_size)
    options = RunOptions(paths=(Path(checkpoint),), splits=splits, split_size=split_size,
                         batch_size=GENERATOR_BATCH, device=device,
                         weights=Path(weights) if weights else None, allow_unverified=allow_unverified_weights,
                         precision=precision, exact_kernel=exact_kernel, as_json=as_json,
                         output=Path(output) if output else None, quiet=quiet)
    progress = shows_progress(options)  # as inception-score: a bar on stderr when it is a terminal, not with --quiet
    with user_errors():
        check_outputs(options)  # --output: writable, and not the checkpoint
        where = resolve_device(device)
        generator = load_generator(checkpoint, device=str(where))  # before the network: a bad file fails at once
        scorer = build_scorer(options.scorer_options(), progress, device=where)
        spec = latent_spec(seed)
        result = score_generator(PixelGenerator(generator), num_samples, z_dim=spec.z_dim,
                                 z_distribution=spec.distribution, seed=seed, options=options.scorer_options(),
                                 input_range=None, splits=options.split_rule(), scorer=scorer, progress=progress,
                                 distributed=False,
                                 batch_statistics=True)  # G makes its samples with batch statistics, as in the paper
        report = Report(result, f"the generator of {checkpoint}", device_name(scorer.device), (), options)
        write_outputs(report, options)  # the line or the JSON on stdout, then --output


@main.command("ablation")
@click.option("--preset", "preset_name", type=click.Choice(["paper", "smoke", "tiny"]), default="smoke", show_default=True,
              help="paper: the original set-up (GPU, days); smoke: minutes on a CPU; tiny: seconds, for tests")
@click.option("--data-dir", type=click.Path(), default=None, help="CIFAR-10 (python batches) or the partial CIFAR-10 for smoke")
@click.option("--weights", default=None, help="Inception weights file (default: the package's usual search and download)")
@click.option("--only", multiple=True, help="train only this variant (repeatable); the table includes every variant already sampled")
@click.option("--setup", type=click.Choice(["public", "2016-06-08"]), default="public", show_default=True,
              help="the original minibatch script the variants are built on: public (as last changed, 2016-06-14: 1200 "
                   "epochs, leaky ReLU 0.2) or 2016-06-08 (as first published: 500 epochs, leaky ReLU 0.1, weight "
                   "norm initialised per layer); files and runs get the suffix -2016-06-08")
@click.option("--runs", "runs_dir", type=click.Path(), default=None,
              help="where the variants train (default runs/ablation-<preset>[-<setup>])")
@click.option("--results", "results_dir", type=click.Path(), default=RESULTS, show_default=True,
              help="the folder the table goes to (made if needed)")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: the preset's)")
@click.option("--devices", default=None,
              help="comma-separated, e.g. cuda:0,cuda:1 or cpu,cpu: one process per device, variants spread over "
                   "them (under torchrun: one device per rank)")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (in each process)")
@click.option("--amp", is_flag=True, help="every variant with bfloat16 autocast on CUDA (as train --amp)")
@click.option("--channels-last", is_flag=True, help="every variant in NHWC memory order (as train --channels-last)")
@click.option("--fast-step", is_flag=True, help="every variant with the compiled step on CUDA (as train --fast-step)")
def ablation_command(preset_name, data_dir, weights, only, setup, runs_dir, results_dir, device, devices, threads,
                     amp, channels_last, fast_step) -> None:
    """Table 3: train the paper's six variants and ours (-VBN scale), sample, score them and real images, write the
    table (.md, .csv, .png) with the choices the paper leaves open.
    Rerunning resumes: variants with samples are skipped, an interrupted one continues from its checkpoint."""
    import torch

    from .ablation import ablation_name, run_ablation

    if threads is not None:
        torch.set_num_threads(threads)
    with user_errors():  # missing weights: one line, before any training
        path = run_ablation(preset_name, data_dir, weights,
                            Path(runs_dir or f"runs/ablation-{ablation_name(preset_name, setup)}"),
                            Path(results_dir), only=list(only) or None, device=device,
                            log=say, devices=_device_list(devices), threads=threads, setup=setup,
                            switches=dict(amp=amp, channels_last=channels_last, fast_step=fast_step))
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone shows the table
        return
    click.echo(path.read_text())


@main.command("semi-supervised")
@click.option("--dataset", type=click.Choice(["mnist", "cifar10", "svhn", "synthetic-mnist"]), required=True)
@click.option("--data-dir", type=click.Path(), default=None)
@click.option("--labels", "label_counts", multiple=True, type=int,
              help="total labels (repeatable; default: the paper's: MNIST 20 50 100 200, CIFAR-10 1000-8000, SVHN 1000)")
@click.option("--seeds", default="1", show_default=True, help="comma-separated seeds, e.g. 1,2,3")
@click.option("--data-seed", type=int, default=None,
              help="draw every run's labelled examples with this seed (the original scripts' --seed_data, default 1 "
                   "there); without it each run draws them with its own seed")
@click.option("--setup", default=None,
              help="2016-06-08 (MNIST's default, the one that reproduces Table 1): the script as first published, lr "
                   "0.001 decaying to 0 over the last 100 epochs, tested with D's current weights; public (the "
                   "default elsewhere): the original scripts as last changed (MNIST: lr 0.003, moving-average test)")
@click.option("--runs", "runs_dir", type=click.Path(), default="runs/semi-supervised", show_default=True)
@click.option("--results", "results_dir", type=click.Path(), default=RESULTS, show_default=True,
              help="the folder the table goes to (made if needed)")
@click.option("--collect-only", is_flag=True, help="do not train: rewrite the table from the runs that exist")
@click.option("--device", default=None)
@click.option("--devices", default=None,
              help="comma-separated, e.g. cuda:0,cuda:1 or cpu,cpu: one process per device, runs spread over them "
                   "(under torchrun: one device per rank)")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (in each process)")
@click.option("--set", "settings", multiple=True, help="any TrainConfig field, key=value (repeatable)")
def semi_supervised_command(dataset, data_dir, label_counts, seeds, data_seed, setup, runs_dir, results_dir, collect_only,
                            device, devices, threads, settings) -> None:
    """Tables 1 and 2 and SVHN: train one run per (labels, seed), resumable, then write the table and the curves."""
    import torch

    from .semi_supervised import PAPER_SEMI_SUPERVISED, run_semi_supervised, write_semi_supervised_table

    if threads is not None:
        torch.set_num_threads(threads)
    counts = list(label_counts) or sorted(PAPER_SEMI_SUPERVISED[dataset.removeprefix("synthetic-")])
    overrides = _parse_overrides(settings)
    if device is not None:
        overrides["device"] = device
    with user_errors():
        if not collect_only:
            run_semi_supervised(dataset, counts, [int(s) for s in seeds.split(",")], data_dir, Path(runs_dir),
                                setup, log=say, devices=_device_list(devices), threads=threads, data_seed=data_seed,
                                **overrides)
        if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone writes the table
            return
        path = write_semi_supervised_table(dataset, Path(runs_dir), Path(results_dir))
    click.echo(path.read_text())
