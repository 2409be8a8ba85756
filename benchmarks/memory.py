"""Peak memory of scoring N images through the API, for N = 1,000, 10,000 and 100,000.

    python benchmarks/memory.py          # writes its section of benchmarks/results/memory.md

The images come from a generator (never all in memory). Each N runs in a fresh process, which
reports its peak resident set size. On a CPU the real network would need hours for 100,000 images,
so by default the network is replaced by a stand-in that returns 1008 logits per image computed from
its pixels: what is measured is everything else (input handling, resizing, the split statistics),
which is where memory could grow with N. ``--real-network`` uses the real one (GPU advised).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
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

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        from inception_score.network.preprocess import to_network_input

        x = to_network_input(batch)  # the real resize to 299x299, so its memory is counted
        small = torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)
        return small @ self.projection


def generate(count: int, batch_size: int):
    generator = torch.Generator().manual_seed(count)
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start)
        yield torch.randint(0, 256, (size, 3, 32, 32), dtype=torch.uint8, generator=generator)


def worker(count: int, batch_size: int, real_network: bool, weights: str | None) -> dict:
    from inception_score import InceptionScorer, inception_score

    scorer = InceptionScorer(weights, allow_unverified=True) if real_network else StandInScorer()
    result = inception_score(generate(count, batch_size), num_images=count, splits=10, scorer=scorer)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"count": count, "peak_rss_mb": peak_kib / 1024, "mean": result.mean, "seconds": result.elapsed_s}


@click.command()
@click.option("--counts", default="1000,10000,100000", show_default=True)
@click.option("--batch-size", default=100, show_default=True)
@click.option("--real-network", is_flag=True, help="score with the real network (slow on a CPU)")
@click.option("--weights", default=None, help="weights file for --real-network")
@click.option("--worker-count", type=int, default=None, hidden=True)
def main(counts: str, batch_size: int, real_network: bool, weights: str | None, worker_count: int | None) -> None:
    if worker_count is not None:
        print(json.dumps(worker(worker_count, batch_size, real_network, weights)))
        return
    rows = []
    for count in (int(c) for c in counts.split(",")):
        command = [sys.executable, __file__, "--worker-count", str(count), "--batch-size", str(batch_size)]
        if real_network:
            command += ["--real-network"] + (["--weights", weights] if weights else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise click.ClickException(done.stderr[-3000:])
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        click.echo(rows[-1], err=True)
    network = "the real network" if real_network else "a stand-in network (real resize, real metric)"
    lines = [
        "# Peak memory against the number of images",
        "",
        f"Images from a generator in batches of {batch_size}, `num_images` announced, {network}; "
        f"one fresh process per row.",
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
