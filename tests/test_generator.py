"""Scoring a generator directly: z by position (independent of batches and processes), the score equal
to the same images materialised, the class-conditional path, clear errors for bad output, the
command-line generators (TorchScript, ONNX) and ``reference-gan score``.

Scores with the genuine-conv / random-fc weights compare code paths; they are not Inception Scores.
The stand-in scorer of tests/distributed_workers.py (per-image float64 logits) keeps most tests fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from click.testing import CliRunner

import distributed_workers as workers
import generator_workers
from inception_score import InceptionScorer, LatentSpec, inception_score, latents, load_generator_file, score_generator
from inception_score.cli.main import main as inception_score_main
from inception_score.engine.distributed import shard_bounds
from inception_score.errors import InputError
from inception_score.generator import LatentDraw

BLOCK = 1024  # the documented block of z


def documented_z(seed: int, count: int, z_dim: int, distribution: str) -> torch.Tensor:
    """z as the docstring of inception_score.generator states it, written out: block b from a CPU
    torch.Generator seeded with the 64 bits of SeedSequence(seed, spawn_key=(0, b)), one (1024, z_dim) draw."""
    blocks = []
    for block in range((count + BLOCK - 1) // BLOCK):
        words = np.random.SeedSequence(seed, spawn_key=(0, block)).generate_state(2, np.uint32)
        rng = torch.Generator().manual_seed(int(words[0]) + (int(words[1]) << 32))
        if distribution == "uniform":
            blocks.append(torch.rand(BLOCK, z_dim, generator=rng) * 2 - 1)
        elif distribution == "uniform-0-1":
            blocks.append(torch.rand(BLOCK, z_dim, generator=rng))
        else:
            normal = torch.randn(BLOCK, z_dim, generator=rng)
            blocks.append(normal if distribution == "normal" else normal / normal.norm(dim=1, keepdim=True))
    return torch.cat(blocks)[:count]


def documented_labels(seed: int, count: int, classes: int) -> torch.Tensor:
    blocks = []
    for block in range((count + BLOCK - 1) // BLOCK):
        words = np.random.SeedSequence(seed, spawn_key=(1, block)).generate_state(2, np.uint32)
        rng = torch.Generator().manual_seed(int(words[0]) + (int(words[1]) << 32))
        blocks.append(torch.randint(classes, (BLOCK,), generator=rng))
    return torch.cat(blocks)[:count]


def walk(spec: LatentSpec, count: int, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One process's draws in batches of ``batch``, concatenated."""
    draw = LatentDraw(spec)
    parts = [draw.draw(start, min(start + batch, count)) for start in range(0, count, batch)]
    labels = None if parts[0][1] is None else torch.cat([p[1] for p in parts])
    return torch.cat([p[0] for p in parts]), labels


