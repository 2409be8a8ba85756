"""The Inception Score as a ``torchmetrics.Metric``, for Lightning and torchmetrics users (imported only
when torchmetrics is installed: ``pip install torchmetrics``).

Its states are the per-split sufficient statistics of :class:`~inception_score.score.statistics.SplitStatistics`
with ``dist_reduce_fx="sum"``, so ``self.log("is", metric)`` in a LightningModule syncs about 240 KB per
process (10 splits) whatever the number of images: no features are gathered.

What ``compute()`` returns: the mean Inception Score, a 0-dim float64 tensor. Lightning's ``self.log``
and ``self.log_dict`` take scalar tensors only (a metric object logged whose ``compute()`` returns
anything else is an error there), and torchmetrics' own ``InceptionScore``, which returns the tuple
``(mean, std)``, cannot be logged as an object for that reason. So the mean, the number the paper
reports, is the metric's value, and Lightning can compute, log and reset the metric itself. The rest
is on the object: :attr:`InceptionScoreMetric.result` is the :class:`~inception_score.ISResult` of
the same statistics (std, split scores, ``weights_verified``, ``not_comparable``), and
:meth:`InceptionScoreMetric.scalars` gives the loggable part as a dict of scalar tensors, the shape
torchmetrics' multi-output metrics return, for ``self.log_dict``.

The order, which decides each image's split: the ``k``-th image a process of rank ``r`` (of ``W``)
receives since the last ``reset()`` has global position ``k W + r``, the order of a
``DistributedSampler`` (its shuffle or not). That sampler pads each epoch to ``ceil(N / W) W``
positions by repeating its first indices, so positions ``N`` to ``ceil(N / W) W - 1`` are padding and
are dropped. With one process, images are in ``update`` order and there is no padding. The score then
equals :func:`inception_score.inception_score` on the images in the sampler's global order.

Never a stale or partial score: an image at a position beyond the padding (more images than
announced, or a second epoch without ``reset()``) is not scored but counted, and ``compute()`` then
raises :class:`~inception_score.errors.InputError` with the counts on every process, as it does when
fewer than ``num_images`` images arrived. Lightning calls ``reset()`` after each epoch for a metric
logged as an object (``self.log("is", metric)``); a loop that calls ``compute()`` itself must call
``reset()`` too.

``forward`` (``metric(images)``) raises at once: the score of one batch, which torchmetrics' forward
returns, means nothing for a split-based score. So ``full_state_update`` and ``dist_sync_on_step``,
which only shape ``forward``, have no effect; ``compute_on_cpu`` moves list states only, and this
metric has none. The scorer (the network) follows the metric's device: ``metric.to(device)``, which
Lightning calls for the module, moves it too.

torchmetrics' own ``InceptionScore`` differs: it keeps every feature (N x 1008 float32, all-gathered to
every rank), splits after an unseeded ``torch.randperm`` into ``torch.chunk`` pieces (``ceil(N /
splits)`` images each), reports the sample standard deviation (ddof=1), and from torchmetrics 1.8 on
feeds torch-fidelity's network through an antialiased resize. See docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from .engine.distributed import current_group
from .errors import InputError, MissingDependencyError

try:
    from torchmetrics import Metric
except ModuleNotFoundError as error:
    if error.name != "torchmetrics":
        raise  # torchmetrics is there, and something it imports is not: its own message says what
    raise MissingDependencyError(
        "inception_score.torchmetrics_adapter (InceptionScoreMetric) needs torchmetrics, which is not installed: "
        "pip install torchmetrics (or use inception_score.InceptionScore, the same metric without it)") from None
from .api import load_reference
from .engine.features import CollectedFeatures, FeatureRequest, feature_request
from .engine.run import ScoringRun, result_of
from .engine.runner import InceptionScorer, build_scorer, resolve_device
from .network.inception import NUM_CLASSES
from .network.outputs import OUTPUT_DIMS, Output
from .references.reference import Reference, check_same_network, reference_notes
from .score.evaluation import Evaluation, chosen_metrics, evaluate, parse_metrics
from .score.fid import FeatureMoments
from .options import OPTION_NAMES, ScorerOptions, scorer_options
from .protocol import TORCH_FIDELITY_SEED
from .readers.inputs import InputRange, parse_input_range, standardize_batch
from .score.result import ISResult
from .score.statistics import SplitPlan, SplitStatistics

_STATISTICS = tuple(field.name for field in dataclasses.fields(SplitStatistics))


class InceptionScoreMetric(Metric):
    """``update(images)`` per batch on each process; ``compute()`` -> the mean, a 0-dim float64 tensor;
    :attr:`result` -> the whole :class:`~inception_score.ISResult`.

    The network's options (``options=``, or ``precision``, ``exact_kernel``, ``device``, ``weights``,
    ``allow_unverified``, ``batch_size`` as keywords, beside torchmetrics' own ``Metric`` keywords) are
    :class:`~inception_score.options.ScorerOptions`'.
    Its device is the metric's (``metric.to(...)`` moves it) unless ``device`` names one: then the metric
    moves there at once.

    ``reference`` (loaded once: any :func:`~inception_score.load_reference` source) adds FID and sFID
    against it (``metrics``: ``"fid"``, ``"sfid"`` or both, the default where the reference allows) to
    :attr:`result` and to :meth:`scalars` (``fid``, ``sfid``), from the same pass: their float64 running
    sums are states summed across processes (33.6 MB for FID, 32.7 MB for sFID, whatever N)."""

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        splits: int | None = None,
        *,
        num_images: int,
        input_range: str | InputRange | None = None,
        shuffle: bool = False,
        seed: int = TORCH_FIDELITY_SEED,
        scorer: InceptionScorer | Any = None,
        reference: Any = None,
        metrics: str | Iterable[str] | None = None,
        options: ScorerOptions | None = None,
        **kwargs: Any,
    ) -> None:
        # kwargs: the scorer's options (ScorerKeywords) and torchmetrics' Metric keywords, told apart by name.
        option_keywords = {name: kwargs.pop(name) for name in OPTION_NAMES if name in kwargs}
        super().__init__(**kwargs)
        # The scorer's options; its device is the metric's (which .to() changes) unless one is given here.
        self.options = scorer_options(options, **option_keywords)
        self.plan = SplitPlan.of(num_images, splits, seed if shuffle else None)
        splits = self.plan.split_count
        self.splits = splits
        self.num_images = num_images
        self.input_range = parse_input_range(input_range)
        self.shuffled = shuffle
        self.order = self.plan.order
        self.scorer = scorer or build_scorer(self.options, device=self.device)
        zeros = SplitStatistics.zeros(splits, NUM_CLASSES)
        for name in _STATISTICS:
            self.add_state(name, torch.zeros(getattr(zeros, name).shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.reference, self.features = self._reference(reference, metrics)
        for output in self.features.moments if self.features else ():  # FID's and sFID's running sums
            dim = OUTPUT_DIMS[output]
            self.add_state(f"moments_{output.value}", torch.zeros(1 + dim + dim * dim, dtype=torch.float64),
                           dist_reduce_fx="sum")
        # Every image update() was given since the last reset, and those beyond the sampler's padding
        # (not scored): this process's counts between syncs, every process's inside compute().
        self.add_state("received", torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("surplus", torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        if self.options.device != "auto":  # asked for: the metric, and with it the scorer, moves there
            self.to(resolve_device(self.options.device))
        self._result: ISResult | None = None
        group = current_group(None, self.process_group)
        rank = group.rank if group is not None else int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))
        if not self.weights_verified and rank == 0:  # once per run, not once per process
            warnings.warn(f"InceptionScoreMetric scores with unverified weights ({self.scorer.weights.path}, "
                          f"sha256 {self.scorer.weights.sha256}): its values are not Inception Scores comparable "
                          "with published ones (metric.weights_verified is False)", UserWarning, stacklevel=2)

    def _reference(self, reference: Any, metrics: Any) -> tuple[Reference | None, FeatureRequest | None]:
        """The reference, loaded once, and the moments kept for FID and sFID against it. KID and precision/
        recall need every feature vector, which a metric's states do not carry: refused, with where to go."""
        asked = parse_metrics(metrics)
        if reference is None:
            if asked:
                raise InputError(f"metrics {sorted(asked)} compare the images with a reference: pass reference=")
            return None, None
        loaded = load_reference(reference, scorer=self.scorer)
        chosen = chosen_metrics(asked, loaded.side, f"the reference {loaded.source}") & {"fid", "sfid"}
        if asked and asked - {"fid", "sfid"}:
            raise InputError("InceptionScoreMetric computes FID and sFID (running sums, synced as states); KID and "
                             "precision/recall need every feature vector: use inception_score.InceptionScore or "
                             "inception_score() with reference= for them")
        check_same_network(loaded, self.scorer)
        return loaded, feature_request(chosen)

    @property
    def weights_verified(self) -> bool:
        """Whether the scorer's weights are the verified 2015-12-05 Inception network."""
        return bool(self.scorer.weights.verified)

    @property
    def result(self) -> ISResult:
        """The :class:`~inception_score.ISResult` of every image since the last ``reset()``: computed and
        synced across processes if it was not yet, so read it on every process, as ``compute()``."""
        self.compute()  # torchmetrics returns its cached value when nothing was added since
        assert self._result is not None
        return self._result

    @property
    def not_comparable(self) -> tuple[str, ...]:
        """Why :attr:`result` cannot be set beside published Inception Scores (empty: it can)."""
        return self.result.not_comparable

    def scalars(self, prefix: str = "is") -> dict[str, torch.Tensor]:
        """The loggable part of :attr:`result`, for ``self.log_dict``: ``{prefix: mean, prefix_std: std,
        prefix_weights_verified: 1.0 or 0.0}``, 0-dim float64 tensors on the metric's device, the same on
        every process."""
        result = self.result
        values = {prefix: result.mean, f"{prefix}_std": result.std,
                  f"{prefix}_weights_verified": float(result.weights_verified)}
        evaluation = result.evaluation
        for name in ("fid", "sfid"):
            if evaluation is not None and getattr(evaluation, name) is not None:
                values[name] = getattr(evaluation, name)
        # On the metric's device, as compute()'s value: Lightning's sync_dist over NCCL needs CUDA tensors.
        return {name: torch.tensor(value, dtype=torch.float64, device=self.device) for name, value in values.items()}

    def reset(self) -> None:
        super().reset()
        self._result = None

    def state_bytes(self) -> int:
        """Bytes of state each process contributes to a sync."""
        moments = sum(getattr(self, f"moments_{o.value}").numel() * 8 for o in (self.features.moments if self.features else ()))
        return sum(getattr(self, name).numel() * 8 for name in _STATISTICS) + 2 * 8 + moments

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise InputError("InceptionScoreMetric cannot score a single batch (metric(images) calls forward): the "
                         "score of a batch's splits means nothing. Call metric.update(images) in the step, and "
                         "self.log('is', metric) or metric.compute() at the epoch's end")

    def _apply(self, fn: Any, exclude_state: Any = ()) -> torch.nn.Module:
        """torchmetrics moves the states (``.to``, ``.cuda``, ``.cpu``; not dtype casts); the scorer,
        which is no submodule (its network is neither trained nor saved with the module), follows."""
        this = super()._apply(fn, exclude_state)
        self._move_scorer(self.device)
        return this

    def _move_scorer(self, device: torch.device) -> None:
        scorer = self.scorer
        if getattr(scorer, "device", device) == device:
            return
        if hasattr(scorer, "network"):
            scorer.network = scorer.network.to(device)
        scorer.device = device
        if getattr(scorer, "precision", "exact") == "fast":
            # bfloat16 on the CPU was measured (or not) at construction, for the device of then.
            scorer.bf16_on_cpu = False
            scorer.precision_note = ("" if device.type == "cuda" else
                                     "fast asked for, but the metric moved to the CPU after it was built: "
                                     "scored exactly, in float32")

    def update(self, images: Any) -> None:  # type: ignore[override]
        """Add a batch ``(B, 3, H, W)`` or ``(B, H, W, 3)``, this process's next images in its sampler's order."""
        pixels = standardize_batch(images, self.input_range, "the batch given to update()")
        group = current_group(None, self.process_group)
        rank, world = (group.rank, group.world_size) if group is not None else (0, 1)
        order = (int(self.received) + np.arange(len(pixels))) * world + rank
        self.received += len(pixels)
        # A DistributedSampler's epoch has ceil(N / W) W positions; those from N on repeat its first images.
        self.surplus += int((order >= math.ceil(self.num_images / world) * world).sum())
        keep = order < self.num_images
        if not keep.any():
            return
        run = ScoringRun(self.scorer, self.plan.rule, shuffle_seed=self.plan.shuffle_seed, indexed=self.num_images,
                         complete=False, batch_size=self.options.batch_size, features=self.features)
        run.add(pixels[torch.from_numpy(np.flatnonzero(keep))], order[keep])
        stats = run.statistics()
        for name in _STATISTICS:
            state = getattr(self, name)
            state += torch.from_numpy(np.asarray(getattr(stats, name), dtype=np.float64)).to(state.device)
        collected = run.collected()
        for output, moments in (collected.moments.items() if collected is not None else ()):
            state = getattr(self, f"moments_{output.value}")
            state += moments.as_tensor().to(state.device)

    def compute(self) -> torch.Tensor:
        """The mean Inception Score of every process's images since the last ``reset()``."""
        values = {name: getattr(self, name).cpu().numpy() for name in _STATISTICS}
        values["count"] = np.rint(values["count"]).astype(np.int64)
        stats = SplitStatistics(**values)
        scored, received, surplus = int(stats.count.sum()), int(self.received), int(self.surplus)
        if surplus:
            self._refuse(
                f"the processes received {received} images for the {self.num_images} announced: {scored} scored, "
                f"{received - scored - surplus} a DistributedSampler's padding (dropped) and {surplus} beyond both, "
                "not scored. If a new epoch began, call reset() "
                "after each compute() (Lightning does for a metric it logs as an object: self.log('is', metric)); "
                "else announce the real number of images")
        if scored != self.num_images:
            self._refuse(
                f"the processes received {scored} of the {self.num_images} images announced: score the whole data "
                "set, or announce its real size (a DistributedSampler with drop_last=True gives floor(N / W) W; "
                "Lightning's sanity check runs a few validation batches only: Trainer(num_sanity_val_steps=0))")
        group = current_group(None, self.process_group)
        world = 1 if group is None else group.world_size
        order = self.order if world == 1 else (f"{self.order}, the k-th image of rank r at position k W + r "
                                               f"(a DistributedSampler's order over {world} processes)")
        self._result = dataclasses.replace(
            result_of(stats, self.scorer, 0.0, False, order, shuffled=self.shuffled),
            processes=world, exchanged_bytes=0 if world == 1 else self.state_bytes(),
            evaluation=self._evaluation(group is None or group.is_main))
        return torch.tensor(self._result.mean, dtype=torch.float64, device=self.device)

    def _evaluation(self, main: bool) -> Evaluation | None:
        """FID and sFID of the synced moments against the reference (None without one)."""
        if self.reference is None or self.features is None:
            return None
        collected = CollectedFeatures({output: FeatureMoments.from_tensor(
            getattr(self, f"moments_{output.value}").cpu(), OUTPUT_DIMS[output]) for output in self.features.moments})
        metrics = frozenset(name for name, output in (("fid", Output.POOL3), ("sfid", Output.SPATIAL))
                            if output in self.features.moments)
        return evaluate(collected.side(), self.reference.side, metrics, self.reference.info(), warn=main,
                        extra_notes=reference_notes(self.reference, self.scorer))

    def _refuse(self, message: str) -> None:
        """Raise from inside compute(), first giving back this process's own states: torchmetrics restores
        them after compute() returns, not after it raises, and updates may follow a caught error."""
        if self._is_synced:
            self.unsync()
        raise InputError(message)
