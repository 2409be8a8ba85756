"""Table 3 (the CIFAR-10 ablation), regenerated: train the paper's six variants and one of ours, sample
each, score them and the real training images with :mod:`inception_score`, and write
``ablation-<preset>.md`` / ``.csv`` / ``.png`` with the provenance of the run (command, machine, commit,
date, the weights file's hash and whether it is the verified 2015 network) and, beside the table, every
choice the paper leaves open (``TABLE3_CHOICES``).

Two set-ups: ``public`` builds the variants on the original minibatch-discrimination script as last
changed (2016-06-14), ``2016-06-08`` on the same script as first published (``ablation-<preset>-2016-06-08.*``).

Variants are independent: each trains in its own folder (resumable) and may run on its own device or
process (:mod:`reference_gan.devices`); the table is written once, when every variant has samples.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from inception_score.atomic import write_atomic
from inception_score.engine.distributed import Group
from inception_score.cli.plot import save_figure

from .data import DataSet, load
from .devices import my_share, run_on_devices
from .config import TrainConfig
from .errors import ConfigError
from .presets import ABLATION_PRESETS, TABLE3_VARIANTS, AblationPreset, preset, table3_preset
from .records import provenance, provenance_markdown
from .train import Trainer

# --- the paper's numbers (its Table 3) ---------------------------------------------------------

# Table 3: Inception Score (mean, std over 10 splits) of 50,000 images. Our extra row has no paper number.
PAPER_TABLE3: dict[str, tuple[float, float]] = {
    "real": (11.24, 0.12),
    "our-methods": (8.09, 0.07),
    "minus-vbn-plus-bn": (7.54, 0.07),
    "minus-l-plus-ha": (6.86, 0.06),
    "minus-ls": (6.83, 0.06),
    "minus-l": (4.36, 0.04),
    "minus-mbf": (3.87, 0.03),
}
TABLE3_ROWS: dict[str, str] = {
    "real": "Real data",
    "our-methods": "Our methods",
    "minus-vbn-plus-bn": "-VBN+BN",
    "minus-l-plus-ha": "-L+HA",
    "minus-ls": "-LS",
    "minus-l": "-L",
    "minus-mbf": "-MBF",
    "minus-vbn-scale": "-VBN scale (ours)",  # VBN without its learned scale: not a row of the paper
}
VARIANTS = list(TABLE3_VARIANTS)  # the rows besides real data, in the paper's order, ours last


def ablation_name(preset_name: str, setup: str = "public") -> str:
    """The stem of a run's files and folder: ``smoke``, ``smoke-2016-06-08`` (named as the presets are)."""
    return table3_preset(preset_name, setup)


@dataclass(frozen=True)
class Choice:
    """One thing the paper leaves open for Table 3: what it says, what the released code does, what we do
    (the ``TrainConfig`` field that switches it) and why."""

    topic: str
    paper: str
    released_code: str
    ours: str
    why: str


