"""The shape of inception_score: every public name imports, no import circle (imports inside
functions counted), and the runner, the API and the command stay small enough to read."""

from __future__ import annotations

import ast
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
         "runner", "saved_logits", "scorer", "torchmetrics_adapter")


def import_graph() -> dict[str, set[str]]:
    return {p.stem: imported_siblings(p, PACKAGE) for p in sorted(PACKAGE.glob("*.py"))
            if p.stem not in ("__init__", "__main__")}


def test_the_graph_holds_top_level_and_function_imports() -> None:
    graph = import_graph()
    assert {"runner", "accumulators", "distributed"} <= graph["api"]  # at the top level
    assert "api" in graph["cli"] and "saved_logits" in graph["cli"]  # inside functions


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
    ("inception_score.saved_logits", ("SavedLogits", "save_logits", "score_logits_file")),
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


# The modules that compute scores. The command may take from them only the public names (__all__) and
# these helpers, none of which computes a score: each checks or names something before or after it.
SCORING = {"accumulators", "api", "fingerprint", "generator", "infinity", "logits_file", "metric", "network", "order",
           "pipeline", "precision", "preprocess", "result", "runner", "saved_logits", "scorer", "split_tf32",
           "tf_graph", "weights"}
COMMAND_HELPERS = {
    ("api", "progress_bar"),  # the bar of the --skip-invalid check
    ("infinity", "infinity_sizes"),  # enough images for --infinity, checked before the network runs
    ("logits_file", "read_info"),  # the input a logits file names, for the result line
    ("logits_file", "sidecar"),  # the sidecar's name, which no output may take (checked before scoring)
    ("metric", "check_split_count"),  # enough images for the splits, checked before the network runs
    ("metric", "split_rule"),  # --splits / --split-size as a SplitRule
    ("runner", "resolve_device"),  # --device
}


def scoring_internals(source: str) -> list[str]:
    """Every ``from .X import Y`` (or ``from inception_score.X import Y``) in ``source``, at any depth, with
    X a scoring module and Y neither public nor a command helper."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.level == 1:
            module = node.module
        elif node.level == 0 and node.module.startswith("inception_score."):
            module = node.module.removeprefix("inception_score.")
        else:
            continue
        found += [f"{module}.{alias.name}" for alias in node.names if module in SCORING
                  and alias.name not in inception_score.__all__ and (module, alias.name) not in COMMAND_HELPERS]
    return found


@pytest.mark.parametrize("name", ["cli", "cli_report"])
def test_the_command_scores_only_through_the_public_api(name: str) -> None:
    """The command reaches scoring through inception_score, score_generator, InceptionScorer, save_logits
    and score_logits_file. Before these last two existed it imported logits_file.score_into_file (cli),
    and logits_file.statistics_and_buckets_of, result.result_from_statistics, order.label_order,
    metric.order_text, logits_file.sidecar, weights.KNOWN_FILES and weights.weights_sha256 (cli_report),
    building the result of a logits file itself; accumulators, metric.SplitStatistics and the runner's
    private names are refused the same way."""
    assert scoring_internals((PACKAGE / f"{name}.py").read_text()) == []


def test_the_check_of_the_commands_imports_finds_internals_at_any_depth() -> None:
    source = ("from .logits_file import read_info, score_into_file\n"
              "def f():\n    from .result import ISResult, result_from_statistics\n"
              "    from inception_score.accumulators import _SplitAccumulator\n"
              "    from .runner import InceptionScorer, _stem\n    from .files import shown\n")
    assert scoring_internals(source) == ["logits_file.score_into_file", "result.result_from_statistics",
                                         "accumulators._SplitAccumulator", "runner._stem"]
