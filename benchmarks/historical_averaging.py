"""How strong is historical averaging at the weight Table 3's -L+HA row uses? Its gradient against the
GAN gradient over the first training steps, for a few weights.

    python benchmarks/historical_averaging.py --data-dir ../shared/data/cifar10-partial --steps 100 --threads 1

The paper gives no weight for ``||theta - (1/t) sum_i theta[i]||^2`` and no released code has the
technique; we use 1 (``historical_averaging=1.0``). This trains the ``minus-l-plus-ha`` preset (the
minibatch-discrimination script without labels, one-logit D, 3 G steps per D step, Adam 3e-4) on the
partial CIFAR-10 for ``--steps`` iterations at each weight, and at every optimiser step splits each
player's gradient into its historical-averaging part, ``2 w (theta - mean)`` (the penalty's gradient,
written out), and the rest (the GAN loss's). Reported per player and step: both norms, their ratio, and
the share of parameters whose gradient sign the penalty flips (Adam's step follows the sign of its
momentum, so that share is what the penalty decides). Writes ``benchmarks/results/historical-averaging.md``.

A short run on a CPU: a few hundred steps out of the paper's 600,000, at a smaller batch than its 100
(``--batch-size``); it shows the early balance of the two terms, not the balance at convergence.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS_DIR, provenance_markdown  # noqa: E402

from reference_gan.data import load  # noqa: E402
from reference_gan.presets import preset  # noqa: E402
from reference_gan.train import Trainer  # noqa: E402


def _split_gradients(parameters: list[torch.nn.Parameter], means: list[torch.Tensor], weight: float) -> dict[str, float]:
    """Norms of the historical-averaging gradient ``2 w (p - mean)`` and of the rest of ``p.grad``, and
    the share of coordinates where the sum's sign differs from the rest's."""
    ha_sq = gan_sq = 0.0
    flipped = total = 0
    for p, mean in zip(parameters, means):
        ha = 2.0 * weight * (p.detach() - mean)
        gan = p.grad.detach() - ha
        ha_sq += float(ha.pow(2).sum())
        gan_sq += float(gan.pow(2).sum())
        flipped += int((torch.sign(p.grad) != torch.sign(gan)).sum())
        total += p.numel()
    return {"gan": gan_sq**0.5, "ha": ha_sq**0.5, "flipped": flipped / total}


def measure(weight: float, steps: int, batch_size: int, data_dir: str, seed: int) -> dict[str, list[dict[str, float]]]:
    """Train ``steps`` iterations of ``minus-l-plus-ha`` at ``weight``; per player, one record per
    optimiser step (D: one per iteration; G: three)."""
    with tempfile.TemporaryDirectory() as folder:
        config = preset("minus-l-plus-ha", dataset="cifar10-partial", data_dir=data_dir, historical_averaging=weight,
                        batch_size=batch_size, max_steps=steps, init_examples=100, seed=seed, out_dir=folder,
                        sample_every_epochs=0, eval_every_epochs=0)
        trainer = Trainer(config, load("cifar10-partial", Path(data_dir)))
        records: dict[str, list[dict[str, float]]] = {"D": [], "G": []}
        for player, optimiser, history in (("D", trainer.opt_d, trainer.ha_d), ("G", trainer.opt_g, trainer.ha_g)):
            step = optimiser.step

            def recorded(step=step, player=player, history=history) -> None:
                # Called where the trainer steps: the penalty's mean is still the one its loss used.
                records[player].append(_split_gradients(history.parameters, history.mean, weight))
                step()

            optimiser.step = recorded  # type: ignore[method-assign]
        trainer.run(log=False)
    return records


@click.command()
@click.option("--data-dir", type=click.Path(exists=True), required=True, help="the partial CIFAR-10 folder")
@click.option("--steps", type=int, default=100, show_default=True, help="training iterations per weight")
@click.option("--batch-size", type=int, default=10, show_default=True)
@click.option("--weights", "weights_text", default="0.1,1,10", show_default=True, help="comma-separated HA weights")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", type=click.Path(), default=str(RESULTS_DIR / "historical-averaging.md"), show_default=True)
def main(data_dir: str, steps: int, batch_size: int, weights_text: str, threads: int, seed: int, out: str) -> None:
    torch.set_num_threads(threads)
    weights = [float(w) for w in weights_text.split(",")]
    load_before = os.getloadavg()[0]
    begin = time.perf_counter()
    results = {}
    for weight in weights:
        start = time.perf_counter()
        results[weight] = measure(weight, steps, batch_size, data_dir, seed)
        print(f"weight {weight:g}: {steps} steps in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    shown = sorted({1, 2, 5, 10, 25, 50, 100, 150, 200, steps} & set(range(1, steps + 1)))
    lines = [
        "# Historical averaging against the GAN gradient, first training steps",
        "",
        f"Preset `minus-l-plus-ha` (Table 3's -L+HA: no labels, one-logit D, minibatch features, 3 G steps per "
        f"D step, Adam 3e-4, VBN in G, label smoothing 0.9) on the partial CIFAR-10, batch {batch_size}, seed "
        f"{seed}, {steps} iterations per weight (the paper trains 600,000 at batch 100): the early balance only.",
        "At every optimiser step each player's gradient is split into the penalty's part, 2 w (θ − mean of past θ), "
        "and the rest (the GAN loss's). `flipped`: share of the parameters whose gradient sign the penalty "
        "reverses. G steps three times per iteration: its step s is G's s-th optimiser step.",
        "",
        provenance_markdown().rstrip("\n"),
        f"- wall time: `{time.perf_counter() - begin:.0f} s` (1-minute load average `{load_before:.1f}` at the start, "
        f"`{os.getloadavg()[0]:.1f}` at the end, on {os.cpu_count()} cores)",
        "",
        f"Median over every optimiser step but the first (D: steps 2 to {steps}; G, three per iteration: 2 to "
        f"{len(results[weights[0]]['G'])}); at step 1 the mean of past parameters is the parameters themselves, "
        "no penalty:",
        "",
        "| weight | player | ratio ‖∇ HA‖ / ‖∇ GAN‖ | flipped | ratio at its last step |",
        "| --- | --- | --- | --- | --- |",
    ]
    for weight in weights:
        for player in ("D", "G"):
            rows = results[weight][player][1:]
            ratios = [r["ha"] / r["gan"] for r in rows if r["gan"] > 0]
            if not ratios:
                continue
            lines.append(f"| {weight:g} | {player} | {statistics.median(ratios):.3g} "
                         f"| {100 * statistics.median(r['flipped'] for r in rows):.1f}% | {ratios[-1]:.3g} |")
    lines += ["", "Step by step (the first steps of each player):", "", "| weight | player | step | ‖∇ GAN‖ | ‖∇ HA‖ | ratio HA/GAN | flipped |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for weight in weights:
        for player in ("D", "G"):
            for step in shown:
                rows = results[weight][player]
                if step > len(rows):
                    continue
                r = rows[step - 1]
                ratio = r["ha"] / r["gan"] if r["gan"] > 0 else float("inf")
                lines.append(f"| {weight:g} | {player} | {step} | {r['gan']:.3g} | {r['ha']:.3g} | {ratio:.3g} "
                             f"| {100 * r['flipped']:.1f}% |")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n")
    print(Path(out).read_text())


if __name__ == "__main__":
    main()
