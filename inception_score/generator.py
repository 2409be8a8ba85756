"""Scoring a generator directly: z drawn by each sample's global position, images scored as they are made.

:func:`score_generator` calls ``generator(z)`` (or ``generator(z, labels)`` for a class-conditional
model) batch by batch and feeds the images straight to the scorer; no image is stored or leaves the
scorer's device. The result is the :class:`~inception_score.score.result.ISResult` that
:func:`~inception_score.api.inception_score` gives on the same images in the same order.

How z is drawn (:class:`LatentSpec`, :class:`LatentDraw`): sample ``i``'s z depends on the seed and
``i`` alone, never on the batch size, the process count or the device, so for a generator whose output
for one sample does not depend on the rest of its batch (eval mode) neither does the score, up to
float32 rounding in the network.

- ``"normal"`` (N(0, 1)), ``"uniform"`` (U[-1, 1)), ``"uniform-0-1"`` (U[0, 1), the paper's own models
  and :mod:`reference_gan`), ``"unit"`` (normal, scaled to unit length: uniform on the sphere): z is
  drawn in blocks of :data:`Z_BLOCK` samples. Block ``b`` (samples ``[b Z_BLOCK, (b + 1) Z_BLOCK)``)
  comes from a CPU ``torch.Generator`` seeded with ``numpy.random.SeedSequence(seed, spawn_key=(0, b))``,
  as one ``(Z_BLOCK, z_dim)`` float32 draw. A process draws each block it needs once (a few hundred KB),
  on the CPU, where the stream is the same on every machine, and copies it to the device.
- ``"sobol-normal"``: a scrambled Sobol sequence (``torch.quasirandom.SobolEngine(z_dim, scramble=True,
  seed=seed)``), point ``i`` for sample ``i`` (``fast_forward`` to a process's first sample), mapped
  through the inverse normal CDF in float64, then float32. Chong & Forsyth (2020) draw IS-infinity's z
  this way, to lower the variance of the score.
- Labels (``num_classes``): uniform over ``[0, num_classes)``, from block ``b``'s own stream,
  ``SeedSequence(seed, spawn_key=(1, b))``, whatever the z distribution.

Under ``torch.distributed`` each process draws and scores only its contiguous share of the samples,
``[N r / W, N (r + 1) / W)``, as :func:`~inception_score.api.inception_score` shares out a sized input.

A TorchScript, ``torch.export`` (``.pt2``) or ONNX file (:func:`load_generator_file`) is a program: loading
it runs its code. It is loaded only when the user names it (``inception-score --generator FILE``).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .engine.distributed import agreeing, current_group, shard_bounds
from .engine.run import ScoringRun
from .engine.runner import InceptionScorer, build_scorer
from .errors import InputError
from .options import ScorerOptions, ScorerKeywords, scorer_options
from .generators.exported import ExportedGenerator
from .generators.checks import OutputRange, training_mode_reason, unit_range_reason, warn_and_reasons
from .protocol import TORCH_FIDELITY_SEED, Z_DISTRIBUTIONS
from .readers.inputs import InputRange, parse_input_range, standardize_batch
from .score.infinity import infinity_sizes
from .score.result import ISResult
from .score.statistics import check_split_count, split_rule

if TYPE_CHECKING:
    from typing_extensions import Unpack

# Samples per block of z. Part of the rule: changing it changes every z after the first block.
Z_BLOCK = 1024
# Sobol points are multiples of 2**-30 in [0, 1); 0 itself is kept off the inverse normal CDF's pole.
_SOBOL_EPS = 2.0**-31
_SOBOL_MAX_DIM = torch.quasirandom.SobolEngine.MAXDIM

Generator = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class LatentSpec:
    """What z (and the labels) of every sample are: ``z_dim`` numbers from ``distribution`` under ``seed``."""

    z_dim: int
    distribution: str = "normal"
    seed: int = 0
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if self.distribution not in Z_DISTRIBUTIONS:
            raise InputError(f"z_distribution {self.distribution!r} is unknown: use one of {', '.join(Z_DISTRIBUTIONS)}")
        if self.z_dim < 1:
            raise InputError(f"z_dim must be at least 1, got {self.z_dim}")
        if self.distribution == "sobol-normal" and self.z_dim > _SOBOL_MAX_DIM:
            raise InputError(f"sobol-normal supports z_dim up to {_SOBOL_MAX_DIM}, got {self.z_dim}")
        if self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed}")
        if self.num_classes is not None and self.num_classes < 1:
            raise InputError(f"num_classes must be at least 1 (or None for an unconditional generator), got {self.num_classes}")

    def describe(self) -> dict[str, Any]:
        """The fields a result records about z, with the rule in words."""
        if self.distribution == "sobol-normal":
            rule = (f"scrambled Sobol point i (SobolEngine(z_dim, scramble=True, seed={self.seed})) through the "
                    f"inverse normal CDF")
        else:
            rule = (f"blocks of {Z_BLOCK} samples; block b from a CPU torch.Generator seeded with "
                    f"SeedSequence({self.seed}, spawn_key=(0, b))")
        if self.num_classes is not None:
            rule += f"; labels uniform in [0, {self.num_classes}) from SeedSequence({self.seed}, spawn_key=(1, b))"
        return {"z_dim": self.z_dim, "z_distribution": self.distribution, "seed": self.seed,
                "num_classes": self.num_classes, "z_block": Z_BLOCK, "z_rule": rule}


def _block_generator(seed: int, stream: int, block: int) -> torch.Generator:
    state = np.random.SeedSequence(seed, spawn_key=(stream, block)).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) | int(state[1]) << 32)


def _block_z(spec: LatentSpec, block: int) -> torch.Tensor:
    """``(Z_BLOCK, z_dim)`` float32 on the CPU: block ``block`` of z (every distribution but Sobol)."""
    rng = _block_generator(spec.seed, 0, block)
    shape = (Z_BLOCK, spec.z_dim)
    if spec.distribution == "uniform":
        return torch.rand(shape, generator=rng) * 2.0 - 1.0
    if spec.distribution == "uniform-0-1":
        return torch.rand(shape, generator=rng)
    z = torch.randn(shape, generator=rng)
    if spec.distribution == "unit":
        z = z / z.norm(dim=1, keepdim=True)
    return z


def _block_labels(spec: LatentSpec, block: int) -> torch.Tensor:
    assert spec.num_classes is not None
    return torch.randint(spec.num_classes, (Z_BLOCK,), generator=_block_generator(spec.seed, 1, block))


class LatentDraw:
    """z and labels of samples ``[start, stop)`` on ``device``, drawn by position (the module docstring).

    Consecutive calls (one process walking through its share) draw each block once and keep only the
    last one; the Sobol engine is fast-forwarded only when a call does not continue the previous one.
    """

    def __init__(self, spec: LatentSpec, device: str | torch.device = "cpu") -> None:
        self.spec = spec
        self.device = torch.device(device)
        self._blocks: dict[tuple[str, int], torch.Tensor] = {}
        self._sobol: torch.quasirandom.SobolEngine | None = None

    def _block(self, kind: str, block: int) -> torch.Tensor:
        key = (kind, block)
        if key not in self._blocks:
            for old in [k for k in self._blocks if k[0] == kind]:
                del self._blocks[old]
            values = _block_z(self.spec, block) if kind == "z" else _block_labels(self.spec, block)
            self._blocks[key] = values.to(self.device)
        return self._blocks[key]

    def _by_blocks(self, kind: str, start: int, stop: int) -> torch.Tensor:
        parts = []
        for block in range(start // Z_BLOCK, (stop - 1) // Z_BLOCK + 1):
            first = block * Z_BLOCK
            values = self._block(kind, block)
            parts.append(values[max(start - first, 0) : min(stop - first, Z_BLOCK)])
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _sobol_z(self, start: int, stop: int) -> torch.Tensor:
        if self._sobol is None or self._sobol.num_generated != start:
            self._sobol = torch.quasirandom.SobolEngine(self.spec.z_dim, scramble=True, seed=self.spec.seed)
            self._sobol.fast_forward(start)
        points = self._sobol.draw(stop - start, dtype=torch.float64).clamp_(_SOBOL_EPS, 1.0 - _SOBOL_EPS)
        return torch.special.ndtri(points).to(self.device, torch.float32)

    def draw(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(stop - start, z_dim)`` float32 z and ``(stop - start,)`` int64 labels (None when unconditional)."""
        if not 0 <= start < stop:
            raise InputError(f"sample positions [{start}, {stop}) are empty or negative")
        if self.spec.distribution == "sobol-normal":
            z = self._sobol_z(start, stop)
        else:
            z = self._by_blocks("z", start, stop)
        labels = None if self.spec.num_classes is None else self._by_blocks("labels", start, stop)
        return z, labels


