"""The batched runner: the 2015 network on one device, pixels in, the paper's unbiased logits out.

:class:`InceptionScorer` holds the network, the precision it computes in (given to the constructor:
``precision``, ``cuda_fast_dtype``, ``cudnn_benchmark``) and the batching that keeps a CPU's caches warm.
:func:`resolve_device` turns ``"auto"`` and device names into a device that exists here.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable

import torch

from ..errors import InputError
from ..options import ExactKernel, Precision, ScorerOptions, check_precision
from ..readers.inputs import ImageBatch
from ..network.inception import INPUT_SIZE, Inception2015, Output, fold_batch_norm
from ..network.outputs import OUTPUT_DIMS, OutputRequest, requested_outputs
from ..network.precision import native_bf16_cpu, precision_scope
from ..network.preprocess import to_network_input
from ..network.split_tf32 import AGREEMENT_LIMIT, SplitTf32Network, split_tf32_network, split_tf32_timing
from ..network.weights import load_network

# One output tensor, or a tuple of them where a sequence of Output values was asked for (one pass).
Outputs = torch.Tensor | tuple[torch.Tensor, ...]

# Images per network call on CPU. Within a call each stage takes the number of images its layers
# run best at (CPU_STAGE_CHUNKS), measured on a 2-core Xeon (AVX-512): the stem's large maps (147x147,
# 73x73) few at a time (its two largest convolutions 3.2 and 4.3 ms per image at 2 images against 4.0
# and 5.2 at 8); on one thread, the 35x35 blocks 8 (Mixed_5b..6a 15.7 ms per image at 8 against 16.7
# at 32: their activations stay in cache), and the 17x17 and 8x8 blocks, whose matrix products have
# few rows (images x 289 or x 64), all 32 at once (Mixed_6b..7c 32.5 ms per image against 34.9 at 8).
# The whole network, one thread: 83.5% of the float32 matrix-multiply peak against 78.2% at 8 images
# a call (means of 3 interleaved runs). The resize runs CPU_RESIZE_CHUNK images at a time (0.29 ms
# per 32x32 image at 8 against 0.52 at 32).
CPU_CHUNK = 32
CPU_STEM_CHUNK = 2
CPU_STAGE_CHUNKS = (CPU_STEM_CHUNK, 8, None)  # stem, Mixed_5b..6a, Mixed_6b..7c (see Inception2015.pool3)
CPU_RESIZE_CHUNK = 8

def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is checked to exist."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for, but CUDA is not available here: use cpu or auto")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    elif resolved.type != "cpu":
        raise InputError(f"unsupported device {device!r}: use auto, cpu, cuda or cuda:N")
    return resolved


class InceptionScorer:
    """The 2015 network on one device: pixels in, unbiased logits (the paper's) out.

    ``precision="exact"`` computes in float32 (TF32 off on CUDA) and agrees with torch-fidelity;
    ``"fast"`` allows TF32 and, on CUDA, autocast to ``cuda_fast_dtype`` (float16 by default, bfloat16,
    or None for TF32 alone; a batch that overflows float16 is recomputed without it), and bfloat16 on a
    CPU that computes it natively (AVX512_BF16 or AMX). On any other CPU "fast" falls back to exact,
    since emulated bfloat16 is slower than float32; ``effective_precision`` and ``precision_note`` say
    so. ``cudnn_benchmark``: cuDNN's algorithm search per input shape while scoring on CUDA, off by
    default, since its cost per new shape outweighs its gain for a score. ``exact_kernel``: how "exact"
    multiplies (:data:`ExactKernel`); split TF32 keeps float32 accuracy on tensor cores, and on a CPU
    it is an emulation, slow, for checks. :meth:`with_policy` gives the same loaded network under
    another precision policy.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        device: str | torch.device = "auto",
        allow_unverified: bool = False,
        precision: Precision = "exact",
        progress: bool = True,
        cuda_fast_dtype: torch.dtype | None = torch.float16,
        cudnn_benchmark: bool = False,
        exact_kernel: ExactKernel = "auto",
    ) -> None:
        _check_policy(precision, cuda_fast_dtype, exact_kernel)
        self.device = resolve_device(device)
        network, self.weights = load_network(weights, allow_unverified=allow_unverified, progress=progress)
        # Folded batch norm and channels-last memory: the same function, measured faster on CPU and GPU.
        self.network: Inception2015 = fold_batch_norm(network).to(self.device, memory_format=torch.channels_last)
        # float32 and bfloat16 seconds of one batch, measured once per network (its copies share this dict)
        self._timings: dict[str, tuple[float, ...]] = {}
        self._split_networks: dict[torch.device, SplitTf32Network] = {}  # built when first used, shared as well
        self._set_policy(precision, cuda_fast_dtype, cudnn_benchmark, exact_kernel)

    def with_policy(self, precision: Precision | None = None, *, cuda_fast_dtype: torch.dtype | None | str = "same",
                    cudnn_benchmark: bool | None = None, exact_kernel: ExactKernel | None = None) -> "InceptionScorer":
        """A scorer sharing this one's network and weights under another precision policy (an argument
        left out keeps this scorer's setting); this scorer is unchanged."""
        other = copy.copy(self)
        dtype = self.cuda_fast_dtype if isinstance(cuda_fast_dtype, str) else cuda_fast_dtype
        _check_policy(precision or self.precision, dtype, exact_kernel or self.exact_kernel)
        other._set_policy(precision or self.precision, dtype,
                          self.cudnn_benchmark if cudnn_benchmark is None else cudnn_benchmark,
                          exact_kernel or self.exact_kernel)
        return other

    def _set_policy(self, precision: Precision, cuda_fast_dtype: torch.dtype | None, cudnn_benchmark: bool,
                    exact_kernel: ExactKernel = "auto") -> None:
        self.precision = precision
        # What "fast" computes in on CUDA, besides TF32: autocast to this dtype, or None for TF32 alone.
        # float16: on an H200 it was the fastest of the three and the closest to exact after TF32 alone
        # (benchmarks/results/gpu-check.md, which times and checks each choice).
        self.cuda_fast_dtype = cuda_fast_dtype
        # (inception_score.network.precision.set_cuda_flags says why cudnn.benchmark is off by default.)
        self.cudnn_benchmark = cudnn_benchmark
        self.float16_overflows = 0  # batches recomputed without autocast since float16 overflowed
        self.bf16_on_cpu = False
        self.precision_note = ""
        self.exact_kernel = exact_kernel
        self.split_tf32 = precision == "exact" and self._choose_split_tf32(exact_kernel)
        if precision == "fast" and self.device.type == "cpu":
            if not native_bf16_cpu():
                self.precision_note = ("fast asked for, but this CPU has no native bfloat16 (AVX512_BF16 or AMX): "
                                       "scored exactly, in float32")
            else:
                if "bfloat16" not in self._timings:
                    self._timings["bfloat16"] = bfloat16_timing(self.network)
                float32_s, bfloat16_s = self._timings["bfloat16"]
                self.bf16_on_cpu = bfloat16_s < 0.9 * float32_s
                if not self.bf16_on_cpu:
                    self.precision_note = (f"fast asked for, but bfloat16 measured slower than float32 on this CPU "
                                           f"({bfloat16_s:.2f} s against {float32_s:.2f} s for one batch): scored "
                                           "exactly, in float32")

    def _choose_split_tf32(self, exact_kernel: ExactKernel) -> bool:
        """Whether "exact" runs in split TF32 here, with ``precision_note`` saying why when it does."""
        if exact_kernel == "ieee" or (exact_kernel == "auto" and self.device.type != "cuda"):
            return False  # a CPU has no TF32: IEEE float32 is its fast exact kernel
        if exact_kernel == "split-tf32":
            self.precision_note = ("exact in split TF32 (three TF32 products each) as asked"
                                   + ("" if self.device.type == "cuda" else ", emulated on this CPU in float32 "
                                      "(several times slower than IEEE float32; for checks)"))
            return True
        if "split-tf32" not in self._timings:
            self._timings["split-tf32"] = split_tf32_timing(self.network, self._split_network(), self.device)
        ieee_s, split_s, difference = self._timings["split-tf32"]
        if split_s >= ieee_s or difference > AGREEMENT_LIMIT:
            self._split_networks.pop(self.device, None)  # its weights' parts would only hold device memory
            return False
        self.precision_note = (f"exact in split TF32 (three TF32 products each): measured faster than IEEE float32 "
                               f"here ({split_s:.3f} s against {ieee_s:.3f} s for one batch), logits within "
                               f"{difference:.1e} of it")
        return True

    def _split_network(self) -> SplitTf32Network:
        if self.device not in self._split_networks:
            self._split_networks[self.device] = split_tf32_network(self.network)
        return self._split_networks[self.device]

    @property
    def effective_precision(self) -> str:
        """``"fast"`` when reduced precision is really used, else ``"exact"``."""
        return "fast" if self.precision == "fast" and (self.device.type == "cuda" or self.bf16_on_cpu) else "exact"

    @property
    def dtype(self) -> str:
        """What the network computes in: ``float32``, ``float32 (split tf32)``, ``bfloat16``, ``float16`` or ``tf32``."""
        if self.effective_precision == "exact":
            return "float32 (split tf32)" if self.split_tf32 else "float32"
        if self.device.type == "cpu":
            return "bfloat16"
        return "tf32" if self.cuda_fast_dtype is None else str(self.cuda_fast_dtype).removeprefix("torch.")

    def network_input(self, batch: ImageBatch) -> torch.Tensor:
        """Pixels -> ``(B, 3, 299, 299)`` normalised float32 on the device.

        A list of images of different sizes is resized size group by size group, each image on its
        own terms, and the groups are put back in input order.
        """
        if isinstance(batch, torch.Tensor):
            return to_network_input(batch.to(self.device, non_blocking=True))
        resized = torch.empty(len(batch), 3, INPUT_SIZE, INPUT_SIZE, device=self.device)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(batch):
            by_size.setdefault(tuple(image.shape), []).append(index)
        for indices in by_size.values():
            group = torch.stack([batch[i] for i in indices]).to(self.device, non_blocking=True)
            resized[indices] = to_network_input(group)
        return resized

    # Deliberate points where the host waits for the device (on a CPU the same points are counted, so
    # that a CPU run shows what a CUDA run does): a copy of results to the host, a flag read.
    host_syncs = 0

    @torch.inference_mode()
    def outputs(self, batch: ImageBatch, output: OutputRequest = Output.LOGITS_UNBIASED) -> Outputs:
        """``(B, 3, H, W)`` pixels, or a list of ``(3, H, W)`` of any sizes -> ``(B, K)`` float32 on CPU;
        for a sequence of :class:`Output` a tuple of them, from one pass (pool_3 and the spatial features
        of FID and sFID beside the logits). On CUDA the host waits for the batch here
        (:meth:`device_outputs` does not)."""
        out, overflowed = self.device_outputs(batch, output)
        self.host_syncs += 1
        if overflowed is not None and bool(overflowed):
            out = self.recompute_outputs(batch, output)
        return each_output(out, torch.Tensor.cpu)

    @torch.inference_mode()
    def device_outputs(self, batch: ImageBatch,
                       output: OutputRequest = Output.LOGITS_UNBIASED) -> tuple[Outputs, torch.Tensor | None]:
        """:meth:`outputs` left on the scorer's device, without waiting for it: ``(B, K)`` float32 there,
        and where fast mode autocasts to float16 on CUDA a 0-d bool tensor on the device, True when the
        batch overflowed (its values must then not be used: :meth:`recompute_outputs` gives them), else
        None. Reading the flag is left to the caller (:mod:`inception_score.engine.pipeline`: a few reads a run)."""
        outputs, single = requested_outputs(output)
        # One scope for the resize (matrix products) and the network: "exact" keeps TF32 off in both,
        # and the caller's switches come back as they were (inception_score.network.precision).
        with precision_scope(self.device, allow_tf32=self.precision == "fast", benchmark=self.cudnn_benchmark):
            if self.device.type == "cuda":
                x = self.network_input(batch).contiguous(memory_format=torch.channels_last)
                return self._cuda_pass(x, output)
            # On CPU, resize and network run a few images at a time, so that each layer's
            # activations stay in cache (CPU_CHUNK, CPU_RESIZE_CHUNK). As with any batching, where an
            # image falls in a chunk changes its logits only at float32 rounding (measured: 3e-6 of a logit).
            parts = []
            for start in range(0, len(batch), CPU_CHUNK):
                group = batch[start : start + CPU_CHUNK]
                pieces = [self.network_input(group[i : i + CPU_RESIZE_CHUNK])
                          for i in range(0, len(group), CPU_RESIZE_CHUNK)]
                x = torch.cat([piece.contiguous(memory_format=torch.channels_last) for piece in pieces])
                parts.append(as_tuple(self.network_pass(x, outputs)))
            if not parts:
                joined = tuple(torch.empty(0, OUTPUT_DIMS[o]) for o in outputs)
            else:
                joined = tuple(torch.cat(column) for column in zip(*parts))
            return (joined[0] if single else joined), None

    @torch.inference_mode()
    def recompute_outputs(self, batch: ImageBatch, output: OutputRequest = Output.LOGITS_UNBIASED) -> Outputs:
        """The batch whose float16 overflow :meth:`device_outputs` flagged, again in TF32 alone, on the
        device; counted in ``float16_overflows`` and said in ``precision_note``."""
        with precision_scope(self.device, allow_tf32=self.precision == "fast", benchmark=self.cudnn_benchmark):
            x = self.network_input(batch).contiguous(memory_format=torch.channels_last)
            return self._without_float16(x, output)

    @torch.inference_mode()
    def network_pass(self, x: torch.Tensor, output: OutputRequest = Output.LOGITS_UNBIASED) -> Outputs:
        """The network on ready input (:meth:`network_input`'s, channels-last) as :meth:`outputs` runs
        it, on the scorer's device: bfloat16 autocast where "fast" enables it, and on CPU each stage
        CPU_STAGE_CHUNKS images at a time. Float32 out; :meth:`outputs` feeds it CPU_CHUNK images at a
        time on CPU. A float16 overflow is recomputed at once (the host waits for the flag)."""
        if self.split_tf32:  # "exact" in three TF32 products (inception_score.network.split_tf32)
            return self._split_network()(x, output, CPU_STAGE_CHUNKS if self.device.type == "cpu" else ())
        if self.device.type == "cuda":
            out, overflowed = self._cuda_pass(x, output)
            if overflowed is not None:
                self.host_syncs += 1
                if bool(overflowed):
                    out = self._without_float16(x, output)
            return out
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16_on_cpu):
            return each_output(self.network(x, output, chunks=CPU_STAGE_CHUNKS), torch.Tensor.float)

    def _cuda_pass(self, x: torch.Tensor, output: OutputRequest) -> tuple[Outputs, torch.Tensor | None]:
        if self.split_tf32:  # "exact" in three TF32 products: no float16, nothing to flag
            return self._split_network()(x, output), None
        autocast = self.precision == "fast" and self.cuda_fast_dtype is not None
        with torch.autocast("cuda", dtype=self.cuda_fast_dtype or torch.bfloat16, enabled=autocast):
            out = each_output(self.network(x, output), torch.Tensor.float)
        if autocast and self.cuda_fast_dtype == torch.float16:
            # float16 stops at 65504: its inf or NaN must never reach a score (nor a feature). Flagged on
            # the device.
            return out, ~torch.stack([torch.isfinite(t).all() for t in as_tuple(out)]).all()
        return out, None

    def _without_float16(self, x: torch.Tensor, output: OutputRequest) -> Outputs:
        out = each_output(self.network(x, output), torch.Tensor.float)
        self.float16_overflows += 1
        self.precision_note = (f"{self.float16_overflows} batch(es) overflowed float16 in fast mode and "
                               "were recomputed without it (TF32)")
        return out

    def logits(self, batch: ImageBatch) -> torch.Tensor:
        """``(B, 1008)`` float32 logits without the bias, as the paper's code used them."""
        return self.outputs(batch, Output.LOGITS_UNBIASED)


