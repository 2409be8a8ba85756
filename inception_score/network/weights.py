"""Every source of the 2015-12-05 Inception weights, and how each is checked.

Accepted files, recognised by their sha256:

* ``pt_inception-2015-12-05-6726825d.pth``: pytorch-fid's state dict (torch-fidelity ships the same
  bytes as ``weights-inception-2015-12-05-6726825d.pth``). The default: downloaded once from
  pytorch-fid's release page into the torch hub cache (``$TORCH_HOME/hub/checkpoints``, else
  ``$XDG_CACHE_HOME/torch/hub/checkpoints``, else ``~/.cache/torch/hub/checkpoints``), where
  pytorch-fid puts it too.
* ``classify_image_graph_def.pb``: the original TensorFlow graph, read without TensorFlow, or the
  ``inception-2015-12-05.tgz`` that holds it.

A file is chosen by argument, else by the environment variable ``INCEPTION_SCORE_WEIGHTS``, else the
cached default. A file whose hash is none of the genuine ones is refused unless the caller opts in
with ``allow_unverified=True``; results then say ``weights_verified: False`` with the hash used.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from ..atomic import write_atomic
from ..errors import WeightsFormatError, WeightsHashError, WeightsNotFoundError
from .inception import Inception2015
from .tf_graph import read_graph_def_bytes, state_dict_from_graph_def

ENV_WEIGHTS = "INCEPTION_SCORE_WEIGHTS"


@dataclass(frozen=True)
class KnownFile:
    """A genuine weights file: its name, size, sha256 and public address."""

    name: str
    size: int
    sha256: str
    url: str
    kind: str  # "state_dict" or "graph_def"


PYTORCH_FID_WEIGHTS = KnownFile(
    name="pt_inception-2015-12-05-6726825d.pth",
    size=95_628_359,
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    kind="state_dict",
)
TF_GRAPH = KnownFile(
    name="classify_image_graph_def.pb",
    size=95_673_916,
    sha256="009d6814d1bc560d4e7b236e170e9b2d5ca6f4b57bd8037f6db05776204415c6",
    url="http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz",
    kind="graph_def",
)
KNOWN_FILES = {f.sha256: f for f in (PYTORCH_FID_WEIGHTS, TF_GRAPH)}
DEFAULT = PYTORCH_FID_WEIGHTS


@dataclass(frozen=True)
class LoadedWeights:
    """A state dict in the layout of :class:`~inception_score.network.inception.Inception2015`, and its origin."""

    state_dict: dict[str, torch.Tensor]
    path: Path
    sha256: str  # of the .pth or .pb bytes (for a .tgz: of the .pb inside)
    verified: bool


def cache_dir() -> Path:
    """The torch hub checkpoint folder, honouring ``TORCH_HOME`` and ``XDG_CACHE_HOME``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _missing_weights_message(reason: str) -> str:
    f = DEFAULT
    return (
        f"the 2015-12-05 Inception weights are not available: {reason}. "
        f"Download {f.name} ({f.size:,} bytes, sha256 {f.sha256}) from {f.url} "
        f"and put it at {cache_dir() / f.name}, or pass its path (weights=PATH, --weights PATH, "
        f"or the environment variable {ENV_WEIGHTS}). The original graph {TF_GRAPH.name} "
        f"(sha256 {TF_GRAPH.sha256}) or inception-2015-12-05.tgz from {TF_GRAPH.url} is accepted too."
    )


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest (sha256 unless another hashlib ``algorithm`` is named) of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unusable_cache_message(folder: Path, error: OSError) -> str:
    f = DEFAULT
    return (
        f"the weights cache folder {folder} cannot hold the download of {f.name} "
        f"({error.strerror or error}): set TORCH_HOME to a writable folder, or download {f.name} "
        f"(sha256 {f.sha256}) from {f.url} and pass its path (--weights PATH, weights=PATH, or {ENV_WEIGHTS})"
    )


