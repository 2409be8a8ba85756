"""Calibrates the split-order diagnostic (``inception_score.score.order``) on genuine CIFAR-10 images.

    python benchmarks/order_diagnostic.py --weights dev-weights.pth \\
        --cifar10-partial cifar10_prefix_partial.npz --images 2000 --orders 2500 \\
        --logits-cache /tmp/order-logits.npz     # writes benchmarks/results/order-diagnostic.md

The network runs once: the logits of the first ``--images`` images of the partial CIFAR-10
(data_batch_1, then data_batch_2, ...) are cached in ``--logits-cache`` and reused; each order is a
permutation of those logits, not of the images. For each N in {200, 500, 1000, 2000} (those not
above ``--images``, plus ``--images`` itself) with 10 splits, for the smallest N with 2 and 20
splits and for the largest with 2, 5 and 20, the ratio R of
:func:`inception_score.score.order.order_diagnostic` is measured on ``--orders`` seeded random orders of
the first N images (false alarms, spread, 99th and 99.9th percentiles, maximum), on the order sorted
by CIFAR label (what a class_0/ ... class_9/ folder gives), on blocky orders (runs of 10 or 50
images of one class, the runs shuffled) and on CIFAR's own order. With ``--folders`` the command
itself then scores 200 of the images as PNG files in class_0/ ... class_9/ and in one folder under
shuffled names (the network runs on 400 images).

With the development weights (genuine convolutions, seeded random fc) the split scores are NOT
Inception Scores; the diagnostic only needs p(y|x) to vary with the class, which it does.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS_DIR, provenance_markdown  # noqa: E402

SIZES = (200, 500, 1000, 2000)
SPLITS = 10
BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def genuine_cifar10(path: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` images of the partial CIFAR-10 npz: ``(count, 3, 32, 32) uint8`` and labels ``(count,)``."""
    archive = np.load(path)
    images, labels = [], []
    for name in BATCHES:
        rows = archive[f"{name}_data_prefix"]
        images.append(rows)
        labels.append(archive[f"{name}_labels"][: len(rows)])
    images_all = np.concatenate(images)
    if len(images_all) < count:
        raise click.BadParameter(f"{path} holds {len(images_all)} images, fewer than --images {count}")
    return images_all[:count].reshape(count, 3, 32, 32), np.concatenate(labels)[:count].astype(np.int64)


