"""The semi-supervised results (Table 1: MNIST, Table 2: CIFAR-10, and SVHN), regenerated: one preset
trained for several label counts and seeds (one folder per run, resumable), then every run collected
into ``semi-supervised-<dataset>.md`` (errors as the paper reports them, mean ± std over finished
seeds, every run listed) and a learning-curve PNG.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from inception_score.score import strict_json
from inception_score.engine.distributed import Group
from inception_score.atomic import write_atomic
from inception_score.cli.plot import save_figure

from .config import TrainConfig
from .devices import my_share, run_on_devices
from .errors import ConfigError, RecordError
from .presets import SEMI_SUPERVISED_SETUPS, default_setup, preset, semi_supervised_setup
from .records import provenance, provenance_markdown
from .train import Trainer


# Semi-supervised results: total labels -> (mean, std) over seeds.
# MNIST: test errors out of 10,000 (Table 1); CIFAR-10 and SVHN: test error in % (Table 2, text).
PAPER_SEMI_SUPERVISED: dict[str, dict[int, tuple[float, float]]] = {
    "mnist": {20: (1677, 452), 50: (221, 136), 100: (93, 6.5), 200: (90, 4.2)},
    "cifar10": {1000: (21.83, 2.01), 2000: (19.61, 2.09), 4000: (18.63, 2.32), 8000: (17.72, 1.82)},
    "svhn": {1000: (8.11, 1.3)},
}


# How to run each, and on what (the times: measured on the 2-core CPU the texts name).
SEMI_SUPERVISED_HOWTO = {
    "mnist": ("python benchmarks/semi_supervised.py --dataset mnist --data-dir MNIST_DIR --labels 100 --seeds 1,2,3",
              "CPU is enough: 300 epochs of 600 iterations, measured at 22-28 s per epoch with torch's two threads "
              "on a 2-core AMD EPYC (about 2 hours per seed; on a busy machine add --threads 1). Add "
              "`--setup public` for the script as last changed (it does not reproduce Table 1), and `--data-seed 1` to "
              "draw one labelled set for every seed, as the original script's `--seed_data` does by default."),
    "cifar10": ("python benchmarks/semi_supervised.py --dataset cifar10 --data-dir cifar-10-batches-py --labels 4000 --seeds 1 --device cuda",
                "A GPU: 1200 epochs of 500 iterations of a 9-layer convolutional D; one iteration at batch 100 "
                "took 4.2 s with two threads on a 2-core AMD EPYC, about 29 days per run on that CPU."),
    "svhn": ("python benchmarks/semi_supervised.py --dataset svhn --data-dir SVHN_DIR --labels 1000 --seeds 1 --device cuda",
             "A GPU, as CIFAR-10: 900 epochs of 732 iterations of a narrower 9-layer convolutional D (the original "
             "SVHN script's); one iteration at batch 100 took 1.9 s with two threads on a 2-core AMD EPYC, about "
             "15 days per run on that CPU."),
}



def labels_per_class(total_labels: int, num_classes: int = 10) -> int:
    if total_labels % num_classes:
        raise ConfigError(f"{total_labels} labels cannot be balanced over {num_classes} classes")
    return total_labels // num_classes


def setup_folder(dataset: str, setup: str | None = None) -> str:
    """The folder of a set-up's runs under the runs folder: ``<dataset>-<set-up>``."""
    return f"{dataset}-{setup or default_setup(dataset)}"


def seed_folder(seed: int, data_seed: int | None = None) -> str:
    """``seed-<seed>`` when the labelled set is drawn with the run's own seed (the default), else
    ``seed-<seed>-data-<data_seed>``: seed 1 with data seed 1 is one run under both protocols."""
    return f"seed-{seed}" if data_seed is None or data_seed == seed else f"seed-{seed}-data-{data_seed}"