@pytest.mark.parametrize("distribution", ["normal", "uniform", "uniform-0-1", "unit"])
def test_z_is_the_documented_draw_whatever_the_batches_or_processes(distribution: str) -> None:
    spec = LatentSpec(3, distribution, seed=5)
    count = 2 * BLOCK + 52  # three blocks, the last one partly used
    expected = documented_z(5, count, 3, distribution)
    assert torch.equal(latents(spec, 0, count)[0], expected)
    for batch in (7, 40, 1000):  # batches straddle the block boundaries
        assert torch.equal(walk(spec, count, batch)[0], expected)
    for world in (2, 3):  # each process draws its own share only
        shares = [latents(spec, *shard_bounds(count, rank, world))[0] for rank in range(world)]
        assert torch.equal(torch.cat(shares), expected)
    if distribution == "uniform":
        assert expected.min() >= -1 and expected.max() < 1 and expected.min() < -0.99
    if distribution == "uniform-0-1":
        assert expected.min() >= 0 and expected.max() < 1
    if distribution == "unit":
        np.testing.assert_allclose(expected.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    assert not torch.equal(latents(LatentSpec(3, distribution, seed=6), 0, 10)[0], expected[:10])


def test_sobol_points_are_by_position_whatever_the_batches_or_processes() -> None:
    from scipy.stats import norm

    count, z_dim = 300, 5
    spec = LatentSpec(z_dim, "sobol-normal", seed=9)
    engine = torch.quasirandom.SobolEngine(z_dim, scramble=True, seed=9)
    points = engine.draw(count, dtype=torch.float64).numpy()
    expected = norm.ppf(points)  # scipy's inverse normal CDF, in float64
    whole = latents(spec, 0, count)[0]
    assert whole.dtype == torch.float32
    # float32 rounding of the float64 value: half an ulp, 6e-8 relative (|z| < 6 here).
    np.testing.assert_allclose(whole.numpy(), expected, rtol=1.2e-7, atol=1e-30)
    for batch in (7, 40):
        assert torch.equal(walk(spec, count, batch)[0], whole)
    for world in (2, 3):
        shares = [latents(spec, *shard_bounds(count, rank, world))[0] for rank in range(world)]
        assert torch.equal(torch.cat(shares), whole)
    assert torch.equal(latents(spec, 123, 180)[0], whole[123:180])  # a jump ahead: fast_forward
    assert not torch.equal(latents(LatentSpec(z_dim, "sobol-normal", seed=10), 0, count)[0], whole)


def test_labels_are_uniform_seeded_and_by_position() -> None:
    count = BLOCK + 500
    spec = LatentSpec(4, "normal", seed=2, num_classes=10)
    z, labels = walk(spec, count, 7)
    assert labels is not None and labels.dtype == torch.int64
    assert torch.equal(labels, documented_labels(2, count, 10))
    assert torch.equal(z, documented_z(2, count, 4, "normal"))  # labels draw from their own stream
    assert torch.equal(walk(spec, count, 40)[1], labels)
    counts = np.bincount(labels.numpy(), minlength=10)
    # Uniform: each class count is Binomial(1524, 0.1), mean 152.4, sd 11.7; 6 sd either side.
    assert counts.min() > 152.4 - 6 * 11.7 and counts.max() < 152.4 + 6 * 11.7


def test_z_specs_that_cannot_be_drawn_are_refused() -> None:
    with pytest.raises(InputError, match="unknown: use one of normal, uniform"):
        LatentSpec(8, "gaussian")
    with pytest.raises(InputError, match="z_dim must be at least 1"):
        LatentSpec(0)
    with pytest.raises(InputError, match="seed must be a non-negative"):
        LatentSpec(8, seed=-1)
    with pytest.raises(InputError, match="num_classes must be at least 1"):
        LatentSpec(8, num_classes=0)
    with pytest.raises(InputError, match="5 images cannot be divided into 10 splits"):
        score_generator(generator_workers.linear_generator(8), 5, z_dim=8, scorer=workers.PixelProjection())


def test_the_same_seed_gives_the_same_score_and_the_result_records_the_draw() -> None:
    generate = generator_workers.linear_generator(8)
    run = lambda seed: score_generator(generate, 30, z_dim=8, seed=seed, batch_size=8, splits=3,  # noqa: E731
                                       scorer=workers.PixelProjection())
    first, again, other = run(4), run(4), run(5)
    assert first.split_scores == again.split_scores  # the same computation twice
    assert first.mean != other.mean
    assert first.num_images == 30
    assert first.generator is not None
    assert {k: first.generator[k] for k in ("seed", "z_distribution", "z_dim", "num_samples", "batch_size",
                                            "num_classes", "z_block")} == {
        "seed": 4, "z_distribution": "normal", "z_dim": 8, "num_samples": 30, "batch_size": 8, "num_classes": None,
        "z_block": BLOCK}
    assert first.to_dict()["generator"]["seed"] == 4


@pytest.fixture(scope="module")
def scorer(genuine_weights_file: Path) -> InceptionScorer:
    return InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True)


class Linear8(torch.nn.Module):
    """z (16) -> (3, 8, 8) in [-1, 1]; each sample's image depends on its z alone (float64 inside)."""

    def __init__(self) -> None:
        super().__init__()
        weight = torch.randn(16, 3 * 8 * 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        self.register_buffer("weight", weight * 0.7)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z.double() @ self.weight).float().view(-1, 3, 8, 8)


