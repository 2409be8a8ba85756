"""The precision scope of the CUDA path (issue 16), exercised without a GPU: the TF32 and cuDNN
switches are process-global and torch reads and writes them on any machine.

Pinned: whatever API the caller used to set the switches, scoring raises nothing and leaves every
switch as it was, down to what a later change of a parent setting does; inside the scope, "exact"
means TF32 off for the resize and the network alike. The expected values are torch's own readings in
a process that never entered the scope, not anything computed by inception_score.network.precision.

Tests that set switches run in a forked copy of the test process, so that nothing leaks into other
tests (some of torch's switches cannot be put back once written); those copies only read and write
switches, they compute nothing. With ``--device cuda`` the scorer tests run the real CUDA path.
"""

from __future__ import annotations

import copy
import os
import pickle
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch

import inception_score.engine.runner as scorer_module
from inception_score import InceptionScorer
from inception_score.network.inception import Inception2015
from inception_score.network.precision import precision_scope, set_cuda_flags, tf32_api

T = TypeVar("T")
NEW_API = tf32_api() == "fp32_precision"
needs_new_api = pytest.mark.skipif(not NEW_API, reason="this torch has no fp32_precision attributes (torch < 2.9)")
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="isolating global switches needs os.fork")


def _set(holder: Any, name: str, value: Any) -> Callable[[], None]:
    return lambda: setattr(holder, name, value)


# How a caller may have set the switches before scoring: (uses the fp32_precision API, the setting).
CALLERS: dict[str, tuple[bool, Callable[[], None]]] = {
    "untouched": (False, lambda: None),
    "legacy matmul.allow_tf32=True": (False, _set(torch.backends.cuda.matmul, "allow_tf32", True)),
    "legacy matmul.allow_tf32=False": (False, _set(torch.backends.cuda.matmul, "allow_tf32", False)),
    "legacy cudnn.allow_tf32=False": (False, _set(torch.backends.cudnn, "allow_tf32", False)),
    "set_float32_matmul_precision(high)": (False, lambda: torch.set_float32_matmul_precision("high")),
    "set_float32_matmul_precision(medium)": (False, lambda: torch.set_float32_matmul_precision("medium")),
    "cudnn.benchmark=True": (False, _set(torch.backends.cudnn, "benchmark", True)),
    "matmul.fp32_precision=tf32": (True, lambda: _fp32(torch.backends.cuda.matmul, "tf32")),
    "matmul.fp32_precision=ieee": (True, lambda: _fp32(torch.backends.cuda.matmul, "ieee")),
    "cudnn.conv.fp32_precision=ieee": (True, lambda: _fp32(torch.backends.cudnn.conv, "ieee")),
    "cudnn.fp32_precision=tf32": (True, lambda: _fp32(torch.backends.cudnn, "tf32")),
    "backends.fp32_precision=tf32": (True, lambda: _fp32(torch.backends, "tf32")),
    # the CUDA-wide value equal to the global one: stored, or only inherited? (both cases below)
    "backends+cudnn.fp32_precision=ieee": (True, lambda: (_fp32(torch.backends, "ieee"), _fp32(torch.backends.cudnn, "ieee"))),
    "backends.fp32_precision=ieee, matmul=tf32": (True, lambda: (_fp32(torch.backends, "ieee"),
                                                                  _fp32(torch.backends.cuda.matmul, "tf32"))),
}
# The settings issue 16 names, for the scoring tests (in-process, so only ones that can be undone).
SCORING_CALLERS = ["legacy matmul.allow_tf32=True", "legacy matmul.allow_tf32=False", "matmul.fp32_precision=tf32",
                   "matmul.fp32_precision=ieee", "set_float32_matmul_precision(high)"]


def _fp32(holder: Any, value: str) -> None:
    holder.fp32_precision = value


def _caller_params(names: list[str]) -> list[Any]:
    return [pytest.param(name, marks=needs_new_api if CALLERS[name][0] else ()) for name in names]


