"""precision="fast" on a CPU: bfloat16 only where the CPU computes it natively, exact float32
elsewhere, and the result says which (the capability is mocked both ways, so this runs on any CPU)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import inception_score.score.result as result_module
import inception_score.engine.runner as scorer_module
from inception_score import InceptionScorer, InputError, inception_score


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return torch.randint(0, 256, (4, 3, 32, 32), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)


def test_without_native_bf16_fast_is_exact_and_says_so(genuine_weights_file: Path, pixels: torch.Tensor,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer_module, "native_bf16_cpu", lambda: False)
    fast = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, precision="fast", progress=False)
    exact = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False)
    assert fast.effective_precision == "exact" and fast.dtype == "float32"
    assert torch.equal(fast.logits(pixels), exact.logits(pixels))  # the same computation
    result = inception_score(pixels, splits=2, scorer=fast)
    assert result.precision == "exact" and "no native bfloat16" in result.precision_note
    assert not any("precision" in reason for reason in result.not_comparable)


def test_native_bf16_that_measures_slower_falls_back_to_exact(genuine_weights_file: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer_module, "native_bf16_cpu", lambda: True)
    monkeypatch.setattr(scorer_module, "bfloat16_timing", lambda network: (1.0, 1.25))
    fast = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, precision="fast", progress=False)
    assert fast.effective_precision == "exact" and fast.dtype == "float32"
    assert "bfloat16 measured slower than float32" in fast.precision_note


def test_with_native_and_faster_bf16_fast_runs_in_bfloat16(genuine_weights_file: Path, pixels: torch.Tensor,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer_module, "native_bf16_cpu", lambda: True)
    monkeypatch.setattr(scorer_module, "bfloat16_timing", lambda network: (1.0, 0.5))
    fast = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, precision="fast", progress=False)
    exact = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False)
    assert fast.effective_precision == "fast" and fast.dtype == "bfloat16"
    fast_logits, exact_logits = fast.logits(pixels), exact.logits(pixels)
    assert fast_logits.dtype == torch.float32
    difference = float((fast_logits - exact_logits).abs().max())
    assert 0 < difference < 0.05 * float(exact_logits.abs().max())  # bfloat16: close, not equal
    result = inception_score(pixels, splits=2, scorer=fast)
    assert result.precision == "fast" and result.dtype == "bfloat16"
    assert any("precision 'fast'" in reason for reason in result.not_comparable)


@pytest.mark.parametrize("bf16", [False, True])
def test_network_pass_is_the_scorers_own_computation(genuine_weights_file: Path, pixels: torch.Tensor,
                                                     monkeypatch: pytest.MonkeyPatch, bf16: bool) -> None:
    # benchmarks/throughput.py times the network through network_pass; it must be what logits() runs.
    monkeypatch.setattr(scorer_module, "native_bf16_cpu", lambda: bf16)
    monkeypatch.setattr(scorer_module, "bfloat16_timing", lambda network: (1.0, 0.5))
    scorer = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, precision="fast", progress=False)
    assert scorer.bf16_on_cpu is bf16
    ready = scorer.network_input(pixels).contiguous(memory_format=torch.channels_last)
    assert torch.equal(scorer.network_pass(ready), scorer.logits(pixels))


@pytest.fixture
def record_autocast(monkeypatch: pytest.MonkeyPatch) -> Callable[[], SimpleNamespace]:
    """Call it to replace torch.autocast by a recorder (after building the scorer, whose start-up may
    time bfloat16): ``entered`` lists each scope as (device type, dtype or None when disabled), and
    ``active[-1]`` says whether autocast is on right now."""
    log = SimpleNamespace(entered=[], active=[False])

    class RecordingAutocast:
        def __init__(self, device_type: str, dtype: torch.dtype, enabled: bool) -> None:
            self.entry, self.enabled = (device_type, dtype if enabled else None), enabled

        def __enter__(self) -> None:
            log.entered.append(self.entry)
            log.active.append(self.enabled)

        def __exit__(self, *exc: object) -> bool:
            log.active.pop()
            return False

    def start() -> SimpleNamespace:
        monkeypatch.setattr(torch, "autocast", RecordingAutocast)
        return log

    return start


def cuda_branch_scorer(weights: Path, precision: str) -> InceptionScorer:
    """A CPU scorer told it is on CUDA, so that network_pass takes its CUDA branch without a GPU."""
    scorer = InceptionScorer(weights, device="cpu", allow_unverified=True, precision=precision, progress=False)
    scorer.device = torch.device("cuda")
    return scorer


@pytest.mark.parametrize(("precision", "fast_dtype", "autocast_to", "name"), [
    ("exact", torch.bfloat16, None, "float32"),
    ("fast", torch.bfloat16, torch.bfloat16, "bfloat16"),
    ("fast", torch.float16, torch.float16, "float16"),
    ("fast", None, None, "tf32"),
])
def test_cuda_fast_dtype_is_what_the_cuda_pass_autocasts_to(genuine_weights_file: Path,
                                                            record_autocast: Callable[[], SimpleNamespace],
                                                            precision: str, fast_dtype: torch.dtype | None,
                                                            autocast_to: torch.dtype | None, name: str) -> None:
    scorer = cuda_branch_scorer(genuine_weights_file, precision)
    scorer.cuda_fast_dtype = fast_dtype
    scorer.network = lambda x, output: x
    autocast_log = record_autocast()
    scorer.network_pass(torch.zeros(1, 3))
    assert autocast_log.entered == [("cuda", autocast_to)]
    assert scorer.dtype == name


def test_a_batch_that_overflows_float16_is_recomputed_without_it(genuine_weights_file: Path,
                                                                  record_autocast: Callable[[], SimpleNamespace]) -> None:
    # CUDA's fast mode (float16 by default) never returns inf or NaN: the batch runs again without
    # autocast, and the result says so.
    scorer = cuda_branch_scorer(genuine_weights_file, "fast")
    assert scorer.cuda_fast_dtype == torch.float16 and scorer.dtype == "float16"
    autocast_log = record_autocast()
    calls: list[bool] = []

    def network(x: torch.Tensor, output: object) -> torch.Tensor:
        calls.append(autocast_log.active[-1])  # was autocast on for this call?
        return torch.full((len(x), 2), float("inf") if autocast_log.active[-1] else 1.0)

    scorer.network = network
    out = scorer.network_pass(torch.zeros(3, 3))
    assert calls == [True, False] and torch.equal(out, torch.ones(3, 2))
    assert scorer.float16_overflows == 1 and "overflowed float16" in scorer.precision_note
    scorer.network = lambda x, output: torch.ones(len(x), 2)  # finite: one pass, nothing more said
    scorer.network_pass(torch.zeros(3, 3))
    assert scorer.float16_overflows == 1


@pytest.mark.parametrize(("precision", "device", "dtype", "deviation"), [
    ("exact", "cpu", "float32", None),
    ("exact", "cuda:0", "float32", None),
    ("fast", "cpu", "bfloat16", result_module.FAST_CPU_IS_DEVIATION),
    ("fast", "cuda:0", "float16", result_module.FAST_CUDA_IS_DEVIATION),
    ("fast", "cuda:0", "bfloat16", None),  # a choice with no measured figure gets none
    ("fast", "cuda:0", "tf32", None),
])
def test_precision_deviation_is_the_figure_measured_for_that_computation(precision: str, device: str, dtype: str,
                                                                          deviation: float | None) -> None:
    from inception_score.score.statistics import SplitStatistics

    stats = SplitStatistics.zeros(2, 3)
    stats.add(torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.0, 3.0], [2.0, 2.0, 2.0], [1.0, 0.0, 0.0]]),
              torch.tensor([0, 0, 1, 1]))
    result = result_module.result_from_statistics(stats, weights_path="w.pth", weights_sha256="0" * 64,
                                                  weights_verified=False, device=device, dtype=dtype, elapsed=1.0,
                                                  precision=precision)
    assert result.precision_deviation == deviation


def test_the_precision_policy_is_given_to_the_constructor_and_with_policy_shares_the_network(
        genuine_weights_file: Path, pixels: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    timings = []
    monkeypatch.setattr(scorer_module, "native_bf16_cpu", lambda: True)
    monkeypatch.setattr(scorer_module, "bfloat16_timing", lambda network: timings.append(1) or (1.0, 0.5))
    exact = InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False,
                            cuda_fast_dtype=None, cudnn_benchmark=True)
    assert (exact.precision, exact.cuda_fast_dtype, exact.cudnn_benchmark) == ("exact", None, True)
    fast = exact.with_policy("fast", cuda_fast_dtype=torch.bfloat16)
    again = exact.with_policy("fast")
    assert fast.network is exact.network and fast.weights is exact.weights  # loaded once
    assert (fast.precision, fast.cuda_fast_dtype, fast.cudnn_benchmark) == ("fast", torch.bfloat16, True)
    assert again.cuda_fast_dtype is None and fast.dtype == again.dtype == "bfloat16"
    assert timings == [1]  # bfloat16 against float32 measured once for the shared network
    assert (exact.precision, exact.effective_precision, exact.cuda_fast_dtype) == ("exact", "exact", None)
    assert torch.equal(exact.with_policy(cudnn_benchmark=False).logits(pixels), exact.logits(pixels))
    with pytest.raises(InputError, match="cuda_fast_dtype"):
        exact.with_policy("fast", cuda_fast_dtype=torch.int8)
    with pytest.raises(InputError, match="precision"):
        InceptionScorer(genuine_weights_file, device="cpu", allow_unverified=True, progress=False, precision="fp8")
