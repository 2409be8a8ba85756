"""Time of tr(sqrtm(S1 S2)) at 2048 dimensions, our eigenvalue route against scipy's sqrtm (FID's usual one).

    python benchmarks/fid_trace_time.py --repeats 3

Covariances of 4096 correlated 2048-dimensional vectors (seeded), as pool_3 gives. Wall time and this
process's CPU time (on a machine shared with other work the CPU time over the thread count is the
better guide to an idle machine's wall time); the load average is recorded beside them. Writes
``benchmarks/results/fid-trace-time.md``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402


def covariance(seed: int, dim: int = 2048, count: int = 4096) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return np.cov(np.abs(rng.standard_normal((count, dim)) @ mixing + 0.4), rowvar=False)


def timed(function, *args) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, value


@click.command()
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--scipy/--no-scipy", "with_scipy", default=False, show_default=True,
              help="also time scipy's sqrtm (minutes at 2048 dimensions)")
def main(repeats: int, with_scipy: bool) -> None:
    import scipy.linalg

    from inception_score.score.fid import trace_sqrt_product

    s1, s2 = covariance(0), covariance(1)
    trace_sqrt_product(s1, s2)  # warm-up
    runs = [timed(trace_sqrt_product, s1, s2) for _ in range(repeats)]
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    lines = ["# tr(sqrtm(S1 S2)) at 2048 dimensions", "", provenance_markdown(), "",
             f"- load average at the end: `{' '.join(f'{v:.1f}' for v in os.getloadavg())}`; OMP_NUM_THREADS={threads}", "",
             "| method | wall s (each run) | CPU s (each run) | trace |", "| --- | --- | --- | --- |",
             f"| ours (pivoted Cholesky, eigenvalues) | {' / '.join(f'{r[0]:.2f}' for r in runs)} | "
             f"{' / '.join(f'{r[1]:.2f}' for r in runs)} | {runs[0][2]:.12g} |"]
    if with_scipy:
        wall, cpu, root = timed(scipy.linalg.sqrtm, s1 @ s2)
        lines.append(f"| scipy sqrtm of the product | {wall:.1f} | {cpu:.1f} | {float(np.trace(root).real):.12g} |")
    print(write_result("fid-trace-time.md", lines))


if __name__ == "__main__":
    main()
