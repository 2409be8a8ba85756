"""The documentation: the site builds with ``mkdocs build --strict``, every command-line option and every
public name is documented, the README stays a short front door whose commands are those of ``.ci/run``,
and neither speaks of how the package was made."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "tools"))
import docs_results  # noqa: E402  (the MkDocs hook: its FORBIDDEN pattern and its reading of results files)

README_MAX_LINES = 250
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def docs_text() -> str:
    """Every hand-written page of the site (generated pages are built from benchmarks/results/)."""
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(DOCS.rglob("*.md")))


def option_names(command: click.Command) -> list[str]:
    """Every spelling of every option of ``command`` (``--splits``, ``-n``, ``--help``...)."""
    names = []
    for param in command.get_params(click.Context(command)):
        if isinstance(param, click.Option) and not param.hidden:
            names += [*param.opts, *param.secondary_opts]
    return names


def commands() -> dict[str, click.Command]:
    """The live commands: ``inception-score`` and every ``reference-gan`` subcommand."""
    from inception_score.cli.main import main as inception_main
    from reference_gan.cli import main as gan_main

    found = {"inception-score": inception_main}
    for name, command in gan_main.commands.items():
        found[f"reference-gan {name}"] = command
    return found


def undocumented_options(commands: dict[str, click.Command], text: str) -> list[str]:
    missing = []
    for label, command in commands.items():
        if label.startswith("reference-gan ") and label not in text:
            missing.append(label)
        for name in option_names(command):
            if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
                missing.append(f"{label} {name}")
    return missing


def documented_identifiers(text: str) -> set[str]:
    """Identifiers inside inline code spans and in mkdocstrings' ``::: module.name`` lines."""
    spans = re.findall(r"`([^`\n]+)`", text) + re.findall(r"^::: *(\S+)", text, re.MULTILINE)
    return {word for span in spans for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)}


def undocumented_names(modules: list[str], text: str) -> list[str]:
    known = documented_identifiers(text)
    return [f"{module}.{name}" for module in modules for name in importlib.import_module(module).__all__
            if name not in known]


def test_every_cli_option_is_documented():
    missing = undocumented_options(commands(), docs_text())
    assert not missing, "options or commands missing from docs/*.md: " + ", ".join(missing)


def test_every_public_name_is_documented():
    missing = undocumented_names(["inception_score", "reference_gan"], docs_text())
    assert not missing, "public names (__all__) missing from docs/*.md: " + ", ".join(missing)


def test_the_checks_report_what_is_missing():
    """The two checks above can fail: an option and a name that no page mentions are reported."""

    @click.command()
    @click.option("--splits", type=int)
    @click.option("--an-undocumented-option", is_flag=True)
    def made_up():
        pass

    text = "Use `--splits 10` and `--splits-size`; `inception_score(images)`."
    assert undocumented_options({"inception-score": made_up}, text) == [
        "inception-score --an-undocumented-option", "inception-score --help"]
    assert "inception_score" in documented_identifiers(text)
    assert "images" in documented_identifiers(text) and "splits" not in documented_identifiers("--splits")


def test_readme_is_short_and_its_commands_are_those_of_ci():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"
    text = "\n".join(lines)
    blocks = {}
    for heading in ("## Install and run", "## Run the tests"):
        section = text.split(heading + "\n", 1)[1]
        blocks[heading] = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL).group(1).strip()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith(("python3 ", ". "))]
    assert ci == list(blocks.values())


def test_readme_headline_figures_are_in_their_results_files():
    """Each figure of the README's headline table appears in the results file its row names, so the
    table cannot drift from the measurements (rerun a benchmark: update the row)."""
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- BEGIN headline -->", 1)[1].split("<!-- END headline -->", 1)[0]
    rows = [row for row in table.strip().splitlines()[2:]]
    assert rows
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        figure, source = cells[1], re.search(r"\(benchmarks/results/([^)]+)\)", cells[3]).group(1)
        results = (ROOT / "benchmarks" / "results" / source).read_text(encoding="utf-8").replace(",", "")
        for number in re.findall(r"\d[\d,]*(?:\.\d+)?(?:e-\d+)?", figure):
            assert number.replace(",", "") in results, f"README headline {figure!r}: {number} not in {source}"


