"""Class names read from a copy of inception-2015-12-05.tgz's label files (a tiny one built here)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from inception_score.network.labels import LABEL_MAP, SYNSET_NAMES, class_label, class_names

MAP_TEXT = """# -*- protobuffer -*-
entry {
  target_class: 449
  target_class_string: "n01440764"
}
entry {
  target_class: 450
  target_class_string: "n01443537"
}
"""
NAMES_TEXT = "n01440764\ttench, Tinca tinca\nn01443537\tgoldfish, Carassius auratus\nn00000001\tunused\n"


def write_tgz(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in ((f"./{LABEL_MAP}", MAP_TEXT), (f"./{SYNSET_NAMES}", NAMES_TEXT)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_names_from_the_tgz_and_from_a_folder(tmp_path: Path) -> None:
    expected = {449: "tench", 450: "goldfish"}
    assert class_names(write_tgz(tmp_path / "inception-2015-12-05.tgz")) == expected
    folder = tmp_path / "extracted"
    folder.mkdir()
    (folder / LABEL_MAP).write_text(MAP_TEXT)
    (folder / SYNSET_NAMES).write_text(NAMES_TEXT)
    assert class_names(folder) == expected


def test_found_next_to_the_weights_file_or_by_environment(tmp_path: Path, monkeypatch) -> None:
    write_tgz(tmp_path / "inception-2015-12-05.tgz")
    assert class_names(weights_path=tmp_path / "pt_inception-2015-12-05-6726825d.pth")[450] == "goldfish"
    monkeypatch.setenv("INCEPTION_SCORE_LABELS", str(tmp_path / "inception-2015-12-05.tgz"))
    assert class_names()[449] == "tench"


def test_falls_back_to_indices(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("INCEPTION_SCORE_LABELS", raising=False)
    assert class_names(tmp_path / "missing.tgz") == {}
    assert class_label(7, {}) == "class 7"
    assert class_label(449, {449: "tench"}) == "tench (449)"
