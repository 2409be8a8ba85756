"""Calibrates the split-order diagnostic (``inception_score.order``) on genuine CIFAR-10 images.

    python benchmarks/order_diagnostic.py --weights dev-weights.pth \\
        --cifar10-partial cifar10_prefix_partial.npz --images 2000 --orders 5000 \\
        --logits-cache /tmp/order-logits.npz     # writes benchmarks/results/order-diagnostic.md

The network runs once: the logits of the first ``--images`` images of the partial CIFAR-10
(data_batch_1, then data_batch_2, ...) are cached in ``--logits-cache`` and reused. From them, for
each N in {200, 500, 1000, 2000} (those not above ``--images``, plus ``--images`` itself) with 10
splits, and for the largest N with 2, 5 and 20 splits, the ratio R of
:func:`inception_score.order.order_diagnostic` is measured on ``--orders`` seeded random orders of
the first N images (false alarms, spread, 99th and 99.9th percentiles, maximum, and the spread
predicted from the covariance of p(y|x)), on the order sorted by CIFAR label (what a class_0/ ...
class_9/ folder gives), on blocky orders (runs of 10 or 50 images of one class, the runs shuffled)
and on CIFAR's own order.

With the development weights (genuine convolutions, seeded random fc) the split scores are NOT
Inception Scores; the diagnostic only needs p(y|x) to vary with the class, which it does.
"""

from __future__ import annotations

import sys
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
    from inception_score.weights import file_digest

    digest = file_digest(weights)
    if cache.is_file():
        stored = np.load(cache)
        if str(stored["weights_sha256"]) == digest and len(stored["logits"]) >= count:
            return stored["logits"][:count], stored["labels"][:count]
        print(f"{cache} is for other weights or fewer images: recomputing", file=sys.stderr)
    from inception_score.scorer import InceptionScorer

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


def probabilities(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p ``(N, C)``, ``sum_y p log p`` ``(N,)`` and ``||p||^2`` ``(N,)``, float64, as SplitStatistics.add computes them."""
    log_p = torch.log_softmax(torch.from_numpy(logits).double(), dim=1)
    p = log_p.exp()
    return p.numpy(), (p * log_p).sum(dim=1).numpy(), (p * p).sum(dim=1).numpy()


def order_statistics(per_image: tuple[np.ndarray, np.ndarray, np.ndarray], positions: np.ndarray, splits: int):
    """The SplitStatistics of the images placed at ``positions`` (the same sums SplitStatistics.add
    accumulates, summed over contiguous runs of the reordered rows without recomputing the softmax)."""
    from inception_score.metric import SplitStatistics, split_bounds

    bounds = split_bounds(len(positions), splits)
    starts = np.array([start for start, _ in bounds])
    by_position = np.argsort(positions)  # by_position[k] = the image at position k
    p, plogp, p2 = (np.add.reduceat(field[by_position], starts, axis=0) for field in per_image)
    return SplitStatistics(sum_p=p, sum_plogp=plogp, sum_p2=p2,
                           count=np.array([stop - start for start, stop in bounds], dtype=np.int64))


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


def effective_directions(p: np.ndarray) -> float:
    """(tr C)^2 / tr(C^2) of the covariance C of the rows of ``p``: how many equally varying directions
    p(y|x) spreads over. With it R's random-order spread is about sqrt(2 / ((S-1) d)) (a chi-square
    with (S-1) d degrees of freedom, over its mean); one direction is the threshold's worst case."""
    centred = p - p.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred)
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


def measure(per_image, labels: np.ndarray, count: int, splits: int, orders: int, seed: int) -> dict:
    from inception_score.order import order_diagnostic

    head = tuple(field[:count] for field in per_image)
    directions = effective_directions(head[0])
    rng = np.random.default_rng(seed)
    random_ratios = np.array(
        [order_diagnostic(order_statistics(head, rng.permutation(count), splits)).ratio for _ in range(orders)]
    )
    as_given = order_diagnostic(order_statistics(head, np.arange(count), splits))
    by_class = order_diagnostic(order_statistics(head, sorted_positions(labels[:count]), splits))
    blocky = {block: order_diagnostic(order_statistics(head, blocky_positions(labels[:count], block, rng), splits))
              for block in (10, 50)}
    return {
        "count": count, "splits": splits, "orders": orders, "threshold": by_class.threshold,
        "false_alarms": int(np.sum(random_ratios > by_class.threshold)),
        "mean": float(random_ratios.mean()), "sd": float(random_ratios.std()),
        "p99": float(np.quantile(random_ratios, 0.99)), "p999": float(np.quantile(random_ratios, 0.999)),
        "max": float(random_ratios.max()), "as_given": as_given, "sorted": by_class, "blocky": blocky,
        "ceiling": (count - 1) / (splits - 1), "directions": directions,
        "predicted_sd": float(np.sqrt(2 / ((splits - 1) * directions))),
    }


