"""The command's output shown in docs/command.md is the command's output: ``tools/command_example.py`` runs
it on the first 20 images of CIFAR-10's ``data_batch_1`` with the development weights (their numbers are
not Inception Scores), and this test runs it again and compares it with the page. The JSON must have
exactly the keys of the real output at every level, and the same values except where the machine decides
(times, float rounding of the scores, the bytes torch wrote the weights file with)."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import command_example  # noqa: E402  (the script that writes the example into the page)

# JSON fields that depend on the machine: how each may differ between the page and a fresh run.
TIMES = {("elapsed_s",), ("images_per_second",)}
# float32 logits round differently on other kernels: scores agree to about 1e-6 (std, their spread, to 1e-5
# absolute)
ROUNDED = {("mean",), ("std",), ("split_scores",), ("order_check", "ratio"), ("order_check", "threshold")}
FILE_BYTES = {("weights", "sha256")}  # torch's serialisation of the written file varies with its version


def keys(value: Any, path: tuple = ()) -> set[tuple]:
    """Every key path of a JSON document (``("weights", "claimed_by")``), lists' dicts included."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= {path + (key,)} | keys(item, path + (key,))
    elif isinstance(value, list):
        for item in value:
            found |= keys(item, path)
    return found


def differences(shown: Any, fresh: Any, path: tuple = ()) -> list[str]:
    """Where the page's JSON ``shown`` differs from a fresh run's beyond what the machine decides."""
    if path in TIMES:
        return [] if isinstance(shown, float) and shown > 0 else [f"{path}: {shown!r} is not a time"]
    if path in FILE_BYTES:
        return [] if re.fullmatch(r"[0-9a-f]{64}", str(shown)) else [f"{path}: {shown!r} is not a sha256"]
    if path in ROUNDED:
        pairs = zip(shown, fresh) if isinstance(shown, list) and len(shown) == len(fresh) else [(shown, fresh)]
        close = all(isinstance(a, float) and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5) for a, b in pairs)
        return [] if close else [f"{path}: {shown!r} on the page, {fresh!r} now"]
    if isinstance(shown, dict) and isinstance(fresh, dict):
        return [item for key in shown.keys() & fresh.keys() for item in differences(shown[key], fresh[key], path + (key,))]
    return [] if shown == fresh else [f"{path}: {shown!r} on the page, {fresh!r} now"]


def runs(markdown: str) -> list[tuple[str, str]]:
    """``[(command line, what it printed)]`` of an example block."""
    body = markdown.removeprefix("```text\n$ ").removesuffix("\n```")
    return [tuple(part.split("\n", 1)) for part in body.split("\n\n$ ")]  # type: ignore[misc]


def without_machine(line: str) -> str:
    """The result line without the rate and the weights' sha256 prefix."""
    return re.sub(r"[\d.]+ img/s", "R img/s", re.sub(r"sha256 [0-9a-f]{12}…", "sha256 H…", line))


def compare(shown: str, fresh: str) -> list[str]:
    problems = []
    (line_command, line_output), (json_command, json_output) = runs(shown)
    (fresh_line_command, fresh_line_output), (fresh_json_command, fresh_json_output) = runs(fresh)
    if (line_command, json_command) != (fresh_line_command, fresh_json_command):
        problems.append(f"the commands differ: {line_command!r}, {json_command!r}")
    if without_machine(line_output) != without_machine(fresh_line_output):
        problems.append(f"the line output differs:\n{line_output}\nnow:\n{fresh_line_output}")
    page, now = json.loads(json_output), json.loads(fresh_json_output)
    missing, extra = sorted(keys(now) - keys(page)), sorted(keys(page) - keys(now))
    if missing or extra:
        problems.append(f"JSON keys missing on the page: {missing}; on the page but not in the output: {extra}")
    problems += differences(page, now)
    sha = page.get("weights", {}).get("sha256", "")
    if f"sha256 {sha[:12]}…" not in line_output:
        problems.append("the line and the JSON of the page name different weights")
    return problems


def test_the_output_example_is_what_the_command_prints(cifar10_partial_dir: Path, genuine_weights_file: Path) -> None:
    shown = command_example.shown_example(command_example.PAGE.read_text(encoding="utf-8"))
    fresh = command_example.example(cifar10_partial_dir, genuine_weights_file)
    problems = compare(shown, fresh)
    assert not problems, ("docs/command.md's example is not the command's output (rerun python "
                          "tools/command_example.py --cifar10-partial ...):\n" + "\n".join(problems))


def test_the_comparison_finds_a_missing_field_and_a_changed_value() -> None:
    document = {"mean": 4.5, "split_scores": [4.4, 4.6], "elapsed_s": 1.5, "generator": None,
                "weights": {"sha256": "a" * 64, "claimed_by": None}}
    line = "Inception Score: 4.50 ± 0.10  (weights sha256 aaaaaaaaaaaa…, 9.1 img/s on cpu)"

    def block(data: dict, rate: str = "9.1") -> str:
        return (f"```text\n$ inception-score x\n{line.replace('9.1', rate)}\n\n$ inception-score x --json\n"
                f"{json.dumps(data, indent=2)}\n```")

    fresh = block(document)
    assert compare(block({**document, "elapsed_s": 7.0, "mean": 4.5 * (1 + 1e-7)}, rate="3.2"), fresh) == []
    typed = {key: value for key, value in document.items() if key != "generator"}
    typed["weights"] = {"sha256": "a" * 64}
    assert any("('generator',)" in problem and "('weights', 'claimed_by')" in problem
               for problem in compare(block(typed), fresh))
    assert any("('mean',)" in problem for problem in compare(block({**document, "mean": 4.6}), fresh))
    with pytest.raises(ValueError, match="lacks the markers"):
        command_example.shown_example("# a page without the example's markers")
