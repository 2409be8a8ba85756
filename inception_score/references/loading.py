"""Loading or building a reference once: a file read and checked, or images scored (through the caller's
scoring function, the one scoring run) with their features cached by content.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, LinkRefusedError
from ..readers.array_files import IMAGE_KEYS
from ..readers.npz import READ_ERRORS, NpzMember, npz_keys
from ..score.evaluation import FeatureSet
from .batches import KNOWN_KEYS, read_reference_npz
from .reference import CACHE_ENVIRONMENT, Reference, cache_path, content_key, reference_from_batch, save_reference

# What the caller's scoring function returns for a source of images: the FeatureSet of all of them
# (pool_3 and spatial statistics, pool_3 vectors), computed in one pass.
ScoreImages = Callable[[Any], FeatureSet]


@dataclass(frozen=True)
class Shared:
    """How a process of a group uses the cache: ``agree`` turns its own value (whether it found a usable
    cache file; the file it wrote) into the first process's, which every process follows; ``writes``:
    this process writes the cache."""

    agree: Callable[[Any], Any] = lambda value: value
    writes: bool = True


ALONE = Shared()


def is_reference_file(path: Path) -> bool:
    """A ``.npz`` read as a reference file (statistics, a guided-diffusion batch, a saved reference, or
    a clean-fid file to refuse) rather than as an array of images under another key."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        keys = set(npz_keys(path))
        if keys <= KNOWN_KEYS or keys == {"feats"} or "mu" in keys:
            return True
        # No array of images in it (every array 1-d or 2-d): statistics under other names, which
        # read_reference_npz names, rather than images the reader would look for under 'images'.
        return not keys & set(IMAGE_KEYS) and all(NpzMember(path, key).ndim <= 2 for key in keys)
    except (zipfile.BadZipFile, *READ_ERRORS):
        return True  # read_reference_npz says what is wrong with it


def load_reference(reference: Any, score_images: ScoreImages, weights_sha256: str, precision: str, *,
                   cache: bool = True, say: Callable[[str], None] | None = None, vectors: bool = True,
                   shared: Shared = ALONE) -> Reference:
    """``reference`` as a :class:`Reference`: one already (returned as it is), a reference ``.npz``, or
    images of any kind :func:`~inception_score.inception_score` takes (a folder, an array, an archive),
    whose features ``score_images`` computes. Features computed from a file, folder or array are cached
    by content (``cache``), for this network (``weights_sha256``) and ``precision``; ``say`` hears where
    they came from (the command prints it on stderr). ``vectors=False``: only FID and sFID are wanted, so a
    guided-diffusion batch holding both statistics is not scored. ``shared``: in a process group, how this
    process follows the first one's use of the cache."""
    say = say or (lambda text: None)
    if isinstance(reference, Reference):
        return reference
    path = Path(reference) if isinstance(reference, (str, Path)) else None
    if path is not None and is_reference_file(path):
        batch = read_reference_npz(path)
        if batch.layout != "guided-diffusion batch":
            return reference_from_batch(batch)
        if not vectors and batch.fid is not None and batch.sfid is not None:  # the stored statistics suffice
            return reference_from_batch(batch, FeatureSet(count=batch.num_images))
        # Its arr_0 is scored through the path, as any .npz of images is (the reader takes arr_0 by rows).
        side, cached = _features(path, batch.sha256, score_images, weights_sha256, precision, cache, say,
                                 f"{path}'s {batch.num_images:,} images", shared)
        return reference_from_batch(batch, side, weights_sha256, cached)
    if path is not None and not path.exists():
        raise InputError(f"reference {path} does not exist: give a folder, array or archive of images, or a "
                         "reference .npz (guided-diffusion's, statistics, or one --save-reference wrote)")
    key = content_key(reference) if cache else None
    side, cached = _features(reference, key, score_images, weights_sha256, precision, cache, say,
                             str(path) if path is not None else f"the {type(reference).__name__} given", shared)
    source = str(path) if path is not None else f"a {type(reference).__name__}"
    return Reference(side, "images", source, key, weights_sha256, cached)


def _features(images: Any, key: str | None, score_images: ScoreImages, weights_sha256: str, precision: str,
              cache: bool, say: Callable[[str], None], what: str, shared: Shared) -> tuple[FeatureSet, str | None]:
    """The features of ``images``: from the cache when this content was scored by this network before,
    else computed (and cached when there is a ``key``). ``shared``: in a process group, every process
    follows the first one's finding, and only the first one writes."""
    if not cache or key is None:
        return score_images(images), None
    where = cache_path(key, weights_sha256, precision)
    found = _cached(where, weights_sha256, say)
    agreed = bool(shared.agree(found is not None))
    if agreed and found is None:
        raise InputError(f"the reference cache {where} that the first process read is missing or unreadable here: "
                         f"put ${CACHE_ENVIRONMENT} on a file system every process shares, or pass cache=False "
                         "(--no-reference-cache)")
    if agreed:
        assert found is not None
        say(f"reference features of {what} from the cache: {where}")
        return found, str(where)
    side = score_images(images)
    written = _write_cache(where, side, weights_sha256, say, what) if shared.writes else None
    return side, shared.agree(written)  # every process records what the first one wrote


def _write_cache(where: Path, side: FeatureSet, weights_sha256: str, say: Callable[[str], None],
                 what: str) -> str | None:
    """``side`` cached at ``where``; the path, or None where it could not be (said)."""
    if where.is_symlink():  # the cache is a convenience: a link planted there is neither followed nor fatal
        say(f"the reference features could not be cached at {where}: it is a symbolic link (not written "
            "through; remove it to cache them)")
        return None
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        save_reference(where, side, weights_sha256)
    except (OSError, InputError, LinkRefusedError) as error:
        say(f"the reference features could not be cached at {where}: {error}")
        return None
    say(f"reference features of {what} cached at {where}; the next run with this reference reads them")
    return str(where)


def _cached(where: Path, weights_sha256: str, say: Callable[[str], None]) -> FeatureSet | None:
    """The features cached at ``where`` by the network of ``weights_sha256``, or None (absent, a link,
    unreadable: said, or of another network)."""
    if not where.is_file() or where.is_symlink():
        return None
    try:
        batch = read_reference_npz(where)
    except InputError as error:
        say(f"the cached reference features {where} are unreadable ({error}); computing them again")
        return None
    return reference_from_batch(batch).side if batch.weights_sha256 == weights_sha256 else None


__all__ = ["ALONE", "ScoreImages", "Shared", "is_reference_file", "load_reference"]
