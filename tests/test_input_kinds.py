"""The input path's shape: one classifier of what an input is, the skip-invalid pre-pass reporting
progress through a callback instead of a bar of its own, and the modules of the input path (reading
files, decoding, arrays, pixels) each small and free of import circles."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from inception_score.readers import skip_invalid
from inception_score.readers.files import open_paths
from inception_score.readers.inputs import InputKind, classify_input, image_stream, open_path_input
from inception_score.protocol import PIXEL_RANGE

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "inception_score"
INPUT_MODULES = ("protocol", "pixels", "inputs", "files", "array_files", "decode", "skip_invalid", "npz")


def module_path(module: str) -> Path:
    """The file of an input module: the readers are in inception_score/readers/, protocol at the top."""
    return PACKAGE / f"{module}.py" if module == "protocol" else PACKAGE / "readers" / f"{module}.py"


class _Counted(IterableDataset):
    def __len__(self) -> int:
        return 2

    def __iter__(self):
        yield from torch.zeros(2, 3, 4, 4, dtype=torch.uint8)


class _Unsized(IterableDataset):
    def __iter__(self):
        yield torch.zeros(2, 3, 4, 4, dtype=torch.uint8)


def inputs(folder: Path) -> list[tuple[object, InputKind | None]]:
    """Each kind of input, with the kind it is, written out by hand."""
    batch = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    image = Image.fromarray(np.zeros((4, 4, 3), np.uint8))
    return [
        (str(folder), InputKind.PATHS), (folder, InputKind.PATHS), ([folder, str(folder)], InputKind.PATHS),
        (batch, InputKind.ARRAY), (batch.numpy(), InputKind.ARRAY),
        (DataLoader(TensorDataset(batch), batch_size=1), InputKind.DATALOADER),
        (TensorDataset(batch), InputKind.DATASET), (_Counted(), InputKind.ITERABLE_DATASET),
        ([image, image], InputKind.IMAGES), ([batch[0], batch[1].numpy()], InputKind.IMAGES),
        ([batch, batch], InputKind.BATCHES), (_Unsized(), InputKind.BATCHES), (iter([batch]), InputKind.BATCHES),
        (42, None), (object(), None), ([], InputKind.BATCHES),
    ]


def test_each_input_is_classified_as_what_it_is(tmp_path: Path) -> None:
    for value, kind in inputs(tmp_path):
        assert classify_input(value) is kind, (value, kind)


def test_only_inputs_a_rank_can_read_a_part_of_are_shardable() -> None:
    shardable = {kind for kind in InputKind if kind.shardable}
    assert shardable == {InputKind.PATHS, InputKind.ARRAY, InputKind.DATASET, InputKind.IMAGES}


def test_a_path_input_is_read_in_the_range_its_items_are_in(tmp_path: Path) -> None:
    pixels = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3) / 95.0  # in [0, 1]
    np.save(tmp_path / "a.npy", pixels)
    reader, item_range = open_path_input(tmp_path / "a.npy", (0.0, 1.0))
    assert item_range == PIXEL_RANGE == (0.0, 255.0) and len(reader) == 2
    expected = torch.from_numpy(pixels).permute(0, 3, 1, 2) * 255.0  # (0, 1) mapped to 0..255 by hand
    assert torch.allclose(reader[1], expected[1], rtol=1e-6, atol=0)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "b.png")
    _, uint8_range = open_path_input([tmp_path / "b.png"], None)
    assert uint8_range is None  # uint8 items need no range


def test_a_folder_streams_the_same_pixels_as_its_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for name in ("b.png", "a.png", "c.png"):
        Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).save(tmp_path / name)
    stream = image_stream(tmp_path, batch_size=2)
    streamed = torch.cat(list(stream.batches))
    decoded = torch.stack([torch.from_numpy(np.array(Image.open(tmp_path / name))).permute(2, 0, 1)
                           for name in ("a.png", "b.png", "c.png")])  # sorted by name, decoded by Pillow alone
    assert stream.num_images == 3 and torch.equal(streamed, decoded)


def test_the_skip_invalid_pass_reports_progress_by_callback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(3):
        Image.fromarray(np.full((4, 4, 3), index, np.uint8)).save(tmp_path / f"{index}.png")
    (tmp_path / "3.png").write_bytes(b"not a png")
    monkeypatch.setattr(skip_invalid, "_BATCH", 3)
    counts: list[int] = []
    valid, failures = skip_invalid.decodable(open_paths([tmp_path]), advance=counts.append)
    assert counts == [3, 1] and valid == [0, 1, 2] and len(failures) == 1 and "3.png" in failures[0]


def _sibling_imports(module: str) -> set[str]:
    """The inception_score modules that ``module`` imports anywhere in it (inside functions too)."""
    tree = ast.parse(module_path(module).read_text())
    return {node.module.split(".")[0] for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}


def test_the_input_modules_import_no_circle() -> None:
    graph = {module: _sibling_imports(module) & set(INPUT_MODULES) for module in INPUT_MODULES}
    assert "decode" in graph["npz"] and "npz" in graph["array_files"]  # the graph is read
    # Kahn's algorithm: every module can be removed once what it imports is gone, unless there is a circle.
    remaining = dict(graph)
    while remaining:
        leaves = [module for module, targets in remaining.items() if not targets & remaining.keys()]
        assert leaves, f"import circle among {sorted(remaining)}"
        for module in leaves:
            del remaining[module]


@pytest.mark.parametrize("module", INPUT_MODULES)
def test_no_input_module_is_over_450_lines(module: str) -> None:
    assert len(module_path(module).read_text().splitlines()) <= 450


def test_no_package_text_cites_a_file_outside_the_repository() -> None:
    pattern = re.compile(r"REFERENCE\.md|issue [0-9]")
    hits = [f"{path.name}:{number}" for path in sorted(PACKAGE.rglob("*.py"))
            for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
