"""What every benchmark result records beside its numbers (command, machine, commit, date), and where
results go. One implementation serves these scripts and the paper-table writers of ``reference_gan``."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from inception_score.atomic import write_atomic
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


def write_section(name: str, lines: list[str]) -> str:
    """Put ``lines``, a section that starts with a markdown heading (blank lines before it aside), in
    ``benchmarks/results/<name>``: in place of the section with the same heading, which runs to the next
    heading, or at the end. The file's other sections, written by other scripts, stay as they are.
    Returns the section's text (to print as well)."""
    block = "\n".join(lines).strip("\n") + "\n"
    heading = block.splitlines()[0]
    if not heading.startswith("#"):
        raise ValueError(f"a section starts with a markdown heading, not {heading!r}")
    path = RESULTS_DIR / name
    old = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    start = next((i for i, line in enumerate(old) if line.rstrip("\n") == heading), None)
    if start is None:
        before, after = "".join(old).rstrip("\n"), ""
        before += "\n\n" if before else ""
    else:
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith("#")), len(old))
        before, after = "".join(old[:start]), "".join(old[end:])
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    write_atomic(path, before + block + ("\n" + after if after else ""))
    return block


def time_v(command: list[str], env: dict[str, str] | None = None,
           cwd: Path | None = None) -> tuple[int, float, float, str, str]:
    """``command`` run under ``/usr/bin/time -v``: its exit status, peak RSS (MB, from "Maximum resident set
    size"), seconds, stdout and stderr (time's report cut off). ``env``: the whole environment, if given."""
    begin = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - begin
    report = run.stderr.rfind("\tCommand being timed:")
    exited = run.stderr.rfind("Command exited with non-zero status", 0, max(report, 0))
    report = exited if exited >= 0 else report
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr[report:]).group(1))
    status = int(re.search(r"Exit status: (\d+)", run.stderr[report:]).group(1))
    return status, kib / 1024, seconds, run.stdout, run.stderr[:report]
