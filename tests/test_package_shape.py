"""The shape of inception_score: every public name imports, no import circle (imports inside
functions counted), and the runner, the API and the command stay small enough to read."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import inception_score
from test_gan_modules import circles

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "inception_score"
# The scoring side: its modules are each at most 450 lines (the input readers are measured with them
# once they are split too).
SMALL = ("accumulators", "api", "distributed", "generator", "metric", "result",
         "runner", "scorer", "torchmetrics_adapter")


def imported_siblings(path: Path) -> set[str]:
    """The inception_score modules that ``path`` imports anywhere in it (top level or in a function)."""
    siblings = {p.stem for p in PACKAGE.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .runner import InceptionScorer
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import strict_json
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.split(".")[0] == "inception_score":
                parts = node.module.split(".")
                found.update([parts[1]] if len(parts) > 1 else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("inception_score."))
    return (found & siblings) - {"__init__", "__main__"}


def import_graph() -> dict[str, set[str]]:
    return {p.stem: imported_siblings(p) for p in sorted(PACKAGE.glob("*.py")) if p.stem not in ("__init__", "__main__")}


def test_the_graph_holds_top_level_and_function_imports() -> None:
    graph = import_graph()
    assert {"runner", "accumulators", "distributed"} <= graph["api"]  # at the top level
    assert "api" in graph["cli"] and "logits_file" in graph["cli"]  # inside functions


def test_no_import_circle_passes_through_the_scoring_modules() -> None:
    assert [circle for circle in circles(import_graph()) if set(circle) & set(SMALL)] == []


@pytest.mark.parametrize("name", [name for name in SMALL if (PACKAGE / f"{name}.py").exists()])
def test_no_scoring_module_is_over_450_lines(name: str) -> None:
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
