"""One wording for each concept in what users read: the command's lines and warnings, the errors, the
docstrings the API reference shows, the docs. IS-infinity is "IS-infinity" (its JSON field is
``is_infinity``), a score is "not comparable with published scores", a file of logits is a "logits file"
and one of weights a "weights file"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import distributed_workers as workers

ROOT = Path(__file__).resolve().parents[1]

# A spelling no user-visible text may use -> the one the package uses for that concept.
OTHER_SPELLINGS = {
    r"IS∞|(?<![\w/])IS[ _][Ii]nf(inity)?\b|IS-Infinity": "IS-infinity",
    r"comparable to published": "comparable with published",
    r"\blogit file": "logits file",
    r"\bweight file": "weights file",
}


def user_visible_texts() -> dict[str, str]:
    """Every string of the packages' code (messages and docstrings) and every page of the docs."""
    texts = {}
    for package in ("inception_score", "reference_gan"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    texts[f"{path.relative_to(ROOT)}:{node.lineno}"] = node.value
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return texts


def message_strings() -> dict[str, str]:
    """The strings of the packages' code that are not docstrings: what messages are made of."""
    found = {}
    for package in ("inception_score", "reference_gan"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                          if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                          and node.body and isinstance(node.body[0], ast.Expr)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    found[f"{path.relative_to(ROOT)}:{node.lineno}"] = node.value
    return found


def test_each_concept_has_one_spelling_in_what_users_read() -> None:
    found = [f"{where}: {match.group(0)!r} (say {wanted!r})" for where, text in user_visible_texts().items()
             for pattern, wanted in OTHER_SPELLINGS.items() for match in re.finditer(pattern, text)]
    assert not found, "; ".join(found)


def test_messages_name_is_infinity_as_the_result_line_does() -> None:
    """``is_infinity`` is a JSON field and an attribute; in a sentence it is IS-infinity."""
    found = [f"{where}: {text[:60]!r}" for where, text in message_strings().items()
             if " " in text and re.search(r"\bis_infinity\b", text)]
    assert not found, "; ".join(found)


def test_the_checks_find_the_other_spellings() -> None:
    text = "IS∞ 3.1, IS_inf, IS infinity; not comparable to published scores; a logit file; the weight file"
    hits = [pattern for pattern in OTHER_SPELLINGS for _ in re.finditer(pattern, text)]
    assert len(hits) == 6
    assert not any(re.search(pattern, "IS-infinity (mchong6/FID_IS_infinity); the weights file; logits file")
                   for pattern in OTHER_SPELLINGS)


@pytest.mark.usefixtures("exact_stand_in")  # tests/conftest.py: a fixed projection of the pixels, no weights
def test_the_warning_and_the_result_lines_say_is_infinity_alike(tmp_path: Path) -> None:
    from inception_score.cli.main import main

    path = workers.save_arrays(tmp_path, {"a.npy": 20}) / "a.npy"
    outcome = CliRunner().invoke(main, [str(path), "--splits", "2", "--infinity", "--device", "cpu"])
    assert outcome.exit_code == 0, outcome.output
    assert "\nIS-infinity: " in outcome.stdout and "not comparable with published scores" in outcome.stdout
    warning = next(line for line in outcome.stderr.splitlines() if line.startswith("warning: not comparable"))
    assert "IS-infinity is extrapolated" in warning and "is_infinity" not in warning
