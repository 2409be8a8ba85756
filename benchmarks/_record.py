"""What every benchmark result records beside its numbers (command, machine, commit, date), and where
results go. One implementation serves these scripts and the paper-table writers of ``reference_gan``."""

from __future__ import annotations

from pathlib import Path

from reference_gan.records import provenance
from reference_gan.records import provenance_markdown as _markdown

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def provenance_markdown(device: str = "cpu") -> str:
    """The provenance of this run as markdown list lines."""
    return _markdown(provenance(device))
