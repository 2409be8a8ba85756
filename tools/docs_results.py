"""MkDocs hook: the documentation's result tables come from ``benchmarks/results/`` at build time.

Every ``benchmarks/results/*.md`` becomes a page ``benchmarks/<name>.md`` of the site (its figures
``*.png`` beside it), so a table on the site is always the file the benchmark script last wrote. Pages
take pieces of those files with markers on a line of their own:

- ``{{ results-table FILE N }}``: the N-th table of ``FILE`` (1-based), followed by where it comes from
  (the file, its machine, date and command when the file records them); ``{{ results-table FILE
  SECTION :: N }}``: the N-th table of its ``## `` section whose heading starts with SECTION;
- ``{{ results-section FILE HEADING }}``: the body of the ``## `` section of ``FILE`` whose heading
  starts with ``HEADING``;
- ``{{ results-index }}``: a table of every results file with its title, machine and date;
- ``{{ readme }}``: the repository's README, its links to ``docs/`` and ``benchmarks/results/`` turned
  into links inside the site (the home page).

A marker naming a missing file or table stops the build, and so does any page whose text speaks of how
the package was made rather than of what it does (``FORBIDDEN``).
"""

from __future__ import annotations

import functools
import importlib
import re
from pathlib import Path

from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
SITE_FOLDER = "benchmarks"  # where the results pages go inside the site

FORBIDDEN = re.compile(
    r"\blent\b|issue (aimed|asked|set)|reproduction issue|where this (package )?was (developed|built)|"
    r"\bsession\b|developed on",
    re.IGNORECASE,
)
MARKER = re.compile(r"^\{\{ *(results-table|results-section|results-index|readme)(?: +(\S+))?(?: +(.+?))? *\}\}$",
                    re.MULTILINE)
HTML_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)
PROVENANCE = re.compile(r"^- (command|machine|date): `(.*)`$", re.MULTILINE)
# Sphinx roles in docstrings (":class:`~pkg.mod.X`") reach the HTML as ":class:<code>~pkg.mod.X</code>".
# Each becomes a cross-reference that mkdocs-autorefs resolves: a link where the page documents the target,
# else the name alone; "~" shows the last part only, as in Sphinx.
SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):<code>(~?)([^<]+)</code>")


def fail(message: str) -> NoReturn:
    """Stop the build. MkDocs is imported only here and in :func:`on_files`, so that the tests can use
    this module's reading of the results files without the ``docs`` extra."""
    from mkdocs.exceptions import PluginError

    raise PluginError(f"docs: {message}")


def results_text(name: str) -> str:
    """A results file as the site shows it: HTML comments (notes for maintainers) left out."""
    path = RESULTS / name
    if not path.is_file():
        fail(f"no results file benchmarks/results/{name}")
    return HTML_COMMENT.sub("", path.read_text(encoding="utf-8"))


def tables(text: str) -> list[str]:
    """The markdown tables of ``text``, in order: runs of lines that start with ``|``."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append("\n".join(current))
            current = []
    return found


def provenance(text: str) -> dict[str, str]:
    """The first command, machine and date that ``text`` records."""
    facts: dict[str, str] = {}
    for key, value in PROVENANCE.findall(text):
        facts.setdefault(key, value)
    return facts


def table_provenance(text: str, table: str) -> dict[str, str]:
    """What a file records for one of its tables: the record after the table in its own section, else
    the file's first record (a file with several runs has one record per section)."""
    after = text[text.index(table) + len(table):]
    own = provenance(re.split(r"^## ", after, maxsplit=1, flags=re.MULTILINE)[0])
    return own or provenance(text)


def title(text: str, name: str) -> str:
    heading = re.search(r"^# (.+)$", text, re.MULTILINE)
    return heading.group(1).strip() if heading else name


def short_machine(machine: str) -> str:
    """The CPU or GPU and core count, without the flag list."""
    return re.sub(r", flags: [^;]*", "", machine)


def results_table(name: str, selector: str, page_dir: str) -> str:
    """The table ``selector`` names: ``N`` (the N-th table of the file), or ``SECTION :: N``, the N-th
    table of the ``## `` section whose heading starts with SECTION (so that a script adding a section
    above cannot shift which table a page shows)."""
    text = results_text(name)
    scope, where = text, ""
    if " :: " in selector:
        heading, selector = (part.strip() for part in selector.split(" :: ", 1))
        scope, where = section(name, text, heading), f" in its section {heading!r}"
    if not selector.isdigit():
        fail(f"{{{{ results-table {name} ... }}}}: write N or SECTION :: N, not {selector!r}")
    found, number = tables(scope), int(selector)
    if not 1 <= number <= len(found):
        fail(f"benchmarks/results/{name} has {len(found)} tables{where}, not a table {number}")
    facts = table_provenance(text, found[number - 1])
    link = f"[`benchmarks/results/{name}`]({relative(page_dir, f'{SITE_FOLDER}/{name}')})"
    parts = [f"From {link}"]
    if "machine" in facts:
        parts.append(f"machine: {short_machine(facts['machine'])}")
    if "date" in facts:
        parts.append(f"date: {facts['date']}")
    if "command" in facts:
        parts.append(f"command: `{facts['command']}`")
    return found[number - 1] + "\n\n<small>" + "; ".join(parts) + ".</small>"


