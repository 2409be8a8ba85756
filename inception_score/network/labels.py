"""Names of the 2015 graph's 1008 classes, read at run time from the user's copy of the original files.

The names are not shipped with this package: they live in ``inception-2015-12-05.tgz`` as
``imagenet_2012_challenge_label_map_proto.pbtxt`` (output index -> synset id) and
``imagenet_synset_to_human_label_map.txt`` (synset id -> names). Give the .tgz or a folder holding
those two files (``--labels``, ``INCEPTION_SCORE_LABELS``, or next to the weights file); without
them, classes are called by their index.
"""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path

from ..readers.bounded_read import read_at_most, read_tar_members
from ..errors import InputError

ENV_LABELS = "INCEPTION_SCORE_LABELS"
LABEL_MAP = "imagenet_2012_challenge_label_map_proto.pbtxt"
SYNSET_NAMES = "imagenet_synset_to_human_label_map.txt"
TGZ_NAME = "inception-2015-12-05.tgz"
# The genuine files are 0.07 MB and 0.74 MB; a label file that inflates past this is refused.
MAX_LABEL_FILE_BYTES = 16 * 2**20
_TOO_LARGE = (f"over the limit of {MAX_LABEL_FILE_BYTES:,} bytes for a label file (the genuine {LABEL_MAP} and "
              f"{SYNSET_NAMES} are under 1 MB): give the genuine {TGZ_NAME} or a folder holding those two files")

_ENTRY = re.compile(r"target_class:\s*(\d+)\s*target_class_string:\s*\"(n\d+)\"")


def parse_label_files(label_map: str, synset_names: str) -> dict[int, str]:
    """Output index (1..1000 of the 1008 outputs) -> first human name, from the texts of the two files.

    ``label_map``: ``entry { target_class: 449 target_class_string: "n01440764" }`` blocks;
    ``synset_names``: lines ``n01440764<TAB>tench, Tinca tinca``. A synset without a name keeps its id.
    """
    names = {}
    for line in synset_names.splitlines():
        synset, _, human = line.partition("\t")
        if human:
            names[synset.strip()] = human.split(",")[0].strip()
    return {int(index): names.get(synset, synset) for index, synset in _ENTRY.findall(label_map)}


def _read_text(path: Path) -> str:
    """A label file on disk, at most ``MAX_LABEL_FILE_BYTES``."""
    with open(path, "rb") as handle:
        data = read_at_most(handle, MAX_LABEL_FILE_BYTES, os.fstat(handle.fileno()).st_size)
    if data is None:
        raise InputError(f"{path} holds more than {MAX_LABEL_FILE_BYTES:,} bytes, {_TOO_LARGE}")
    return data.decode("utf-8")


def _read_pair(source: Path) -> tuple[str, str] | None:
    if source.is_dir():
        files = source / LABEL_MAP, source / SYNSET_NAMES
        if all(f.is_file() for f in files):
            return tuple(_read_text(f) for f in files)  # type: ignore[return-value]
        return None
    if source.is_file():
        try:
            found = read_tar_members(source, (LABEL_MAP, SYNSET_NAMES), MAX_LABEL_FILE_BYTES)
        except (tarfile.TarError, OSError, EOFError):
            return None
        for name, data in found.items():
            if data is None:
                raise InputError(f"{source}: its {name} inflates to more than {MAX_LABEL_FILE_BYTES:,} bytes, {_TOO_LARGE}")
        try:
            if len(found) == 2:
                return found[LABEL_MAP].decode("utf-8"), found[SYNSET_NAMES].decode("utf-8")  # type: ignore[union-attr]
        except ValueError:  # not UTF-8 text
            return None
    return None


def class_names(labels: str | os.PathLike | None = None, weights_path: str | os.PathLike | None = None) -> dict[int, str]:
    """Index -> name for the classes found; empty when no label files are at hand."""
    candidates = [labels, os.environ.get(ENV_LABELS)]
    if weights_path is not None:
        folder = Path(weights_path).parent
        candidates += [folder / TGZ_NAME, folder]
    for candidate in candidates:
        if candidate:
            pair = _read_pair(Path(candidate).expanduser())
            if pair is not None:
                return parse_label_files(*pair)
    return {}


def class_label(index: int, names: dict[int, str]) -> str:
    """``name (index)`` when the class's name is known, else ``class <index>``."""
    return f"{names[index]} ({index})" if index in names else f"class {index}"


def names_in(source: str | os.PathLike) -> dict[int, str]:
    """Index -> name from one labels file or folder only (not the environment, not beside the weights);
    empty when it holds none."""
    pair = _read_pair(Path(source).expanduser())
    return {} if pair is None else parse_label_files(*pair)