@pytest.mark.slow
def test_batch_sizes_7_and_40_agree_to_float32_rounding(scorer: InceptionScorer) -> None:
    generate = Linear8().eval()
    small = score_generator(generate, 40, z_dim=16, batch_size=7, splits=4, scorer=scorer)
    whole = score_generator(generate, 40, z_dim=16, batch_size=40, splits=4, scorer=scorer)
    # The images are the same (z by position, per-sample float64 generator); the network runs them in other
    # chunks (7 against 8 on CPU), which moves a logit by float32 rounding (measured 3e-6 at most). The
    # float64 statistics turn that into far less than 1e-6 of the score (measured here: 2e-16).
    assert small.mean == pytest.approx(whole.mean, rel=1e-6)
    np.testing.assert_allclose(small.split_scores, whole.split_scores, rtol=1e-6)
    assert whole.generator is not None and whole.generator["training_mode"] is False


@pytest.mark.parametrize("distribution", ["normal", "sobol-normal"])
def test_the_score_equals_inception_score_on_the_samples_materialised(distribution: str) -> None:
    from scipy.stats import norm

    generate = Linear8().eval()
    result = score_generator(generate, 40, z_dim=16, z_distribution=distribution, seed=2, batch_size=8, splits=4,
                             scorer=workers.PixelProjection())
    if distribution == "normal":
        z = documented_z(2, 40, 16, "normal")
    else:
        points = torch.quasirandom.SobolEngine(16, scramble=True, seed=2).draw(40, dtype=torch.float64)
        z = torch.from_numpy(norm.ppf(points.numpy())).float()
    images = generate(z)  # the same images written out, scored in the same batches by the same scorer
    materialised = inception_score(images, input_range=(-1, 1), batch_size=8, splits=4, scorer=workers.PixelProjection())
    # Normal z: bit for bit the documented draw. Sobol: scipy's float64 inverse CDF against torch's can differ
    # in the last float32 bit of z (6e-8), which moves the images and the score by about as much.
    if distribution == "normal":
        assert result.split_scores == materialised.split_scores
    else:
        np.testing.assert_allclose(result.split_scores, materialised.split_scores, rtol=1e-6)


def test_the_class_conditional_path_gets_seeded_labels_and_equals_the_samples_materialised() -> None:
    base = generator_workers.linear_generator(8)
    colours = torch.linspace(-0.9, 0.9, 5)
    seen: list[torch.Tensor] = []

    def generate(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append(labels)
        return (0.1 * base(z) + colours[labels].view(-1, 1, 1, 1)).clamp(-1, 1)

    result = score_generator(generate, 30, z_dim=8, num_classes=5, seed=3, batch_size=8, splits=3,
                             scorer=workers.PixelProjection())
    labels = documented_labels(3, 30, 5)
    assert torch.equal(torch.cat(seen), labels)
    images = generate(documented_z(3, 30, 8, "normal"), labels)
    materialised = inception_score(images, input_range=(-1, 1), batch_size=8, splits=3, scorer=workers.PixelProjection())
    assert result.split_scores == materialised.split_scores  # same images, same batches, same stand-in
    assert result.generator is not None and result.generator["num_classes"] == 5
    unconditional = score_generator(base, 30, z_dim=8, seed=3, batch_size=8, splits=3, scorer=workers.PixelProjection())
    assert unconditional.mean != result.mean  # the labels reached the images


@pytest.mark.parametrize("broken, message", [
    (lambda x: x[:-1], r"shape \(7, 3, 4, 4\): expected 8 images"),
    (lambda x: x.flatten(1), r"shape \(8, 48\): expected 8 images"),
    (lambda x: x[:, :2], "no axis of 3"),
    (lambda x: x * 1.5 + 0.7, r"outside the declared input range \[-1, 1\]"),
    (lambda x: (x * 100).to(torch.int32), "integer dtype torch.int32"),
    (lambda x: x.masked_fill(x > 0.9, float("nan")), "non-finite"),
    (lambda x: x.numpy(), "is a ndarray, not a tensor of images"),
    (lambda x: (x, x), "is a tuple, not a tensor of images"),
])
def test_a_generator_with_the_wrong_output_gets_a_clear_error(broken, message: str) -> None:
    base = generator_workers.linear_generator(8)
    with pytest.raises(InputError, match=message) as caught:
        score_generator(lambda z: broken(base(z) * 0.999), 16, z_dim=8, batch_size=8, splits=2,
                        scorer=workers.PixelProjection())
    assert "the generator's output for samples [0, 8)" in str(caught.value)


def test_output_a_hair_outside_the_range_is_rounding_and_passes() -> None:
    base = generator_workers.linear_generator(8)
    # 5e-5 beyond [-1, 1]: within the tolerance of 1e-4 of the range's width (2e-4 here).
    result = score_generator(lambda z: base(z).sign() * (1 + 5e-5), 16, z_dim=8, batch_size=8, splits=2,
                             scorer=workers.PixelProjection())
    assert result.num_images == 16


def spawn(tmp_path: Path, world: int, params: dict) -> list[dict]:
    out = tmp_path / f"generator-{world}-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    mp.start_processes(generator_workers.worker, args=(world, str(out / "rendezvous"), str(out), "generator_score", params),
                       nprocs=world, join=True, start_method="spawn")
    return [json.loads((out / f"rank-{rank}.json").read_text()) for rank in range(world)]


