"""The shape of inception_score, as rules: a few modules at the top and the rest in subpackages named for
what they hold; every public name imports; no import circle between modules or between subpackages
(imports inside functions counted); no module imports another's private name; no module over 450 lines;
one scoring loop (only the scoring run builds the device pipeline) and one step from logits to statistics;
the command scores only through the public API; every entry point takes the same scorer options."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import inception_score
from test_gan_modules import circles

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "inception_score"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def dotted(path: Path) -> str:
    """``inception_score/engine/run.py`` -> ``inception_score.engine.run`` (a package: its own name)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


NAMES = {dotted(p): p for p in MODULES}


def imports_of(path: Path) -> list[tuple[str, str]]:
    """Every ``(module, name)`` that ``path`` imports from inception_score, at any depth (:func:`imports_in`)."""
    return imports_in(path.read_text(), dotted(path), path.name == "__init__.py")


def imports_in(source: str, name: str, is_package: bool = False) -> list[tuple[str, str]]:
    """Every ``(module, name)`` that ``source``, the module ``name``, imports from inception_score, at any
    depth, with relative imports resolved: ``from .x import y`` in ``inception_score.a.b`` gives
    ``("inception_score.a.x", "y")``; ``from . import x`` gives the module ``inception_score.a.x`` and ``""``."""
    here = name.split(".")
    package = here if is_package else here[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("inception_score"):
                continue
            for alias in node.names:
                if f"{module}.{alias.name}" in NAMES:  # a module imported by name
                    found.append((f"{module}.{alias.name}", ""))
                else:
                    found.append((module, alias.name))
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.startswith("inception_score.")]
    return found


def module_graph() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (not counting the package's own ``__init__``, which
    loads its names lazily)."""
    return {name: {target for target, _ in imports_of(path) if target in NAMES and target != "inception_score"}
            - {name} for name, path in NAMES.items() if name != "inception_score"}


def subpackage_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else parts[-1]


def test_a_few_modules_at_the_top_and_the_rest_in_subpackages() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert len(top) <= 12, top
    assert len(subpackages) >= 3, subpackages
    assert {"network", "readers", "score", "engine", "logits", "cli"} <= set(subpackages)
    for sub in subpackages:  # each says what it holds
        assert ast.get_docstring(ast.parse((PACKAGE / sub / "__init__.py").read_text()))


def test_no_import_circle_between_modules() -> None:
    assert circles(module_graph()) == []


def test_no_import_circle_between_subpackages() -> None:
    graph: dict[str, set[str]] = {}
    for source, targets in module_graph().items():
        graph.setdefault(subpackage_of(source), set()).update(subpackage_of(t) for t in targets)
    assert circles({node: edges - {node} for node, edges in graph.items()}) == []


def test_the_graph_holds_top_level_and_function_imports() -> None:
    graph = module_graph()
    assert "inception_score.engine.run" in graph["inception_score.api"]  # at the top level
    assert "inception_score.saved_logits" in graph["inception_score.cli.main"]  # inside functions


@pytest.mark.parametrize("name", sorted(NAMES))
def test_no_module_imports_another_modules_private_name(name: str) -> None:
    private = [f"{module}.{imported}" for module, imported in imports_of(NAMES[name])
               if imported.startswith("_") and not imported.startswith("__") and module != name]
    assert private == []


def test_the_import_reader_resolves_relative_imports_at_any_depth() -> None:
    hidden, inner = "_" + "hidden", "_" + "x"  # private names, for the reader to find (spelled so that no
    # text search of the repository mistakes this probe for an import of them)
    source = (f"from .run import ScoringRun, {hidden}\nfrom . import pipeline\n"
              f"def f():\n    from ..score.result import {inner}\n    import inception_score.readers.files\n")
    assert imports_in(source, "inception_score.engine.probe") == [
        ("inception_score.engine.run", "ScoringRun"), ("inception_score.engine.run", hidden),
        ("inception_score.engine.pipeline", ""), ("inception_score.score.result", inner),
        ("inception_score.readers.files", "")]


@pytest.mark.parametrize("name", sorted(NAMES))
def test_no_module_is_over_450_lines(name: str) -> None:
    assert len(NAMES[name].read_text().splitlines()) <= 450


@pytest.mark.parametrize("name", inception_score.__all__)
def test_every_public_name_imports(name: str) -> None:
    assert getattr(inception_score, name) is not None
    assert name in dir(inception_score) or hasattr(inception_score, name)


@pytest.mark.parametrize("module, names", [
    ("inception_score", ("inception_score", "InceptionScore", "InceptionScorer", "ISResult", "ScorerOptions")),
    ("inception_score.torchmetrics_adapter", ("InceptionScoreMetric",)),
    ("inception_score.api", ("inception_score", "InceptionScore")),
    ("inception_score.saved_logits", ("SavedLogits", "save_logits", "score_logits_file")),
    ("inception_score.engine.runner", ("InceptionScorer", "resolve_device")),
    ("inception_score.score.result", ("ISResult", "result_from_statistics")),
    ("inception_score.score.statistics", ("SplitPlan", "SplitRule", "summarize")),
    ("inception_score.score.planned", ("inception_score_from_logits",)),
    ("inception_score.options", ("ScorerOptions",)),
])
def test_the_public_classes_are_one_object_wherever_they_are_imported_from(module: str, names: tuple[str, ...]) -> None:
    loaded = importlib.import_module(module)
    for name in names:
        value = getattr(loaded, name)
        if hasattr(inception_score, name):
            assert value is getattr(inception_score, name), name


def constructions(source: str, names: set[str]) -> list[str]:
    """The calls in ``source`` (at any depth) of a callable named in ``names``, as ``name`` or ``x.name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            callee = node.func
            name = callee.id if isinstance(callee, ast.Name) else callee.attr if isinstance(callee, ast.Attribute) else ""
            if name in names:
                found.append(name)
    return found