def test_readme_and_docs_speak_of_the_package_not_of_how_it_was_made():
    texts = {README.name: README.read_text(encoding="utf-8")}
    texts |= {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in DOCS.rglob("*.md")}
    # The results files become pages of the site (HTML comments left out, as the hook does).
    texts |= {f"benchmarks/results/{path.name}": docs_results.results_text(path.name)
              for path in (ROOT / "benchmarks" / "results").glob("*.md")}
    found = [f"{name}: {match.group(0)!r}" for name, text in texts.items()
             for match in docs_results.FORBIDDEN.finditer(text)]
    assert not found, "text about how the package was made: " + "; ".join(found)


def test_results_markers_take_the_named_table_and_stop_the_build_on_a_missing_one():
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    from mkdocs.exceptions import PluginError

    text = "intro\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\nmiddle\n| c |\n| --- |\nend"
    assert docs_results.tables(text) == ["| a | b |\n| --- | --- |\n| 1 | 2 |", "| c |\n| --- |"]

    page = type("Page", (), {"file": type("File", (), {"src_uri": "sub/page.md"})()})()
    shown = docs_results.on_page_markdown("{{ results-table memory.md 1 }}", page, None, None)
    table = docs_results.tables((ROOT / "benchmarks" / "results" / "memory.md").read_text(encoding="utf-8"))[0]
    assert shown.startswith(table) and "](../benchmarks/memory.md)" in shown and "2026-11-22" in shown
    sectioned = docs_results.on_page_markdown("{{ results-table gpu-check.md Throughput from PNG files :: 1 }}",
                                              page, None, None)
    assert sectioned.startswith("| workers |")
    for marker in ("{{ results-table memory.md 9 }}", "{{ results-table no-such-file.md 1 }}",
                   "{{ results-section memory.md No such heading }}", "{{ results-table gpu-check.md Tests :: 1 }}",
                   "{{ results-table memory.md first }}"):
        with pytest.raises(PluginError):
            docs_results.on_page_markdown(marker, page, None, None)
    with pytest.raises(PluginError, match="how it was made"):
        docs_results.on_page_markdown("Measured in a session.", page, None, None)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``mkdocs build --strict`` writes it (built once for this module's tests)."""
    if any(importlib.util.find_spec(name.split(".")[0]) is None or importlib.util.find_spec(name) is None
           for name in DOCS_PACKAGES):
        pytest.skip("the docs extra is not installed (pip install -e '.[docs]'): mkdocs, mkdocs-material, "
                    "mkdocstrings[python]")
    site = tmp_path_factory.mktemp("docs") / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


def test_docs_build_strict(built_site: Path):
    """``mkdocs build --strict``: a broken link or anchor, a page missing from the files, a results table
    that does not exist, or a docstring mkdocstrings cannot read fails the build."""
    home = (built_site / "index.html").read_text(encoding="utf-8")
    assert "exact to the paper" in home
    api = (built_site / "reference" / "inception_score" / "index.html").read_text(encoding="utf-8")
    assert "ISResult" in api and "num_images" in api
    # every results file is a page of the site
    for path in (ROOT / "benchmarks" / "results").glob("*.md"):
        assert (built_site / "benchmarks" / path.stem / "index.html").is_file(), path.name


def test_api_reference_shows_no_raw_cross_reference(built_site: Path):
    """The docstrings' Sphinx roles (``:class:`~inception_score.options.ScorerOptions```) render as names,
    linked where the page documents them: no ``~inception_score.`` and no ``:class:`` text on the page."""
    role = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):")
    for package in ("inception_score", "reference_gan"):
        html = (built_site / "reference" / package / "index.html").read_text(encoding="utf-8")
        text = re.sub(r"<[^>]+>", "", html)  # what a reader sees
        raw = sorted(set(re.findall(r"~[A-Za-z_][\w.]*", text)) | set(role.findall(text)))
        assert not raw, f"reference/{package}: raw cross-references on the page: {', '.join(raw)}"
        assert "<autoref" not in html  # every reference was resolved, to a link or to the name
    api = (built_site / "reference" / "inception_score" / "index.html").read_text(encoding="utf-8")
    # ~ shows the last part, and a re-exported name links to where the page documents it
    assert re.search(r'<a class="autorefs autorefs-internal"[^>]*href="#inception_score\.options\.ScorerOptions"><code>'
                     r"ScorerOptions</code></a>", api)
    assert re.search(r'href="#inception_score\.score\.result\.ISResult"><code>ISResult</code></a>', api)
