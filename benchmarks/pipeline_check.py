"""The device-side scoring loop (inception_score.engine.pipeline) on a real device: the same split scores as
per-batch CPU logits with the metric on the host, few host waits, a float16 overflow recomputed for its
batch alone, and the images per second of both loops. Development weights (genuine convolutions,
random fc): the scores compare implementations, they are not Inception Scores.

    python benchmarks/pipeline_check.py --device cuda --count 4096 --batch-size 256 --out result.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inception_score import InceptionScorer, inception_score  # noqa: E402
from inception_score.network.dev_weights import write_genuine_conv_weights  # noqa: E402
from inception_score.score.planned import inception_score_from_logits  # noqa: E402


def _wait(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_batch(scorer: InceptionScorer, images: torch.Tensor, batch_size: int) -> tuple[np.ndarray, float]:
    """The loop before the pipeline: CPU logits per batch (a wait each), the metric on the host."""
    begin = time.perf_counter()
    logits = torch.cat([scorer.logits(chunk) for chunk in images.split(batch_size)])
    scores = inception_score_from_logits(logits, splits=10)
    return scores, time.perf_counter() - begin


def piped(scorer: InceptionScorer, images: torch.Tensor, batch_size: int,
          splits: int = 10) -> tuple[np.ndarray, float, int, str]:
    before = scorer.host_syncs
    begin = time.perf_counter()
    result = inception_score(images, splits=splits, batch_size=batch_size, scorer=scorer)
    _wait(scorer.device)
    return result.split_scores, time.perf_counter() - begin, scorer.host_syncs - before, result.precision_note


def overflow_once(scorer: InceptionScorer, images: torch.Tensor, batch_size: int, which: int) -> dict:
    """Batch ``which`` gives inf under autocast (as float16 past 65504 would): recomputed once, alone."""
    network, seen = scorer.network, {"calls": 0, "without_autocast": 0}

    def overflowing(x: torch.Tensor, output: object, **kwargs: object) -> torch.Tensor:
        out = network(x, output, **kwargs)
        if torch.is_autocast_enabled("cuda"):
            seen["calls"] += 1
            if seen["calls"] == which + 1:
                out = out * float("inf")
        else:
            seen["without_autocast"] += 1
        return out

    scorer.network = overflowing
    try:
        scores, _, syncs, note = piped(scorer, images, batch_size)
    finally:
        scorer.network = network
    return {"recomputed_batches": seen["without_autocast"], "float16_overflows": scorer.float16_overflows,
            "finite": bool(np.isfinite(scores).all()), "host_syncs": syncs, "precision_note": note}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--count", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.count, 3, 32, 32), dtype=torch.uint8)
    batches = -(-args.count // args.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        weights = write_genuine_conv_weights(Path(folder) / "dev.pth")
        base = InceptionScorer(weights, device=args.device, allow_unverified=True, progress=False)
    report: dict = {"device": str(base.device), "count": args.count, "batch_size": args.batch_size,
                    "torch": torch.__version__, "gpu": torch.cuda.get_device_name(base.device)
                    if base.device.type == "cuda" else None}
    for precision in ("exact", "fast"):
        scorer = base.with_policy(precision)
        piped(scorer, images[: 2 * args.batch_size], args.batch_size, splits=1)  # warm-up: kernels, allocator
        reference, old_s = per_batch(scorer, images, args.batch_size)
        scores, new_s, syncs, note = piped(scorer, images, args.batch_size)
        deviation = float(np.max(np.abs(scores - reference) / np.abs(reference)))
        report[precision] = {"per_batch_img_s": args.count / old_s, "pipeline_img_s": args.count / new_s,
                             "max_relative_score_difference": deviation, "host_syncs": syncs,
                             "host_sync_limit": 2 + batches // 16, "precision_note": note}
        ok = deviation <= 1e-12 and syncs <= 2 + batches // 16
        report[precision]["ok"] = ok
    if base.device.type == "cuda":
        check = overflow_once(base.with_policy("fast"), images, args.batch_size, which=min(3, batches - 1))
        check["ok"] = check["recomputed_batches"] == 1 == check["float16_overflows"] and check["finite"]
        report["overflow"] = check
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0 if all(part.get("ok", True) for part in report.values() if isinstance(part, dict)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