# openai/improved-gan: bb3d27b (2016-06-08, first published), 30d4beb / 0fa06b5 (2016-06-14, the public
# CIFAR-10 scripts' last changes), f9b62d3 (2016-06-09, ImageNet code), 9ff96a7 (2016-06-21) and e0e5ffc
# (2017-05-19, its VBN fixes).
TABLE3_CHOICES: list[Choice] = [
    Choice("Script version", "not stated; Table 3's scripts were not released",
           "train_cifar_minibatch.py first published (bb3d27b, 2016-06-08): 500 epochs, lr 3e-4 * min(2.5 - "
           "epoch/200, 1), leaky ReLU 0.1, weight norm initialised per layer to scale 1, G not initialised from "
           "data, D's current weights tested; last changed (2016-06-14): 1200 epochs, min(3 - epoch/400, 1), leaky "
           "ReLU 0.2, per-unit initialisation, outputs at scale 0.1, G initialised, moving average tested",
           "`public` by default; `--setup 2016-06-08` builds every variant on the first version (fields "
           "`epochs`, `lr_constant_epochs`, `leaky_relu_slope`, `output_init_scale`, `init_statistics`, "
           "`generator_data_init`)",
           "the public version is the one the repository documents; the first one is closest to the paper "
           "(for MNIST it is the one that reproduces Table 1)"),
    Choice("Historical averaging weight (-L+HA)", "adds ‖θ − (1/t) Σ θ[i]‖² to each player's cost; no "
           "weight", "none (no released code has historical averaging)",
           "`historical_averaging=1.0`: the squared distance summed over all of each player's parameters, the mean "
           "online from the initial parameters",
           "the formula as written, weight 1. Measured over the first 100 iterations (partial CIFAR-10, batch 10, "
           "`benchmarks/results/historical-averaging.md`): at weight 1 its gradient is a median 0.45 of D's GAN "
           "gradient and 0.81 of G's, reversing the sign of 23% and 32% of their coordinates; at 0.1, 0.12 and "
           "0.42; at 10 it outweighs the GAN gradient (1.7 and 3.5)"),
    Choice("Label smoothing target", "one-sided: the real targets smoothed (to .9 in its example), the generated "
           "ones kept at 0",
           "ImageNet code: 0.75 (d_label_smooth=.25); CIFAR-10 code: none",
           "`label_smoothing=0.9` on the unlabelled real term (D(x) = Z/(Z+1) towards 0.9); the labelled term is "
           "not smoothed", "the paper's value"),
    Choice("Labels per class", "Table 3's label count is not stated",
           "the minibatch script's --count: 400 (hard-coded 400 when first published)",
           "`labels=\"400\"` (4,000 labels)", "the script's default"),
    Choice("G steps per D step in -MBF", "not stated",
           "the minibatch script: 3; the scripts without minibatch features (feature matching, another G loss): 1",
           "`g_steps=1` for -MBF, 3 for the others",
           "the plain schedule of every released script without the minibatch layer; `g_steps=3` removes the "
           "layer alone"),
    Choice("VBN statistics", "each example normalised with the reference batch's statistics combined with its own",
           "ImageNet code as released (2016-06-09): the whole batch's mean and mean square; per-example mean from "
           "2016-06-21, per-example mean square from 2017-05-19",
           "`vbn_statistics=\"per_example\"` (`\"batch\"` as first released)",
           "what the paper describes and what the code was fixed to"),
    Choice("VBN scale (-VBN+BN)", "not stated",
           "ImageNet VBN learns a scale (gamma); the CIFAR-10 generators' batch norm has none (g=None)",
           "`vbn_scale=True`; BN as the original, without scale; row -VBN scale (ours): VBN without its scale",
           "-VBN+BN changes the statistics and removes the scale at once; the extra row separates the two"),
    Choice("D without labels (-L, -L+HA)", "the labels are removed",
           "none (every released script uses labels)",
           "`unlabelled_single_logit=True`: a one-logit D, a plain GAN; False keeps K logits with D(x) = Z/(Z+1) "
           "and no supervised term", "the usual GAN when there are no classes to predict"),
]


def choices_markdown() -> str:
    """``TABLE3_CHOICES`` as a Markdown list, one item per choice (for ``ablation-<preset>.md`` and the docs)."""
    return "".join(f"- **{c.topic}.** The paper: {c.paper}. The released code: {c.released_code}. Ours: {c.ours}. "
                   f"Why: {c.why}.\n" for c in TABLE3_CHOICES)



def _variant_config(spec: AblationPreset, variant: str, data_dir: str | None, run_dir: Path, device: str,
                    setup: str = "public", switches: dict[str, bool] | None = None) -> TrainConfig:
    """``switches``: the speed switches of TrainConfig (``amp``, ``channels_last``, ``fast_step``) turned on."""
    config = preset(table3_preset(variant, setup), dataset=spec.dataset, data_dir=data_dir,
                    out_dir=str(run_dir / variant), device=device, **{**spec.overrides, **(switches or {})})
    if spec.labels is not None and config.uses_labels:
        config = dataclasses.replace(config, labels=spec.labels)
    return config


def _train_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    total = config.epochs * steps_per_epoch
    return total if config.max_steps is None else min(total, config.max_steps)


