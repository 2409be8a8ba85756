"""The package as a package index shows it (issue 38, found 5): the wheel holds the license file and
names it, has Project-URLs, and its description's links are absolute; importing the torchmetrics adapter
without torchmetrics says what to install.

The wheel is built from this checkout with the environment's own setuptools (``pip wheel --no-deps
--no-build-isolation``), so no network is needed; where pip or setuptools cannot build here the test
skips with the reason."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A markdown link or image: [text](target) / ![alt](target), the target up to a space or ")".
LINK_TARGET = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools in this environment")
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=600)
    if build.returncode != 0:
        pytest.skip(f"the wheel could not be built here (pip wheel exited {build.returncode}): "
                    f"{(build.stderr or build.stdout).strip()[-500:]}")
    (path,) = out.glob("inception_score-*.whl")
    return zipfile.ZipFile(path)


def metadata(wheel: zipfile.ZipFile):
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(wheel.read(name).decode("utf-8"))


def test_the_repository_has_an_mit_license() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 the inception-score authors" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text


def test_the_wheel_holds_and_names_the_license_file(wheel: zipfile.ZipFile) -> None:
    fields = metadata(wheel)
    assert fields["License-Expression"] == "MIT"
    assert fields.get_all("License-File") == ["LICENSE"]
    (inside,) = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(inside) == (REPO / "LICENSE").read_bytes()


def test_the_wheel_has_project_urls(wheel: zipfile.ZipFile) -> None:
    urls = dict(entry.split(", ", 1) for entry in metadata(wheel).get_all("Project-URL") or [])
    assert set(urls) >= {"Source", "Documentation"}
    assert all(url.startswith("https://") for url in urls.values())
    assert urls["Documentation"].startswith(urls["Source"])


def test_the_description_is_the_readme_with_every_link_absolute(wheel: zipfile.ZipFile) -> None:
    fields = metadata(wheel)
    assert fields["Description-Content-Type"].startswith("text/markdown")
    description = fields.get_payload()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    relative = [target for target in LINK_TARGET.findall(readme) if not target.startswith(("http://", "https://"))]
    assert len(relative) >= 20  # the README links to its docs and results this way
    targets = LINK_TARGET.findall(description)
    assert len(targets) == len(LINK_TARGET.findall(readme))
    assert [t for t in targets if not t.startswith("https://")] == []
    source = dict(entry.split(", ", 1) for entry in fields.get_all("Project-URL"))["Source"]
    for target in targets:
        if target.startswith(f"{source}/blob/main/"):  # a file of the repository, which must exist
            assert (REPO / target.removeprefix(f"{source}/blob/main/").split("#")[0]).is_file(), target
    # The text is the README's: only the link targets differ.
    assert LINK_TARGET.sub("()", description.strip()) == LINK_TARGET.sub("()", readme.strip())


def test_importing_the_adapter_without_torchmetrics_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from inception_score.errors import InceptionScoreError

    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # the import fails as when it is not installed
    monkeypatch.delitem(sys.modules, "inception_score.torchmetrics_adapter", raising=False)
    with pytest.raises(ImportError, match=r"needs torchmetrics, which is not installed: pip install torchmetrics") as caught:
        importlib.import_module("inception_score.torchmetrics_adapter")
    assert isinstance(caught.value, InceptionScoreError)
