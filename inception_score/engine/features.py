"""The features a scoring run keeps beside the logits, from the same forward pass: FID's and sFID's
running moments, and the pool_3 (and spatial) vectors themselves where KID, precision and recall or
``--save-features`` need them.

:class:`FeatureRequest` says what to keep; the device pipeline asks the network for those outputs beside
the logits (one pass per image) and hands them to a :class:`FeatureCollector`, which

- adds each batch to float64 :class:`~inception_score.score.fid.FeatureMoments` on the device (memory flat
  in N); a batch whose float16 overflow flag is pending is added once the flag is read, from its values or
  from the values computed again;
- keeps the asked-for vectors in input order, moved to the host at the pipeline's settle points;
- at :meth:`FeatureCollector.finish`, in a ``torch.distributed`` group, sums the moments over the
  processes (one all-reduce each) and gathers the kept vectors in rank order, which is input order for a
  run whose processes score contiguous parts.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..atomic import write_atomic
from ..network.outputs import OUTPUT_DIMS, Output
from ..score.evaluation import FeatureSet
from ..score.fid import FeatureMoments
from .distributed import Group, all_gather_counts, collective

FEATURE_OUTPUTS = (Output.POOL3, Output.SPATIAL)


@dataclass(frozen=True)
class FeatureRequest:
    """Which features a run keeps: ``moments`` (running float64 mean and covariance sums) and ``kept`` (the
    vectors themselves, float32, in input order), each a tuple of :data:`FEATURE_OUTPUTS`."""

    moments: tuple[Output, ...] = ()
    kept: tuple[Output, ...] = ()

    @property
    def outputs(self) -> tuple[Output, ...]:
        """The network outputs asked for beside the logits, in a fixed order."""
        return tuple(o for o in FEATURE_OUTPUTS if o in self.moments or o in self.kept)

    def __bool__(self) -> bool:
        return bool(self.outputs)


@dataclass
class CollectedFeatures:
    """What a run kept: ``moments[output]`` over all its images (all processes), ``kept[output]`` ``(N, D)``
    float32 in input order."""

    moments: dict[Output, FeatureMoments] = field(default_factory=dict)
    kept: dict[Output, np.ndarray] = field(default_factory=dict)

    def side(self) -> FeatureSet:
        """The :class:`~inception_score.score.evaluation.FeatureSet` of these images: the mean and
        covariance of each output whose moments were kept, and the pool_3 vectors where kept."""
        pool3, spatial = self.moments.get(Output.POOL3), self.moments.get(Output.SPATIAL)
        vectors = self.kept.get(Output.POOL3)
        counts = [m.count for m in (pool3, spatial) if m is not None] + ([len(vectors)] if vectors is not None else [])
        return FeatureSet(None if pool3 is None else pool3.statistics(),
                          None if spatial is None else spatial.statistics(), vectors, counts[0] if counts else None)

    def save(self, path: str | os.PathLike) -> Path:
        """``--save-features``: ``pool_3`` (N, 2048) and ``spatial`` (N, 2023) float32 in input order, one
        ``.npz`` written atomically (a link at ``path`` is replaced, never followed)."""
        buffer = io.BytesIO()
        np.savez(buffer, pool_3=self.kept[Output.POOL3], spatial=self.kept[Output.SPATIAL])
        return write_atomic(path, buffer.getvalue())


def feature_request(metrics: frozenset[str], save_features: bool = False, save_reference: bool = False,
                    ) -> FeatureRequest | None:
    """What a run keeps for ``metrics`` (of ``fid``, ``sfid``, ``kid``, ``pr``) and the files asked for:
    moments for FID and sFID, pool_3 vectors for KID and precision/recall, both outputs' vectors for
    ``save_features``, everything a reference needs for ``save_reference``. None: nothing."""
    moments = [o for o, needed in ((Output.POOL3, "fid" in metrics or save_reference),
                                   (Output.SPATIAL, "sfid" in metrics or save_reference)) if needed]
    kept = [o for o, needed in ((Output.POOL3, bool(metrics & {"kid", "pr"}) or save_features or save_reference),
                                (Output.SPATIAL, save_features)) if needed]
    request = FeatureRequest(tuple(moments), tuple(kept))
    return request if request else None


# A reference built from images keeps everything any metric needs, so that its cache serves them all.
REFERENCE_FEATURES = FeatureRequest(moments=(Output.POOL3, Output.SPATIAL), kept=(Output.POOL3,))


class FeatureCollector:
    """Receives each batch's feature outputs (in :attr:`FeatureRequest.outputs` order) from the pipeline."""

    def __init__(self, request: FeatureRequest) -> None:
        self.request = request
        self.outputs = request.outputs
        self.moments: dict[Output, FeatureMoments] = {}
        self.slots: list[tuple[torch.Tensor, ...] | None] = []  # kept outputs of the batches, on their device
        self.host: dict[Output, list[torch.Tensor]] = {o: [] for o in request.kept}
        self.deferred: dict[int, tuple[torch.Tensor, ...]] = {}  # batches whose overflow flag is pending
        self.moved = 0  # slots before this one are on the host

    def add(self, outputs: tuple[torch.Tensor, ...], pending: bool) -> int:
        """A batch's outputs; ``pending``: its float16 overflow flag is not read yet (:meth:`resolve` adds
        it then). Returns the slot :meth:`resolve` takes."""
        slot = len(self.slots)
        outputs = tuple(t.detach() for t in outputs)
        self.slots.append(outputs)
        if pending:
            self.deferred[slot] = outputs
        else:
            self._add_moments(outputs)
        return slot

    def resolve(self, slot: int, recomputed: tuple[torch.Tensor, ...] | None) -> None:
        """The pending batch ``slot``, its flag read: its own outputs (``recomputed`` None) or those
        computed again without float16."""
        outputs = self.deferred.pop(slot)
        if recomputed is not None:
            outputs = tuple(t.detach() for t in recomputed)
            self.slots[slot] = outputs
        self._add_moments(outputs)

    def _add_moments(self, outputs: tuple[torch.Tensor, ...]) -> None:
        for output, values in zip(self.outputs, outputs):
            if output in self.request.moments:
                if output not in self.moments:
                    self.moments[output] = FeatureMoments(OUTPUT_DIMS[output], values.device)
                self.moments[output].update(values)

    def flush(self) -> bool:
        """Move the kept vectors of the settled batches to the host (one copy per output); True when a
        copy left a device."""
        assert not self.deferred, "every pending batch is resolved before a flush"
        settled = self.slots[self.moved :]
        copied = False
        for index, output in enumerate(self.outputs):
            if output not in self.host or not settled:
                continue
            parts = [outputs[index] for outputs in settled if outputs is not None]
            joined = torch.cat(parts) if len(parts) > 1 else parts[0]
            copied = copied or joined.device.type != "cpu"
            self.host[output].append(joined.to("cpu", torch.float32))
        self.slots[self.moved :] = [None] * len(settled)
        self.moved = len(self.slots)
        return copied

    def finish(self, group: Group | None = None) -> CollectedFeatures:
        """Everything kept, over every process of ``group``: moments summed, vectors gathered in rank order."""
        self.flush()
        collected = CollectedFeatures()
        for output in self.request.moments:
            moments = self.moments.get(output) or FeatureMoments(OUTPUT_DIMS[output])
            if group is not None:
                flat = moments.as_tensor().to(group.device)
                collective("the exchange of feature moments",
                           lambda: dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group.handle))
                moments = FeatureMoments.from_tensor(flat.cpu(), OUTPUT_DIMS[output])
            collected.moments[output] = moments
        for output, parts in self.host.items():
            mine = torch.cat(parts) if parts else torch.empty(0, OUTPUT_DIMS[output])
            collected.kept[output] = (mine if group is None else gather_rows(group, mine)).numpy()
        return collected


def gather_rows(group: Group, rows: torch.Tensor) -> torch.Tensor:
    """Every rank's ``(n_rank, D)`` rows, concatenated in rank order (padded to the largest count for
    the all-gather, the padding dropped)."""
    counts = all_gather_counts(group, len(rows))
    padded = torch.zeros(max(counts), rows.shape[1], dtype=rows.dtype, device=group.device)
    padded[: len(rows)] = rows.to(group.device)
    gathered = [torch.empty_like(padded) for _ in counts]
    collective("the exchange of features", lambda: dist.all_gather(gathered, padded, group=group.handle))
    return torch.cat([part[:count].cpu() for part, count in zip(gathered, counts)])


__all__ = ["CollectedFeatures", "FEATURE_OUTPUTS", "FeatureCollector", "FeatureRequest", "REFERENCE_FEATURES",
           "feature_request", "gather_rows"]