def latents(spec: LatentSpec, start: int, stop: int, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """z and labels of samples ``[start, stop)``, as :func:`score_generator` draws them (to materialise them)."""
    return LatentDraw(spec, device).draw(start, stop)


def generated_batch(images: Any, count: int, input_range: InputRange | None, what: str) -> torch.Tensor:
    """A generator's output checked and made the scorer's pixels: ``(count, 3|1, H, W)`` or ``(count, H, W,
    3|1)``, uint8 or floats within ``input_range`` (1e-4 of its width of slack) -> ``(count, 3, H, W)``
    uint8 or float32 in [0, 255], on the device it came on. Anything else is an :class:`InputError`."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{what} is a {type(images).__name__}, not a tensor of images: the generator must return "
                         f"one tensor (B, 3, H, W) or (B, H, W, 3)")
    if images.ndim != 4 or images.shape[0] != count:
        raise InputError(f"{what} has shape {tuple(images.shape)}: expected {count} images, (B, 3, H, W) or "
                         f"(B, H, W, 3) with B = {count}, the number of z given")
    return standardize_batch(images, input_range, what)


def _batches(generator: Generator, draw: LatentDraw, start: int, stop: int, batch_size: int,
             input_range: InputRange | None, seen: OutputRange) -> Iterator[torch.Tensor]:
    for first in range(start, stop, batch_size):
        last = min(first + batch_size, stop)
        z, labels = draw.draw(first, last)
        with torch.inference_mode():  # left before the yield: the caller's code runs outside it
            images = generator(z) if labels is None else generator(z, labels)
            if isinstance(images, torch.Tensor):
                seen.add(images)
            batch = generated_batch(images, last - first, input_range,
                                    f"the generator's output for samples [{first}, {last})")
        yield batch


def score_generator(
    generator: Generator,
    num_samples: int,
    *,
    z_dim: int,
    z_distribution: str = "normal",
    num_classes: int | None = None,
    seed: int = 0,
    input_range: str | InputRange | None = (-1.0, 1.0),
    splits: int | None = None,
    split_size: int | None = None,
    infinity: bool = False,
    infinity_seed: int = TORCH_FIDELITY_SEED,
    progress: bool = False,
    return_marginal: bool = False,
    scorer: InceptionScorer | None = None,
    distributed: bool | None = None,
    batch_statistics: bool = False,
    options: ScorerOptions | None = None,
    **option_keywords: Unpack[ScorerKeywords],
) -> ISResult:
    """The Inception Score of ``num_samples`` images from ``generator``, none of them stored.

    ``generator(z)``, or ``generator(z, labels)`` when ``num_classes`` is given, takes ``(B, z_dim)``
    float32 z and ``(B,)`` int64 labels on the scorer's device and returns ``(B, 3, H, W)`` or ``(B, H,
    W, 3)`` images (one channel is repeated to RGB) on it: floats in ``input_range``, or uint8. It runs
    under ``torch.inference_mode()`` in batches of ``batch_size``, starting at this process's first
    sample; put a module in eval mode first (``G.eval()``). A generator left in training mode (batch norm
    or dropout layers training), or whose float output never goes below 0 under a range such as the
    default (-1, 1) (a [0, 1] generator), gets a :class:`~inception_score.generators.checks.GeneratorWarning`
    and a ``not_comparable`` reason saying what to do; ``batch_statistics=True`` says batch statistics are
    meant (then the batches matter, and training mode is not flagged). z follows ``z_distribution`` under ``seed`` by each sample's position (the module
    docstring), and ``result.generator`` records the rule with ``num_samples`` and ``batch_size``.
    Splits are contiguous in sample order (``splits`` parts, 10 by default, or chunks of ``split_size``);
    ``infinity`` adds IS-infinity over the order ``infinity_seed`` gives (:mod:`inception_score.score.infinity`);
    the other arguments are those of
    :func:`~inception_score.api.inception_score`, ``distributed`` included.
    """
    if num_samples < 1:
        raise InputError(f"num_samples must be at least 1, got {num_samples}")
    settings = scorer_options(options, **option_keywords)
    batch_size = settings.batch_size
    rule = split_rule(splits, split_size)
    check_split_count(num_samples, rule)
    spec = LatentSpec(z_dim, z_distribution, seed, num_classes)
    pixel_range = parse_input_range(input_range)
    group = current_group(distributed)
    main = group is None or group.is_main
    with agreeing(group):
        scorer = scorer or build_scorer(settings, progress and main)
    assert scorer is not None
    start, stop = (0, num_samples) if group is None else shard_bounds(num_samples, group.rank, group.world_size)
    ordered_by = infinity_seed if infinity else None
    if infinity:
        infinity_sizes(num_samples)  # enough samples for the 15 sizes, before any is drawn
    # Said before the first batch, so that a long run can be stopped and the generator put in eval mode.
    mode_reasons = warn_and_reasons([None if batch_statistics else training_mode_reason(generator, batch_size)], main)
    seen = OutputRange()
    run = ScoringRun(scorer, rule, infinity_seed=ordered_by, num_images=stop - start, offset=start, total=num_samples,
                     progress=progress, batch_size=batch_size)
    run.feed(_batches(generator, LatentDraw(spec, scorer.device), start, stop, batch_size, pixel_range, seen), group,
             num_samples)
    order = "sample order" if group is None else f"sample order, shared out over {group.world_size} processes"
    result = run.finish(group, order=order, return_marginal=return_marginal)
    record = {**spec.describe(), "num_samples": num_samples, "batch_size": batch_size,
              "input_range": None if pixel_range is None else list(pixel_range),
              "training_mode": getattr(generator, "training", None), "batch_statistics": batch_statistics}
    reasons = mode_reasons + warn_and_reasons([unit_range_reason(seen.bounds(group), pixel_range, num_samples)], main)
    return dataclasses.replace(result, generator=record, not_comparable=result.not_comparable + reasons)


# --- generators as files: programs, run only when the user names them ----------------------------------


def load_generator_file(path: str | os.PathLike, device: str | torch.device = "cpu",
                        num_classes: int | None = None) -> Generator:
    """A generator saved with ``torch.export.save`` (``.pt2``, :mod:`.generators.exported`), as TorchScript
    (``torch.jit.save``; any other name but ``.onnx``) or ONNX (``.onnx``, needs ``onnxruntime``: ``pip
    install 'inception-score[onnx]'``), as a callable for :func:`score_generator`.

    Loading and calling any of them runs the program the file holds, with this process's rights (a
    ``.pt2`` file's weights are unpickled): call this only for a file the user named as a generator and
    trusts.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"generator file {path} does not exist")
    if path.suffix.lower() == ".onnx":
        return _OnnxGenerator(path, torch.device(device), num_classes)
    if path.suffix.lower() == ".pt2":
        return ExportedGenerator(path, torch.device(device))
    try:
        with warnings.catch_warnings():
            # torch 2.9 on deprecates TorchScript; the file still loads, and .pt2 (torch.export) is the way on
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load. is deprecated", category=FutureWarning)
            module = torch.jit.load(str(path), map_location=torch.device(device))
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is not a TorchScript file ({first[:200]}): save the generator with "
                         f"torch.export.save(torch.export.export(G.eval(), (z,)), 'G.pt2'), torch.jit.save(torch.jit.script(G), ...), or export it to .onnx") from None
    return module


