"""The scorer's numerics for one scoring call, whatever the caller set, with the caller's settings put
back exactly: autocast off (the caller's, CPU or CUDA), TF32 and cuDNN autotuning on CUDA, IEEE float32
products of oneDNN on CPU (:func:`precision_scope`).

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
from contextlib import ExitStack, contextmanager
from typing import Literal

import torch

Tf32Api = Literal["fp32_precision", "allow_tf32"]
Restore = Callable[[], None]

_OTHER = {"ieee": "tf32", "tf32": "ieee", "bf16": "ieee"}


def tf32_api() -> Tf32Api:
    """``"fp32_precision"`` where this torch has the per-backend precision attributes, else ``"allow_tf32"``."""
    cudnn = torch.backends.cudnn
    holders = (torch.backends, cudnn, getattr(cudnn, "conv", None), torch.backends.cuda.matmul)
    return "fp32_precision" if all(hasattr(holder, "fp32_precision") for holder in holders) else "allow_tf32"


def stored_precision(holder: object) -> str:
    """What ``holder.fp32_precision`` (``torch.backends.cudnn``: all CUDA ops; or one op, such as
    ``torch.backends.mkldnn.matmul``) holds itself: ``"none"`` when it only passes on the global
    ``torch.backends.fp32_precision``, although reading it then gives the global value."""
    value = holder.fp32_precision
    parent = torch.backends.fp32_precision
    if value != parent or value not in _OTHER:
        return value  # differs from the global value, so it is its own; or "none", which is stored as such
    # Same value as the global one: flip the global value for a moment and see whether it follows.
    torch.backends.fp32_precision = _OTHER[value]
    follows = holder.fp32_precision != value
    torch.backends.fp32_precision = parent  # the root of the tree: what it reads is what it holds
    return "none" if follows else value


def stored_cuda_precision() -> str:
    """:func:`stored_precision` of ``torch.backends.cudnn``, the CUDA-wide value."""
    return stored_precision(torch.backends.cudnn)


def _set_fp32_precision(backend: object, ops: tuple[object, ...], target: str) -> Restore:
    """``backend`` (cudnn) and those of its ``ops`` pinned to another value set to ``target``."""
    stored = stored_precision(backend)
    backend.fp32_precision = target
    # An op that still reads otherwise holds its own value (an inheriting one would read `target` now).
    pinned = [(op, op.fp32_precision) for op in ops if op.fp32_precision != target]
    for op, _ in pinned:
        op.fp32_precision = target

    def restore() -> None:
        for op, value in pinned:
            op.fp32_precision = value
        backend.fp32_precision = stored

    return restore


def _set_ops_fp32_precision(ops: tuple[object, ...], target: str) -> Restore:
    """Each of ``ops`` set to ``target``, and back to what it held (``"none"``: inheriting) on restore.
    For oneDNN's ops: ``torch.backends.mkldnn.fp32_precision`` itself is not written, since in torch
    2.14.1 its setter writes the global ``torch.backends.fp32_precision`` (CUDA's parent too)."""
    changed = [(op, stored_precision(op)) for op in ops if op.fp32_precision != target]
    for op, _ in changed:
        op.fp32_precision = target

    def restore() -> None:
        for op, value in changed:
            op.fp32_precision = value

    return restore


def _set_tf32_fp32_precision(allow_tf32: bool) -> Restore:
    cudnn = torch.backends.cudnn
    return _set_fp32_precision(cudnn, (torch.backends.cuda.matmul, cudnn.conv), "tf32" if allow_tf32 else "ieee")


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


def set_cpu_flags(api: Tf32Api | None = None) -> Restore:
    """IEEE float32 for oneDNN's (mkldnn's) matrix products and convolutions on CPU, whatever the caller
    set: ``torch.set_float32_matmul_precision("medium")`` (what Lightning users set for speed) or
    ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"`` let oneDNN compute float32 products in
    bfloat16 on a CPU that has it. Returns the function that puts the caller's settings back."""
    if (api or tf32_api()) == "fp32_precision" and hasattr(torch.backends.mkldnn, "fp32_precision"):
        mkldnn = torch.backends.mkldnn
        return _set_ops_fp32_precision((mkldnn.matmul, mkldnn.conv), "ieee")
    matmul = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    return lambda: torch.set_float32_matmul_precision(matmul)


@contextmanager
def precision_scope(device: torch.device, allow_tf32: bool, benchmark: bool = False) -> Iterator[None]:
    """The scorer's own numerics for the body, whatever the caller set, and the caller's back after it.

    The caller's autocast is turned off, CPU and CUDA alike (Lightning's ``precision="bf16-mixed"``
    wraps each step in CPU bfloat16 autocast, ``"16-mixed"`` in CUDA float16 autocast): the resize and
    the network compute in float32, and "fast" enters its own autocast inside. On CUDA
    :func:`set_cuda_flags` (TF32 as ``allow_tf32`` says, ``cudnn.benchmark`` as ``benchmark``); on CPU
    :func:`set_cpu_flags` (IEEE float32; "fast" there is bfloat16 autocast, not reduced float32 products).
    """
    with ExitStack() as stack:
        for kind in ("cpu", "cuda"):
            if autocast_enabled(kind):
                stack.enter_context(torch.autocast(kind, enabled=False))
        stack.callback(set_cuda_flags(allow_tf32, benchmark=benchmark) if device.type == "cuda" else set_cpu_flags())
        yield


def autocast_enabled(device_type: str) -> bool:
    """Whether the caller's autocast is on for ``device_type`` ("cpu" or "cuda")."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: one function per device type
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


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
