"""The shape of inception_score: every public name imports, no import circle (imports inside
functions counted), and the runner, the API and the command stay small enough to read."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import inception_score
from test_gan_modules import circles, imported_siblings

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "inception_score"
# The scoring side: its modules are each at most 450 lines (the input readers are measured with them
# once they are split too).
SMALL = ("accumulators", "api", "cli", "cli_report", "distributed", "fingerprint", "generator", "logits_file", "metric", "result",
         "runner", "scorer", "torchmetrics_adapter")


def import_graph() -> dict[str, set[str]]:
    return {p.stem: imported_siblings(p, PACKAGE) for p in sorted(PACKAGE.glob("*.py"))
            if p.stem not in ("__init__", "__main__")}


def test_the_graph_holds_top_level_and_function_imports() -> None:
    graph = import_graph()
    assert {"runner", "accumulators", "distributed"} <= graph["api"]  # at the top level
    assert "api" in graph["cli"] and "logits_file" in graph["cli"]  # inside functions


def test_no_import_circle_in_the_package() -> None:
    assert circles(import_graph()) == []


@pytest.mark.parametrize("name", sorted(path.stem for path in PACKAGE.glob("*.py")))
def test_no_module_is_over_450_lines(name: str) -> None:
    assert len((PACKAGE / f"{name}.py").read_text().splitlines()) <= 450


@pytest.mark.parametrize("name", inception_score.__all__)
def test_every_public_name_imports(name: str) -> None:
    assert getattr(inception_score, name) is not None
    assert name in dir(inception_score) or hasattr(inception_score, name)


@pytest.mark.parametrize("module, names", [
    ("inception_score", ("inception_score", "InceptionScore", "InceptionScorer", "ISResult")),
    ("inception_score.torchmetrics_adapter", ("InceptionScoreMetric",)),
    ("inception_score.scorer", ("inception_score", "InceptionScore", "InceptionScorer", "ISResult",
                                "resolve_device", "result_from_statistics", "CPU_CHUNK", "FAST_CUDA_IS_DEVIATION")),
    ("inception_score.api", ("inception_score", "InceptionScore")),
    ("inception_score.runner", ("InceptionScorer", "resolve_device")),
    ("inception_score.result", ("ISResult", "result_from_statistics")),
    ("inception_score.metric", ("SplitPlan", "SplitRule", "inception_score_from_logits", "summarize")),
])
def test_the_public_classes_are_one_object_wherever_they_are_imported_from(module: str, names: tuple[str, ...]) -> None:
    loaded = importlib.import_module(module)
    for name in names:
        value = getattr(loaded, name)
        if hasattr(inception_score, name):
            assert value is getattr(inception_score, name), name
