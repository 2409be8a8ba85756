"""Scoring across processes on ``torch.distributed``: shards, lock-step error agreement, and the one
exchange of sufficient statistics.

Every process of a group scores its own part of the images and keeps the per-split statistics of
:class:`~inception_score.score.statistics.SplitStatistics` (sums over images). Those sums add exactly, so one
``all_reduce`` in float64 of ``splits x (2 classes + 1027)`` numbers (about 240 KB at 10 splits, whatever the
number of images) gives every process the statistics of all images, and so the very score one process
would compute. No logits and no images travel.

Positions are global: with a sized input, process ``r`` of ``W`` scores the contiguous shard
``[N r / W, N (r + 1) / W)`` of the input order, so contiguous splits and ``shuffle`` (by global
position) mean what they mean in one process.

Errors: the processes take their batches in lock step and agree after each one, with a one-number
``all_reduce``, whether any of them failed. A failure (a corrupt file only one of them reads) then ends
every process with that process's message instead of leaving the others waiting in a collective. A
process that dies outright is noticed as a broken collective and reported the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from ..errors import InceptionScoreError, one_line_message
from ..score.statistics import ORDER_SKETCH_SIZE, SplitStatistics

T = TypeVar("T")


class RankFailedError(InceptionScoreError):
    """Another process of the group failed (its message is included) or stopped answering."""


class PeerLostError(RankFailedError):
    """A collective broke: another process of the group stopped answering (killed or crashed). Every
    surviving process reports it, since the lost one may be the one that speaks for the group."""


@dataclass(frozen=True)
class Group:
    """The process group a scoring call works in: this process's ``rank`` of ``world_size``, and the
    device the collectives' tensors must live on (the current CUDA device under NCCL, else the CPU)."""

    rank: int
    world_size: int
    device: torch.device
    handle: Any = None  # a torch ProcessGroup; None: the default group

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_group(distributed: bool | None = None, handle: Any = None) -> Group | None:
    """The initialised process group (``distributed`` None or True), or None: ``distributed=False``, no
    group, or a group of one process."""
    if distributed is False or not dist.is_available() or not dist.is_initialized():
        return None
    world = dist.get_world_size(handle)
    if world == 1:
        return None
    device = torch.device("cpu")
    if dist.get_backend(handle) == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    return Group(dist.get_rank(handle), world, device, handle)


def shard_bounds(num_images: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s contiguous part of ``num_images`` (sizes differ by at most one)."""
    return num_images * rank // world_size, num_images * (rank + 1) // world_size


def lockstep_steps(num_images: int, world_size: int, batch_size: int) -> int:
    """Batches every rank steps through: the largest shard's count (smaller shards idle at the end)."""
    return math.ceil(math.ceil(num_images / world_size) / batch_size)


def collective(what: str, call: Callable[[], T]) -> T:
    """Run one collective; a peer that died shows up here as a backend error."""
    try:
        return call()
    except (RuntimeError, dist.DistError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PeerLostError(
            f"another process of the group stopped answering during {what} (killed or crashed?): {first[:300]}"
        ) from None


def agree(group: Group, error: BaseException | None) -> None:
    """Every rank calls this after each step. If any rank failed, every rank raises: the failing rank
    its own error, the others :class:`RankFailedError` with the first failing rank's message."""
    flag = torch.tensor([0 if error is None else 1], dtype=torch.int64, device=group.device)
    collective("the per-batch check", lambda: dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=group.handle))
    if int(flag.item()) == 0:
        return
    mine = None if error is None else (type(error).__name__, one_line_message(error))
    messages = gather_objects(group, mine, "the error exchange")
    if error is not None:
        raise error
    rank, (kind, text) = next((r, m) for r, m in enumerate(messages) if m is not None)
    raise RankFailedError(f"process {rank} of {group.world_size} failed: {text}")


@contextlib.contextmanager
def agreeing(group: Group | None, catch: type[Exception] | tuple[type[Exception], ...] = Exception) -> Iterator[None]:
    """``with agreeing(group): step`` runs the step and then, in a group, :func:`agree`: an exception of a
    ``catch`` type on any rank ends every rank (the failing one with its own error). Outside a group the
    step's errors pass through untouched."""
    if group is None:
        yield
        return
    error: BaseException | None = None
    try:
        yield
    except catch as caught:  # every failure of a step must reach the other ranks
        error = caught
    agree(group, error)


def gather_objects(group: Group, value: Any, what: str = "the exchange of results") -> list[Any]:
    """Every rank's picklable ``value``, in rank order; a peer that died raises :class:`PeerLostError`.
    Only for small values sent once (messages, lists of indices), never for images or logits."""
    gathered: list[Any] = [None] * group.world_size
    collective(what, lambda: dist.all_gather_object(gathered, value, group=group.handle))
    return gathered


def run_in_lockstep(group: Group, batches: Iterable[T], steps: int, work: Callable[[T], None]) -> None:
    """``work(batch)`` for each of this rank's batches, in ``steps`` agreed steps (a rank out of
    batches idles), with :func:`agree` after each step."""
    iterator = iter(batches)
    for _ in range(steps):
        with agreeing(group):
            batch = next(iterator, None)
            if batch is not None:
                work(batch)


# --- the exchange of statistics ------------------------------------------------------------------------


def _fields(stats: SplitStatistics) -> list[np.ndarray]:
    return [np.asarray(getattr(stats, f.name)) for f in dataclasses.fields(stats)]


def statistics_bytes(splits: int, num_classes: int, sketch_size: int = ORDER_SKETCH_SIZE) -> int:
    """Bytes one rank sends in :func:`all_reduce_statistics` (float64 per number)."""
    return 8 * sum(a.size for a in _fields(SplitStatistics.zeros(splits, num_classes, sketch_size)))


def all_reduce_statistics(group: Group, stats: SplitStatistics) -> SplitStatistics:
    """The sum over ranks of every field of ``stats``, in float64 (counts exact below 2**53): one call."""
    arrays = _fields(stats)
    flat = torch.from_numpy(np.concatenate([a.astype(np.float64).ravel() for a in arrays])).to(group.device)
    collective("the exchange of statistics", lambda: dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group.handle))
    flat_np = flat.cpu().numpy()
    values, start = {}, 0
    for field, array in zip(dataclasses.fields(stats), arrays):
        part = flat_np[start : start + array.size].reshape(array.shape)
        values[field.name] = np.rint(part).astype(array.dtype) if array.dtype.kind in "iu" else part
        start += array.size
    return SplitStatistics(**values)


