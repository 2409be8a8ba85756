"""The command's reference options: --reference, --metrics, --save-features, --save-reference, --each with
one reference, and the combinations it refuses. The network is the exact stand-in with features of
tests/distributed_workers.py (``PixelFeatures``): what is checked is what the command does around the
network, against formulas written here and the stand-in's own features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from click.testing import CliRunner

import inception_score.api as api
from inception_score.cli.main import main


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INCEPTION_SCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def arrays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("arrays")
    rng = np.random.default_rng(7)
    for name, count in (("a.npy", 12), ("b.npy", 10), ("ref.npy", 14)):
        images = rng.integers(0, 256, (count, 24, 24, 3), dtype=np.uint8)
        if name == "ref.npy":
            images[:, :12] //= 3  # another distribution than the samples'
        np.save(folder / name, images)
    return folder


def _run(*args: str) -> tuple[int, str, str]:
    outcome = CliRunner().invoke(main, [*args, "--splits", "2", "--device", "cpu", "--allow-unverified-weights"])
    return outcome.exit_code, outcome.stdout, outcome.stderr


def _fid(x: np.ndarray, y: np.ndarray) -> float:
    """The evaluator's formula for few vectors: with ``S1 = A^T A`` and ``S2 = B^T B`` (A, B the centred
    features over sqrt(n - 1)), the nonzero eigenvalues of ``S1 S2`` are the squared singular values of the
    small ``A B^T``, so ``tr(sqrtm(S1 S2))`` is the sum of its singular values."""
    a = (x - x.mean(0)) / np.sqrt(len(x) - 1)
    b = (y - y.mean(0)) / np.sqrt(len(y) - 1)
    diff = x.mean(0) - y.mean(0)
    covmean_trace = scipy.linalg.svdvals(a @ b.T).sum()
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * covmean_trace)


def test_reference_in_the_line_and_the_json_and_fid_from_the_saved_features(
        feature_stand_in, arrays: Path, tmp_path: Path, private_cache: Path) -> None:
    samples, reference = tmp_path / "samples.npz", tmp_path / "reference.npz"
    code, _, err = _run(str(arrays / "ref.npy"), "--save-features", str(reference))
    assert code == 0, err
    code, out, err = _run(str(arrays / "a.npy"), "--reference", str(arrays / "ref.npy"), "--json",
                          "--save-features", str(samples), "--kid-subset-size", "5", "--kid-subsets", "7")
    assert code == 0, err
    evaluation = json.loads(out)["evaluation"]
    x, y = np.load(samples)["pool_3"].astype(np.float64), np.load(reference)["pool_3"].astype(np.float64)
    assert x.shape == (12, 2048) and np.load(samples)["spatial"].shape == (12, 2023)
    pool3, spatial = feature_stand_in.features(np.load(arrays / "a.npy"))
    assert np.array_equal(np.load(samples)["pool_3"], pool3) and np.array_equal(np.load(samples)["spatial"], spatial)
    assert evaluation["fid"] == pytest.approx(_fid(x, y), rel=1e-9)
    assert evaluation["kid"]["subsets"] == 7 and evaluation["kid"]["subset_size"] == 5
    assert evaluation["sample_count"] == 12 and evaluation["reference_count"] == 14
    assert any("fewer than the 2,048" in note for note in evaluation["notes"])  # said in the result ...
    assert "fewer than the 2,048" in err and "biased in the number of images" in err  # ... and on stderr
    assert f"cached at {private_cache}" in err
    code, out, err = _run(str(arrays / "a.npy"), "--reference", str(arrays / "ref.npy"), "--metrics", "fid")
    assert code == 0, err
    assert "from the cache" in err and "FID" in out and "KID" not in out


def test_each_loads_the_reference_once_and_scores_every_path_against_it(
        feature_stand_in, arrays: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = tmp_path / "reference.npz"
    assert _run(str(arrays / "ref.npy"), "--save-reference", str(reference))[0] == 0
    loads = []
    real = api.load_reference
    monkeypatch.setattr(api, "load_reference", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    code, out, err = _run(str(arrays / "a.npy"), str(arrays / "b.npy"), "--each", "--json", "--reference",
                          str(reference), "--metrics", "fid,sfid")
    assert code == 0, err
    assert loads == [reference]
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["evaluation"]["sample_count"] for line in lines] == [12, 10]
    for line, name in zip(lines, ("a.npy", "b.npy")):  # each as its own run gives
        alone = json.loads(_run(str(arrays / name), "--json", "--reference", str(reference), "--metrics",
                                "fid,sfid")[1])["evaluation"]
        assert line["evaluation"]["fid"] == pytest.approx(alone["fid"], rel=1e-12)
        assert line["evaluation"]["sfid"] == pytest.approx(alone["sfid"], rel=1e-12)


@pytest.mark.parametrize("args, words", [
    (["--metrics", "fid"], "--metrics chooses among the numbers computed against --reference"),
    (["--reference", "REF", "--save-logits", "OUT.npy"], "need the features of PATHS scored in this run"),
    (["--save-features", "OUT.npz", "--each"], "--each scores every PATH on its own"),
    (["--reference", "REF", "--metrics", "fid,bogus"], "unknown metric 'bogus'"),
])
def test_combinations_that_cannot_work_are_refused_before_scoring(arrays: Path, tmp_path: Path, args: list[str],
                                                                   words: str) -> None:
    args = [a.replace("REF", str(arrays / "ref.npy")).replace("OUT", str(tmp_path / "out")) for a in args]
    code, _, err = _run(str(arrays / "a.npy"), str(arrays / "b.npy"), *args)
    assert code == 2 and words in err, err
    assert not list(tmp_path.glob("out*"))


def test_statistics_alone_refuse_kid_and_give_fid(feature_stand_in, arrays: Path, tmp_path: Path) -> None:
    stats = tmp_path / "stats.npz"
    rng = np.random.default_rng(0)
    factor = rng.standard_normal((2048, 2048)) / 64
    np.savez(stats, mu=rng.standard_normal(2048), sigma=factor @ factor.T)
    code, _, err = _run(str(arrays / "a.npy"), "--reference", str(stats), "--metrics", "kid")
    assert code == 2 and "cannot give KID" in err
    code, out, err = _run(str(arrays / "a.npy"), "--reference", str(stats), "--json")
    assert code == 0, err
    evaluation = json.loads(out)["evaluation"]
    assert evaluation["sfid"] is None and evaluation["kid"] is None and evaluation["fid"] > 0
    assert evaluation["reference"]["statistics"] == "stored in the file"
    assert "computed elsewhere" in err and "not comparable" in err
