"""The shape of reference_gan: no import circle (counting imports inside functions too), no module
over 450 lines, and no docstring or comment pointing at a file the repository does not hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "reference_gan"


def imported_siblings(path: Path, package: Path = PACKAGE) -> set[str]:
    """The modules of ``package`` (reference_gan unless told) that ``path`` imports anywhere in it (top
    level or inside a function)."""
    siblings = {p.stem for p in package.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .train import Trainer
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import train
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.split(".")[0] == package.name:
                parts = node.module.split(".")
                found.update([parts[1]] if len(parts) > 1 else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith(f"{package.name}."))
    return (found & siblings) - {"__init__", "__main__"}


def import_graph() -> dict[str, set[str]]:
    return {p.stem: imported_siblings(p) for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started, found by a depth-first walk."""
    found, done = [], set()

    def walk(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                found.append(path[path.index(target):] + [target])
            elif target not in done:
                walk(target, [*path, target])
        done.add(module)

    for module in sorted(graph):
        walk(module, [module])
    return found


def test_the_circle_finder_finds_a_circle_and_the_graph_is_read() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    graph = import_graph()
    # Edges at the top level (train -> config) and inside a function (cli -> ablation, devices -> errors).
    assert {"config", "optim", "checkpoints"} <= graph["train"] and "ablation" in graph["cli"]
    assert "errors" in graph["devices"]


def test_reference_gan_has_no_import_circle() -> None:
    assert circles(import_graph()) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_is_over_450_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 450


def test_no_text_cites_a_file_outside_the_repository_or_a_tracker_issue() -> None:
    pattern = re.compile(r"REFERENCE\.md|issue [0-9]")
    hits = [f"{path.relative_to(REPO)}:{number}"
            for folder in ("reference_gan", "benchmarks") for path in sorted((REPO / folder).rglob("*"))
            if path.is_file() and path.suffix in (".py", ".sh", ".md")
            for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