def download(known: KnownFile, destination: Path, progress: bool = True, timeout: float = 30.0) -> Path:
    """Fetch ``known.url`` to ``destination``, its sha256 computed as it streams; the file appears only
    when it matches (written whole through :func:`~inception_score.atomic.write_atomic`). ``timeout``: seconds
    each network operation (connecting, each read) may wait."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # TORCH_HOME read-only, or a file where a folder should be
        raise WeightsNotFoundError(_unusable_cache_message(destination.parent, error)) from None

    def fetch(out: BinaryIO) -> None:
        digest, size = hashlib.sha256(), 0
        with urllib.request.urlopen(known.url, timeout=timeout) as response:
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=known.size, unit="B", unit_scale=True, desc=f"downloading {known.name}")
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                size += len(block)
                if bar is not None:
                    bar.update(len(block))
            if bar is not None:
                bar.close()
        if digest.hexdigest() != known.sha256:
            raise WeightsHashError(
                f"the download of {known.url} has sha256 {digest.hexdigest()}, expected {known.sha256} "
                f"({size:,} of {known.size:,} bytes): try again, or fetch the file by hand"
            )

    try:
        return write_atomic(destination, fetch)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        if isinstance(error, OSError) and getattr(error, "filename", None) and Path(error.filename).parent == destination.parent:
            raise WeightsNotFoundError(_unusable_cache_message(destination.parent, error)) from None  # the folder refused it
        raise WeightsNotFoundError(_missing_weights_message(f"could not download {known.url} ({error})")) from None


def resolve_path(weights: str | os.PathLike | None = None, progress: bool = True, timeout: float = 30.0) -> Path:
    """The weights file to use: ``weights``, else ``$INCEPTION_SCORE_WEIGHTS``, else the cached default
    (downloaded first if absent, each network operation waiting at most ``timeout`` seconds)."""
    if weights is None:
        weights = os.environ.get(ENV_WEIGHTS) or None
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_dir():
            raise WeightsNotFoundError(
                f"the weights path {path} is a folder: give the weights file itself ({DEFAULT.name}, {TF_GRAPH.name} "
                f"or inception-2015-12-05.tgz) with --weights PATH, weights=PATH or {ENV_WEIGHTS}")
        if not path.is_file():
            raise WeightsNotFoundError(_missing_weights_message(f"the file {path} does not exist"))
        return path
    cached = cache_dir() / DEFAULT.name
    if cached.is_file():
        return cached
    if cached.is_dir():
        raise WeightsNotFoundError(f"{cached} is a folder where the cached weights file should be: remove it, and "
                                   f"run again to download the file there")
    return download(DEFAULT, cached, progress=progress, timeout=timeout)


def _is_tgz(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _hash_refused_message(path: Path, digest: str, size: int) -> str:
    if path == cache_dir() / DEFAULT.name:  # the download's own place: a download cut short, or a file damaged
        return (
            f"the cached weights file {path} is damaged: it has sha256 {digest} and {size:,} bytes, where the genuine "
            f"{DEFAULT.name} has sha256 {DEFAULT.sha256} and {DEFAULT.size:,} bytes (a download cut short?). Delete "
            f"it and run again to download it again, or put the genuine file from {DEFAULT.url} there"
        )
    hint = ""
    for known in KNOWN_FILES.values():
        if path.name == known.name or (0 < size < known.size and path.suffix == Path(known.name).suffix):
            hint = f" It is {size:,} bytes where the genuine {known.name} has {known.size:,}: it may be truncated."
            break
    return (
        f"{path} has sha256 {digest}, which is not a genuine 2015-12-05 Inception file "
        f"({PYTORCH_FID_WEIGHTS.name}: {PYTORCH_FID_WEIGHTS.sha256}; {TF_GRAPH.name}: {TF_GRAPH.sha256}).{hint} "
        f"Use a genuine file, or pass allow_unverified=True (--allow-unverified-weights) to score with it anyway; "
        f"such scores are not comparable with published Inception Scores."
    )


def _unpickling_refused_message(path: Path, error: pickle.UnpicklingError) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, without torch's advice to load it unrestricted.
    The objects it holds are read from the pickle's opcodes, which runs nothing from the file."""
    try:
        objects = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a damaged file: the opcodes cannot be listed either
        objects = []
    if objects:
        return (
            f"{path} was refused: it contains non-tensor objects ({', '.join(objects[:5])}), and unpickling those "
            f"could run code from the file. Weights are read as tensors only: give a state dict of tensors, such "
            f"as {PYTORCH_FID_WEIGHTS.name} (torch.save(model.state_dict(), path))"
        )
    return (
        f"{path} was refused: it is not a pickle of tensors only ({type(error).__name__}); the file may be "
        f"truncated or of another format, or contain non-tensor objects, which are not read"
    )


