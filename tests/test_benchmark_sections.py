"""Benchmark scripts that share a results file each write their own section and leave the others.

``benchmarks/memory.py``, ``memory_npz.py``, ``memory_png_chunk.py`` and ``memory_bombs.py`` all write
``benchmarks/results/memory.md``. Here ``memory.py`` runs for real (its measuring subprocesses replaced by
a fixed answer) into a results folder of the test's own."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

OTHERS = """# Peak memory against the number of images

An old table.

## Large `.npz` sample files

| file | run |
| --- | --- |
| kept | yes |

## A PNG with a 200 MB text chunk

Also kept.
"""


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _record

    monkeypatch.setattr(_record, "RESULTS_DIR", tmp_path)
    (tmp_path / "memory.md").write_text(OTHERS, encoding="utf-8")
    return tmp_path / "memory.md"


def test_memory_py_replaces_its_own_section_and_keeps_the_others(results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import memory

    monkeypatch.setattr(memory, "RESULTS_DIR", results.parent, raising=False)  # where the script wrote before
    row = {"count": 10, "peak_rss_mb": 123.4, "seconds": 0.5}
    real_run = subprocess.run

    def run(command, **kwargs):  # the measuring workers answer at once; other commands (git) run
        if "--worker-count" not in command:
            return real_run(command, **kwargs)
        return subprocess.CompletedProcess(command, 0, stdout=json.dumps(row) + "\n", stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    done = CliRunner().invoke(memory.main, ["--counts", "10"])
    assert done.exit_code == 0, done.output
    text = results.read_text(encoding="utf-8")
    assert text.startswith("# Peak memory against the number of images\n")
    assert "| 10 | 123.4 | 0.5 |" in text and "An old table." not in text
    assert text.count("# Peak memory against the number of images") == 1
    assert text.endswith(OTHERS[OTHERS.index("## Large"):])  # the two other sections, whole and in order


def test_a_new_section_is_appended_and_a_second_run_replaces_it(results: Path) -> None:
    from _record import write_section

    write_section("memory.md", ["", "## Archive bombs", "", "first run"])
    write_section("memory.md", ["", "## Archive bombs", "", "second run"])
    text = results.read_text(encoding="utf-8")
    assert text == OTHERS + "\n## Archive bombs\n\nsecond run\n"
