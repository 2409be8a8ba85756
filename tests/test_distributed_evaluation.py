"""FID, sFID, KID, precision and recall across processes (issue 39, acceptance 5): 2 and 3 Gloo processes
give the one-process numbers, the samples' features saved by a group are the one-process file (gathered
in rank order, which is input order), and shares of unequal size (301 samples and 250 reference images
over 3 processes) change nothing.

The network is the exact stand-in of tests/distributed_workers.py (``PixelFeatures``): its logits and
features are the same float32 bits on any batch, shard or process count. What a group then computes
differently from one process is only the order of the float64 sums of the feature moments (each rank's
sums, then the all-reduce): FID and sFID are held to 1e-9 relative, far inside the float32 rounding
(~6e-8 of each feature) that the real network's batch-dependent features would add. KID and precision/recall
are computed from the gathered pool_3 vectors themselves, the same bits in the same order: they are equal.
The one-process numbers are checked against formulas written out here (FID without a D x D square
root, torch-fidelity's KID in float64, precision and recall by brute force).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import distributed_workers as workers
from inception_score import inception_score
from inception_score.score.evaluation import EvaluationWarning
from test_distributed import spawn
from test_one_pass import naive_frechet

COUNT, REFERENCE, SPLITS = 301, 250, 7
KID_SUBSETS, KID_SUBSET_SIZE = 20, 100
SUMS_ORDER = 1e-9  # FID and sFID of a group against one process (see the module's docstring)


def params(tmp_path: Path, world: int) -> dict:
    return {"count": COUNT, "reference": REFERENCE, "splits": SPLITS, "kid_subsets": KID_SUBSETS,
            "kid_subset_size": KID_SUBSET_SIZE, "batch_size": 16, "cache": str(tmp_path / f"cache-{world}"),
            "save_features": str(tmp_path / f"features-{world}.npz")}


def naive_precision_recall(reference: np.ndarray, samples: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Brute force: squared distances ``sum((a - b)^2)``, each point's radius the k-th smallest distance to
    the others of its set; precision: samples within some reference radius; recall: the converse."""
    def squared(a, b):
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)

    radius_ref = np.sort(squared(reference, reference), axis=1)[:, k]
    radius_samples = np.sort(squared(samples, samples), axis=1)[:, k]
    across = squared(samples, reference)
    return float((across <= radius_ref[None, :]).any(axis=1).mean()), float((across.T <= radius_samples[None, :]).any(axis=1).mean())


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("one-process")
    saved = folder / "features.npz"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INCEPTION_SCORE_CACHE", str(folder / "cache"))
        with pytest.warns(EvaluationWarning):  # fewer than 2,048 images: said in the result
            result = inception_score(workers.images(COUNT, seed=1), reference=workers.images(REFERENCE, seed=2),
                                     splits=SPLITS, kid_subsets=KID_SUBSETS, kid_subset_size=KID_SUBSET_SIZE,
                                     batch_size=16, scorer=workers.PixelFeatures(), save_features=saved,
                                     distributed=False)
    return workers.evaluation_fields(result), saved


def test_one_process_numbers_equal_the_formulas_written_out(one_process: tuple[dict, Path]) -> None:
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    ours, _ = one_process
    stand_in = workers.PixelFeatures()
    pool3, spatial = (f.astype(np.float64) for f in stand_in.features(workers.images(COUNT, seed=1)))
    ref_pool3, ref_spatial = (f.astype(np.float64) for f in stand_in.features(workers.images(REFERENCE, seed=2)))
    assert ours["fid"] == pytest.approx(naive_frechet(pool3, ref_pool3), rel=1e-8)
    assert ours["sfid"] == pytest.approx(naive_frechet(spatial, ref_spatial), rel=1e-8)
    kid = metric_kid.kid_features_to_metric(torch.from_numpy(pool3), torch.from_numpy(ref_pool3), kid_subsets=KID_SUBSETS,
                                            kid_subset_size=KID_SUBSET_SIZE, rng_seed=2020, verbose=False)
    assert ours["kid"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-9)
    assert ours["kid_std"] == pytest.approx(kid["kernel_inception_distance_std"], rel=1e-9)
    precision, recall = naive_precision_recall(ref_pool3, pool3)
    assert (ours["precision"], ours["recall"]) == (precision, recall)
    assert 0 < precision < 1 and 0 < recall < 1  # not at a ceiling, so a wrong radius would show


@pytest.mark.parametrize("world", [2, 3])
def test_a_group_gives_the_one_process_evaluation_and_features_file(tmp_path: Path, world: int,
                                                                    one_process: tuple[dict, Path]) -> None:
    expected, one_file = one_process
    outcomes = spawn(tmp_path, world, "evaluation", **params(tmp_path, world))
    for outcome in outcomes:
        assert "error" not in outcome, outcome.get("traceback")
    # Each rank put its own share through the network, the reference's share and the samples' (twice:
    # the second call reads the reference from the cache): no image twice, none left out.
    assert sum(o["through"] for o in outcomes) == 2 * COUNT + REFERENCE
    for outcome in outcomes:
        for got in (outcome, outcome["again"]):
            assert got["processes"] == world
            assert (got["sample_count"], got["reference_count"]) == (COUNT, REFERENCE)
            assert got["fid"] == pytest.approx(expected["fid"], rel=SUMS_ORDER)
            assert got["sfid"] == pytest.approx(expected["sfid"], rel=SUMS_ORDER)
            assert (got["kid"], got["kid_std"]) == (expected["kid"], expected["kid_std"])
            assert (got["precision"], got["recall"]) == (expected["precision"], expected["recall"])
            np.testing.assert_allclose(got["split_scores"], expected["split_scores"], rtol=1e-12)
        assert outcome["cached"] is not None and outcome["again"]["cached"] == outcome["cached"]
    # Every rank computed its numbers from the same summed moments and gathered vectors.
    assert len({(o["fid"], o["sfid"], o["kid"], o["precision"]) for o in outcomes}) == 1
    with np.load(one_file) as alone, np.load(tmp_path / f"features-{world}.npz") as group:
        assert sorted(group.files) == ["pool_3", "spatial"]
        for key in ("pool_3", "spatial"):
            np.testing.assert_array_equal(group[key], alone[key])
    pool3, spatial = workers.PixelFeatures().features(workers.images(COUNT, seed=1))
    with np.load(one_file) as alone:  # input order, the stand-in's own features
        np.testing.assert_array_equal(alone["pool_3"], pool3)
        np.testing.assert_array_equal(alone["spatial"], spatial)