def parse_seed_folder(name: str) -> tuple[int, int]:
    """(seed, data seed) of a folder named by :func:`seed_folder`."""
    parts = name.split("-")
    if len(parts) == 2 and parts[0] == "seed" and parts[1].isdigit():
        return int(parts[1]), int(parts[1])
    if len(parts) == 4 and parts[0] == "seed" and parts[2] == "data" and parts[1].isdigit() and parts[3].isdigit():
        return int(parts[1]), int(parts[3])
    raise RecordError(f"{name!r} is not a run folder (seed-N or seed-N-data-M)")


def semi_supervised_run_dir(runs_dir: Path, dataset: str, total_labels: int, seed: int, setup: str | None = None,
                            data_seed: int | None = None) -> Path:
    return Path(runs_dir) / setup_folder(dataset, setup) / f"labels-{total_labels}" / seed_folder(seed, data_seed)


def semi_supervised_config(dataset: str, total_labels: int, seed: int, data_dir: str | None, runs_dir: Path, /,
                           setup: str | None = None, data_seed: int | None = None, **overrides: Any) -> TrainConfig:
    """The preset of ``dataset``'s ``setup`` with ``total_labels`` labels (balanced), seeding the model with
    ``seed`` and the choice of labelled examples with ``data_seed`` (default: ``seed`` too; the original
    scripts' ``--seed_data`` defaults to 1 whatever ``--seed`` is), writing into its own folder under ``runs_dir``."""
    name = semi_supervised_setup(dataset, setup).preset
    data_seed = seed if data_seed is None else data_seed
    fields = dict(labels=str(labels_per_class(total_labels)), seed=seed, data_seed=data_seed, data_dir=data_dir,
                  out_dir=str(semi_supervised_run_dir(runs_dir, dataset, total_labels, seed, setup, data_seed)))
    if dataset.startswith("synthetic"):
        fields["dataset"] = dataset
    return preset(name, **{**fields, **overrides})


def run_semi_supervised(dataset: str, label_counts: list[int], seeds: list[int], data_dir: str | None, runs_dir: Path, /,
                        setup: str | None = None, log: Callable[[str], None] = print, devices: list[str] | None = None,
                        threads: int | None = None, data_seed: int | None = None, **overrides: Any) -> list[Path]:
    """Train (or resume) one run per (label count, seed), every one drawing its labelled examples with
    ``data_seed`` when given (else with its own seed); returns their folders. ``devices`` (or
    torchrun) spreads the runs over one process per device. The leading arguments are positional-only
    so that ``overrides`` may hold a ``dataset`` too (a table's set-up on other images, e.g. synthetic
    ones in tests)."""
    semi_supervised_setup(dataset, setup)  # an unknown set-up fails before any training
    runs = [(total, seed) for total in label_counts for seed in seeds]
    configs = [semi_supervised_config(dataset, total, seed, data_dir, runs_dir, setup, data_seed, **overrides)
               for total, seed in runs]
    run_on_devices(devices, _semi_supervised_process, dataset, runs, configs, log, threads=threads)
    return [Path(config.out_dir) for config in configs]


def _semi_supervised_process(group: Group | None, device: str | None, dataset: str, runs: list[tuple[int, int]],
                             configs: list[TrainConfig], log: Callable[[str], None]) -> None:
    """This process's share of the runs, on ``device``; returns when every process is done."""
    from inception_score.engine.distributed import agree

    error: BaseException | None = None
    try:
        for (total, seed), config in my_share(list(zip(runs, configs)), group):
            if device is not None:
                config = dataclasses.replace(config, device=device)
            folder = Path(config.out_dir)
            checkpoint = folder / "checkpoint.pt"
            log(f"{dataset}, {total} labels, seed {seed}: {folder}" + (" (resuming)" if checkpoint.is_file() else ""))
            Trainer(config).run(checkpoint if checkpoint.is_file() else None)
    except Exception as caught:  # noqa: BLE001 - the other processes must hear of it
        if group is None:
            raise
        error = caught
    if group is not None:
        agree(group, error)