def _verdict(diagnostic) -> str:
    return f"{diagnostic.ratio:.2f} ({'flagged' if diagnostic.flagged else 'not flagged'})"


def markdown(rows: list[dict], images: int, elapsed: float) -> str:
    lines = [
        "# Split-order diagnostic: calibration on genuine CIFAR-10 images",
        "",
        provenance_markdown("cpu").rstrip("\n"),
        f"- images: the first {images} of the partial CIFAR-10 (data_batch_1, then data_batch_2), "
        "logits computed once with the development weights (genuine 2015 convolutions, seeded random fc: "
        "the split scores would NOT be Inception Scores) and cached; R then computed from the cached "
        f"probabilities through `inception_score.order.order_diagnostic` ({elapsed:.0f} s for all orders)",
        "",
        "R = B / E[B]: between-split sum of squares of p(y|x) over its expectation under a uniformly random "
        "order (E[B] = T (S-1)/(N-1)). Threshold: `order_threshold(N, S)`, the F(S-1, N-S) quantile at "
        "false-alarm rate 1e-6 in R's terms. Random orders: seeded permutations of the first N images. "
        "Class-sorted: images grouped by CIFAR label (a class_0/ ... class_9/ folder). Blocks of b: runs of "
        "b images of one class, the runs shuffled. CIFAR order: the images as stored (already random). "
        "Ceiling: the largest possible R, (N-1)/(S-1).",
        "",
        "Spread: d = (tr C)^2 / tr(C^2) of the covariance C of p(y|x) over the N images (how many equally "
        "varying directions); a random order's R is then about a chi-square with (S-1) d degrees of freedom "
        "over its mean, sd sqrt(2/((S-1) d)). The threshold assumes the worst case, d = 1 (sd 0.47 for S = 10).",
        "",
        "| N | S | false alarms / random orders | mean ± sd R (random) | predicted sd (d) | 99th pct | 99.9th pct "
        "| max R (random) | threshold | R class-sorted | detected | R blocks of 10 | R blocks of 50 | R CIFAR order "
        "| ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['count']} | {row['splits']} | {row['false_alarms']} / {row['orders']} "
            f"| {row['mean']:.3f} ± {row['sd']:.3f} | {row['predicted_sd']:.3f} ({row['directions']:.1f}) "
            f"| {row['p99']:.2f} | {row['p999']:.2f} | {row['max']:.2f} "
            f"| {row['threshold']:.2f} | {row['sorted'].ratio:.1f} | {'yes' if row['sorted'].flagged else 'NO'} "
            f"| {_verdict(row['blocky'][10])} | {_verdict(row['blocky'][50])} | {_verdict(row['as_given'])} "
            f"| {row['ceiling']:.1f} |"
        )
    total_alarms = sum(row["false_alarms"] for row in rows)
    total_orders = sum(row["orders"] for row in rows)
    lines += [
        "",
        f"False alarms over all rows: {total_alarms} of {total_orders} random orders; "
        f"largest R on any random order: {max(row['max'] for row in rows):.2f}.",
        "",
        "Share of T between the splits of the class-sorted order, B/T = R (S-1)/(N-1) (the class signal "
        "in p(y|x) with these weights): "
        + ", ".join(f"N = {row['count']}, S = {row['splits']}: {row['sorted'].ratio / row['ceiling']:.3f}" for row in rows)
        + ". A class-sorted order is flagged once B/T (N-1)/(S-1) passes the threshold (about 4.9 for S = 10).",
        "",
    ]
    return "\n".join(lines)


@click.command()
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="weights file (the development file: python -m inception_score.dev_weights FILE)")
@click.option("--cifar10-partial", "cifar10", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="cifar10_prefix_partial.npz")
@click.option("--images", default=2000, show_default=True, help="images to run through the network (largest N)")
@click.option("--orders", default=5000, show_default=True, help="random orders per row")
@click.option("--logits-cache", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="npz holding the logits; computed and written when absent")
@click.option("--seed", default=0, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=RESULTS_DIR / "order-diagnostic.md", show_default=True)
def main(weights: Path, cifar10: Path, images: int, orders: int, logits_cache: Path, seed: int, output: Path) -> None:
    logits, labels = cached_logits(weights, cifar10, images, logits_cache)
    per_image = probabilities(logits)
    start = time.perf_counter()
    cases = [(count, SPLITS) for count in SIZES if count <= images]
    if images not in SIZES:
        cases.append((images, SPLITS))
    cases += [(cases[-1][0], splits) for splits in (2, 5, 20)]  # does the spread follow F(S-1, N-S)?
    rows = []
    for index, (count, splits) in enumerate(cases):
        rows.append(measure(per_image, labels, count, splits, orders, seed + index))
        row = rows[-1]
        print(f"N={count} S={splits}: max R {row['max']:.2f}, sorted {row['sorted'].ratio:.1f}", file=sys.stderr)
    output.write_text(markdown(rows, images, time.perf_counter() - start))
    print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
