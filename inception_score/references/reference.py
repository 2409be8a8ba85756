"""The reference side of FID, sFID, KID and precision/recall: what it holds, where it came from, and its
files (``--save-reference``) and cache.

A :class:`Reference` is a :class:`~inception_score.score.evaluation.FeatureSet` with its provenance:

- ``"images"``: computed here from images (a folder, array, archive), with the network of
  ``weights_sha256``;
- ``"guided-diffusion batch"``: a reference batch of guided-diffusion's evaluator: its stored ``mu``/``sigma``
  and ``mu_s``/``sigma_s`` for FID and sFID, as the evaluator uses them, and pool_3 vectors computed here
  from its ``arr_0`` images for KID and precision/recall;
- ``"statistics"``: ``mu`` and ``sigma`` (and ``mu_s``, ``sigma_s``) alone: FID (and sFID) only;
- ``"saved reference"``: a file this package wrote (:func:`save_reference`).

Features computed from images are cached (:func:`cache_path`), keyed by the images' content, the
weights' sha256 and the precision, so that a reference is computed once.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import refuse_link, write_atomic
from ..errors import InputError
from ..network.weights import file_digest
from ..score.evaluation import FeatureSet
from .batches import FEATURES_KEY, WEIGHTS_KEY, ReferenceBatch

CACHE_ENVIRONMENT = "INCEPTION_SCORE_CACHE"


@dataclass(frozen=True)
class Reference:
    """A reference for FID, sFID, KID and precision/recall: ``side`` (its statistics and features),
    ``kind`` (see the module), ``source`` (what was given), ``sha256`` (of the file given; of the
    images' content for a folder or array), ``weights_sha256`` (the network that computed its features
    here; None for statistics alone), ``cached`` (the cache file its features came from or went to) and
    ``statistics``: whether its FID statistics were "computed here" or are "stored in the file" (computed
    by whoever wrote it)."""

    side: FeatureSet = field(repr=False)
    kind: str
    source: str
    sha256: str | None = None
    weights_sha256: str | None = None
    cached: str | None = None
    statistics: str = "computed here"  # or "stored in the file": FID's statistics come from elsewhere

    @property
    def count(self) -> int | None:
        return self.side.count

    def info(self) -> dict[str, Any]:
        """What a result records of the reference."""
        return {"kind": self.kind, "source": self.source, "sha256": self.sha256, "images": self.side.count,
                "weights_sha256": self.weights_sha256, "statistics": self.statistics, "cached": self.cached}

    def save(self, path: str | os.PathLike) -> Path:
        """Write this reference as ``--save-reference`` does (needs its statistics and features)."""
        if self.weights_sha256 is None or self.statistics != "computed here":
            raise InputError(f"the reference {self.source} holds statistics computed elsewhere: save the reference "
                             "images' own (inception-score IMAGES --save-reference FILE)")
        return save_reference(path, self.side, self.weights_sha256)


def save_reference(path: str | os.PathLike, side: FeatureSet, weights_sha256: str) -> Path:
    """``mu``, ``sigma`` (pool_3) and ``mu_s``, ``sigma_s`` (spatial), float64, as guided-diffusion's
    evaluator reads them, plus ``pool_3`` (N, 2048) float32 and ``weights_sha256``: a file
    :func:`reference_from_batch` reads back whole. Written atomically, never through a link."""
    if side.pool3 is None or side.spatial is None or side.features is None:
        raise InputError("a saved reference needs pool_3 and spatial statistics and the pool_3 vectors")
    refuse_link(path, "--save-reference")
    arrays = {"mu": side.pool3.mu, "sigma": side.pool3.sigma, "mu_s": side.spatial.mu, "sigma_s": side.spatial.sigma,
              FEATURES_KEY: np.ascontiguousarray(side.features, dtype=np.float32),
              WEIGHTS_KEY: np.frombuffer(bytes.fromhex(weights_sha256), dtype=np.uint8)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return write_atomic(path, buffer.getvalue())


def reference_from_batch(batch: ReferenceBatch, computed: FeatureSet | None = None,
                         weights_sha256: str | None = None, cached: str | None = None) -> Reference:
    """The :class:`Reference` of a checked reference ``.npz``; ``computed``: the features of its images
    computed here (a guided-diffusion batch), by the network of ``weights_sha256`` (without vectors: its
    images were not scored, its stored statistics suffice)."""
    source = str(batch.path)
    if batch.layout == "saved reference":
        assert batch.features is not None
        vectors = batch.features.rows(0, len(batch.features))
        side = FeatureSet(batch.fid, batch.sfid, vectors, len(vectors))
        return Reference(side, batch.layout, source, batch.sha256, batch.weights_sha256)
    if batch.layout == "statistics":
        return Reference(FeatureSet(batch.fid, batch.sfid), batch.layout, source, batch.sha256,
                         statistics="stored in the file")
    assert computed is not None, "a guided-diffusion batch's images are scored first"
    # As the evaluator: its stored statistics where present, the images' own where not.
    side = FeatureSet(batch.fid or computed.pool3, batch.sfid or computed.spatial, computed.features, batch.num_images)
    stored = batch.fid is not None
    return Reference(side, batch.layout, source, batch.sha256, weights_sha256, cached,
                     "stored in the file" if stored else "computed here")


def check_same_network(reference: Reference, scorer: Any) -> None:
    """:class:`InputError` when the reference's features come from another network than ``scorer``'s:
    distances between features of two networks mean nothing."""
    if reference.kind == "saved reference" and reference.weights_sha256 != scorer.weights.sha256:
        raise InputError(f"the reference {reference.source} was computed with the weights of sha256 "
                         f"{reference.weights_sha256}, the samples are scored with {scorer.weights.path} (sha256 "
                         f"{scorer.weights.sha256}): features of two networks cannot be compared; use the same weights")


def reference_notes(reference: Reference, scorer: Any) -> tuple[str, ...]:
    """What the result must say of the reference: statistics computed elsewhere cannot be checked to come
    from the 2015 graph with the TF1 resize (their sha256 is recorded), and do not match samples scored
    with unverified weights."""
    if reference.statistics != "stored in the file":
        return ()
    notes = [f"the FID statistics stored in {reference.source} (sha256 {reference.sha256}) were computed elsewhere: "
             "their network and resize cannot be checked here"]
    if not scorer.weights.verified:
        notes.append("the samples were scored with unverified weights, the reference statistics presumably with the "
                     "2015 network: FID and sFID between them are not comparable")
    return tuple(notes)


def cache_folder() -> Path:
    """``$INCEPTION_SCORE_CACHE``, else ``$XDG_CACHE_HOME/inception_score``, else ``~/.cache/inception_score``;
    references go in its ``references`` folder."""
    root = os.environ.get(CACHE_ENVIRONMENT)
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "inception_score")
    return Path(root) / "references"


def content_key(source: Any) -> str | None:
    """A digest of what ``source`` holds: a file's sha256; for a folder, of every file's relative name
    and bytes; for an array, of its dtype, shape and bytes. None for anything else (a data set, an
    iterable: not cached)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            return file_digest(path)
        if path.is_dir():
            digest = hashlib.sha256()
            for folder, folders, files in os.walk(path):
                folders.sort()
                for name in sorted(files):
                    member = Path(folder) / name
                    if member.is_symlink() or not member.is_file():
                        continue
                    digest.update(os.fsencode(member.relative_to(path)) + b"\0")
                    digest.update(bytes.fromhex(file_digest(member)))
            return digest.hexdigest()
        return None
    if isinstance(source, np.ndarray) or type(source).__module__.startswith("torch"):
        array = np.ascontiguousarray(source.detach().cpu().numpy() if hasattr(source, "detach") else source)
        return hashlib.sha256(f"{array.dtype.str} {array.shape}".encode() + array.tobytes()).hexdigest()
    return None


def cache_path(key: str, weights_sha256: str, precision: str) -> Path:
    """Where the features of the images of content ``key`` computed by the network of ``weights_sha256``
    in ``precision`` are cached."""
    return cache_folder() / f"{key[:32]}-{weights_sha256[:16]}-{precision}.npz"


__all__ = ["CACHE_ENVIRONMENT", "Reference", "cache_folder", "cache_path", "check_same_network", "content_key",
           "reference_notes", "reference_from_batch",
           "save_reference"]