@dataclass(frozen=True)
class SemiSupervisedRun:
    setup: str
    total_labels: int
    seed: int
    data_seed: int  # the seed that drew the labelled examples
    epochs_done: int
    epochs_planned: int | None
    history: list[dict]  # the evaluated epochs
    errors: list[float]  # the set-up's test error (see SemiSupervisedSetup.tested_with) of each, a fraction
    seconds: float  # training and evaluation time over every epoch recorded
    record: Path  # the run's per-epoch record (metrics.jsonl)

    @property
    def finished(self) -> bool:
        return self.epochs_planned is not None and self.epochs_done >= self.epochs_planned

    @property
    def final_error(self) -> float:
        return self.errors[-1]


def _run_from_history(setup: str, key: str, total_labels: int, seed: int, data_seed: int, history: list[dict],
                      planned: int | None, record: Path) -> SemiSupervisedRun | None:
    evaluated = [r for r in history if r.get(key) is not None and not math.isnan(r[key])]
    if not evaluated:
        return None
    return SemiSupervisedRun(setup, total_labels, seed, data_seed, history[-1]["epoch"], planned, evaluated,
                             [r[key] for r in evaluated], sum(r.get("seconds", 0.0) for r in history), record)


def _read_history(path: Path) -> list[dict]:
    return [_parsed(line, path) for line in path.read_text().splitlines() if line.strip()]


def _parsed(text: str, path: Path) -> Any:
    """The JSON ``text`` read from ``path``; a damaged file is named."""
    try:
        return json.loads(text)
    except ValueError as error:
        raise RecordError(f"{path} is damaged ({error}): move it out of the runs (or results) folder, or "
                          "rerun that run") from None


def collect_semi_supervised(dataset: str, runs_dir: Path, setup: str | None = None) -> list[SemiSupervisedRun]:
    """Every run of ``setup`` under ``runs_dir`` with at least one evaluated epoch."""
    setup = setup or default_setup(dataset)
    key = semi_supervised_setup(dataset, setup).error_key
    runs = []
    for metrics in sorted(Path(runs_dir, setup_folder(dataset, setup)).glob("labels-*/seed-*/metrics.jsonl")):
        seed, data_seed = parse_seed_folder(metrics.parent.name)
        planned = None
        config_file = metrics.parent / "config.json"
        if config_file.is_file():  # plain JSON: collecting reads no pickle
            config = _parsed(config_file.read_text(), config_file)
            planned = config["epochs"] if config.get("max_steps") is None else None
            data_seed = config.get("data_seed", data_seed)
        labels = metrics.parent.parent.name.removeprefix("labels-")
        if not labels.isdigit():
            raise RecordError(f"{metrics.parent.parent} is not a run folder (labels-N)")
        run = _run_from_history(setup, key, int(labels), seed, data_seed,
                                _read_history(metrics), planned, metrics)
        if run is not None:
            runs.append(run)
    return runs


def collect_recorded(dataset: str, results_dir: Path, setup: str | None = None) -> list[SemiSupervisedRun]:
    """The runs of ``setup`` whose per-epoch records were copied beside the table (by
    :func:`write_semi_supervised_table`), for runs whose folders are no longer there; a record holds
    every evaluated epoch, and the epochs planned are the preset's."""
    setup = setup or default_setup(dataset)
    spec = semi_supervised_setup(dataset, setup)
    planned = preset(spec.preset).epochs
    prefix = f"semi-supervised-{dataset}-{setup}-labels-"
    runs = []
    for record in sorted(Path(results_dir).glob(f"{prefix}*.jsonl")):
        labels, _, folder = record.name[len(prefix):-len(".jsonl")].partition("-")
        try:
            seed, data_seed = parse_seed_folder(folder)
            total = int(labels)
        except ValueError:
            continue
        run = _run_from_history(setup, spec.error_key, total, seed, data_seed, _read_history(record), planned, record)
        if run is not None:
            runs.append(run)
    return runs


def fixed_data_seeds(runs: list[SemiSupervisedRun]) -> list[int]:
    """The data seeds that some run draws its labelled examples with while its own seed differs."""
    return sorted({r.data_seed for r in runs if r.data_seed != r.seed})


