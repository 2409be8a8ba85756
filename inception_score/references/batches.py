"""Reference ``.npz`` files for FID, sFID, KID and precision/recall: what they hold, checked before use.

Two layouts are read:

* a **guided-diffusion reference batch** (``evaluations/evaluator.py``; e.g. ``VIRTUAL_imagenet256_labeled.npz``):
  ``arr_0``, uint8 images ``(N, H, W, 3)``, from which precision, recall, KID and any missing statistics
  are computed; and ``mu``, ``sigma`` (pool_3, 2048) and ``mu_s``, ``sigma_s`` (spatial, 2023), which the
  evaluator uses for FID and sFID when present. ``arr_1`` (class labels) may be there and is not used;
* a **statistics-only** file: ``mu`` and ``sigma`` (FID only), with ``mu_s`` and ``sigma_s`` for sFID too;
* a **saved reference** (``--save-reference``; :mod:`.reference`): the four statistics, in guided-diffusion's
  layout, plus ``pool_3`` (N, 2048) float32, the vectors KID and precision/recall need, and
  ``weights_sha256``, the network they came from.

Every array is opened by its ``.npy`` header (:class:`inception_score.npz.NpzMember`: no pickles, sizes
checked against the zip's own records) and its shape and dtype are checked before a byte of data is
read. clean-fid's statistics files, named ``{name}_{mode}[_{model}]_{split}_{res}.npz`` by clean-fid
(``clean``, ``legacy_tensorflow`` or ``legacy_pytorch`` mode), come from another port of the network
and another resize: they are refused by that name, and its KID files by their ``feats`` array. Other
statistics files (pytorch-fid's ``--save-stats``, say, or statistics of torchvision's Inception) hold
the same keys and cannot be told apart: the file's sha256 is recorded so that its provenance can be
checked.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..score.fid import GaussianStatistics
from ..network.outputs import FEATURE_DIM, SPATIAL_DIM
from ..readers.npz import READ_ERRORS, NpzMember, npz_keys
from ..network.weights import file_digest

IMAGES_KEY = "arr_0"
LABELS_KEY = "arr_1"
STATISTICS_KEYS = {"mu": ("sigma", FEATURE_DIM), "mu_s": ("sigma_s", SPATIAL_DIM)}
FEATURES_KEY = "pool_3"  # a saved reference's pool_3 vectors (N, 2048) float32, for KID and precision/recall
WEIGHTS_KEY = "weights_sha256"  # a saved reference's network: the sha256 of its weights file, 32 uint8
KNOWN_KEYS = {IMAGES_KEY, LABELS_KEY, "mu", "sigma", "mu_s", "sigma_s", FEATURES_KEY, WEIGHTS_KEY}
NOT_COMPARABLE = "another network or resize: not comparable"
# clean-fid's statistics file names (cleanfid/fid.py, lower-cased): {name}_{mode}{_model}_{split}_{res}[_kid].npz
_CLEAN_FID_NAME = re.compile(r"_(clean|legacy_tensorflow|legacy_pytorch)(_[a-z0-9_]+?)?_[a-z0-9]+_([0-9]+|na)(_kid)?\.npz$")


@dataclass(frozen=True)
class ReferenceBatch:
    """A checked reference ``.npz``: its images (``arr_0`` read by rows, ``(N, H, W, 3)`` uint8) and
    statistics where it holds them, its layout (``"guided-diffusion batch"`` with images,
    ``"statistics"`` without) and its sha256."""

    path: Path
    sha256: str
    layout: str
    images: NpzMember | None
    fid: GaussianStatistics | None
    sfid: GaussianStatistics | None
    features: NpzMember | None = None  # a saved reference's pool_3 vectors
    weights_sha256: str | None = None  # the network a saved reference was computed with

    @property
    def num_images(self) -> int | None:
        return None if self.images is None else len(self.images)


def _refuse_clean_fid(path: Path, keys: list[str]) -> None:
    match = _CLEAN_FID_NAME.search(path.name.lower())
    if match or keys == ["feats"]:
        what = f"mode {match.group(1)!r}" if match else "a 'feats' array, as clean-fid's KID files"
        raise InputError(f"{path}: a clean-fid statistics file ({what}), computed with {NOT_COMPARABLE} with the "
                         "2015 graph and the TF1 resize; give the reference images, or statistics this package "
                         "or guided-diffusion's evaluator computed")


def _statistics(path: Path, mean_key: str, covariance_key: str, dim: int) -> GaussianStatistics:
    where = f"{path}: {mean_key!r} and {covariance_key!r}"
    mean, covariance = NpzMember(path, mean_key), NpzMember(path, covariance_key)
    if mean.shape != (dim,) or covariance.shape != (dim, dim):
        raise InputError(f"{where} must be ({dim},) and ({dim}, {dim}), got {mean.shape} and {covariance.shape}: "
                         f"{'pool_3' if dim == FEATURE_DIM else 'spatial (mixed_6/conv, 7 channels)'} statistics of "
                         "the 2015 Inception graph have these shapes; this file holds other features")
    for member in (mean, covariance):
        if member.dtype.kind != "f":
            raise InputError(f"{path}: {member.key!r} is {member.dtype}, not floating point: not statistics")
    mu, sigma = mean.rows(0, dim).astype(np.float64), covariance.rows(0, dim).astype(np.float64)
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise InputError(f"{where} hold inf or NaN: the file is damaged")
    if np.abs(sigma - sigma.T).max() > 1e-6 * max(np.abs(sigma).max(), 1e-300) or (np.diagonal(sigma) < 0).any():
        raise InputError(f"{path}: {covariance_key!r} is not a covariance matrix (not symmetric, or a negative "
                         "variance): the file is damaged or holds something else")
    return GaussianStatistics(mu, sigma)


def _images(path: Path) -> NpzMember:
    images = NpzMember(path, IMAGES_KEY)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise InputError(f"{path}: {IMAGES_KEY!r} must hold uint8 images (N, H, W, 3) with N >= 1, as guided-diffusion's "
                         f"reference batches do; got {images.shape} {images.dtype}")
    return images


def read_reference_npz(path: str | Path) -> ReferenceBatch:
    """Open and check a reference ``.npz`` (see the module's docstring for the layouts); statistics are
    read (float64), images are left to be read by rows. Raises :class:`InputError` saying what does not
    fit, with the file's name."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"reference file {path} does not exist or is not a file")
    try:
        keys = npz_keys(path)
    except (zipfile.BadZipFile, *READ_ERRORS) as error:
        raise InputError(f"{path} is not a readable .npz ({error}); give a guided-diffusion reference batch or a "
                         "statistics .npz (mu, sigma [, mu_s, sigma_s])") from None
    _refuse_clean_fid(path, keys)
    unknown = sorted(set(keys) - KNOWN_KEYS)
    if unknown:
        raise InputError(f"{path}: unexpected arrays {unknown}; a reference .npz holds {IMAGES_KEY} (uint8 images) "
                         "and/or mu, sigma [, mu_s, sigma_s] (guided-diffusion's layout)")
    try:
        statistics, images = _contents(path, keys)
    except InputError:
        raise
    except READ_ERRORS as error:
        raise InputError(f"{path}: an array could not be read ({error}); the file is damaged or not written by numpy") from None
    if images is None and statistics["mu"] is None:
        raise InputError(f"{path} holds neither images ({IMAGES_KEY}) nor statistics (mu, sigma): arrays {keys}")
    features, weights = _saved_parts(path, keys)
    layout = "saved reference" if features is not None else "guided-diffusion batch" if images is not None else "statistics"
    return ReferenceBatch(path=path, sha256=file_digest(path), layout=layout, images=images, fid=statistics["mu"],
                          sfid=statistics["mu_s"], features=features, weights_sha256=weights)


def _saved_parts(path: Path, keys: list[str]) -> tuple[NpzMember | None, str | None]:
    """A saved reference's pool_3 vectors and weights digest (both or neither), checked."""
    present = [key for key in (FEATURES_KEY, WEIGHTS_KEY) if key in keys]
    if not present:
        return None, None
    if len(present) == 1 or "mu" not in keys or "mu_s" not in keys:
        raise InputError(f"{path}: a reference saved by --save-reference holds mu, sigma, mu_s, sigma_s, {FEATURES_KEY} "
                         f"and {WEIGHTS_KEY}; this one has {sorted(keys)}: it is damaged or was edited")
    features, weights = NpzMember(path, FEATURES_KEY), NpzMember(path, WEIGHTS_KEY)
    if features.ndim != 2 or features.shape[1] != FEATURE_DIM or features.dtype != np.float32 or len(features) < 2:
        raise InputError(f"{path}: {FEATURES_KEY!r} must be (N, {FEATURE_DIM}) float32 pool_3 vectors, N >= 2; got "
                         f"{features.shape} {features.dtype}")
    if weights.shape != (32,) or weights.dtype != np.uint8:
        raise InputError(f"{path}: {WEIGHTS_KEY!r} must be the 32 bytes of a sha256, got {weights.shape} {weights.dtype}")
    return features, bytes(weights.rows(0, 32)).hex()


def _contents(path: Path, keys: list[str]) -> tuple[dict[str, GaussianStatistics | None], NpzMember | None]:
    statistics: dict[str, GaussianStatistics | None] = {}
    for mean_key, (covariance_key, dim) in STATISTICS_KEYS.items():
        present = [key for key in (mean_key, covariance_key) if key in keys]
        if len(present) == 1:
            raise InputError(f"{path}: {present[0]!r} without {({mean_key, covariance_key} - set(present)).pop()!r}; "
                             "statistics come as a pair (mean and covariance)")
        statistics[mean_key] = _statistics(path, mean_key, covariance_key, dim) if present else None
    if statistics["mu_s"] is not None and statistics["mu"] is None:
        raise InputError(f"{path}: spatial statistics (mu_s, sigma_s) without pool_3 ones (mu, sigma); guided-diffusion's "
                         "evaluator reads mu first and would ignore them: add mu and sigma, or drop mu_s and sigma_s")
    return statistics, (_images(path) if IMAGES_KEY in keys else None)


__all__ = ["FEATURES_KEY", "NOT_COMPARABLE", "WEIGHTS_KEY", "ReferenceBatch", "read_reference_npz"]