@pytest.mark.parametrize("world, distribution", [(2, "normal"), (3, "sobol-normal")])
def test_processes_draw_their_own_share_and_give_the_score_of_one(tmp_path: Path, world: int, distribution: str) -> None:
    params = {"count": 41, "z_dim": 6, "distribution": distribution, "seed": 7, "batch_size": 4, "splits": 10}
    alone = score_generator(generator_workers.linear_generator(6), 41, z_dim=6, z_distribution=distribution, seed=7,
                            batch_size=4, splits=10, scorer=workers.PixelProjection(), distributed=False)
    outcomes = spawn(tmp_path, world, params)
    expected_z = latents(LatentSpec(6, distribution, 7), 0, 41)[0]
    for rank, outcome in enumerate(outcomes):
        assert "error" not in outcome, outcome.get("traceback")
        start, stop = shard_bounds(41, rank, world)
        assert torch.equal(torch.tensor(outcome["z"]).view(-1, 6), expected_z[start:stop])  # its share only
        # The images are equal to the bit (per-sample float64 generator and stand-in logits): only the order
        # of the float64 sums differs, 1e-16 relative per addition. 1e-12 leaves room; float32 would be 1e-6.
        assert outcome["mean"] == pytest.approx(alone.mean, rel=1e-12)
        np.testing.assert_allclose(outcome["split_scores"], alone.split_scores, rtol=1e-12)
        assert outcome["processes"] == world and outcome["num_images"] == 41
        assert outcome["generator"]["num_samples"] == 41
    assert len({json.dumps(o["split_scores"]) for o in outcomes}) == 1  # every rank returns the same result


# --- generator files on the command line -----------------------------------------------------------------


def cli_json(args: list[str]) -> dict:
    result = CliRunner().invoke(inception_score_main, [*args, "--json", "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_a_torchscript_generator_on_the_command_line_scores_as_the_api(tmp_path: Path, scorer: InceptionScorer,
                                                                      genuine_weights_file: Path) -> None:
    path = tmp_path / "generator.pt"
    torch.jit.script(Linear8().eval()).save(str(path))
    report = cli_json(["--generator", str(path), "--num-samples", "10", "--z-dim", "16", "--splits", "2",
                       "--seed", "3", "--batch-size", "10", "--device", "cpu", "--weights", str(genuine_weights_file),
                       "--allow-unverified-weights"])
    api = score_generator(load_generator_file(path), 10, z_dim=16, seed=3, batch_size=10, splits=2, scorer=scorer)
    assert report["split_scores"] == list(api.split_scores)  # the same program, z, batches and kernels
    assert report["num_images"] == 10
    assert report["input"] == f"TorchScript generator {path}"
    assert report["generator"]["seed"] == 3 and report["generator"]["z_distribution"] == "normal"


def test_the_help_says_a_generator_file_is_a_program() -> None:
    text = " ".join(CliRunner().invoke(inception_score_main, ["--help"]).output.split())
    assert "The file is a program: it runs with your rights" in text


@pytest.mark.parametrize("args, message", [
    (["--generator", "g.pt"], "--generator needs --z-dim"),
    (["--generator", "g.pt", "--z-dim", "4", "--shuffle"], "--shuffle applies to PATHS"),
    (["--generator", "g.pt", "--z-dim", "4", "images/"], "one of them"),
])
def test_generator_options_that_do_not_fit_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(inception_score_main, args)
    assert result.exit_code == 2 and message in result.output


def test_a_file_that_is_not_torchscript_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="is not a TorchScript file"):
        load_generator_file(path)