def observed_switches() -> dict[str, Any]:
    """Every switch a caller can read, each as its value or as the exception its read raises."""
    reads: dict[str, Callable[[], Any]] = {
        "cuda.matmul.allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
        "cudnn.allow_tf32": lambda: torch.backends.cudnn.allow_tf32,
        "get_float32_matmul_precision()": torch.get_float32_matmul_precision,
        "cudnn.benchmark": lambda: torch.backends.cudnn.benchmark,
    }
    if NEW_API:
        holders = {"backends": torch.backends, "cudnn": torch.backends.cudnn, "cudnn.conv": torch.backends.cudnn.conv,
                   "cudnn.rnn": torch.backends.cudnn.rnn, "cuda.matmul": torch.backends.cuda.matmul,
                   "mkldnn": torch.backends.mkldnn, "mkldnn.matmul": torch.backends.mkldnn.matmul,
                   "mkldnn.conv": torch.backends.mkldnn.conv}
        for name, holder in holders.items():
            reads[f"{name}.fp32_precision"] = lambda holder=holder: holder.fp32_precision
    values: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notes on the legacy reads
        for name, read in reads.items():
            try:
                values[name] = read()
            except RuntimeError:
                values[name] = "raises RuntimeError"
    return values


def later_changes() -> list[dict[str, Any]]:
    """What later writes to the parent settings do: shows whether each op inherits or holds its own value."""
    steps = [(torch.backends, "ieee"), (torch.backends, "tf32"), (torch.backends.cudnn, "ieee"),
             (torch.backends.cudnn, "tf32")]
    seen = []
    for holder, value in steps:
        holder.fp32_precision = value
        seen.append(observed_switches())
    return seen


def in_forked_copy(function: Callable[[], T]) -> T:
    """``function()`` in a forked copy of this process, whose switches die with it; its result pickled back."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12: fork() in a process with threads
        pid = os.fork()
    if pid == 0:  # the copy: never return into pytest
        os.close(read_end)
        try:
            outcome: tuple[bool, Any] = (True, function())
        except BaseException:  # noqa: BLE001 - reported to the parent
            outcome = (False, traceback.format_exc())
        with os.fdopen(write_end, "wb") as pipe:
            pickle.dump(outcome, pipe)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)
    if not ok:
        pytest.fail(f"in the forked copy:\n{value}")
    return value


def tf32_in_effect() -> dict[str, Any]:
    """What CUDA kernels would use now: the resolved per-op precision (new API) or the legacy flags."""
    if NEW_API:
        return {"matmul": torch.backends.cuda.matmul.fp32_precision, "conv": torch.backends.cudnn.conv.fp32_precision,
                "benchmark": torch.backends.cudnn.benchmark}
    return {"matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee",
            "conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee", "benchmark": torch.backends.cudnn.benchmark}


def expected_in_effect(allow_tf32: bool) -> dict[str, Any]:
    mode = "tf32" if allow_tf32 else "ieee"
    return {"matmul": mode, "conv": mode, "benchmark": False}  # cuDNN's search off while scoring


@needs_new_api
@needs_fork
def test_this_torch_raises_on_a_legacy_read_after_a_new_api_write() -> None:
    """Why issue 16's CUDA path crashed: it read matmul.allow_tf32 on every batch."""

    def legacy_read_after_new_write() -> str:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        try:
            torch.backends.cuda.matmul.allow_tf32
        except RuntimeError as error:
            return str(error)
        return ""

    assert "mix of the legacy and new APIs" in in_forked_copy(legacy_read_after_new_write)


