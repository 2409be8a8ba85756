"""TF32 and cuDNN autotuning for one scoring call on CUDA, with the caller's settings put back exactly.

TF32 (Ampere and later) rounds the float32 inputs of matrix products and convolutions to 10 mantissa
bits. ``precision="exact"`` keeps it off for the whole pipeline, the TF1 resize (matrix products,
:mod:`inception_score.network.preprocess`) and the network; ``"fast"`` turns it on. The switches are global
to the process, so :func:`precision_scope` sets them for one call and then restores the caller's.

torch has two ways to set them, and reading one after writing the other can raise:

* legacy: ``torch.backends.cuda.matmul.allow_tf32`` / ``torch.set_float32_matmul_precision`` and
  ``torch.backends.cudnn.allow_tf32``;
* ``fp32_precision`` (torch 2.9 on): a tree, ``torch.backends`` (all backends) >
  ``torch.backends.cudnn`` (all CUDA ops) > ``torch.backends.cuda.matmul`` / ``torch.backends.cudnn.conv``
  / ``torch.backends.cudnn.rnn``. An op left at ``"none"`` inherits from its parent, and reading it
  gives the inherited value, not ``"none"``.

Seen on torch 2.14.1 (``tests/test_precision_scope.py`` pins the part this module relies on):

* writes of the new API never touch the legacy state; legacy writes also write the new tree;
* a legacy read raises ``RuntimeError`` ("mix of the legacy and new APIs") once the two disagree:
  ``matmul.allow_tf32`` and ``torch.get_float32_matmul_precision()`` after
  ``matmul.fp32_precision = "tf32"`` (the legacy state still says "highest"); ``cudnn.allow_tf32``
  after ``cudnn.conv.fp32_precision = "ieee"``. That is why the scorer must not read legacy flags;
* cuDNN conv starts at an internal default that reads ``"tf32"`` yet follows a parent set later
  (``torch.backends.fp32_precision = "ieee"`` turns it off). No setter can write that default back:
  writing ``conv.fp32_precision`` and then "restoring" ``"tf32"`` would silently cut the link.

Hence, with the new API: set the CUDA-wide value (``torch.backends.cudnn.fp32_precision``), which
every op that inherits follows; override only the ops the caller pinned to another value; on exit put
those ops back, then the CUDA-wide value as it was stored. The legacy API is used only when the new
one is missing, so the two are never mixed.

The switches are per process, not per thread: two threads scoring on CUDA at once share them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch

Tf32Api = Literal["fp32_precision", "allow_tf32"]
Restore = Callable[[], None]

_OTHER = {"ieee": "tf32", "tf32": "ieee"}


def tf32_api() -> Tf32Api:
    """``"fp32_precision"`` where this torch has the per-backend precision attributes, else ``"allow_tf32"``."""
    cudnn = torch.backends.cudnn
    holders = (torch.backends, cudnn, getattr(cudnn, "conv", None), torch.backends.cuda.matmul)
    return "fp32_precision" if all(hasattr(holder, "fp32_precision") for holder in holders) else "allow_tf32"


def stored_cuda_precision() -> str:
    """What ``torch.backends.cudnn.fp32_precision`` holds itself: ``"none"`` when it only passes on the
    global ``torch.backends.fp32_precision``, although reading it then gives the global value."""
    cudnn = torch.backends.cudnn
    value = cudnn.fp32_precision
    parent = torch.backends.fp32_precision
    if value != parent or value not in _OTHER:
        return value  # differs from the global value, so it is its own; or "none", which is stored as such
    # Same value as the global one: flip the global value for a moment and see whether it follows.
    torch.backends.fp32_precision = _OTHER[value]
    follows = cudnn.fp32_precision != value
    torch.backends.fp32_precision = parent  # the root of the tree: what it reads is what it holds
    return "none" if follows else value


def _set_tf32_fp32_precision(allow_tf32: bool) -> Restore:
    target = "tf32" if allow_tf32 else "ieee"
    cudnn = torch.backends.cudnn
    stored = stored_cuda_precision()
    cudnn.fp32_precision = target
    # An op that still reads otherwise holds its own value (an inheriting one would read `target` now).
    pinned = [(op, op.fp32_precision) for op in (torch.backends.cuda.matmul, cudnn.conv) if op.fp32_precision != target]
    for op, _ in pinned:
        op.fp32_precision = target

    def restore() -> None:
        for op, value in pinned:
            op.fp32_precision = value
        cudnn.fp32_precision = stored

    return restore


def _set_tf32_allow_tf32(allow_tf32: bool) -> Restore:
    matmul = torch.get_float32_matmul_precision()
    cudnn = torch.backends.cudnn.allow_tf32
    # "high" is what matmul.allow_tf32 = True sets; restoring the string keeps a caller's "medium".
    torch.set_float32_matmul_precision("high" if allow_tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = allow_tf32

    def restore() -> None:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = cudnn

    return restore


def set_cuda_flags(allow_tf32: bool, api: Tf32Api | None = None, benchmark: bool = False) -> Restore:
    """Set TF32 for CUDA matrix products and cuDNN convolutions, and ``cudnn.benchmark`` to ``benchmark``.

    Returns the function that puts back every switch as the caller had it. ``api`` picks the
    interface (default: :func:`tf32_api`, the one this torch offers); only the flags change, so this
    runs on any machine, GPU or not.
    """
    restore_tf32 = (_set_tf32_fp32_precision if (api or tf32_api()) == "fp32_precision" else _set_tf32_allow_tf32)(
        allow_tf32
    )
    callers_benchmark = torch.backends.cudnn.benchmark
    # Off by default: cuDNN's search costs 13 s per new input shape in float32 (2.7 s in fast mode) and
    # gains 6-7% afterwards (measured on an H200, benchmarks/results/gpu-cudnn-benchmark.md); a
    # one-shot score of 2,000 images ran at 80 img/s with it.
    torch.backends.cudnn.benchmark = benchmark

    def restore() -> None:
        torch.backends.cudnn.benchmark = callers_benchmark
        restore_tf32()

    return restore


@contextmanager
def precision_scope(device: torch.device, allow_tf32: bool, benchmark: bool = False) -> Iterator[None]:
    """On CUDA, :func:`set_cuda_flags` for the body, then the caller's switches back; elsewhere nothing."""
    if device.type != "cuda":
        yield
        return
    restore = set_cuda_flags(allow_tf32, benchmark=benchmark)
    try:
        yield
    finally:
        restore()


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 products natively (AVX512_BF16 or AMX-BF16): only there is
    bfloat16 faster than float32 (measured elsewhere: 3x slower on an AVX2-only CPU, which emulates it)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:  # not Linux: ask torch's oneDNN
        import torch

        return bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())