def _to_uint8_nhwc(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Training images ``(N, C, H, W)`` floats in ``value_range`` -> ``(N, H, W, C)`` uint8."""
    low, high = value_range
    pixels = np.clip(np.round((images - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)
    return pixels.transpose(0, 2, 3, 1)


def train_and_sample(config: TrainConfig, samples: int, data: DataSet | None = None, seed: int = 0,
                     log: Callable[[str], None] = print) -> np.ndarray:
    """Train ``config`` (resuming its folder's checkpoint) unless its ``samples.npz`` exists, then write
    and return ``samples`` generated images, uint8 ``(N, H, W, C)``."""
    folder = Path(config.out_dir)
    path = folder / "samples.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as archive:
            if len(archive["images"]) == samples:
                log(f"{folder.name}: trained and sampled already ({path})")
                return archive["images"]
    trainer = Trainer(config, data)
    checkpoint = folder / "checkpoint.pt"
    begin = time.perf_counter()
    trainer.run(checkpoint if checkpoint.is_file() else None, log=False)
    log(f"{folder.name}: {trainer.state.step} steps in {time.perf_counter() - begin:.0f} s")
    torch.manual_seed(seed)
    images = trainer.sample(samples)
    write_atomic(path, lambda handle: np.savez(handle, images=images))
    return images


@dataclass(frozen=True)
class ScoreRow:
    variant: str
    mean: float
    std: float
    num_images: int
    steps: int | None  # training steps; None for real data


def run_ablation(preset_name: str, data_dir: str | None, weights: str | None, run_dir: Path,
                 results_dir: Path, only: list[str] | None = None, device: str | None = None,
                 allow_unverified: bool = True, log: Callable[[str], None] = print,
                 devices: list[str] | None = None, threads: int | None = None, setup: str = "public",
                 switches: dict[str, bool] | None = None) -> Path:
    """Train, sample and score the Table 3 variants of ``preset_name`` (built on the script version
    ``setup``) and write the table.

    ``only`` restricts training to some variants (the table then holds every variant that has
    samples in ``run_dir``, so variants may be run one at a time). ``devices`` (or torchrun) spreads
    the variants over one process per device; the samples are then scored by all of them together
    with the distributed scorer. ``switches`` turns on TrainConfig's speed switches for every variant
    (the table says which). Returns the Markdown file's path.
    """
    spec = ABLATION_PRESETS[preset_name]
    name = ablation_name(preset_name, setup)
    unknown = set(only or []) - set(VARIANTS)
    if unknown:
        raise ConfigError(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    if devices is None:
        devices = [device or spec.device]
    if len(devices) > 1:  # a missing weights file: one line, before any process starts training
        _check_weights(weights, allow_unverified)
    run_on_devices(devices, _ablation_process, preset_name, data_dir, weights, run_dir, results_dir, only,
                   allow_unverified, log, setup, switches or {}, threads=threads)
    return results_dir / f"ablation-{name}.md"


def _check_weights(weights: str | None, allow_unverified: bool) -> None:
    import inception_score

    inception_score.InceptionScorer(weights, device="cpu", allow_unverified=allow_unverified, progress=False)


def _ablation_process(group: Group | None, device: str, preset_name: str, data_dir: str | None, weights: str | None,
                      run_dir: Path, results_dir: Path, only: list[str] | None, allow_unverified: bool,
                      log: Callable[[str], None], setup: str = "public", switches: dict[str, bool] | None = None) -> None:
    """One process's part: train and sample its share of the variants, then score every variant with
    the others (the distributed scorer when there are others); rank 0 writes the table."""
    from inception_score import InceptionScorer, inception_score
    from inception_score.engine.distributed import agree

    spec = ABLATION_PRESETS[preset_name]
    torch_device = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    main_rank = group is None or group.is_main
    say = log if main_rank else (lambda line: None)
    data = load(spec.dataset, Path(data_dir) if data_dir else None)
    scorer = InceptionScorer(weights, device=torch_device, allow_unverified=allow_unverified, progress=False)
    begin = time.perf_counter()
    wanted = [v for v in VARIANTS if only is None or v in only]
    say(expected_time(spec, data, scorer, torch_device, wanted, setup, switches))
    configs = {v: _variant_config(spec, v, data_dir, run_dir, torch_device, setup, switches) for v in VARIANTS}
    error: BaseException | None = None
    try:
        for variant in my_share(wanted, group):
            train_and_sample(configs[variant], spec.samples, data, log=log)
    except Exception as caught:  # noqa: BLE001 - the other processes must hear of it
        if group is None:
            raise
        error = caught
    if group is not None:
        agree(group, error)  # waits for every process's training, and stops all if one failed

    rows, images_by_row = [], {}
    for variant in VARIANTS:
        path = Path(configs[variant].out_dir) / "samples.npz"
        if not path.is_file():
            continue
        with np.load(path, allow_pickle=False) as archive:
            images = archive["images"]
        result = inception_score(images, splits=spec.splits, scorer=scorer, distributed=group is not None)
        config = configs[variant]
        steps = _train_steps(config, config.steps_per_epoch or len(data.train_x) // config.batch_size)
        rows.append(ScoreRow(variant, result.mean, result.std, result.num_images, steps))
        images_by_row[variant] = images
        say(f"{variant}: IS {result.mean:.3f} ± {result.std:.3f}")
    real = _to_uint8_nhwc(data.train_x[: spec.real_images], data.value_range)
    result = inception_score(real, splits=spec.splits, scorer=scorer, distributed=group is not None)
    rows.insert(0, ScoreRow("real", result.mean, result.std, result.num_images, None))
    images_by_row = {"real": real, **images_by_row}
    say(f"real: IS {result.mean:.3f} ± {result.std:.3f}")
    if not main_rank:
        return

    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / f"ablation-{ablation_name(preset_name, setup)}"
    processes = 1 if group is None else group.world_size
    info = {**provenance(torch_device), "weights": result.weights_path, "weights sha256": result.weights_sha256,
            "weights verified": str(result.weights_verified), "data": f"{spec.dataset} ({len(data.train_x)} training images)",
            "processes": str(processes), "wall time": f"{time.perf_counter() - begin:.0f} s"}
    on = [name for name, value in (switches or {}).items() if value]
    if on:  # they change the kernels: the table is then not comparable bit for bit with a default run
        info["speed switches"] = ", ".join(on)
    write_ablation_csv(rows, stem.with_suffix(".csv"))
    save_ablation_figure(images_by_row, stem.with_suffix(".png"))
    write_atomic(stem.with_suffix(".md"), ablation_markdown(preset_name, spec, rows, info, result.weights_verified, setup))


def expected_time(spec: AblationPreset, data: DataSet, scorer: Any, device: str, variants: list[str],
                  setup: str = "public", switches: dict[str, bool] | None = None) -> str:
    """A run-time estimate from timing one training step of the first variant and one scoring batch."""
    config = _variant_config(spec, variants[0], None, Path("/nonexistent"), device, setup, switches)
    trainer = Trainer(config, data)
    if config.fast_step:  # the first step compiles: time the second
        trainer.step(trainer.epoch_orders(0), 0, config.lr)
        trainer.wait()
    begin = time.perf_counter()
    trainer.step(trainer.epoch_orders(0), 0, config.lr)
    trainer.wait()  # the step only queues its work on a GPU
    per_step = time.perf_counter() - begin
    batch = torch.randint(0, 256, (min(16, spec.samples), 3, 32, 32), dtype=torch.uint8)
    begin = time.perf_counter()
    scorer.logits(batch)
    per_image = (time.perf_counter() - begin) / len(batch)
    steps = sum(_train_steps(_variant_config(spec, v, None, Path("/nonexistent"), device, setup),
                             trainer.steps_per_epoch) for v in variants)
    images = len(variants) * spec.samples + spec.real_images
    seconds = steps * per_step + images * per_image
    return (f"expected run time: {_duration(seconds)} ({steps} training steps at ~{per_step:.2f} s, timed on "
            f"{variants[0]}; {images} images scored at ~{1 / per_image:.1f} img/s)")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def write_ablation_csv(rows: list[ScoreRow], path: Path) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["variant", "row", "is_mean", "is_std", "num_images", "train_steps", "paper_mean", "paper_std"])
    for row in rows:
        paper = PAPER_TABLE3.get(row.variant, ("", ""))  # our extra row: no paper number
        writer.writerow([row.variant, TABLE3_ROWS[row.variant], f"{row.mean:.6f}", f"{row.std:.6f}", row.num_images,
                         "" if row.steps is None else row.steps, paper[0], paper[1]])
    write_atomic(path, text.getvalue())


def ablation_markdown(preset_name: str, spec: AblationPreset, rows: list[ScoreRow], info: dict[str, str],
                      verified: bool, setup: str = "public") -> str:
    where = f"preset `{preset_name}`" + ("" if setup == "public" else f", set-up `{setup}`")
    if verified:
        title = f"# Table 3 (ablation), {where}: Inception Scores with the verified 2015 network"
        caveat = ""
    else:
        title = (f"# Table 3 (ablation), {where}: NOT Inception Scores "
                 f"(the weights are not the verified 2015 network, so these numbers cannot be compared with the paper's)")
        caveat = ("The weights file used here is not the genuine 2015-12-05 Inception network (its sha256 is not one "
                  "of the known files). The numbers compare the variants with each other only.\n\n")
    if spec.samples < 50_000:
        caveat += (f"Each variant was trained for a few steps only and scored on {spec.samples} samples "
                   f"(the paper: fully trained, 50,000 samples): a test of the pipeline, not a reproduction.\n\n")
    lines = [title, "", caveat + provenance_markdown(info), "",
             "| model | paper IS | this run | images | training steps |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        paper = PAPER_TABLE3.get(row.variant)
        reference = "—" if paper is None else f"{paper[0]:.2f} ± {paper[1]:.2f}"
        steps = "" if row.steps is None else str(row.steps)
        lines.append(f"| {TABLE3_ROWS[row.variant]} | {reference} | {row.mean:.2f} ± {row.std:.2f} "
                     f"| {row.num_images} | {steps} |")
    missing = [TABLE3_ROWS[v] for v in VARIANTS if v not in {r.variant for r in rows}]
    if missing:
        lines += ["", f"Not yet run: {', '.join(missing)}."]
    name = ablation_name(preset_name, setup)
    lines += ["", f"Samples: `ablation-{name}.png` (one row per model, the first of real training images).", "",
              "-VBN scale (ours) is not a row of the paper (no paper number): VBN without its learned scale, so that "
              "-VBN+BN (VBN with a scale replaced by batch norm without one) can be read as two steps.", "",
              "## What the paper leaves open, and what this run chose", "",
              f"Set-up `{setup}`: every variant is built on the original train_cifar_minibatch_discrimination.py "
              + ("as last changed (2016-06-14)." if setup == "public" else
                 "as first published (train_cifar_minibatch.py, bb3d27b, 2016-06-08)."), "", choices_markdown()]
    return "\n".join(lines).rstrip("\n") + "\n"


def save_ablation_figure(images_by_row: dict[str, np.ndarray], path: Path, per_row: int = 10) -> None:
    """One row of ``per_row`` images per model, labelled, real data first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(images_by_row)
    fig, axes = plt.subplots(len(rows), 1, figsize=(per_row * 0.7 + 1.6, len(rows) * 0.8 + 0.2), squeeze=False)
    for axis, name in zip(axes[:, 0], rows):
        images = images_by_row[name][:per_row]
        h, w, c = images.shape[1:]
        strip = np.full((h, per_row * (w + 2), c), 255, dtype=np.uint8)
        for k, image in enumerate(images):
            strip[:, k * (w + 2) : k * (w + 2) + w] = image
        axis.imshow(strip[:, :, 0] if c == 1 else strip, cmap="gray" if c == 1 else None, interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(TABLE3_ROWS.get(name, name), rotation=0, ha="right", va="center", fontsize=9)
        for side in axis.spines.values():
            side.set_visible(False)
    save_figure(fig, path, dpi=120)