def build_scorer(options: ScorerOptions, progress: bool = False, device: str | torch.device | None = None,
                 ) -> InceptionScorer:
    """The network ``options`` describe, loaded (``device``, when given, in place of ``options.device``). Every
    entry point loads its network here."""
    return InceptionScorer(options.weights, device=options.device if device is None else device,
                           allow_unverified=options.allow_unverified, precision=options.precision,
                           exact_kernel=options.exact_kernel, progress=progress)


def as_tuple(out: Outputs) -> tuple[torch.Tensor, ...]:
    """One output as a 1-tuple; a tuple of outputs as it is."""
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)


def each_output(out: Outputs, function: Callable[[torch.Tensor], torch.Tensor]) -> Outputs:
    """``function`` applied to one output, or to each of a tuple of outputs (keeping the form)."""
    return function(out) if isinstance(out, torch.Tensor) else tuple(function(t) for t in out)


def _check_policy(precision: str, cuda_fast_dtype: torch.dtype | None, exact_kernel: str = "auto") -> None:
    check_precision(precision, exact_kernel)
    if cuda_fast_dtype not in (torch.float16, torch.bfloat16, None):
        raise InputError(f"cuda_fast_dtype must be torch.float16, torch.bfloat16 or None (TF32 alone), "
                         f"got {cuda_fast_dtype!r}")


def bfloat16_timing(network: Inception2015, batch: int = 4) -> tuple[float, float]:
    """Seconds for one ``batch`` of 299x299 inputs in float32 and in bfloat16 autocast, each after a
    warm-up pass: a CPU may report native bfloat16 and still run it slower (measured: 0.79x on a 2-core
    Xeon with AVX512_BF16), and "fast" must never be slower than exact."""
    x = torch.zeros(batch, 3, INPUT_SIZE, INPUT_SIZE).contiguous(memory_format=torch.channels_last)
    seconds = []
    with torch.inference_mode(), precision_scope(torch.device("cpu"), allow_tf32=False):  # float32 is IEEE float32
        for enabled in (False, True):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                network(x, Output.LOGITS_UNBIASED)
                begin = time.perf_counter()
                network(x, Output.LOGITS_UNBIASED)
                seconds.append(time.perf_counter() - begin)
    return seconds[0], seconds[1]

