"""Independent runs (Table 3's variants, the semi-supervised seeds) spread over devices, one process
per device, on ``torch.distributed``.

Two ways in, one mechanism:

* ``--devices cpu,cpu`` / ``--devices cuda:0,cuda:1``: torch.multiprocessing starts one process per
  device and they join one group (Gloo, or NCCL when every device is a GPU) through a rendezvous file;
* under ``torchrun``: each process already is a rank (its device: ``cuda:LOCAL_RANK``, or the CPU).

Run ``i`` of a list goes to rank ``i mod W``; every run keeps its own folder and resumes on its own, so
a stopped experiment restarts with any number of processes. Ranks agree (one all-reduce, which also
carries a failure from any rank) before the shared steps, and rank 0 alone writes the table.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from inception_score.engine.distributed import Group, current_group, init_from_environment, launched_by_torchrun

T = TypeVar("T")
# A rank may wait for another's training for days (the paper's preset on a GPU): collectives must not
# give up before that.
WAIT = timedelta(days=30)


def my_share(items: Sequence[T], group: Group | None) -> list[T]:
    """The items rank ``r`` of ``W`` runs: every ``W``-th, from the ``r``-th (all of them alone)."""
    if group is None:
        return list(items)
    return [item for index, item in enumerate(items) if index % group.world_size == group.rank]


def run_on_devices(devices: Sequence[str] | None, job: Callable[..., Any], *args: Any, threads: int | None = None) -> Any:
    """``job(group, device, *args)`` in every process: one process per entry of ``devices`` (started
    here), or each rank of the running torchrun, or this process alone. Returns rank 0's result
    (None from a spawn: the processes' results stay in their processes)."""
    if launched_by_torchrun():
        device = devices[int(os.environ.get("LOCAL_RANK", 0)) % len(devices)] if devices else _local_device()
        group = init_from_environment(torch.device(device), timeout_s=WAIT.total_seconds())
        return _call(job, group, device, args, threads)
    if devices is None or len(devices) <= 1:
        return _call(job, None, devices[0] if devices else None, args, threads)
    with tempfile.TemporaryDirectory(prefix="reference-gan-") as folder:
        try:
            mp.start_processes(_spawned, args=(list(devices), str(Path(folder) / "rendezvous"), job, args, threads),
                               nprocs=len(devices), join=True, start_method="spawn")
        except mp.ProcessExitedException as exited:  # it said why on stderr; the others were stopped
            raise SystemExit(exited.exit_code) from None
    return None


def _local_device() -> str:
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


def _spawned(rank: int, devices: list[str], rendezvous: str, job: Callable[..., Any], args: tuple, threads: int | None) -> None:
    backend = "nccl" if all(d.startswith("cuda") for d in devices) else "gloo"
    if devices[rank].startswith("cuda"):
        torch.cuda.set_device(torch.device(devices[rank]))
    dist.init_process_group(backend, init_method=f"file://{rendezvous}", rank=rank, world_size=len(devices),
                            timeout=WAIT)
    from .errors import user_errors  # one line and status 2 for a bad input, as in one process

    try:
        with user_errors():
            _call(job, current_group(), devices[rank], args, threads)
    finally:
        dist.destroy_process_group()


def _call(job: Callable[..., Any], group: Group | None, device: str | None, args: tuple, threads: int | None) -> Any:
    if threads is not None:
        torch.set_num_threads(threads)
    return job(group, device, *args)