def _complete_state_dict(state_dict: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Check every tensor the network needs is present with its shape; fill BN bookkeeping."""
    expected = Inception2015.skeleton().state_dict()
    state_dict = dict(state_dict)
    for key, reference in expected.items():
        if key.endswith("num_batches_tracked") and key not in state_dict:
            state_dict[key] = torch.zeros((), dtype=torch.long)
    missing = [key for key in expected if key not in state_dict]
    if missing:
        raise WeightsFormatError(
            f"{path} lacks {len(missing)} of the network's {len(expected)} tensors (first: {missing[0]}); "
            f"it is not a 2015-12-05 Inception weights file"
        )
    for key, reference in expected.items():
        if not isinstance(state_dict[key], torch.Tensor):
            raise WeightsFormatError(f"{path}: entry {key} is a {type(state_dict[key]).__name__}, not a tensor")
        if tuple(state_dict[key].shape) != tuple(reference.shape):
            raise WeightsFormatError(
                f"{path}: tensor {key} has shape {tuple(state_dict[key].shape)}, expected {tuple(reference.shape)}"
            )
        _check_values(state_dict[key], reference, key, path)
    return {key: state_dict[key] for key in expected}


def _check_values(tensor: torch.Tensor, reference: torch.Tensor, key: str, path: Path) -> None:
    """Refuse a tensor of another dtype than the network's (the 2015 weights are float32; a float16 or
    integer copy of them is not those weights), or with a NaN or infinite value (every score from it
    would be NaN)."""
    if reference.is_floating_point() and tensor.dtype != reference.dtype:
        raise WeightsFormatError(
            f"{path}: tensor {key} has dtype {str(tensor.dtype).removeprefix('torch.')}, expected float32 (the "
            f"2015-12-05 weights are float32); it is not a copy of them: use the genuine file"
        )
    if not reference.is_floating_point() and (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool):
        raise WeightsFormatError(f"{path}: tensor {key} has dtype {str(tensor.dtype).removeprefix('torch.')}, "
                                 "expected an integer count")
    if reference.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise WeightsFormatError(f"{path}: tensor {key} holds {bad} NaN or infinite value(s); the file is damaged: "
                                 "use the genuine file")


def weights_sha256(path: Path) -> tuple[str, bytes | None]:
    """The sha256 that names a weights file in results (for a .tgz: of the .pb inside it), and for a
    .tgz the .pb's bytes, read once."""
    if _is_tgz(path):
        graph_bytes = read_graph_def_bytes(path)
        return _sha256_bytes(graph_bytes), graph_bytes
    return file_digest(path), None


def load_weights(
    weights: str | os.PathLike | None = None, allow_unverified: bool = False, progress: bool = True
) -> LoadedWeights:
    """Find, verify and read a weights file into the network's state dict layout.

    Raises :class:`WeightsNotFoundError` when there is no file and no download,
    :class:`WeightsHashError` for an unknown hash without ``allow_unverified``, and
    :class:`WeightsFormatError` when the file cannot be parsed.
    """
    path = resolve_path(weights, progress=progress)
    digest, graph_bytes = weights_sha256(path)
    known = KNOWN_FILES.get(digest)
    if known is None and not allow_unverified:
        raise WeightsHashError(_hash_refused_message(path, digest, path.stat().st_size))

    is_graph = graph_bytes is not None or (known is not None and known.kind == "graph_def") or path.suffix == ".pb"
    if is_graph:
        if graph_bytes is None:
            graph_bytes = read_graph_def_bytes(path)  # within its limit
        try:
            state_dict = state_dict_from_graph_def(graph_bytes)
        except WeightsFormatError as error:
            raise WeightsFormatError(f"{path}: {error}") from None
    else:
        try:
            with warnings.catch_warnings(record=True) as caught:  # torch warns of any pickle protocol but 2
                warnings.simplefilter("always")
                state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            said = [re.search(r"pickle protocol (\d+)", str(warning.message)) for warning in caught]
            protocol = next((int(found[1]) for found in said if found), 2)
            if protocol >= 4 and "Unsupported operand" in str(error):  # FRAME, the opcode protocol 4 added
                raise WeightsFormatError(
                    f"{path} was written with pickle protocol {protocol}, which torch's tensors-only reader cannot "
                    f"read: save it again with torch.save(state_dict, path), whose default protocol is 2") from None
            raise WeightsFormatError(_unpickling_refused_message(path, error)) from None
        except Exception as error:  # torch raises many types for a damaged pickle
            raise WeightsFormatError(
                f"{path} could not be read as a PyTorch state dict ({type(error).__name__}: {error}); "
                f"the file may be truncated or of another format"
            ) from None
        if not isinstance(state_dict, dict):
            raise WeightsFormatError(f"{path} holds a {type(state_dict).__name__}, not a state dict")
    state_dict = _complete_state_dict(state_dict, path)
    return LoadedWeights(state_dict=state_dict, path=path, sha256=digest, verified=known is not None)


def load_network(
    weights: str | os.PathLike | None = None, allow_unverified: bool = False, progress: bool = True
) -> tuple[Inception2015, LoadedWeights]:
    """An evaluation-mode :class:`Inception2015` with the weights loaded, and where they came from."""
    loaded = load_weights(weights, allow_unverified=allow_unverified, progress=progress)
    network = Inception2015.from_state_dict(loaded.state_dict)
    network.eval().requires_grad_(False)
    return network, loaded
