"""What every benchmark result records beside its numbers (command, machine, commit, date), and where
results go. One implementation serves these scripts and the paper-table writers of ``reference_gan``."""

from __future__ import annotations

from pathlib import Path

from inception_score.atomic import append_text, write_atomic
from reference_gan.records import provenance
from reference_gan.records import provenance_markdown as _markdown

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def provenance_markdown(device: str = "cpu") -> str:
    """The provenance of this run as markdown list lines."""
    return _markdown(provenance(device))


def write_result(name: str, lines: list[str]) -> str:
    """Write ``lines`` as ``benchmarks/results/<name>`` and return the text (to print as well)."""
    text = "\n".join(lines) + "\n"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    write_atomic(RESULTS_DIR / name, text)
    return text


def append_result(name: str, lines: list[str]) -> str:
    """Append ``lines`` (a section) to ``benchmarks/results/<name>`` and return the text (to print as well)."""
    text = "\n".join(lines) + "\n"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    append_text(RESULTS_DIR / name, text)
    return text