def test_one_scoring_loop_only_the_scoring_run_builds_the_pipeline() -> None:
    """The device pipeline is built in inception_score.engine.run alone: every entry point feeds a
    ScoringRun. Before this rule, api.py (twice), generator.py, torchmetrics_adapter.py and saved_logits.py
    each ran a loop of their own."""
    builders = {name for name, path in NAMES.items() if constructions(path.read_text(), {"DevicePipeline"})}
    assert builders == {"inception_score.engine.run"}
    # ...and the same check on the repository's other code (the trainer's `score` command, benchmarks).
    for folder in ("reference_gan", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            assert constructions(path.read_text(), {"DevicePipeline"}) == [], path


def test_the_pipeline_rule_finds_a_second_loop() -> None:
    assert constructions("def f(s, a):\n    p = pipeline.DevicePipeline(s, a)\n", {"DevicePipeline"}) == ["DevicePipeline"]


def test_one_step_from_logits_to_statistics() -> None:
    """Only PlannedStatistics (inception_score.score.planned) adds logits to statistics: no other module
    calls split_sums, SplitStatistics.add or DeviceStatistics.add on logits."""
    users = {name for name, path in NAMES.items()
             if constructions(path.read_text(), {"split_sums", "DeviceStatistics"})}
    assert users <= {"inception_score.score.statistics", "inception_score.score.planned"}, users
    adders = set()
    for name, path in NAMES.items():
        if name in ("inception_score.score.statistics", "inception_score.score.planned"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in ("stats", "buckets", "statistics")):
                adders.add(name)
    assert adders == set(), adders


SCORER_OPTIONS = ("precision", "exact_kernel", "device", "weights", "allow_unverified", "batch_size")


def entry_points() -> dict[str, object]:
    from inception_score.torchmetrics_adapter import InceptionScoreMetric

    return {"inception_score": inception_score.inception_score, "InceptionScore": inception_score.InceptionScore,
            "score_generator": inception_score.score_generator, "save_logits": inception_score.save_logits,
            "InceptionScoreMetric": InceptionScoreMetric}


class Built(Exception):
    """Raised by the stand-in network: the options it was built with, as the entry point passed them."""


ASKED = dict(precision="fast", exact_kernel="ieee", device="cpu", weights="some-weights.pth", allow_unverified=True)


def call_with_options(entry: str, tmp_path: Path, **keywords: object) -> None:
    import numpy as np
    import torch

    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    if entry == "inception_score":
        inception_score.inception_score(images, splits=2, **keywords)
    elif entry == "InceptionScore":
        inception_score.InceptionScore(2, **keywords)
    elif entry == "score_generator":
        inception_score.score_generator(lambda z: torch.zeros(len(z), 3, 8, 8), 4, z_dim=2, splits=2, **keywords)
    elif entry == "save_logits":
        np.save(tmp_path / "images.npy", np.zeros((4, 8, 8, 3), dtype=np.uint8))
        inception_score.save_logits(tmp_path / "images.npy", tmp_path / "logits.npy", **keywords)
    else:
        entry_points()[entry](2, num_images=4, **keywords)


@pytest.mark.parametrize("entry", ["inception_score", "InceptionScore", "score_generator", "save_logits",
                                   "InceptionScoreMetric"])
def test_every_entry_point_takes_the_same_scorer_options_as_keywords_or_one_object(
        entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of precision, exact_kernel, device, weights, allow_unverified reaches the network as given, whether
    as keywords or as ScorerOptions; batch_size is a field of the same object; the defaults are ScorerOptions'."""
    import inception_score.engine.runner as runner
    from inception_score.options import ScorerOptions

    def stand_in(weights: object, **given: object) -> None:
        raise Built({"weights": weights, **given})

    monkeypatch.setattr(runner, "InceptionScorer", stand_in)
    assert "options" in inspect.signature(entry_points()[entry]).parameters
    for keywords in (ASKED, {"options": ScorerOptions(**ASKED)}):  # type: ignore[arg-type]
        with pytest.raises(Built) as built:
            call_with_options(entry, tmp_path, **keywords)
        got = built.value.args[0]
        for name, value in ASKED.items():
            assert str(got[name]) == str(value), (entry, name, keywords)  # a device may come as torch.device
    with pytest.raises(Built) as built:
        call_with_options(entry, tmp_path)
    defaults = ScorerOptions()
    assert (built.value.args[0]["precision"], built.value.args[0]["exact_kernel"]) == (defaults.precision,
                                                                                        defaults.exact_kernel)
    assert set(SCORER_OPTIONS) <= set(ScorerOptions.__dataclass_fields__)
    with pytest.raises((TypeError, ValueError), match="batch_sise"):  # torchmetrics says ValueError
        call_with_options(entry, tmp_path, batch_sise=8)


def test_the_default_number_of_splits_is_spelled_once() -> None:
    """The entry points take splits=None; the rule's default is protocol.PUBLISHED_SPLITS."""
    from inception_score.protocol import PUBLISHED_SPLITS
    from inception_score.score.statistics import SplitRule, split_rule

    assert split_rule().splits == SplitRule().splits == PUBLISHED_SPLITS == 10
    for name, entry in entry_points().items():
        if name != "save_logits":  # a logits file holds every row: splits are chosen when it is scored
            assert inspect.signature(entry).parameters["splits"].default is None


# The modules that compute scores. The command may take from them only the public names (__all__) and
# these helpers, none of which computes a score: each checks or names something before or after it.
SCORING_MODULES = {f"inception_score.{name}" for name in (
    "api", "generator", "saved_logits", "engine.accumulators", "engine.pipeline", "engine.run", "engine.runner",
    "logits.file", "logits.fingerprint", "network.inception", "network.precision", "network.preprocess",
    "network.split_tf32", "network.tf_graph", "network.weights", "score.infinity", "score.order", "score.planned",
    "score.result", "score.statistics")}
COMMAND_HELPERS = {
    ("inception_score.engine.run", "progress_bar"),  # the bar of the --skip-invalid check
    ("inception_score.score.infinity", "infinity_sizes"),  # enough images for --infinity, checked before the network runs
    ("inception_score.logits.file", "read_info"),  # the input a logits file names, for the result line
    ("inception_score.logits.file", "sidecar"),  # the sidecar's name, which no output may take (checked before scoring)
    ("inception_score.score.statistics", "check_split_count"),  # enough images for the splits, before the network runs
    ("inception_score.score.statistics", "split_rule"),  # --splits / --split-size as a SplitRule
    ("inception_score.engine.runner", "resolve_device"),  # --device
    ("inception_score.engine.runner", "build_scorer"),  # the network of --weights, --device, --precision, --exact-kernel
}


def scoring_internals(path: Path) -> list[str]:
    """Every name ``path`` imports from a scoring module that is neither public nor a command helper."""
    return [f"{module}.{name}" for module, name in imports_of(path)
            if name and module in SCORING_MODULES
            and name not in inception_score.__all__ and (module, name) not in COMMAND_HELPERS]


@pytest.mark.parametrize("name", sorted(n for n in NAMES if n.startswith("inception_score.cli.")
                                       and not n.startswith("inception_score.cli.self_check")))
def test_the_command_scores_only_through_the_public_api(name: str) -> None:
    """The command reaches scoring through inception_score, score_generator, InceptionScorer, save_logits
    and score_logits_file; accumulators, the statistics and the runner's internals are refused. (The install
    check, ``--self-check``, scores nothing: it checks the weights file and pool_3 themselves.)"""
    assert scoring_internals(NAMES[name]) == []
