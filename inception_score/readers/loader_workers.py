"""How many ``DataLoader`` worker processes decode images: as many as asked, but never more than the
CPUs this process may use (more only take turns on them, each holding its own memory, and torch warns
of them in its own words) nor than the batches there are (a worker without a batch does nothing)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the system says it), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def worker_count(requested: int, batches: int) -> int:
    """The workers to start for ``batches`` batches when ``requested`` were asked for (0: decode here)."""
    return max(0, min(requested, usable_cpus(), batches))
