"""Readers of folders, arrays and archives: pixels, order, errors, and use from worker processes.

Expected pixels are computed from the generated arrays (a rotation, a shift, a palette lookup
written out here), never by decoding through the package."""

from __future__ import annotations

import gc
import io
import os
import pickle
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from inception_score.errors import ImageDecodeError, InputError
from inception_score.readers.decode import decode_image
from inception_score.readers.files import ImageArchive, open_path, open_paths
from inception_score.readers.skip_invalid import without_invalid


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def items(dataset) -> list[torch.Tensor]:
    return [dataset[i] for i in range(len(dataset))]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_modes_become_rgb(rng: np.random.Generator) -> None:
    gray = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    assert np.array_equal(decode_image(png_bytes(Image.fromarray(gray, "L")), "g"), np.dstack([gray] * 3))

    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    paletted = Image.fromarray(indices, "P")
    paletted.putpalette(palette.flatten().tolist())
    assert np.array_equal(decode_image(png_bytes(paletted), "p"), palette[indices])

    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    assert np.array_equal(decode_image(png_bytes(Image.fromarray(rgba, "RGBA")), "a"), rgba[:, :, :3])


def test_sixteen_bit_keeps_the_top_byte() -> None:
    deep = np.array([[0, 255, 256, 511], [32768, 65279, 65280, 65535]], dtype=np.uint16)
    decoded = decode_image(png_bytes(Image.fromarray(deep)), "deep")
    expected = np.array([[0, 0, 1, 1], [128, 254, 255, 255]], dtype=np.uint8)  # value // 256, by hand
    assert np.array_equal(decoded, np.dstack([expected] * 3))