def subtract_statistics(total: SplitStatistics, part: SplitStatistics) -> SplitStatistics:
    """``total`` without ``part`` (every field is a sum over images)."""
    return SplitStatistics(**{f.name: getattr(total, f.name) - getattr(part, f.name) for f in dataclasses.fields(total)})


def all_gather_counts(group: Group, count: int) -> list[int]:
    """Each rank's ``count``, in rank order."""
    mine = torch.tensor([count], dtype=torch.int64, device=group.device)
    gathered = [torch.zeros_like(mine) for _ in range(group.world_size)]
    collective("the exchange of image counts", lambda: dist.all_gather(gathered, mine, group=group.handle))
    counts = torch.cat(gathered).cpu()
    return [int(c) for c in counts]


def all_gather_seen(group: Group, seen: np.ndarray) -> np.ndarray:
    """``(world, N)`` bool: which global indices each rank saw (sent packed, N / 8 bytes per rank)."""
    packed = torch.from_numpy(np.packbits(seen)).to(group.device)
    gathered = [torch.zeros_like(packed) for _ in range(group.world_size)]
    collective("the exchange of seen indices", lambda: dist.all_gather(gathered, packed, group=group.handle))
    return np.stack([np.unpackbits(g.cpu().numpy())[: len(seen)].astype(bool) for g in gathered])


def max_over_ranks(group: Group, value: float) -> float:
    """The largest ``value`` over ranks (the wall time of the slowest process)."""
    tensor = torch.tensor([value], dtype=torch.float64, device=group.device)
    collective("the exchange of timings", lambda: dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=group.handle))
    return float(tensor.item())


# --- launching under torchrun ---------------------------------------------------------------------------


def launched_by_torchrun() -> bool:
    """torchrun (and any env:// launcher) sets WORLD_SIZE and RANK for each process."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init_from_environment(device: torch.device, timeout_s: float = 120.0) -> Group | None:
    """Join the group that torchrun described in the environment (Gloo on CPU, NCCL on CUDA), unless
    one is initialised already. ``timeout_s`` bounds every collective: a rank that hangs cannot keep the
    others waiting longer."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return None
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return current_group()


def say_when_terminated() -> None:
    """Under torchrun, on SIGTERM: print one line and end with status 143 (128 + SIGTERM), instead of
    dying without a word. Installed before the group is joined, so it covers the whole run.

    torchrun sends SIGTERM to every process of a run when one of them fails (a crash, ``kill -9``, out of
    memory), within a second, and when it is stopped itself; its own report then names the process that
    failed and how."""
    import signal
    import sys

    if not launched_by_torchrun():
        return
    rank, world = os.environ["RANK"], os.environ["WORLD_SIZE"]

    def terminated(signum: int, frame: Any) -> None:
        sys.stdout.flush()
        sys.stderr.write(
            f"Error: process {rank} of {world} was stopped by SIGTERM: torchrun stops every process when one of "
            "them fails (or when it is stopped itself); its report names the process that failed\n")
        sys.stderr.flush()
        os._exit(128 + signal.SIGTERM)  # no clean-up: the group is broken, and a collective could wait

    signal.signal(signal.SIGTERM, terminated)


def local_device(device: str) -> str:
    """``--device auto`` under torchrun means this process's own GPU, ``cuda:LOCAL_RANK``, when CUDA exists."""
    if device == "auto" and launched_by_torchrun() and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device
