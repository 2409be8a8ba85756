"""InceptionScoreMetric inside a real Lightning program: ``Trainer(accelerator="cpu", devices=2,
strategy="ddp")`` over Gloo, 2 epochs with different images, ``self.log("is", metric)`` in
``validation_step`` (tests/lightning_program.py, run as Lightning users run it: a script)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import distributed_workers as workers
from inception_score import inception_score

pytest.importorskip("lightning")
pytest.importorskip("torchmetrics")

PROGRAM = Path(__file__).with_name("lightning_program.py")
# The stand-in's logits are the same bits in any batch (workers.PixelProjection), so the logged value
# and the one call differ only in the order of the float64 sums of each split's statistics (a few
# dozen terms): 1e-12 relative, far inside the 1e-6 allowed to float32 logits of the real network.
FLOAT64_SUMS = 1e-12
# The real network's float32 logits, batched differently in the program and in the one call.
FLOAT32 = 1e-6


def run_program(out: Path, *arguments: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """The program in its own session (Lightning starts the second process itself), killed with every
    process of that session if it outlives ``timeout`` seconds."""
    process = subprocess.Popen([sys.executable, str(PROGRAM), str(out), *arguments], cwd=out, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               env={**os.environ, "PYTHONWARNINGS": "default"})
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the Lightning program ran over {timeout} s:\n{output[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, output, None)


def one_call_on_the_sampler_order(epoch: int, indices: list[list[int]], count: int, scorer=None):
    """The one-call API on the epoch's images in the sampler's global order: position k W + r is the
    k-th index rank r was given; positions from ``count`` on are the sampler's padding. ``scorer``: the
    stand-in by default."""
    world = len(indices)
    order = np.empty(world * len(indices[0]), dtype=np.int64)
    for rank, given in enumerate(indices):
        order[rank::world] = given
    assert sorted(order[:count]) == list(range(count))  # every image once; the rest repeats the first
    pixels = workers.images(count, seed=100 + epoch)[order[:count]]
    return inception_score(pixels, splits=10, scorer=scorer or workers.PixelProjection(), distributed=False,
                           progress=False)


def test_lightning_ddp_logs_each_epochs_own_score_equal_to_the_one_call(tmp_path: Path) -> None:
    run = run_program(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    outcomes = [json.loads((tmp_path / f"rank-{rank}.json").read_text()) for rank in range(2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank-0.json", "rank-1.json"]  # nothing else written
    assert run.stdout.count("InceptionScoreMetric scores with unverified weights") == 1  # once, not per process
    expected = {}
    for epoch in ("0", "1"):
        indices = [outcome["indices"][epoch] for outcome in outcomes]
        assert [len(given) for given in indices] == [16, 16]  # 31 images on 2 processes: one padded position
        expected[epoch] = one_call_on_the_sampler_order(int(epoch), indices, 31)
    # Epoch 2's images give another score: a stale epoch-1 value cannot pass for it.
    assert abs(expected["1"].mean - expected["0"].mean) > 1e-3 * expected["0"].mean
    for outcome in outcomes:
        assert outcome["world"] == 2 and outcome["weights_verified"] is False
        assert outcome["dtypes"] == ["torch.float64"]
        for epoch, result in expected.items():
            logged = outcome["logged"][epoch]
            assert logged["is"] == pytest.approx(result.mean, rel=FLOAT64_SUMS)
            assert logged["inception"] == logged["is"]  # self.log_dict(metric.scalars("inception"))
            assert logged["inception_std"] == pytest.approx(result.std, rel=FLOAT64_SUMS)
            assert logged["inception_weights_verified"] == 0.0
    assert outcomes[0]["logged"] == outcomes[1]["logged"]  # the same bits on both processes


def test_lightning_ddp_under_bf16_mixed_logs_the_float32_score(tmp_path: Path, genuine_weights_file: Path,
                                                                dev_scorer) -> None:
    """``Trainer(precision="bf16-mixed")``: every step runs under CPU bfloat16 autocast (issue 38 found that
    the resize then fed bfloat16 to the float32 network, and every update raised). With the real network,
    each logged value is the float32 one call's, to float32 rounding."""
    # 64 images through the real network on 2 processes: 154 s measured with the 2 cores shared by other work
    run = run_program(tmp_path, "bf16-mixed", str(genuine_weights_file), timeout=400)
    assert run.returncode == 0, run.stdout[-3000:]
    outcomes = [json.loads((tmp_path / f"rank-{rank}.json").read_text()) for rank in range(2)]
    assert run.stdout.count("InceptionScoreMetric scores with unverified weights") == 1
    for epoch in ("0", "1"):
        indices = [outcome["indices"][epoch] for outcome in outcomes]
        expected = one_call_on_the_sampler_order(int(epoch), indices, 31, dev_scorer)
        for outcome in outcomes:
            assert outcome["precision"] == "bf16-mixed" and outcome["dtypes"] == ["torch.float64"]
            assert outcome["logged"][epoch]["is"] == pytest.approx(expected.mean, rel=FLOAT32)
            assert outcome["logged"][epoch]["inception_std"] == pytest.approx(expected.std, rel=1e-4, abs=1e-6)


def test_the_documented_lightning_example_is_the_program_the_test_runs() -> None:
    text = (Path(__file__).parents[1] / "docs" / "distributed.md").read_text()
    section = text[text.index("## Lightning and torchmetrics") :]
    example = section[section.index("```python\n") + 10 : section.index("```\n", section.index("```python\n") + 10)]
    program = {line.strip() for line in PROGRAM.read_text().splitlines()}
    lines = [line.strip() for line in example.splitlines() if line.strip()]
    assert len(lines) > 20 and [line for line in lines if line not in program] == []