@needs_fork
@pytest.mark.parametrize("allow_tf32", [False, True], ids=["exact", "fast"])
@pytest.mark.parametrize("caller", _caller_params(list(CALLERS)))
def test_cuda_flags_restore_every_switch_and_inheritance(caller: str, allow_tf32: bool) -> None:
    apply = CALLERS[caller][1]

    def control() -> tuple[dict, list]:
        apply()
        return observed_switches(), later_changes() if NEW_API else []

    def scoped() -> tuple[dict, dict, dict, list]:
        apply()
        before = observed_switches()
        restore = set_cuda_flags(allow_tf32)
        inside = tf32_in_effect()
        restore()
        return before, inside, observed_switches(), later_changes() if NEW_API else []

    expected_before, expected_later = in_forked_copy(control)
    before, inside, after, later = in_forked_copy(scoped)
    assert before == expected_before
    assert inside == expected_in_effect(allow_tf32)
    assert after == before
    assert later == expected_later  # ops that inherited still inherit; pinned ones keep their value


@needs_new_api
@needs_fork
@pytest.mark.parametrize("allow_tf32", [False, True], ids=["exact", "fast"])
def test_fp32_precision_branch_never_touches_the_legacy_api(allow_tf32: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("the legacy TF32 API was used")

    for name in ("_get_cublas_allow_tf32", "_set_cublas_allow_tf32"):
        monkeypatch.setattr(torch._C, name, refuse)
    monkeypatch.setattr(torch, "get_float32_matmul_precision", refuse)
    monkeypatch.setattr(torch, "set_float32_matmul_precision", refuse)
    monkeypatch.setattr(type(torch.backends.cudnn), "allow_tf32", property(refuse, refuse))

    def scoped() -> dict[str, Any]:
        restore = set_cuda_flags(allow_tf32)
        inside = tf32_in_effect()
        restore()
        return inside

    assert in_forked_copy(scoped) == expected_in_effect(allow_tf32)


@needs_fork
@pytest.mark.parametrize("allow_tf32", [False, True], ids=["exact", "fast"])
@pytest.mark.parametrize("caller", ["untouched", "legacy matmul.allow_tf32=True", "legacy cudnn.allow_tf32=False",
                                    "set_float32_matmul_precision(medium)", "cudnn.benchmark=True"])
def test_legacy_branch_restores_the_legacy_switches(caller: str, allow_tf32: bool) -> None:
    """The branch for a torch without fp32_precision, run here on legacy-only settings."""
    legacy = ["cuda.matmul.allow_tf32", "cudnn.allow_tf32", "get_float32_matmul_precision()", "cudnn.benchmark"]

    def scoped() -> tuple[dict, dict, dict]:
        CALLERS[caller][1]()
        before = {name: observed_switches()[name] for name in legacy}
        restore = set_cuda_flags(allow_tf32, api="allow_tf32")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inside = {"matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee",
                      "conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee",
                      "benchmark": torch.backends.cudnn.benchmark}
        restore()
        return before, inside, {name: observed_switches()[name] for name in legacy}

    before, inside, after = in_forked_copy(scoped)
    assert inside == expected_in_effect(allow_tf32)
    assert after == before


CUDA_SWITCHES = ("cuda.matmul.allow_tf32", "cudnn.allow_tf32", "cudnn.benchmark", "cudnn.fp32_precision",
                 "cudnn.conv.fp32_precision", "cudnn.rnn.fp32_precision", "cuda.matmul.fp32_precision")


@needs_fork
@pytest.mark.parametrize("caller", _caller_params(["untouched", "set_float32_matmul_precision(medium)",
                                                   "backends.fp32_precision=tf32", "matmul.fp32_precision=tf32"]))
def test_precision_scope_off_cuda_leaves_cuda_switches_and_computes_ieee_float32(caller: str) -> None:
    """On CPU the scope touches no CUDA switch, and oneDNN's float32 products are IEEE inside it even where
    the caller's "medium" made them bfloat16 (issue 38); every switch is the caller's again after it,
    down to what a later change of a parent setting does."""
    apply = CALLERS[caller][1]

    def control() -> list:
        apply()
        return later_changes() if NEW_API else []

    def scoped() -> tuple[dict, dict, dict, list]:
        apply()
        before = observed_switches()
        with precision_scope(torch.device("cpu"), allow_tf32=True):
            inside = observed_switches()
        return before, inside, observed_switches(), later_changes() if NEW_API else []

    before, inside, after, later = in_forked_copy(scoped)
    assert {name: inside[name] for name in CUDA_SWITCHES if name in inside} == {
        name: before[name] for name in CUDA_SWITCHES if name in before}
    if NEW_API:
        assert (inside["mkldnn.matmul.fp32_precision"], inside["mkldnn.conv.fp32_precision"]) == ("ieee", "ieee")
    else:
        assert inside["get_float32_matmul_precision()"] == "highest"
    assert after == before
    assert later == in_forked_copy(control)


# --- the scorer: resize and network inside one scope -------------------------------------------------


@pytest.fixture(scope="module")
def device(request: pytest.FixtureRequest) -> torch.device:
    device = torch.device(request.config.getoption("--device"))
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("--device cuda given, but CUDA is not available here")
    return device


@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised network: the switches do not depend on the weights, and this needs no download."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("stand-in") / "random-inception.pth"
    torch.save(Inception2015().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def scorers(stand_in_weights: Path, device: torch.device) -> dict[str, InceptionScorer]:
    exact = InceptionScorer(stand_in_weights, device=device, allow_unverified=True, progress=False,
                            exact_kernel="ieee")  # the IEEE kernel: TF32 off in the network too
    fast = copy.copy(exact)  # the same network, loaded once
    fast.precision = "fast"
    return {"exact": exact, "fast": fast}


@pytest.fixture
def cuda_branch_on_this_device(device: torch.device, monkeypatch: pytest.MonkeyPatch) -> None:
    """On CPU, make the scorer take the CUDA branch of the scope (switches only; the work stays on CPU)."""
    if device.type != "cuda":
        cuda = torch.device("cuda")
        monkeypatch.setattr(scorer_module, "precision_scope",
                            lambda _device, allow_tf32, benchmark: precision_scope(cuda, allow_tf32, benchmark))


@pytest.fixture
def caller_switches(request: pytest.FixtureRequest) -> Iterator[str]:
    """Applies one of the caller settings in this process and undoes it afterwards.

    The settings named in SCORING_CALLERS write only the matmul switches, which can be put back:
    set_float32_matmul_precision, then the per-op values read before."""
    name = request.param
    start = observed_switches()
    CALLERS[name][1]()
    yield name
    torch.set_float32_matmul_precision(start["get_float32_matmul_precision()"])
    if NEW_API:
        torch.backends.cuda.matmul.fp32_precision = start["cuda.matmul.fp32_precision"]
        torch.backends.mkldnn.matmul.fp32_precision = start["mkldnn.matmul.fp32_precision"]
    assert observed_switches() == start, "the test could not undo the caller's settings"


@pytest.mark.usefixtures("cuda_branch_on_this_device")
@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("caller_switches", _caller_params(SCORING_CALLERS), indirect=True)
def test_scoring_runs_resize_and_network_in_one_scope_and_leaves_the_switches(
    caller_switches: str, precision: str, scorers: dict[str, InceptionScorer], monkeypatch: pytest.MonkeyPatch
) -> None:
    scorer = scorers[precision]
    seen: dict[str, dict[str, Any]] = {}
    resize = scorer_module.to_network_input

    def spied_resize(*args: Any, **kwargs: Any) -> torch.Tensor:
        seen["resize"] = tf32_in_effect()
        return resize(*args, **kwargs)

    monkeypatch.setattr(scorer_module, "to_network_input", spied_resize)
    hook = scorer.network.register_forward_pre_hook(lambda *_: seen.__setitem__("network", tf32_in_effect()))
    before = observed_switches()
    try:
        images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        logits = scorer.logits(images)
    finally:
        hook.remove()
    assert logits.shape == (1, 1008) and torch.isfinite(logits).all()
    expected = expected_in_effect(precision == "fast")
    assert seen == {"resize": expected, "network": expected}
    assert observed_switches() == before