def test_an_onnx_generator_without_onnxruntime_says_to_install_the_extra(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "generator.onnx"
    path.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as when it is not installed
    with pytest.raises(InputError, match=r"need onnxruntime: pip install 'inception-score\[onnx\]'"):
        load_generator_file(path)
    result = CliRunner().invoke(inception_score_main, ["--generator", str(path), "--z-dim", "4", "--device", "cpu"])
    assert result.exit_code == 2 and "pip install 'inception-score[onnx]'" in result.output


@pytest.fixture()
def onnx_export(monkeypatch: pytest.MonkeyPatch):
    """``torch.onnx.export`` (the TorchScript exporter), with or without the ``onnx`` package. That exporter
    imports ``onnx`` for one step only, inserting the model's custom onnxscript functions, of which a model
    with standard operators has none; without ``onnx`` (onnxruntime, in the test extra, needs none) that
    step is skipped here, so that the ONNX test runs wherever onnxruntime is installed."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        try:
            from torch.onnx._internal.torchscript_exporter import onnx_proto_utils
        except ImportError:
            pytest.skip("this torch's ONNX exporter is laid out otherwise and needs the onnx package: pip install onnx")
        if not hasattr(onnx_proto_utils, "_add_onnxscript_fn"):
            pytest.skip("this torch's ONNX exporter is laid out otherwise and needs the onnx package: pip install onnx")

        def without_onnxscript_functions(model_bytes: bytes, custom_opsets: dict) -> bytes:
            assert not custom_opsets, "a custom opset needs the onnx package to export"
            return model_bytes

        monkeypatch.setattr(onnx_proto_utils, "_add_onnxscript_fn", without_onnxscript_functions)
    return torch.onnx.export


def test_an_onnx_generator_scores_as_its_torch_module(tmp_path: Path, onnx_export) -> None:
    pytest.importorskip("onnxruntime")
    module = Conditional4().eval()
    path = tmp_path / "generator.onnx"
    z, labels = torch.zeros(2, 6), torch.zeros(2, dtype=torch.int64)
    onnx_export(module, (z, labels), str(path), input_names=["z", "labels"], output_names=["images"],
                dynamic_axes={"z": {0: "batch"}, "labels": {0: "batch"}, "images": {0: "batch"}}, dynamo=False)
    onnx_generator = load_generator_file(path, num_classes=3)
    draws = latents(LatentSpec(6, "normal", 0, num_classes=3), 0, 24)
    # onnxruntime's float32 kernels against torch's: the images agree to float32 rounding of values near 1.
    np.testing.assert_allclose(onnx_generator(*draws).numpy(), module(*draws).detach().numpy(), atol=1e-6, rtol=0)
    run = lambda g: score_generator(g, 24, z_dim=6, num_classes=3, batch_size=8, splits=2,  # noqa: E731
                                    scorer=workers.PixelProjection())
    ours, theirs = run(onnx_generator), run(module)
    # Pixels within 1e-6 x 127.5 of each other move the stand-in's linear logits by about 1e-6 of their size.
    assert ours.mean == pytest.approx(theirs.mean, rel=1e-6)
    with pytest.raises(InputError, match="takes 2 inputs"):
        load_generator_file(path)  # without --num-classes a generator takes z alone


class Conditional4(torch.nn.Module):
    """(z (6), label of 3) -> (3, 4, 4) in [-1, 1], float32 throughout (as an exported model runs)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(6, 48, generator=torch.Generator().manual_seed(2)))
        self.embedding = torch.nn.Parameter(torch.randn(3, 48, generator=torch.Generator().manual_seed(3)))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z @ self.weight + self.embedding[labels]).view(-1, 3, 4, 4)


