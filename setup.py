"""Build hook (everything else is in pyproject.toml): the package's description is README.md with its
relative links made absolute, so that they work on a package index page, where a link such as
``docs/api.md`` has nothing to point to. The README itself keeps relative links, which GitHub and the
documentation site (tools/docs_results.py) resolve.

A link ``path`` becomes ``<Source>/blob/main/path``, an image ``<Source>/raw/main/path`` and an anchor
``#x`` ``<Source>#x``, with ``Source`` the repository address in pyproject.toml's ``[project.urls]``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# [text](target) and ![alt](target): the target up to the closing parenthesis or a title.
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)([^)]*)\)")
ABSOLUTE = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def repository_url(pyproject: str) -> str:
    """``Source`` of ``[project.urls]`` in pyproject.toml's text (read without tomllib, for Python 3.10)."""
    section = pyproject.split("[project.urls]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^Source\s*=\s*"([^"]+)"', section, re.MULTILINE)
    if match is None:
        raise SystemExit("pyproject.toml: [project.urls] has no Source, which the description's links are built on")
    return match.group(1).rstrip("/")


def absolute_links(markdown: str, repository: str, branch: str = "main") -> str:
    """``markdown`` with every relative link and image made absolute to ``repository`` at ``branch``."""

    def absolute(match: re.Match) -> str:
        bang, text, target, title = match.groups()
        if ABSOLUTE.match(target):
            return match.group(0)
        if target.startswith("#"):
            target = f"{repository}{target}"
        else:
            target = f"{repository}/{'raw' if bang else 'blob'}/{branch}/{target.removeprefix('./')}"
        return f"{bang}[{text}]({target}{title})"

    return LINK.sub(absolute, markdown)


def package_description() -> str:
    repository = repository_url((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return absolute_links((ROOT / "README.md").read_text(encoding="utf-8"), repository)


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__
    from setuptools import setup

    setup(long_description=package_description(), long_description_content_type="text/markdown")