def cached_logits(
    weights: Path, cifar10: Path, count: int, cache: Path, batch_size: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """``(count, 1008) float32`` logits and ``(count,)`` labels, from ``cache`` when it holds them for these weights."""
    from inception_score.network.weights import file_digest

    digest = file_digest(weights)
    if cache.is_file():
        stored = np.load(cache)
        if str(stored["weights_sha256"]) == digest and len(stored["logits"]) >= count:
            return stored["logits"][:count], stored["labels"][:count]
        print(f"{cache} is for other weights or fewer images: recomputing", file=sys.stderr)
    from inception_score.engine.runner import InceptionScorer

    images, labels = genuine_cifar10(cifar10, count)
    scorer = InceptionScorer(weights, allow_unverified=True, device="cpu", progress=False)
    logits = np.empty((count, 1008), dtype=np.float32)
    start = time.perf_counter()
    for first in range(0, count, batch_size):
        batch = torch.from_numpy(images[first : first + batch_size])
        logits[first : first + len(batch)] = scorer.logits(batch).numpy()
        done = first + len(batch)
        print(f"{done}/{count} images, {done / (time.perf_counter() - start):.1f} img/s", file=sys.stderr, flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, logits=logits, labels=labels, weights_sha256=np.array(digest))
    return logits, labels


def per_image_fields(logits: np.ndarray) -> tuple[list[str], np.ndarray, list[slice]]:
    """Every per-image term SplitStatistics.add sums, side by side in one ``(N, width)`` float64 matrix
    (computed by SplitStatistics.add itself, one image per split), with each field's columns."""
    from inception_score.score.statistics import SplitStatistics

    stats = SplitStatistics.zeros(len(logits), logits.shape[1])
    stats.add(torch.from_numpy(logits), np.arange(len(logits)))
    names = [f.name for f in dataclasses.fields(stats)]
    columns = [np.asarray(getattr(stats, name), dtype=np.float64).reshape(len(logits), -1) for name in names]
    bounds = np.cumsum([0] + [c.shape[1] for c in columns])
    return names, np.concatenate(columns, axis=1), [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def order_statistics(fields: tuple[list[str], np.ndarray, list[slice]], positions: np.ndarray, splits: int):
    """The SplitStatistics of the images placed at ``positions``: the per-image terms summed per split
    (one matrix product with the split indicator), the very sums SplitStatistics.add accumulates."""
    from inception_score.score.statistics import SplitStatistics, split_of_positions

    names, matrix, columns = fields
    indicator = np.zeros((splits, len(positions)))
    indicator[split_of_positions(positions, len(positions), splits), np.arange(len(positions))] = 1.0
    sums = indicator @ matrix
    values = {name: sums[:, part] for name, part in zip(names, columns)}
    for name in ("sum_plogp", "sum_clr2"):
        values[name] = values[name][:, 0]
    values["count"] = np.rint(sums[:, columns[names.index("count")]][:, 0]).astype(np.int64)
    return SplitStatistics(**values)


def head(fields, count: int):
    names, matrix, columns = fields
    return names, matrix[:count], columns


def sorted_positions(labels: np.ndarray) -> np.ndarray:
    """Positions of a folder read class by class (class_0/ ... class_9/), images in their own order within a class."""
    positions = np.empty(len(labels), dtype=np.int64)
    positions[np.argsort(labels, kind="stable")] = np.arange(len(labels))
    return positions


def blocky_positions(labels: np.ndarray, block: int, rng: np.random.Generator) -> np.ndarray:
    """Runs of ``block`` images of one class, the runs in random order (a half-shuffled folder)."""
    runs = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        runs += [members[i : i + block] for i in range(0, len(members), block)]
    order = np.concatenate([runs[i] for i in rng.permutation(len(runs))])
    positions = np.empty(len(labels), dtype=np.int64)
    positions[order] = np.arange(len(labels))
    return positions


def exact_directions(fields) -> float:
    """(tr C)^2 / tr(C^2) of the covariance C of clr(p(y|x)) over the images, from every eigenvalue:
    what the threshold's sketch bounds from below."""
    names, matrix, columns = fields
    clr = matrix[:, columns[names.index("sum_clr")]]
    centred = clr - clr.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred)
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


def measure(fields, labels: np.ndarray, count: int, splits: int, orders: int, seed: int) -> dict:
    from inception_score.score.order import order_diagnostic

    part = head(fields, count)
    rng = np.random.default_rng(seed)
    random_ratios = np.array(
        [order_diagnostic(order_statistics(part, rng.permutation(count), splits)).ratio for _ in range(orders)]
    )
    as_given = order_diagnostic(order_statistics(part, np.arange(count), splits))
    by_class = order_diagnostic(order_statistics(part, sorted_positions(labels[:count]), splits))
    blocky = {block: order_diagnostic(order_statistics(part, blocky_positions(labels[:count], block, rng), splits))
              for block in (10, 50)}
    return {
        "count": count, "splits": splits, "orders": orders, "threshold": by_class.threshold,
        "false_alarms": int(np.sum(random_ratios > by_class.threshold)),
        "mean": float(random_ratios.mean()), "sd": float(random_ratios.std()),
        "p99": float(np.quantile(random_ratios, 0.99)), "p999": float(np.quantile(random_ratios, 0.999)),
        "max": float(random_ratios.max()), "as_given": as_given, "sorted": by_class, "blocky": blocky,
        "ceiling": (count - 1) / (splits - 1), "directions": by_class.directions,
        "exact_directions": exact_directions(part),
    }


def folder_check(weights: Path, cifar10: Path, count: int, folder: Path) -> dict:
    """The command on ``count`` genuine images written as PNGs into class_0/ ... class_9/ (read class by
    class), and on the same images in one folder under shuffled names (a random order)."""
    from PIL import Image

    from inception_score.cli.main import RunOptions, run

    images, labels = genuine_cifar10(cifar10, count)
    rng = np.random.default_rng(7)
    shuffled_names = rng.permutation(count)
    for index, (image, label) in enumerate(zip(images, labels)):
        picture = Image.fromarray(image.transpose(1, 2, 0))
        (folder / "sorted" / f"class_{label}").mkdir(parents=True, exist_ok=True)
        picture.save(folder / "sorted" / f"class_{label}" / f"{index:05d}.png")
        (folder / "random").mkdir(exist_ok=True)
        picture.save(folder / "random" / f"{shuffled_names[index]:05d}.png")
    outcome = {}
    for name in ("sorted", "random"):
        options = RunOptions(paths=(folder / name,), weights=weights, allow_unverified=True, device="cpu",
                             batch_size=25, quiet=False)
        outcome[name] = run(options).result
    return outcome


def _verdict(diagnostic) -> str:
    return f"{diagnostic.ratio:.2f} ({'flagged' if diagnostic.flagged else 'not flagged'})"


def markdown(rows: list[dict], images: int, elapsed: float, folders: dict | None) -> str:
    lines = [
        "# Split-order diagnostic: calibration on genuine CIFAR-10 images",
        "",
        provenance_markdown("cpu").rstrip("\n"),
        f"- images: the first {images} of the partial CIFAR-10 (data_batch_1, then data_batch_2), "
        "logits computed once with the development weights (genuine 2015 convolutions, seeded random fc: "
        "the split scores would NOT be Inception Scores) and cached; each order's statistics are the per-image "
        "terms of `SplitStatistics.add` summed per split, judged by `inception_score.score.order.order_diagnostic` "
        f"({elapsed:.0f} s for all orders)",
        "",
        "R = B / E[B]: between-split sum of squares of clr(p(y|x)) = log p - mean log p over its expectation "
        "under a uniformly random order (E[B] = T (S-1)/(N-1)). Threshold: `order_threshold`, "
        "1 + 2 sqrt(x/((S-1) d)) + 2 x/((S-1) sqrt d), x = ln(2/1e-6), d the sketch's lower bound on "
        "(tr C)^2 / tr(C^2) of the covariance C of clr(p) (1,024 projection pairs; false-alarm rate <= 1e-6 "
        "under the Gaussian approximation, see the module text). d exact: from every eigenvalue of C, for "
        "comparison. Random orders: seeded permutations of the first N images. Class-sorted: images grouped by "
        "CIFAR label (a class_0/ ... class_9/ folder). Blocks of b: runs of b images of one class, the runs "
        "shuffled. CIFAR order: the images as stored (already random). Ceiling: the largest possible R, "
        "(N-1)/(S-1).",
        "",
        "| N | S | false alarms / random orders | mean ± sd R (random) | 99th pct | 99.9th pct | max R (random) "
        "| d (bound) | d (exact) | threshold | R class-sorted | detected | R blocks of 10 | R blocks of 50 "
        "| R CIFAR order | ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['count']} | {row['splits']} | {row['false_alarms']} / {row['orders']} "
            f"| {row['mean']:.3f} ± {row['sd']:.3f} | {row['p99']:.2f} | {row['p999']:.2f} | {row['max']:.2f} "
            f"| {row['directions']:.1f} | {row['exact_directions']:.1f} "
            f"| {row['threshold']:.2f} | {row['sorted'].ratio:.2f} | {'yes' if row['sorted'].flagged else 'NO'} "
            f"| {_verdict(row['blocky'][10])} | {_verdict(row['blocky'][50])} | {_verdict(row['as_given'])} "
            f"| {row['ceiling']:.1f} |"
        )
    total_alarms = sum(row["false_alarms"] for row in rows)
    total_orders = sum(row["orders"] for row in rows)
    lines += [
        "",
        f"False alarms over all rows: {total_alarms} of {total_orders} random orders; "
        f"largest R on any random order: {max(row['max'] for row in rows):.2f}; smallest threshold: "
        f"{min(row['threshold'] for row in rows):.2f}.",
        "",
    ]
    if folders:
        lines += ["The command on folders of the first 200 of these images, written as PNG "
                  "(`inception-score FOLDER --weights dev-weights.pth --allow-unverified-weights`):", "",
                  "| folder | R | threshold | warned |", "| --- | --- | --- | --- |"]
        for name, label in (("sorted", "class_0/ ... class_9/ (read class by class)"),
                            ("random", "one folder, shuffled file names (random order)")):
            result = folders[name]
            lines.append(f"| {label} | {result.order_ratio:.2f} | {result.order_threshold:.2f} "
                         f"| {'yes' if result.order_flagged else 'no'} |")
        lines.append("")
    return "\n".join(lines)


@click.command()
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="weights file (the development file: python -m inception_score.network.dev_weights FILE)")
@click.option("--cifar10-partial", "cifar10", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="cifar10_prefix_partial.npz")
@click.option("--images", default=2000, show_default=True, help="images to run through the network (largest N)")
@click.option("--orders", default=2500, show_default=True, help="random orders per row")
@click.option("--logits-cache", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="npz holding the logits; computed and written when absent")
@click.option("--folders/--no-folders", default=True, show_default=True,
              help="also run the command on class_0/ ... class_9/ and shuffled folders of 200 images (network)")
@click.option("--seed", default=0, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=RESULTS_DIR / "order-diagnostic.md", show_default=True)
def main(weights: Path, cifar10: Path, images: int, orders: int, logits_cache: Path, folders: bool, seed: int,
         output: Path) -> None:
    logits, labels = cached_logits(weights, cifar10, images, logits_cache)
    fields = per_image_fields(logits)
    start = time.perf_counter()
    cases = [(count, SPLITS) for count in SIZES if count <= images]
    if images not in SIZES:
        cases.append((images, SPLITS))
    cases += [(cases[0][0], splits) for splits in (2, 20)] + [(cases[-1][0], splits) for splits in (2, 5, 20)]
    rows = []
    for index, (count, splits) in enumerate(cases):
        rows.append(measure(fields, labels, count, splits, orders, seed + index))
        row = rows[-1]
        print(f"N={count} S={splits}: max R {row['max']:.2f}, threshold {row['threshold']:.2f}, "
              f"sorted {row['sorted'].ratio:.2f}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    outcome = None
    if folders:
        with tempfile.TemporaryDirectory() as folder:
            outcome = folder_check(weights, cifar10, min(200, images), Path(folder))
    output.write_text(markdown(rows, images, elapsed, outcome))
    print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
