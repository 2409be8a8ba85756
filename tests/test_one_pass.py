"""The whole evaluation from one pass (issue 39, acceptance 4): IS + FID + sFID run the network once per
image, as the IS alone does, and FID alone keeps memory flat in the number of images.

- 512 images through the exact stand-in of tests/distributed_workers.py (``PixelFeatures``, which counts the
  images it is given): the IS alone and the IS + FID + sFID against a statistics-only reference each put
  every image through it once, the features asked for in the same call as the logits; the FID and sFID
  equal an independent formula on the stand-in's features.
- The network itself with the development weights, on 4 images: its first convolution and Mixed_6d's
  1x1 branch (sFID's layer) see each image once, whether the features are asked for or not.
- FID alone against a statistics-only reference, 1,000 and 20,000 images from a generator, each in a
  fresh process: the peak resident memory does not grow with N (kept pool_3 vectors would add 156 MB).
  ``benchmarks/memory.py --metrics fid`` measures the same from 10,000 to 100,000 images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import distributed_workers as workers
from inception_score import inception_score
from inception_score.score.evaluation import EvaluationWarning

TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.filterwarnings("ignore::inception_score.score.evaluation.EvaluationWarning")


def naive_frechet(first: np.ndarray, second: np.ndarray) -> float:
    """FID between two sets of feature vectors ``(N1, D)`` and ``(N2, D)``, written out in float64 without a
    D x D square root: with ``A_i`` the centred vectors over ``sqrt(N_i - 1)`` (so ``S_i = A_i^T A_i``), the
    nonzero eigenvalues of ``S1 S2`` are the squared singular values of ``A1 A2^T``, so ``tr sqrtm(S1 S2)``
    is the nuclear norm of that ``(N1, N2)`` matrix."""
    a1 = (first - first.mean(axis=0)) / np.sqrt(len(first) - 1)
    a2 = (second - second.mean(axis=0)) / np.sqrt(len(second) - 1)
    diff = first.mean(axis=0) - second.mean(axis=0)
    return float(diff @ diff + (a1**2).sum() + (a2**2).sum() - 2 * np.linalg.norm(a1 @ a2.T, "nuc"))


def statistics_file(path: Path, pool3: np.ndarray, spatial: np.ndarray) -> Path:
    """A statistics-only reference (guided-diffusion's keys), from ``np.cov`` of the features."""
    np.savez(path, mu=pool3.mean(axis=0, dtype=np.float64), sigma=np.cov(pool3.astype(np.float64), rowvar=False),
             mu_s=spatial.mean(axis=0, dtype=np.float64), sigma_s=np.cov(spatial.astype(np.float64), rowvar=False))
    return path


def reference_pixels() -> np.ndarray:
    """600 images darker than the samples (values 0..191), so that the distance is not small."""
    return (workers.images(600, seed=9).astype(np.uint16) * 3 // 4).astype(np.uint8)


def test_is_fid_and_sfid_put_each_image_through_the_network_once(tmp_path: Path) -> None:
    pixels = workers.images(512, seed=1)
    features = workers.PixelFeatures()
    ref_pool3, ref_spatial = features.features(reference_pixels())
    stats = statistics_file(tmp_path / "reference-statistics.npz", ref_pool3, ref_spatial)

    alone = workers.PixelFeatures()
    is_only = inception_score(pixels, batch_size=64, scorer=alone, distributed=False)
    both = workers.PixelFeatures()
    with pytest.warns(EvaluationWarning):  # 512 images: fewer than 2,048, said in the result
        evaluated = inception_score(pixels, reference=str(stats), metrics="fid,sfid", batch_size=64, scorer=both,
                                    distributed=False, cache=False)

    assert alone.images_through == 512
    assert both.images_through == 512  # 1.0x the IS alone's passes (at most 1.1x asked)
    assert set(both.calls) == {("logits_unbiased", "pool3", "spatial")}  # the features beside the logits
    assert len(both.calls) == len(alone.calls) == 8
    assert evaluated.mean == is_only.mean
    pool3, spatial = features.features(pixels)
    evaluation = evaluated.evaluation
    # float32 features, float64 statistics: the two routes to tr sqrtm agree to ~1e-12 of the traces.
    assert evaluation.fid == pytest.approx(naive_frechet(pool3.astype(np.float64), ref_pool3.astype(np.float64)),
                                           rel=1e-8)
    assert evaluation.sfid == pytest.approx(naive_frechet(spatial.astype(np.float64), ref_spatial.astype(np.float64)),
                                            rel=1e-8)
    assert evaluation.kid is None and evaluation.precision is None


def test_the_network_computes_logits_pool3_and_spatial_features_in_one_forward(dev_scorer, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (4, 3, 16, 16), dtype=np.uint8)
    stats = statistics_file(tmp_path / "stats.npz", rng.normal(size=(300, 2048)).astype(np.float32),
                            rng.normal(size=(300, 2023)).astype(np.float32))
    modules = dict(dev_scorer.network.named_modules())
    seen = {"Conv2d_1a_3x3": 0, "Mixed_6d.branch1x1": 0, "Mixed_7c": 0}

    def counter(name):
        def hook(module, inputs):
            seen[name] += len(inputs[0])
        return hook

    handles = [modules[name].register_forward_pre_hook(counter(name)) for name in seen]
    try:
        inception_score(torch.from_numpy(pixels), splits=1, scorer=dev_scorer, distributed=False)
        is_alone = dict(seen)
        seen.update({name: 0 for name in seen})
        result = inception_score(torch.from_numpy(pixels), splits=1, scorer=dev_scorer, distributed=False,
                                 reference=str(stats), metrics="fid,sfid", cache=False)
    finally:
        for handle in handles:
            handle.remove()
    assert is_alone == {"Conv2d_1a_3x3": 4, "Mixed_6d.branch1x1": 4, "Mixed_7c": 4}
    assert seen == is_alone  # the spatial layer's output is taken from the same pass
    assert np.isfinite(result.evaluation.fid) and np.isfinite(result.evaluation.sfid)


FID_ONLY_PEAK = """
import resource, sys, json
import numpy as np, torch
import distributed_workers as workers
from inception_score import inception_score

count, stats = int(sys.argv[1]), sys.argv[2]

def batches():
    generator = torch.Generator().manual_seed(count)
    for start in range(0, count, 500):
        yield torch.randint(0, 256, (min(500, count - start), 3, 8, 8), dtype=torch.uint8, generator=generator)

scorer = workers.PixelFeatures()
result = inception_score(batches(), num_images=count, reference=stats, metrics="fid", scorer=scorer, batch_size=500,
                         distributed=False, cache=False)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "fid": result.evaluation.fid,
                  "through": scorer.images_through, "calls": sorted(set(scorer.calls))}))
"""


def test_fid_alone_keeps_memory_flat_in_the_number_of_images(tmp_path: Path) -> None:
    pool3, spatial = workers.PixelFeatures().features(reference_pixels())
    stats = statistics_file(tmp_path / "stats.npz", pool3, spatial)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    peaks = {}
    for count in (1_000, 20_000):
        done = subprocess.run([sys.executable, "-c", FID_ONLY_PEAK, str(count), str(stats)], capture_output=True,
                              text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        row = json.loads(done.stdout.strip().splitlines()[-1])
        assert row["through"] == count and row["calls"] == [["logits_unbiased", "pool3"]]  # moments of pool_3 only
        assert np.isfinite(row["fid"])
        peaks[count] = row["peak_mb"]
    # Keeping the 19,000 more pool_3 vectors would take 156 MB (float32); the moments are 33.6 MB whatever N.
    # The peak of one N varies by up to ~35 MB from run to run (measured: 814-834 MB at 1,000, 810-849 MB at
    # 20,000), hence the bound.
    assert peaks[20_000] - peaks[1_000] < 60, peaks