def protocol_runs(runs: list[SemiSupervisedRun], data_seed: int | None) -> list[SemiSupervisedRun]:
    """The runs of one protocol: ``None``, each seed draws its own labelled set; ``D``, every seed uses
    data seed D (so the run with seed D belongs to both)."""
    if data_seed is None:
        return [r for r in runs if r.data_seed == r.seed]
    return [r for r in runs if r.data_seed == data_seed]


MIN_SEEDS_FOR_VERDICT = 4
VERDICT_LEVEL = 0.05  # two-sided significance level of the verdict's reading of its F-tests


def spread_verdict(total: int, data_seed: int, fixed: list[float], new_sets: list[float],
                   paper: tuple[float, float] | None, paper_seeds: int = 10) -> str:
    """Whether one labelled set's spread over seeds differs from a new set per seed's, and from the
    paper's (over ``paper_seeds`` seeds): two-sided F-tests of the sample variances."""
    from scipy import stats

    head = f"**{total} labels, data seed {data_seed}:**"
    if len(fixed) < MIN_SEEDS_FOR_VERDICT:
        return f"{head} verdict pending: {len(fixed)} of the {MIN_SEEDS_FOR_VERDICT} finished seeds it needs."

    def f_test(a_sd: float, a_n: int, b_sd: float, b_n: int) -> tuple[str, float, float]:
        ratio = a_sd**2 / b_sd**2
        tail = stats.f.sf(ratio, a_n - 1, b_n - 1) if ratio > 1 else stats.f.cdf(ratio, a_n - 1, b_n - 1)
        p = min(1.0, 2 * tail)
        return f"F = {ratio:.2f} on ({a_n - 1}, {b_n - 1}) degrees of freedom, two-sided p = {p:.3f}", ratio, p

    def reading(ratio: float, p: float, other: str) -> str:
        if p >= VERDICT_LEVEL:
            return f"not distinguishable from {other}"
        return f"{'larger' if ratio > 1 else 'smaller'} than {other}"

    sd = float(np.std(fixed, ddof=1))
    parts, readings = [f"{head} sample std {sd:.1f} over {len(fixed)} seeds"], []
    if len(new_sets) > 1:
        new_sd = float(np.std(new_sets, ddof=1))
        text, ratio, p = f_test(sd, len(fixed), new_sd, len(new_sets))
        parts.append(f"against {new_sd:.1f} over {len(new_sets)} seeds with a new set each: {text}")
        readings.append(reading(ratio, p, "the spread with a new set per seed"))
    if paper is not None:
        text, ratio, p = f_test(sd, len(fixed), paper[1], paper_seeds)
        parts.append(f"against the paper's {paper[1]:g} over {paper_seeds} seeds: {text}")
        readings.append(reading(ratio, p, "the paper's"))
    verdict = "; ".join(parts) + "."
    if readings:
        verdict += (f" At the {VERDICT_LEVEL:.0%} level, the spread with one labelled set is "
                    + " and ".join(readings) + ".")
    return verdict


def _error_unit(dataset: str, test_images: int) -> tuple[Callable[[float], float], str]:
    """MNIST errors as counts out of the test set (Table 1), the others in %."""
    if dataset.endswith("mnist"):
        return (lambda fraction: fraction * test_images), f"test errors out of {test_images:,}"
    return (lambda fraction: fraction * 100.0), "test error %"