# --- reference-gan score --------------------------------------------------------------------------------


@pytest.mark.slow
def test_reference_gan_score_equals_sample_then_inception_score(tmp_path: Path, genuine_weights_file: Path) -> None:
    from reference_gan.cli import main as gan_main
    from reference_gan import Trainer, preset

    torch.set_num_threads(1)
    trainer = Trainer(preset("mnist-fm", dataset="synthetic-mnist", batch_size=4, init_examples=8, steps_per_epoch=1,
                             epochs=1, test_limit=8, sample_every_epochs=0, out_dir=str(tmp_path / "run"), labels="all"))
    trainer.run(log=False)  # one step
    checkpoint = trainer.save(tmp_path / "c.pt")
    weights = ["--weights", str(genuine_weights_file), "--allow-unverified-weights"]
    samples = tmp_path / "samples.npz"
    runner = CliRunner()
    made = runner.invoke(gan_main, ["sample", "--checkpoint", str(checkpoint), "-n", "20", "--seed", "4",
                                    "--out", str(samples)], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    # sample's images: G (in training mode, one batch of 20) on the documented uniform [0, 1) z of seed 4,
    # its sigmoid output [0, 1] rounded to 0..255.
    with torch.no_grad():
        expected = trainer.G.train()(documented_z(4, 20, 100, "uniform-0-1"))
    expected = (expected * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(np.load(samples)["images"], expected)
    scored = runner.invoke(gan_main, ["score", str(checkpoint), "-n", "20", "--splits", "2", "--seed", "4", "--json",
                                      "--device", "cpu", *weights], catch_exceptions=False)
    assert scored.exit_code == 0, scored.output
    direct = json.loads(scored.stdout)
    from_file = cli_json([str(samples), "--splits", "2", "--batch-size", "100", "--device", "cpu", *weights])
    # The same uint8 pixels in the same batch (all 20 at once) through the same kernels.
    assert direct["split_scores"] == from_file["split_scores"]
    assert direct["num_images"] == 20
    assert direct["generator"]["z_distribution"] == "uniform-0-1" and direct["generator"]["seed"] == 4
    assert direct["generator"]["training_mode"] is True  # batch statistics, as in training and in sample


def test_reference_gan_score_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    from reference_gan.cli import main as gan_main

    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    result = CliRunner().invoke(gan_main, ["score", str(path), "-n", "10", "--device", "cpu"])
    assert result.exit_code == 2 and "is not a reference-gan checkpoint" in result.output


def test_score_generator_gives_is_infinity_from_the_same_pass() -> None:
    # IS_n of the generator's samples equals IS_n of the same samples scored as images (the same
    # batches, the same stand-in network: the same logits), and the fit is the line through its points.
    from distributed_workers import PixelProjection

    from inception_score import inception_score, score_generator
    from inception_score.generator import LatentSpec, latents

    def G(z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z[:, :48].reshape(-1, 3, 4, 4))

    z, _ = latents(LatentSpec(48, "normal", 3), 0, 40)
    direct = inception_score(G(z), input_range=(-1, 1), splits=2, batch_size=8, scorer=PixelProjection(),
                             infinity=True)
    made = score_generator(G, 40, z_dim=48, seed=3, splits=2, batch_size=8, scorer=PixelProjection(), infinity=True)
    assert [n for n, _ in made.is_n] == [n for n, _ in direct.is_n] and len(made.is_n) == 15
    np.testing.assert_allclose([v for _, v in made.is_n], [v for _, v in direct.is_n], rtol=1e-12)
    n = np.array([n for n, _ in made.is_n], dtype=np.float64)
    slope, intercept = np.polyfit(1.0 / n, [v for _, v in made.is_n], 1)
    assert made.is_infinity == pytest.approx(intercept, rel=1e-9)
