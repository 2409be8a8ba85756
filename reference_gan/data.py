"""The paper's data sets from their standard files, and balanced labelled subsets.

* MNIST: the four idx files (``.gz`` or uncompressed), pixels scaled to [0, 1] as the original code.
* CIFAR-10: the python batches (``cifar-10-batches-py``), pixels scaled to [-1, 1].
* SVHN: ``train_32x32.mat`` / ``test_32x32.mat`` (label 10 is digit 0), pixels scaled to [-1, 1].
* ``cifar10-partial``: the project's genuine but partial CIFAR-10 (one ``.npz``), for smoke runs.
* ``synthetic``: a few random images, for tests.

Files with a known official md5 are checked; a missing or damaged file raises :class:`DataError`
naming it and where to get it.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ReferenceGanError


class DataError(ReferenceGanError):
    """A data file is missing, damaged or of an unexpected format."""


@dataclass(frozen=True)
class DataSet:
    """Training and test arrays: images float32 ``(N, C, H, W)``, labels int64 ``(N,)``."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    value_range: tuple[float, float]  # of the pixels, as the generator must produce them

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return 10


MNIST_FILES = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}  # md5 of the .gz files, as distributed (and as torchvision lists them)
CIFAR10_FILES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
SVHN_FILES = {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373", "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"}
PARTIAL_CIFAR10 = "cifar10_prefix_partial.npz"


def _md5(path: Path) -> str:
    """The md5 of the file at ``path`` (the digest the data sets publish), read 1 MiB at a time."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(path: Path, md5: str | None, source: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path} not found: get it from {source} and point --data-dir at its folder")
    if md5 is not None and _md5(path) != md5:
        raise DataError(f"{path} has the wrong md5 (expected {md5}): the file is damaged, download it again from {source}")
    return path


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_mnist(folder: Path) -> DataSet:
    folder = Path(folder)
    arrays = {}
    for name, md5 in MNIST_FILES.items():
        gz, raw = folder / f"{name}.gz", folder / name
        path = _checked(gz, md5, "http://yann.lecun.com/exdb/mnist/") if gz.exists() or not raw.exists() else raw
        arrays[name] = _read_idx(path)

    def images(a: np.ndarray) -> np.ndarray:
        return (a.reshape(len(a), 1, 28, 28).astype(np.float32) / 255.0)

    return DataSet("mnist", images(arrays["train-images-idx3-ubyte"]), arrays["train-labels-idx1-ubyte"].astype(np.int64),
                   images(arrays["t10k-images-idx3-ubyte"]), arrays["t10k-labels-idx1-ubyte"].astype(np.int64), (0.0, 1.0))


def _to_signed_unit(images_uint8: np.ndarray) -> np.ndarray:
    return images_uint8.astype(np.float32) / 127.5 - 1.0


def read_cifar10_batches(folder: Path, names: list[str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10's python batches (all, or ``names``) as ``(N, 3, 32, 32)`` uint8 images and int64 labels.
    Each file's md5 is checked against the official one before it is unpickled: a pickle can run code,
    so only the genuine files are opened."""
    folder = Path(folder)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    parts = {}
    for name in names or list(CIFAR10_FILES):
        path = _checked(folder / name, CIFAR10_FILES[name], "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        parts[name] = (np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32),
                       np.asarray(batch[b"labels"], dtype=np.int64))
    return parts


def load_cifar10(folder: Path) -> DataSet:
    parts = read_cifar10_batches(folder)
    train = [parts[f"data_batch_{i}"] for i in range(1, 6)]
    return DataSet("cifar10", _to_signed_unit(np.concatenate([x for x, _ in train])), np.concatenate([y for _, y in train]),
                   _to_signed_unit(parts["test_batch"][0]), parts["test_batch"][1], (-1.0, 1.0))


def load_cifar10_partial(folder: Path) -> DataSet:
    """The partial CIFAR-10 (``cifar10_prefix_partial.npz``): only the images it holds, with their labels."""
    path = Path(folder)
    path = path / PARTIAL_CIFAR10 if path.is_dir() else path
    _checked(path, None, "the project's shared data folder (data/cifar10-partial)")
    with np.load(path, allow_pickle=False) as archive:
        def part(batch: str) -> tuple[np.ndarray, np.ndarray]:
            pixels = archive[f"{batch}_data_prefix"].reshape(-1, 3, 32, 32)
            return pixels, archive[f"{batch}_labels"][: len(pixels)]

        train = [part(f"data_batch_{i}") for i in range(1, 6)]
        test = part("test_batch")
    return DataSet("cifar10-partial", _to_signed_unit(np.concatenate([x for x, _ in train])),
                   np.concatenate([y for _, y in train]).astype(np.int64), _to_signed_unit(test[0]),
                   test[1].astype(np.int64), (-1.0, 1.0))


def load_svhn(folder: Path) -> DataSet:
    from scipy.io import loadmat

    folder = Path(folder)
    parts = {}
    for name, md5 in SVHN_FILES.items():
        mat = loadmat(_checked(folder / name, md5, "http://ufldl.stanford.edu/housenumbers/"))
        pixels = np.transpose(mat["X"], (3, 2, 0, 1))  # (32, 32, 3, N) -> (N, 3, 32, 32)
        labels = mat["y"].reshape(-1).astype(np.int64) % 10  # label 10 is the digit 0
        parts[name] = (_to_signed_unit(pixels), labels)
    return DataSet("svhn", *parts["train_32x32.mat"], *parts["test_32x32.mat"], (-1.0, 1.0))


def synthetic(kind: str = "cifar10", count: int = 200, seed: int = 0) -> DataSet:
    """Random images shaped like ``kind``'s, with labels: for tests of the training code only."""
    rng = np.random.default_rng(seed)
    shape, value_range = ((1, 28, 28), (0.0, 1.0)) if kind == "mnist" else ((3, 32, 32), (-1.0, 1.0))
    low, high = value_range

    def images(n: int) -> np.ndarray:
        return rng.uniform(low, high, size=(n, *shape)).astype(np.float32)

    labels = np.arange(count) % 10
    return DataSet(f"synthetic-{kind}", images(count), labels.astype(np.int64), images(count // 2),
                   (np.arange(count // 2) % 10).astype(np.int64), value_range)


def load(name: str, data_dir: Path | None) -> DataSet:
    """A data set by name: mnist, cifar10, cifar10-partial, svhn, synthetic-mnist, synthetic-cifar10."""
    if name.startswith("synthetic"):
        return synthetic("mnist" if name.endswith("mnist") else "cifar10")
    if data_dir is None:
        raise DataError(f"--data-dir is needed for {name}")
    loaders = {"mnist": load_mnist, "cifar10": load_cifar10, "cifar10-partial": load_cifar10_partial, "svhn": load_svhn}
    if name not in loaders:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(sorted(loaders))}, synthetic-mnist, synthetic-cifar10")
    return loaders[name](Path(data_dir))


def balanced_labelled_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of each class, chosen by a permutation seeded with ``seed``
    (the original code's selection: shuffle, then take the first ``per_class`` of each class)."""
    order = np.random.RandomState(seed).permutation(len(labels))
    chosen = []
    for klass in range(int(labels.max()) + 1):
        of_class = order[labels[order] == klass][:per_class]
        if len(of_class) < per_class:
            raise DataError(f"only {len(of_class)} examples of class {klass}, {per_class} asked for")
        chosen.append(of_class)
    return np.concatenate(chosen)