_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class _OnnxGenerator:
    """An ONNX generator run by onnxruntime: z (and labels) go in as numpy arrays, images come back as a
    tensor on ``device`` (a copy through host memory, which the TorchScript path does not need)."""

    training = False

    def __init__(self, path: Path, device: torch.device, num_classes: int | None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise InputError(f"{path} is an ONNX file, and ONNX generators need onnxruntime: "
                             "pip install 'inception-score[onnx]' (or use a TorchScript file)") from None
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=providers)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
            raise InputError(f"{path} could not be loaded as an ONNX model: {str(error).splitlines()[0][:200]}") from None
        self.inputs = self.session.get_inputs()
        wanted = 1 if num_classes is None else 2
        if len(self.inputs) != wanted:
            names = ", ".join(i.name for i in self.inputs)
            raise InputError(f"{path} takes {len(self.inputs)} inputs ({names}); a generator "
                             f"{'with' if num_classes else 'without'} --num-classes takes {wanted} (z{', labels' if num_classes else ''})")
        self.device = device

    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        feeds = {}
        for spec, value in zip(self.inputs, (z, labels)):
            kind = _ONNX_TYPES.get(spec.type)
            if kind is None:
                raise InputError(f"ONNX input {spec.name!r} has type {spec.type}; expected float or integer tensors")
            feeds[spec.name] = value.cpu().numpy().astype(kind)
        (images, *_) = self.session.run(None, feeds)
        return torch.from_numpy(np.asarray(images)).to(self.device)
