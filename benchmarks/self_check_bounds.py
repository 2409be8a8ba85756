"""Where the bounds of ``inception-score --self-check`` come from: its deviations measured on this machine.

    python benchmarks/self_check_bounds.py [--sweep]      # writes benchmarks/results/self-check-bounds.md

On the built-in images, with the development weights (the genuine convolutions; pool_3 does not use the
fc layer), against the stored reference (:mod:`inception_score.cli.self_check_data`), the deviation measure of
:func:`inception_score.cli.self_check.pool3_deviation`:

- exact (float32, the scorer as the command runs it) at batch 1 and batch 8;
- bfloat16 autocast on the CPU, as ``--precision fast`` computes on a CPU with native bfloat16 (where the
  CPU has none, oneDNN emulates it: the same operands rounded to bfloat16, the sums in float32);
- float16 autocast on the CPU: an estimate of CUDA's fast mode (float16 operands, float32 sums), not a
  measurement on a GPU;
- ``--sweep``: each of the 94 convolutions in turn scaled by 1.01 (in float32), the largest deviation over
  the images, to show that a 1% error in any one convolution is beyond the exact bound.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _record import provenance_markdown, write_result  # noqa: E402

from inception_score.network.dev_weights import write_genuine_conv_weights  # noqa: E402
from inception_score.network.inception import Output  # noqa: E402
from inception_score.network.preprocess import to_network_input  # noqa: E402
from inception_score.engine.runner import InceptionScorer  # noqa: E402
from inception_score.cli.self_check import EXACT_BOUND, pool3_deviation  # noqa: E402
from inception_score.cli.self_check_data import load_reference, self_check_images  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also scale each convolution by 1.01 in turn")
    parser.add_argument("--weights-dir", type=Path, default=Path("/tmp"), help="where to write the development weights")
    args = parser.parse_args()
    reference = load_reference().pool3
    images = [torch.from_numpy(image) for image in self_check_images()]
    scorer = InceptionScorer(write_genuine_conv_weights(args.weights_dir / "self-check-dev-weights.pth"), device="cpu",
                             allow_unverified=True, progress=False)
    lines = [f"# Self-check deviations\n\ntorch {torch.__version__}, {torch.get_num_threads()} threads; deviation = "
             "largest |ours - reference| over the image's largest feature; exact bound "
             f"{EXACT_BOUND:.2e}.\n", "| computation | deviations of the 8 images (largest) |", "| --- | --- |"]

    def row(name: str, deviations: np.ndarray) -> None:
        lines.append(f"| {name} | {' '.join(f'{d:.1e}' for d in deviations)} ({deviations.max():.2e}) |")
        print(lines[-1], flush=True)

    one = torch.cat([scorer.outputs([image], Output.POOL3) for image in images]).double().numpy()
    row("exact, batch 1", pool3_deviation(one, reference))
    row("exact, batch 8", pool3_deviation(scorer.outputs(images, Output.POOL3).double().numpy(), reference))
    x = torch.cat([to_network_input(image[None]) for image in images]).contiguous(memory_format=torch.channels_last)
    network = scorer.network
    with torch.inference_mode():
        for dtype in (torch.bfloat16, torch.float16):
            with torch.autocast("cpu", dtype=dtype):
                rows = network(x, Output.POOL3).double().numpy()
            row(f"{str(dtype).removeprefix('torch.')} autocast (CPU)", pool3_deviation(rows, reference))
        if args.sweep:
            lines += ["", "| convolution scaled by 1.01 | largest deviation |", "| --- | --- |"]
            found = []
            parameters = dict(network.named_parameters())
            for name in [n for n in parameters if n.endswith("conv.weight")]:
                weight = parameters[name]
                original = weight.detach().clone()
                weight.mul_(1.01)  # W' = W * s of the folded layer: scaling W before folding scales W'
                begin = time.perf_counter()
                found.append((float(pool3_deviation(network(x, Output.POOL3).double().numpy(), reference).max()), name))
                weight.copy_(original)
                print(f"{found[-1][1]} {found[-1][0]:.3e} ({time.perf_counter() - begin:.1f} s)", flush=True)
            found.sort()
            lines += [f"| {name} | {deviation:.2e} |" for deviation, name in found[:5]]
            lines.append(f"\n{len(found)} convolutions; the smallest deviation {found[0][0]:.2e} ({found[0][1]}) is "
                         f"{found[0][0] / EXACT_BOUND:.0f}x the exact bound; the largest {found[-1][0]:.2e}.")
    lines += ["", provenance_markdown()]
    print(write_result("self-check-bounds.md", lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