def section(name: str, text: str, heading: str) -> str:
    """The body of the ``## `` section of ``text`` whose heading starts with ``heading``."""
    for part in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        first, _, body = part.partition("\n")
        if first.startswith(heading):
            return body.strip()
    fail(f"benchmarks/results/{name} has no section starting {heading!r}")


def results_section(name: str, heading: str) -> str:
    return section(name, results_text(name), heading)


def results_index(page_dir: str) -> str:
    rows = ["| file | what | machine | date |", "| --- | --- | --- | --- |"]
    for path in sorted(RESULTS.glob("*.md")):
        text = results_text(path.name)
        facts = provenance(text)
        link = f"[{path.name}]({relative(page_dir, f'{SITE_FOLDER}/{path.name}')})"
        what = title(text, path.name).replace("|", "\\|")
        machine = short_machine(facts["machine"]).split(";")[0] if "machine" in facts else "see the file"
        rows.append(f"| {link} | {what} | {machine} | {facts.get('date', 'see the file')} |")
    return "\n".join(rows)


def readme(page_dir: str) -> str:
    text = HTML_COMMENT.sub("", README.read_text(encoding="utf-8"))
    text = re.sub(r"\]\(docs/", f"]({relative(page_dir, '')}", text)
    return re.sub(r"\]\(benchmarks/results/", f"]({relative(page_dir, SITE_FOLDER + '/')}", text)


def relative(page_dir: str, target: str) -> str:
    """``target`` (a path inside the docs) as a link from a page in ``page_dir``."""
    depth = len([part for part in page_dir.split("/") if part])
    return "../" * depth + target


def on_files(files, config):
    from mkdocs.structure.files import File

    for path in sorted(RESULTS.iterdir()):
        if path.suffix == ".md":
            files.append(File.generated(config, f"{SITE_FOLDER}/{path.name}", content=results_text(path.name)))
        elif path.suffix == ".png":
            files.append(File.generated(config, f"{SITE_FOLDER}/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    parent = Path(page.file.src_uri).parent.as_posix()
    page_dir = "" if parent == "." else parent

    def replace(match: re.Match) -> str:
        kind, name, number = match.groups()
        if kind == "readme":
            return readme(page_dir)
        if kind == "results-index":
            return results_index(page_dir)
        if name is None or number is None:
            fail(f"{page.file.src_uri}: write {{{{ {kind} FILE {'N' if kind == 'results-table' else 'HEADING'} }}}}")
        if kind == "results-section":
            return results_section(name, number)
        return results_table(name, number, page_dir)

    markdown = MARKER.sub(replace, markdown)
    bad = FORBIDDEN.search(markdown)
    if bad:
        line = markdown[: bad.start()].count("\n") + 1
        fail(f"{page.file.src_uri} line {line} says {bad.group(0)!r}: describe the package, not how it was made")
    return markdown


@functools.cache
def canonical(identifier: str) -> str:
    """Where a re-exported name is defined (``inception_score.ISResult`` ->
    ``inception_score.score.result.ISResult``, the heading the reference page gives it); else itself."""
    parts = identifier.split(".")
    if not all(part.isidentifier() for part in parts):  # a relative name (".infinity"), a call
        return identifier
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                found = getattr(found, name)
        except AttributeError:
            return identifier
        module, qualname = getattr(found, "__module__", None), getattr(found, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str) and identifier.endswith("." + qualname.split(".")[-1]):
            return f"{module}.{qualname}"
        return identifier
    return identifier


def cross_reference(match: re.Match) -> str:
    """One Sphinx role of the HTML as an optional autorefs reference: a link where the site documents its
    target, else the name in code."""
    short, target = match.groups()
    identifier = target.strip().removesuffix("()")
    shown = identifier.rsplit(".", 1)[-1] if short else identifier
    return f'<autoref optional identifier="{canonical(identifier)}"><code>{shown}</code></autoref>'


def on_page_content(html: str, page, config, files) -> str:
    return SPHINX_ROLE.sub(cross_reference, html)