def test_exif_orientation_is_applied(rng: np.random.Generator) -> None:
    stored = rng.integers(0, 256, (4, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    decoded = decode_image(png_bytes(Image.fromarray(stored), exif=exif), "rotated")
    assert decoded.shape == (7, 4, 3)
    assert np.array_equal(decoded, np.rot90(stored, k=-1))


@pytest.mark.parametrize(
    "data, message",
    [(b"", r"is empty \(0 bytes\)"), (b"\x89PNG\r\n\x1a\n garbage", "could not be decoded"),
     (png_bytes(Image.fromarray(np.full((64, 64, 3), 9, np.uint8)))[:60], "could not be decoded")],
    ids=["zero-byte", "garbage", "truncated"],
)
def test_undecodable_bytes_name_the_file(data: bytes, message: str) -> None:
    with pytest.raises(ImageDecodeError, match=message) as caught:
        decode_image(data, "some/file.png")
    assert str(caught.value).startswith("some/file.png ")
    assert "--" not in str(caught.value)  # a library message names no command-line flag; the command adds its own


def write_tree(root: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Images of mixed sizes in nested folders, plus files that must be ignored; returns name -> pixels."""
    pixels = {}
    for name, (h, w) in {"b/2.png": (5, 9), "a.PNG": (8, 8), "b/10.bmp": (3, 4), "c/d/e.tif": (6, 2),
                         "a2.webp": (4, 4)}.items():
        pixels[name] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[name]).save(root / name, **({"lossless": True} if name.endswith("webp") else {}))
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"macOS metadata")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._a.png").write_bytes(b"macOS resource fork")
    return pixels


def test_folder_is_recursive_sorted_and_skips_the_rest(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = write_tree(tmp_path, rng)
    dataset = open_path(tmp_path)
    order = ["a.PNG", "a2.webp", "b/10.bmp", "b/2.png", "c/d/e.tif"]  # sorted by relative path, as strings
    assert [Path(dataset.name(i)).relative_to(tmp_path).as_posix() for i in range(len(dataset))] == order
    for image, name in zip(items(dataset), order):
        assert image.dtype == torch.uint8 and np.array_equal(image.permute(1, 2, 0).numpy(), pixels[name])
    assert "5 images" in dataset.description and "3 other files ignored" in dataset.description


def write_archives(folder: Path, target: Path) -> dict[str, Path]:
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    archives = {"zip": target / "x.zip", "tar": target / "x.tar", "tgz": target / "x.tar.gz",
                "tgz-reversed": target / "reversed.tar.gz"}
    with zipfile.ZipFile(archives["zip"], "w") as archive:
        for name in names:
            archive.write(folder / name, name)
    for key, mode, order in (("tar", "w", names), ("tgz", "w:gz", names), ("tgz-reversed", "w:gz", names[::-1])):
        with tarfile.open(archives[key], mode) as archive:
            for name in order:
                archive.add(folder / name, arcname=name)
    return archives


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz", "tgz-reversed"])
def test_archives_read_like_the_folder(kind: str, tmp_path: Path, rng: np.random.Generator) -> None:
    folder = tmp_path / "tree"
    write_tree(folder, rng)
    expected = items(open_path(folder))
    archive = open_path(write_archives(folder, tmp_path)[kind])
    assert isinstance(archive, ImageArchive) and len(archive) == len(expected)
    for got, want in zip(items(archive), expected):
        assert torch.equal(got, want)


def test_archive_reopens_its_handle_after_pickling(tmp_path: Path, rng: np.random.Generator) -> None:
    folder = tmp_path / "tree"
    write_tree(folder, rng)
    archive = open_path(write_archives(folder, tmp_path)["tgz"])
    first = archive[0]  # opens a handle in this process
    copy = pickle.loads(pickle.dumps(archive))
    assert copy._files.current() is None
    assert torch.equal(copy[0], first) and torch.equal(copy[4], archive[4])


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc/self/fd (Linux)")
@pytest.mark.parametrize("kind", ["zip", "tar", "tgz", "npz", "npz-stored"])
def test_readers_close_their_files_when_closed_or_dropped(kind: str, tmp_path: Path, rng: np.random.Generator) -> None:
    if kind.startswith("npz"):
        path = tmp_path / "x.npz"
        save = np.savez if kind == "npz-stored" else np.savez_compressed
        save(path, arr_0=rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8), arr_1=np.arange(3))
    else:
        folder = tmp_path / "tree"
        write_tree(folder, rng)
        path = write_archives(folder, tmp_path)[kind]
    gc.collect()
    before = open_descriptors()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        reader = open_paths([path])
        reader[0]  # opens the reader's file in this process
        assert open_descriptors() == before + 1
        for dataset in reader.datasets:
            (dataset._array if kind.startswith("npz") else dataset).close()
        assert open_descriptors() == before
        reader[1]  # a read after close opens the file again
        assert open_descriptors() == before + 1
        del reader, dataset  # dropped while open: it closes its own file, nothing is left to the collector
        assert open_descriptors() == before
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


def test_workers_give_the_same_images_in_the_same_order(tmp_path: Path, rng: np.random.Generator) -> None:
    folder = tmp_path / "tree"
    write_tree(folder, rng)
    paths = [folder, write_archives(folder, tmp_path)["tgz"]]
    dataset = open_paths(paths)
    serial = items(dataset)
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=list)
    parallel = [image for batch in loader for image in batch]
    assert len(parallel) == len(serial) == 10
    assert all(torch.equal(a, b) for a, b in zip(parallel, serial))


def test_paths_are_concatenated_in_the_order_given(tmp_path: Path, rng: np.random.Generator) -> None:
    first = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    second = rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "first.npy", first)
    np.save(tmp_path / "second.npy", second)
    dataset = open_paths([tmp_path / "second.npy", tmp_path / "first.npy"])
    got = np.stack([image.permute(1, 2, 0).numpy() for image in items(dataset)])
    assert np.array_equal(got, np.concatenate([second, first]))
    assert dataset.name(4) == f"{tmp_path / 'first.npy'}[1]"


def test_arrays_nhwc_nchw_and_one_channel(tmp_path: Path, rng: np.random.Generator) -> None:
    nhwc = rng.integers(0, 256, (3, 5, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "nhwc.npy", nhwc)
    np.save(tmp_path / "nchw.npy", nhwc.transpose(0, 3, 1, 2))
    gray = rng.integers(0, 256, (2, 5, 6, 1), dtype=np.uint8)
    np.savez(tmp_path / "gray.npz", gray)
    for name in ("nhwc.npy", "nchw.npy"):
        got = np.stack([image.permute(1, 2, 0).numpy() for image in items(open_path(tmp_path / name))])
        assert np.array_equal(got, nhwc), name
    assert np.array_equal(open_path(tmp_path / "gray.npz")[1].numpy(), np.repeat(gray[1].transpose(2, 0, 1), 3, 0))


def test_npz_takes_images_else_the_only_array(tmp_path: Path, rng: np.random.Generator) -> None:
    images = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "named.npz", labels=np.arange(2), images=images)
    assert torch.equal(open_path(tmp_path / "named.npz")[1], torch.from_numpy(images[1].transpose(2, 0, 1).copy()))
    np.savez(tmp_path / "two.npz", x=images, y=images)
    with pytest.raises(InputError, match=r"holds the arrays \['x', 'y'\] and none is named 'images'"):
        open_path(tmp_path / "two.npz")


def test_float_arrays_need_a_range_and_map_to_0_255(tmp_path: Path, rng: np.random.Generator) -> None:
    values = rng.uniform(-1, 1, (2, 3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "f.npy", values)
    with pytest.raises(InputError, match=r"f.npy holds floats \(float32\); declare their range: input_range \(0, 1\)"):
        open_path(tmp_path / "f.npy")
    image = open_path(tmp_path / "f.npy", input_range=(-1.0, 1.0))[1]
    assert image.dtype == torch.float32
    assert np.allclose(image.numpy(), (values[1] + 1) * 127.5, atol=1e-4)
    with pytest.raises(InputError, match="outside the declared input range"):
        open_path(tmp_path / "f.npy", input_range=(0.0, 1.0))
    values[1, 0, 2, 2] = np.nan
    np.save(tmp_path / "nan.npy", values)
    with pytest.raises(InputError, match="image 1 contains non-finite values"):
        open_path(tmp_path / "nan.npy", input_range=(-1.0, 1.0))


@pytest.mark.parametrize(
    "array, message",
    [(np.zeros((4, 8, 8), np.uint8), r"shape \(4, 8, 8\); expected images"),
     (np.zeros((4, 8, 8, 3), np.int32), "holds int32 values"),
     (np.zeros((4, 8, 8, 5), np.uint8), "no axis of 3"),
     (np.zeros((0, 8, 8, 3), np.uint8), "holds no images")],
    ids=["three-dims", "int32", "five-channels", "empty"],
)
def test_bad_arrays_are_refused_at_open(array: np.ndarray, message: str, tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=message):
        open_path(tmp_path / "bad.npy")


def test_without_invalid_drops_only_the_broken(tmp_path: Path, rng: np.random.Generator) -> None:
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(tmp_path / f"{index}.png")
    (tmp_path / "1b.png").write_bytes(b"")
    dataset = open_paths([tmp_path])
    kept, failures = without_invalid(dataset)
    assert len(kept) == 3 and len(failures) == 1 and "1b.png is empty" in failures[0]
    assert torch.equal(kept[2], dataset[3])
    for index in range(3):
        (tmp_path / f"{index}.png").write_bytes(b"broken")
    with pytest.raises(InputError, match="all 4 images failed to decode"):
        without_invalid(open_paths([tmp_path]))


def test_missing_and_unsupported_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_path(tmp_path / "nowhere")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(InputError, match="unsupported input"):
        open_path(tmp_path / "x.csv")
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(InputError, match="is not a readable archive"):
        open_path(tmp_path / "broken.zip")


def test_links_that_are_not_followed_are_counted(tmp_path: Path, rng: np.random.Generator) -> None:
    folder, elsewhere = tmp_path / "images", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(folder / name)
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(elsewhere / "c.png")
    (folder / "alias.png").symlink_to("a.png")  # a link to a file: followed, as before
    (folder / "loop").symlink_to(".")  # a folder loop: never entered
    (folder / "self.png").symlink_to("self.png")  # a link to itself
    (folder / "gone.png").symlink_to("nowhere.png")  # broken
    (folder / "other").symlink_to(elsewhere)  # a folder: not followed
    with pytest.warns(UserWarning, match=r"folder .*images: 4 links skipped"):
        dataset = open_path(folder)
    assert [Path(dataset.name(i)).name for i in range(len(dataset))] == ["a.png", "alias.png", "b.png"]
    assert torch.equal(dataset[0], dataset[1])
    assert dataset.description == f"folder {folder} (3 images; 4 links skipped)"


def test_tar_and_zip_link_members_are_counted(tmp_path: Path, rng: np.random.Generator) -> None:
    data = png_bytes(Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)))
    with tarfile.open(tmp_path / "links.tar", "w") as archive:
        info = tarfile.TarInfo("a.png")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        for name, kind in (("sym.png", tarfile.SYMTYPE), ("hard.png", tarfile.LNKTYPE)):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = kind, "a.png"
            archive.addfile(link)
    with zipfile.ZipFile(tmp_path / "links.zip", "w") as archive:
        archive.writestr("a.png", data)
        link = zipfile.ZipInfo("sym.png")
        link.external_attr = (0o120777 << 16)  # a Unix symbolic link, as `zip --symlinks` stores it
        archive.writestr(link, "a.png")
    for name, count in (("links.tar", 2), ("links.zip", 1)):
        with pytest.warns(UserWarning, match=f"{count} links? skipped"):
            dataset = open_path(tmp_path / name)
        links = "1 link" if count == 1 else f"{count} links"
        assert len(dataset) == 1 and dataset.description.endswith(f"(1 images; {links} skipped)")


def test_control_characters_in_names_are_escaped_in_messages(tmp_path: Path) -> None:
    (tmp_path / "bad\nname\x1b.png").write_bytes(b"not an image")
    dataset = open_path(tmp_path)
    with pytest.raises(ImageDecodeError) as caught:
        dataset[0]
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "\x1b" not in message
    assert message.startswith(f"{tmp_path}/bad\\nname\\x1b.png could not be decoded")
    assert dataset.name(0) == f"{tmp_path}/bad\\nname\\x1b.png"


def test_decode_messages_are_the_same_skipped_or_not(tmp_path: Path, rng: np.random.Generator) -> None:
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "garbage.png").write_bytes(b"garbage")
    dataset = open_paths([tmp_path])
    with pytest.raises(ImageDecodeError, match=r"empty.png is empty \(0 bytes\); remove it$"):
        dataset[0]  # the library's message names no command-line flag
    kept, failures = without_invalid(dataset)
    assert len(kept) == 1 and len(failures) == 2
    assert not any("skip-invalid" in failure for failure in failures), failures
    assert failures[0].endswith("empty.png is empty (0 bytes); remove it")


def test_a_channel_error_shows_the_whole_array_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "rgba.npy", np.zeros((7, 4, 32, 32), np.uint8))
    with pytest.raises(InputError, match=r"rgba.npy has shape \(7, 4, 32, 32\): no axis of 3"):
        open_path(tmp_path / "rgba.npy")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_decoding_error_in_a_worker_arrives_as_itself(tmp_path: Path, num_workers: int) -> None:
    """An error met while decoding in a DataLoader worker reaches the reader with its own type and its own
    one-line message, as it does without workers (torch would put the worker's traceback in the message)."""
    from inception_score.errors import one_line_message
    from inception_score.readers.inputs import image_stream

    for index in range(4):
        Image.fromarray(np.full((8, 8, 3), 50 * index, np.uint8)).save(tmp_path / f"{index}.png")
    (tmp_path / "2-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    stream = image_stream(tmp_path, batch_size=2, num_workers=num_workers)
    with pytest.raises(ImageDecodeError) as caught:
        for _ in stream.batches:
            pass
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / '2-broken.png'} could not be decoded"), message
    assert "Traceback" not in message and "worker" not in message and "\n" not in message
    assert one_line_message(caught.value) == message