def _setup_markdown(dataset: str, setup: str, runs: list[SemiSupervisedRun], convert: Callable[[float], float]) -> list[str]:
    spec = semi_supervised_setup(dataset, setup)
    paper = PAPER_SEMI_SUPERVISED.get(dataset.removeprefix("synthetic-"), {})
    option = " (the default)" if setup == default_setup(dataset) else f" (`--setup {setup}`)"
    weights = "the moving average of D's weights" if spec.tested_with == "average" else "D's current weights"
    lines = [f"## Set-up `{setup}`{option}: preset `{spec.preset}`", "", f"{spec.description}. Error of {weights} "
             "after the last epoch; mean ± sample std over seeds, counting finished runs only; every run is listed "
             "below, none dropped.", "", "| labels | paper | this run (finished seeds) | seeds |", "| --- | --- | --- | --- |"]
    counts = sorted(set(paper) | {r.total_labels for r in runs})
    verdicts = []
    for total in counts:
        reference = f"{paper[total][0]:g} ± {paper[total][1]:g}" if total in paper else ""
        for data_seed in [None, *fixed_data_seeds([r for r in runs if r.total_labels == total])]:
            group = protocol_runs([r for r in runs if r.total_labels == total], data_seed)
            finished = [convert(r.final_error) for r in group if r.finished]
            if finished:
                spread = f" ± {np.std(finished, ddof=1):.1f}" if len(finished) > 1 else ""
                ours = f"{np.mean(finished):.1f}{spread}"
            elif group:
                ours = "running (no finished seed yet)"
            else:
                ours = "not yet run"
            label = f"{total}" if data_seed is None else f"{total}, one labelled set (data seed {data_seed}) for every seed"
            lines.append(f"| {label} | {reference} | {ours} | {len(finished)} |")
            if data_seed is not None:
                new_set = [convert(r.final_error) for r in protocol_runs(runs, None) if r.total_labels == total and r.finished]
                verdicts.append(spread_verdict(total, data_seed, finished, new_set, paper.get(total)))
    if any(r.data_seed != r.seed for r in runs):
        lines += ["", "A row `N` draws each seed's labelled examples with that seed (a new labelled set per seed); a row "
                  "`N, one labelled set (data seed D)` draws them with D for every seed, as the original scripts do "
                  "by default (`--seed_data 1`); seed D itself belongs to both.", "", *verdicts]
    if runs:
        lines += ["", "| labels | seed | epochs done / planned | error | lowest error seen (epoch) | time (h) | per-epoch record |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in runs:
            best = int(np.argmin(r.errors))
            planned = r.epochs_planned if r.epochs_planned is not None else "?"
            seed = f"{r.seed}" if r.data_seed == r.seed else f"{r.seed} (data {r.data_seed})"
            lines.append(f"| {r.total_labels} | {seed} | {r.epochs_done} / {planned} | {convert(r.final_error):.1f} "
                         f"| {convert(r.errors[best]):.1f} ({r.history[best]['epoch']}) | {r.seconds / 3600:.2f} "
                         f"| `{record_name(dataset, r)}` |")
    return lines


# Why a data set has more than one set-up, for its table.
WHY_SETUPS = {
    "mnist": ("Two set-ups, because the public script changed two days after the paper appeared: as first "
              "published (bb3d27b, 2016-06-08) it trains with Adam lr 0.001, decaying linearly to 0 over the last "
              "100 epochs, and tests D's current weights; the version of 2016-06-14 (0fa06b5, `public`) trains with "
              "lr 0.003 throughout and tests a moving average of D's weights. Model, losses, data and optimiser are "
              "otherwise the same. The first-published one is the default: it is the one whose results match the "
              "paper's Table 1 (see the rows below); the later one is kept as `--setup public`."),
}


def semi_supervised_markdown(dataset: str, runs: list[SemiSupervisedRun], info: dict[str, str],
                             test_images: int) -> str:
    """One section per set-up: the default one always, the others when they have runs."""
    convert, unit = _error_unit(dataset, test_images)
    lines = [f"# Semi-supervised {dataset}: {unit}, feature matching", ""]
    howto = SEMI_SUPERVISED_HOWTO.get(dataset)
    if howto is not None:
        lines.append(f"To run or resume (one folder per set-up, labels and seed; rerunning continues): `{howto[0]}`. "
                     f"{howto[1]}\n")
    lines += [provenance_markdown(info)]
    if dataset in WHY_SETUPS:
        lines += [WHY_SETUPS[dataset], ""]
    setups = [default_setup(dataset)] + sorted({r.setup for r in runs} - {default_setup(dataset)})
    for setup in setups:
        lines += _setup_markdown(dataset, setup, [r for r in runs if r.setup == setup], convert) + [""]
    if runs:
        lines.append(f"Learning curves: `semi-supervised-{dataset}.png`.")
    return "\n".join(lines).rstrip("\n") + "\n"


def save_learning_curves(dataset: str, runs: list[SemiSupervisedRun], path: Path, test_images: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    convert, unit = _error_unit(dataset, test_images)
    fig, axis = plt.subplots(figsize=(6.4, 4.0))
    positive = False
    for r in runs:
        epochs = [h["epoch"] for h in r.history]
        weights = semi_supervised_setup(dataset, r.setup).tested_with
        values = [convert(e) for e in r.errors]
        positive = positive or any(v > 0 for v in values)
        axis.plot(epochs, values, label=f"{r.setup}: {r.total_labels} labels, seed {r.seed} ({weights} weights)")
    axis.set_xlabel("epoch")
    axis.set_ylabel(unit)
    if positive:  # a log axis needs a positive value; a run can make no errors, or have no test set
        axis.set_yscale("log")
    axis.set_title(f"{dataset}: test error of D")
    axis.legend(fontsize=8)
    save_figure(fig, path, dpi=120)


def record_name(dataset: str, run: SemiSupervisedRun) -> str:
    """The file name of a run's per-epoch record beside the table."""
    return f"semi-supervised-{dataset}-{run.setup}-labels-{run.total_labels}-{seed_folder(run.seed, run.data_seed)}.jsonl"


def run_summary(dataset: str, run: SemiSupervisedRun, test_images: int) -> dict[str, Any]:
    """One run as ``semi-supervised-<dataset>.json`` lists it (errors as the table shows them)."""
    convert, _ = _error_unit(dataset, test_images)
    return {"labels": run.total_labels, "seed": run.seed, "data_seed": run.data_seed, "setup": run.setup,
            "epochs": run.epochs_done, "epochs_planned": run.epochs_planned, "finished": run.finished,
            "test_errors": round(convert(run.final_error), 6), "lowest_test_errors": round(convert(min(run.errors)), 6),
            "hours": run.seconds / 3600, "record": record_name(dataset, run)}


def write_semi_supervised_table(dataset: str, runs_dir: Path, results_dir: Path) -> Path:
    """Collect every set-up's runs of ``dataset`` into ``semi-supervised-<dataset>.md`` (+ ``.png`` when
    runs exist) and ``semi-supervised-<dataset>.json`` (every run, machine-readable). The runs are those
    under ``runs_dir``, and those whose per-epoch records lie in ``results_dir`` from an earlier
    collection while their folders are gone; a folder's record wins over a copied one."""
    results_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for setup in SEMI_SUPERVISED_SETUPS[dataset.removeprefix("synthetic-")]:
        found = collect_semi_supervised(dataset, runs_dir, setup)
        present = {(r.total_labels, r.seed, r.data_seed) for r in found}
        found += [r for r in collect_recorded(dataset, results_dir, setup)
                  if (r.total_labels, r.seed, r.data_seed) not in present]
        runs += sorted(found, key=lambda r: (r.total_labels, r.data_seed != r.seed, r.seed))
    recorded = {h["test_images"] for r in runs for h in r.history if "test_images" in h}
    test_images = recorded.pop() if len(recorded) == 1 else {"mnist": 10_000, "cifar10": 10_000, "svhn": 26_032}.get(dataset, 0)
    for run in runs:  # every number in the table comes with its run's per-epoch record
        copy = results_dir / record_name(dataset, run)
        if run.record.resolve() != copy.resolve():
            write_atomic(copy, run.record.read_bytes())
    path = results_dir / f"semi-supervised-{dataset}.md"
    write_atomic(path, semi_supervised_markdown(dataset, runs, {**provenance(), "runs": str(runs_dir)}, test_images))
    listing = {"runs": [run_summary(dataset, run, test_images) for run in runs]}
    write_atomic(path.with_suffix(".json"), strict_json.dumps(listing, indent=1) + "\n")
    if runs:
        save_learning_curves(dataset, runs, path.with_suffix(".png"), test_images)
    return path
