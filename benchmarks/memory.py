"""Peak memory of scoring N images through the API, for N = 1,000, 10,000 and 100,000.

    python benchmarks/memory.py                 # writes its section of benchmarks/results/memory.md
    python benchmarks/memory.py --metrics fid   # FID alone against a statistics file: its own section

The images come from a generator (never all in memory). Each N runs in a fresh process, which
reports its peak resident set size. On a CPU the real network would need hours for 100,000 images,
so by default the network is replaced by a stand-in that returns 1008 logits per image computed from
its pixels: what is measured is everything else (input handling, resizing, the split statistics),
which is where memory could grow with N. ``--real-network`` uses the real one (GPU advised).

``--metrics fid`` adds FID against a statistics-only reference (``mu``, ``sigma`` of 2048 dimensions,
seeded): the stand-in gives pool_3 features beside its logits from the same call, and the run keeps
their float64 moments only (no feature vectors), so memory should not grow with N there either.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_section  # noqa: E402


class StandInScorer:
    """Looks like :class:`inception_score.InceptionScorer` to the runner; logits from a fixed projection."""

    def __init__(self) -> None:
        from inception_score.network.weights import LoadedWeights

        self.device = torch.device("cpu")
        self.dtype = "float32"
        self.weights = LoadedWeights(state_dict={}, path=Path("stand-in"), sha256="none", verified=False)
        self.projection = torch.randn(3 * 8 * 8, 1008, generator=torch.Generator().manual_seed(0))
        self.pool3_projection = torch.randn(3 * 8 * 8, 2048, generator=torch.Generator().manual_seed(1))

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        return self.device_outputs(batch)[0]

    def device_outputs(self, batch: torch.Tensor, outputs="logits_unbiased"):
        """The logits, and pool_3-sized features where asked for, from one resize of the batch."""
        from inception_score.network.outputs import Output, requested_outputs
        from inception_score.network.preprocess import to_network_input

        asked, single = requested_outputs(outputs)
        x = to_network_input(batch)  # the real resize to 299x299, so its memory is counted
        small = torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)
        matrices = {Output.LOGITS_UNBIASED: self.projection, Output.POOL3: self.pool3_projection}
        values = tuple(small @ matrices[o] for o in asked)
        return (values[0] if single else values), None


def statistics_reference(path: Path) -> Path:
    """A statistics-only reference file: ``mu`` (2048,) and a positive definite ``sigma`` (2048, 2048), seeded."""
    import numpy as np

    rng = np.random.default_rng(0)
    factor = rng.normal(size=(2048, 256))
    np.savez(path, mu=rng.normal(size=2048), sigma=factor @ factor.T / 256 + 0.01 * np.eye(2048))
    return path


def generate(count: int, batch_size: int):
    generator = torch.Generator().manual_seed(count)
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start)
        yield torch.randint(0, 256, (size, 3, 32, 32), dtype=torch.uint8, generator=generator)


def worker(count: int, batch_size: int, real_network: bool, weights: str | None, reference: str | None = None) -> dict:
    import warnings

    from inception_score import InceptionScorer, inception_score

    scorer = InceptionScorer(weights, allow_unverified=True) if real_network else StandInScorer()
    evaluation = {} if reference is None else {"reference": reference, "metrics": "fid", "cache": False}
    begin = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference's notes (statistics computed elsewhere)
        result = inception_score(generate(count, batch_size), num_images=count, splits=10, scorer=scorer, **evaluation)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row = {"count": count, "peak_rss_mb": peak_kib / 1024, "mean": result.mean, "seconds": result.elapsed_s}
    if reference is not None:  # the scoring run's time, and the whole call's (FID itself included)
        row |= {"fid": result.evaluation.fid, "seconds": time.perf_counter() - begin}
    return row


@click.command()
@click.option("--counts", default="1000,10000,100000", show_default=True)
@click.option("--batch-size", default=100, show_default=True)
@click.option("--real-network", is_flag=True, help="score with the real network (slow on a CPU)")
@click.option("--weights", default=None, help="weights file for --real-network")
@click.option("--metrics", type=click.Choice(["is", "fid"]), default="is", show_default=True,
              help="fid: the IS and FID against a statistics-only reference (moments only), its own section")
@click.option("--worker-count", type=int, default=None, hidden=True)
@click.option("--reference", type=click.Path(), default=None, hidden=True)
def main(counts: str, batch_size: int, real_network: bool, weights: str | None, metrics: str,
         worker_count: int | None, reference: str | None) -> None:
    if worker_count is not None:
        print(json.dumps(worker(worker_count, batch_size, real_network, weights, reference)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        stats = str(statistics_reference(Path(folder) / "reference-statistics.npz")) if metrics == "fid" else None
        for count in (int(c) for c in counts.split(",")):
            command = [sys.executable, __file__, "--worker-count", str(count), "--batch-size", str(batch_size)]
            if real_network:
                command += ["--real-network"] + (["--weights", weights] if weights else [])
            if stats is not None:
                command += ["--reference", stats]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise click.ClickException(done.stderr[-3000:])
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            click.echo(rows[-1], err=True)
    network = "the real network" if real_network else "a stand-in network (real resize, real metric)"
    heading, what = "# Peak memory against the number of images", ""
    if metrics == "fid":
        heading = "## FID alone against a statistics file: peak memory against the number of images"
        what = (" The IS and FID against a statistics-only reference (`mu`, `sigma`; `metrics=\"fid\"`): the "
                "stand-in gives 2048 pool_3-sized features beside its logits, the run keeps their float64 moments "
                "(33.6 MB) and no feature vector. Seconds: the whole call, FID included.")
    lines = [
        heading,
        "",
        f"Images from a generator in batches of {batch_size}, `num_images` announced, {network}; "
        f"one fresh process per row.{what}",
        "",
        "| images | peak RSS (MB) | seconds |",
        "| --- | --- | --- |",
        *[f"| {r['count']:,} | {r['peak_rss_mb']:.1f} | {r['seconds']:.1f} |" for r in rows],
        "",
    ]
    by_count = {r["count"]: r["peak_rss_mb"] for r in rows}
    if 10_000 in by_count and 100_000 in by_count:
        lines.append(f"Growth from 10,000 to 100,000 images: {by_count[100_000] - by_count[10_000]:+.1f} MB.\n")
    lines.append(provenance_markdown())
    click.echo(write_section("memory.md", lines))  # the other scripts' sections stay


if __name__ == "__main__":
    main()
