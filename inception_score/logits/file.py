"""Per-image logits on disk, the file format: score a big set once, re-score it without the network,
resume a run (:mod:`.saved_logits` has the calls that do so).

A logits file is a plain ``.npy`` of ``(N, 1008)`` float32 unbiased logits in input order (read with
``allow_pickle=False``: no code in it can run), and beside it ``<file>.json``, the sidecar: the
weights' sha256 and path, the input's description, N, how many rows are done, the device, dtype and
precision they were computed in, and a fingerprint of the images behind the rows done.

The fingerprint is one digest per block of :data:`BLOCK_ROWS` rows, over one digest per image: for
an image file its path, size, modification time (ns) and a CRC-32 of its first and last
:data:`~inception_score.logits.fingerprint.HASHED_BYTES` bytes (no decoding needed to check it); for any other image (an array, an
archive member) a CRC-32 of its decoded pixels, computed as they stream to the network. A resume recomputes the fingerprint of the rows it
keeps and refuses, naming the images, when it differs: the score of a logits file is never that of
images that have since changed. The rows themselves have a sha256 per block of :data:`BLOCK_ROWS`
(:mod:`.logits_checksums`), checked whenever they are re-scored or resumed: a row changed by hand is
refused, not scored.

Writing is crash-safe without a memory map: the sidecar is written first, then rows with ordinary
writes, and after them the sidecar again (:mod:`.atomic`: a temporary file of an unpredictable name,
fsync, rename; at most once a second and at the end), so an interrupt at any point, a full disk included, leaves a file whose sidecar counts
only rows that are on disk, and the same command resumes it. Two writers of one file are refused
by an advisory lock (``flock``) on the ``.npy``.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import open_no_follow, write_atomic
from ..score import strict_json
from ..errors import InputError
from .fingerprint import InputFingerprint, block_digest
from ..score.planned import PlannedStatistics
from ..score.statistics import SplitPlan, SplitRule, SplitStatistics
from ..readers.npz import READ_ERRORS as NPY_READ_ERRORS
from .checksums import (COUNT, DIGESTS, FLAG, OPTIONAL_TEXT, TEXT, RowChecksums, block_count, checked_fields,
                        checked_rows)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

NUM_CLASSES = 1008
ROW_BYTES = NUM_CLASSES * 4  # one float32 row
# 1: no fingerprint and no precision; 2: no checksums of the rows (both read by --from-logits, never resumed)
FORMAT = 3
ROWS_CHECKED = 3  # the first format whose rows have checksums
BLOCK_ROWS = 256  # rows per fingerprint digest and per row checksum: 50,000 images make a 20 KB sidecar
_SAVE_INTERVAL_S = 1.0  # the sidecar (with its fsyncs) at most this often, and at the end
_ROWS_PER_PASS = 4096  # rows read at a time when re-scoring: memory stays ~16 MB whatever N
_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class LogitsInfo:
    """What the sidecar JSON records. ``blocks``: the fingerprint of rows ``[0, done)``, one hex digest
    per :data:`BLOCK_ROWS` rows (the last block may be partial); ``fingerprint``: "files" or "pixels";
    ``rows``: the sha256 of the rows ``[0, done)`` themselves, per block likewise.
    ``weights_verified`` is what the writer found; a reader has only the file's word for it."""

    num_images: int
    done: int
    weights_sha256: str
    weights_path: str
    weights_verified: bool
    input: str
    format: int = 1
    fingerprint: str | None = None
    blocks: tuple[str, ...] = ()
    device: str | None = None
    dtype: str | None = None
    precision: str | None = None
    precision_note: str = ""
    rows: tuple[str, ...] = ()


# Each field's JSON types, and the fields every version wrote.
_FIELD_KINDS = {"num_images": COUNT, "done": COUNT, "weights_sha256": TEXT, "weights_path": TEXT, "weights_verified": FLAG,
                "input": TEXT, "format": COUNT, "fingerprint": OPTIONAL_TEXT, "blocks": DIGESTS, "device": OPTIONAL_TEXT,
                "dtype": OPTIONAL_TEXT, "precision": OPTIONAL_TEXT, "precision_note": TEXT, "rows": DIGESTS}
_REQUIRED = ("num_images", "done", "weights_sha256", "weights_path", "weights_verified", "input")


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _sidecar_if_any(path: Path) -> LogitsInfo | None:
    if not sidecar(path).is_file():
        return None
    try:
        data = json.loads(sidecar(path).read_text())
    except (ValueError, OSError) as error:
        raise InputError(f"{sidecar(path)} is not the description of a logits file ({error})") from None
    info = LogitsInfo(**checked_fields(data, _FIELD_KINDS, _REQUIRED, str(sidecar(path))))
    info = dataclasses.replace(info, blocks=tuple(info.blocks), rows=tuple(info.rows))
    if info.done > info.num_images:
        raise InputError(f"{sidecar(path)} counts {info.done} rows done of {info.num_images}: it was edited or "
                         "damaged; compute the file again with --save-logits")
    needed = block_count(info.done, BLOCK_ROWS)
    for name, since in (("blocks", 2), ("rows", ROWS_CHECKED)):
        held = len(getattr(info, name))
        if info.format >= since and info.done and held != needed:
            raise InputError(f"{sidecar(path)} holds {held} {name} digests for {info.done} rows, where its format "
                             f"has {needed}: it was edited or damaged; compute the file again with --save-logits")
    return info


def read_info(path: Path) -> LogitsInfo:
    """The sidecar of a logits file; :class:`InputError` when either is missing or not ours."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: give a logits file written by --save-logits (save_logits), with its "
                         f"{sidecar(path).name} beside it")
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a logits file written by --save-logits (save_logits)")
    info = _sidecar_if_any(path) if path.is_file() else None
    if info is None:
        raise InputError(f"{path} is not a logits file written by --save-logits (it needs {sidecar(path).name} beside it)")
    return info


def _write_info(path: Path, info: LogitsInfo) -> None:
    """The sidecar, atomically (:func:`~inception_score.atomic.write_atomic`: a temporary file of an
    unpredictable name, fsynced, renamed over the old one)."""
    write_atomic(sidecar(path), strict_json.dumps(dataclasses.asdict(info), indent=1) + "\n")


# --- writing ----------------------------------------------------------------------------------

def _refusal(path: Path, what: str) -> InputError:
    return InputError(f"{path} holds {what}: remove it and {sidecar(path).name}, or choose another --save-logits file")


def _npy_header(num_images: int) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(_DTYPE),
                                                  "fortran_order": False, "shape": (num_images, NUM_CLASSES)})
    return buffer.getvalue()


def _rows_offset(path: Path, num_images: int) -> int:
    """Where row 0 starts in the ``.npy`` at ``path``, after checking its header."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
    except NPY_READ_ERRORS as error:  # numpy parses the header's dict as Python: a damaged one raises any of these
        raise InputError(f"{path}: not a readable .npy ({error}); remove it and {sidecar(path).name}, or choose "
                         "another --save-logits file") from None
    if shape != (num_images, NUM_CLASSES) or dtype != _DTYPE or fortran:
        raise InputError(f"{path} has shape {shape} {dtype}, not ({num_images}, {NUM_CLASSES}) float32")
    return offset


class LogitsWriter:
    """Rows ``[done, N)`` of a logits file, written batch by batch; holds the file's lock until
    :meth:`close`."""

    def __init__(self, path: Path, info: LogitsInfo, handle: int, offset: int,
                 checksums: RowChecksums | None = None) -> None:
        self.path = path
        self._checksums = checksums or RowChecksums(BLOCK_ROWS)  # of the rows kept, when resumed
        self.info = info
        self._handle = handle
        self._offset = offset
        self._saved_done = info.done
        self._saved_at = 0.0  # the first batch is recorded at once
        self._blocks = list(info.blocks[: info.done // BLOCK_ROWS])  # complete blocks
        self._open_rows: list[bytes] = []  # digests of the rows of the partial block
        self._checked = info.done == 0

    @property
    def done(self) -> int:
        return self.info.done

    def check_kept(self, fingerprint: InputFingerprint, batches: Iterable[Any] | None) -> None:
        """Refuse, naming the images, unless the rows kept are of the images ``fingerprint`` sees now.
        ``batches``: images ``[0, done)`` as streamed (needed for a "pixels" fingerprint only)."""
        digests: list[bytes] = []
        if fingerprint.kind == "files":
            digests = fingerprint.rows(0, range(self.done))
        else:
            assert batches is not None
            for batch in batches:
                digests += fingerprint.rows(len(digests), batch)
        blocks = [block_digest(digests[start : start + BLOCK_ROWS]) for start in range(0, self.done, BLOCK_ROWS)]
        for index, (now, then) in enumerate(zip(blocks, self.info.blocks)):
            if now != then:
                start = index * BLOCK_ROWS
                changed = fingerprint.describe(start, min(start + BLOCK_ROWS, self.done))
                raise InputError(f"{self.path} holds the logits of other images: {changed}; remove it and "
                                 f"{sidecar(self.path).name}, or choose another --save-logits file")
        self._open_rows = digests[len(self._blocks) * BLOCK_ROWS :]
        self._checked = True

    def write(self, logits: torch.Tensor, digests: list[bytes], precision_note: str = "") -> None:
        """The next ``(B, 1008)`` rows, and their images' digests (:meth:`InputFingerprint.rows`)."""
        assert self._checked, "check_kept() before writing after rows kept"
        start = self.info.done
        stop = start + logits.shape[0]
        if stop > self.info.num_images or len(digests) != logits.shape[0]:
            raise InputError(f"more images than the {self.info.num_images} this logits file was opened for")
        rows = np.ascontiguousarray(logits.detach().to("cpu", torch.float32).numpy(), dtype=_DTYPE)
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():  # never written: a file of finite rows is one a reader can trust
            raise InputError(f"the network gave NaN or infinite logits for image {start + int(np.argmin(finite))}: "
                             "the weights may be damaged; the rows before it are kept in "
                             f"{self.path} (up to the last one saved)")
        data = memoryview(rows).cast("B")
        position = self._offset + start * ROW_BYTES
        try:
            while data:
                written = os.pwrite(self._handle, data, position)
                data, position = data[written:], position + written
        except OSError as error:
            raise self._failed(error) from None
        self._checksums.add(rows)
        for digest in digests:
            self._open_rows.append(digest)
            if len(self._open_rows) == BLOCK_ROWS:
                self._blocks.append(block_digest(self._open_rows))
                self._open_rows = []
        note = self.info.precision_note
        if precision_note and precision_note not in note:
            note = f"{note}; {precision_note}" if note else precision_note
        partial = [block_digest(self._open_rows)] if self._open_rows else []
        self.info = dataclasses.replace(self.info, done=stop, blocks=tuple(self._blocks + partial),
                                        precision_note=note, rows=self._checksums.digests())
        if stop == self.info.num_images or time.monotonic() - self._saved_at >= _SAVE_INTERVAL_S:
            self.save()

    def save(self) -> None:
        """The rows on disk, then the sidecar that counts them."""
        if self.info.done == self._saved_done and self._saved_at:
            return
        try:
            os.fsync(self._handle)
            _write_info(self.path, self.info)
        except OSError as error:
            raise self._failed(error) from None
        self._saved_done = self.info.done
        self._saved_at = time.monotonic()

    def _failed(self, error: OSError) -> InputError:
        full = error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
        what = "no space left on the device" if full else f"could not write ({error.strerror or error})"
        advice = "free some space, then run" if full else "run"
        return InputError(f"--save-logits {self.path}: {what}; the {self._saved_done} of {self.info.num_images} "
                          f"images saved in it stay valid: {advice} the same command again to resume")

    def close(self) -> None:
        """Record the rows written (best effort: the sidecar on disk stays valid if this fails) and
        release the lock."""
        if self._handle < 0:
            return
        try:
            if self._checked and self.info.done != self._saved_done:
                self.save()
        except InputError:
            pass
        finally:
            os.close(self._handle)
            self._handle = -1


def _lock(path: Path) -> int:
    """The ``.npy`` opened for writing (created empty when missing, never through a link) with its
    exclusive lock."""
    if path.exists() and not path.is_file():
        raise InputError(f"--save-logits {path} is not a regular file: choose a file path")
    try:
        handle = open_no_follow(path, os.O_RDWR | os.O_CREAT, 0o644)  # a link planted there is refused
    except OSError as error:
        raise InputError(f"--save-logits {path}: could not open it ({error.strerror or error})") from None
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise InputError(f"{path} is being written by another inception-score process (it holds the file's "
                             "lock): wait for that run to end, or choose another --save-logits file") from None
        except OSError:  # a file system without flock (some network mounts): written without a lock
            pass
    return handle


def open_for_writing(path: Path, scorer: Any, fingerprint: InputFingerprint, description: str) -> LogitsWriter:
    """A writer of the logits of ``fingerprint``'s images by ``scorer`` (its ``weights``, ``device``,
    ``dtype``, ``effective_precision``). It continues ``path`` when that holds the first rows of the
    same input, weights and precision (then call :meth:`LogitsWriter.check_kept` before writing), and
    starts it afresh when it is missing or holds no rows."""
    path = Path(path)
    weights = scorer.weights
    fresh = LogitsInfo(
        num_images=fingerprint.count, done=0, weights_sha256=weights.sha256, weights_path=str(weights.path),
        weights_verified=weights.verified, input=description, format=FORMAT, fingerprint=fingerprint.kind,
        device=str(scorer.device), dtype=scorer.dtype, precision=getattr(scorer, "effective_precision", "exact"))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _lock(path)
    try:
        saved = _sidecar_if_any(path)
        if saved is None and os.fstat(handle).st_size:
            raise InputError(f"{path} exists and is not a logits file written by --save-logits (no "
                             f"{sidecar(path).name} beside it): remove it, or choose another --save-logits file")
        if saved is not None and saved.done:
            _check_resumable(path, saved, fresh)
            offset = _rows_offset(path, saved.num_images)
            kept = RowChecksums(BLOCK_ROWS)
            for _ in _checked_chunks(path, saved, offset, saved.done, kept):
                pass  # the rows kept are checked, and their checksums continued by the writer
            return LogitsWriter(path, saved, handle, offset, kept)
        # Nothing kept (a new file, or a start interrupted before its first rows): the sidecar first.
        _write_info(path, fresh)
        header = _npy_header(fresh.num_images)
        os.ftruncate(handle, 0)
        os.pwrite(handle, header, 0)
        return LogitsWriter(path, fresh, handle, len(header))
    except OSError as error:
        os.close(handle)
        raise InputError(f"--save-logits {path}: could not write it ({error.strerror or error})") from None
    except BaseException:
        os.close(handle)
        raise


def _check_resumable(path: Path, saved: LogitsInfo, fresh: LogitsInfo) -> None:
    """Refuse, saying what differs, to continue rows of another input, weights or precision."""
    if saved.format < 2 or saved.fingerprint is None:
        raise _refusal(path, f"{saved.done} rows written by an older inception-score without a fingerprint of "
                             "their images, so a resume cannot tell whether the images changed (--from-logits "
                             "re-scores a complete one as it is)")
    if saved.format < ROWS_CHECKED:
        raise _refusal(path, f"{saved.done} rows written by an older inception-score without checksums of the rows, "
                             "so a resume cannot tell whether they were changed (--from-logits re-scores a complete "
                             "one as it is)")
    if saved.num_images != fresh.num_images:
        raise _refusal(path, f"logits of {saved.num_images} images of {saved.input}, not of the {fresh.num_images} "
                             "this run scores")
    if saved.input != fresh.input or saved.fingerprint != fresh.fingerprint:
        raise _refusal(path, f"logits of {saved.input}, not of {fresh.input}")
    if saved.weights_sha256 != fresh.weights_sha256:
        raise _refusal(path, f"logits of other weights (sha256 {saved.weights_sha256[:12]}…, these are "
                             f"{fresh.weights_sha256[:12]}…)")
    if (saved.dtype, saved.precision) != (fresh.dtype, fresh.precision):
        raise _refusal(path, f"logits computed in {saved.dtype} ({saved.precision} precision), this run computes in "
                             f"{fresh.dtype} ({fresh.precision}): use the same --precision and device")


# --- reading ----------------------------------------------------------------------------------

def statistics_of(path: Path, splits: int | SplitRule, shuffle_seed: int | None) -> tuple[SplitStatistics, LogitsInfo]:
    """The split statistics of a complete logits file (contiguous splits, or shuffled by ``shuffle_seed``;
    ``splits``: a count or a :class:`SplitRule`)."""
    stats, _, info = statistics_and_buckets_of(path, splits, shuffle_seed, None)
    return stats, info


def statistics_and_buckets_of(path: Path, splits: int | SplitRule, shuffle_seed: int | None, infinity_seed: int | None,
                              ) -> tuple[SplitStatistics, SplitStatistics | None, LogitsInfo]:
    """:func:`statistics_of`, and with ``infinity_seed`` the IS-infinity buckets' statistics of the same
    rows (:mod:`.infinity`), in the same pass over the file. A row that is not finite is an error
    naming it."""
    path = Path(path)
    info = read_info(path)
    if info.done != info.num_images:
        raise InputError(f"{path} holds {info.done} of {info.num_images} images: finish it by running the same "
                         "command with --save-logits again (it resumes), then re-score")
    offset = _rows_offset(path, info.num_images)
    planned = PlannedStatistics(SplitPlan.of(info.num_images, splits, shuffle_seed), NUM_CLASSES, infinity_seed)
    start = 0
    for array in _checked_chunks(path, info, offset, info.num_images):
        chunk = torch.from_numpy(array)
        finite = torch.isfinite(chunk).all(dim=1)
        if not bool(finite.all()):
            row = start + int(torch.nonzero(~finite)[0])
            raise InputError(f"{path}: row {row} (image {row}) holds NaN or infinite logits, which --save-logits "
                             "never writes: the file was changed or damaged; compute it again with --save-logits")
        planned.add_span(chunk, start)
        start += len(array)
    stats, buckets = planned.numpy()
    return stats, buckets, info


def _checked_chunks(path: Path, info: LogitsInfo, offset: int, count: int,
                    checksums: RowChecksums | None = None) -> Iterator[np.ndarray]:
    """Rows ``[0, count)`` of the ``.npy`` at ``path`` (rows from ``offset``), ``_ROWS_PER_PASS`` at a time,
    each checked against the sidecar's checksums (a file of a format without them: as they are);
    ``checksums``, when given, holds those of the rows at the end."""
    expected = offset + count * ROW_BYTES
    if path.stat().st_size < expected:
        raise InputError(f"{path} is truncated: {path.stat().st_size:,} bytes, {expected:,} expected for "
                         f"{count} rows; compute it again with --save-logits")
    rows = np.memmap(path, dtype=_DTYPE, mode="r", offset=offset, shape=(count, NUM_CLASSES)) if count else None
    chunks = (np.array(rows[start : start + _ROWS_PER_PASS]) for start in range(0, count, _ROWS_PER_PASS))
    if info.format < ROWS_CHECKED:
        yield from chunks
        return
    def refusal(where: str) -> InputError:
        return InputError(f"{path}: {where} differ from the checksum {sidecar(path).name} holds for them: the file "
                          f"was changed or damaged since it was written; remove it and {sidecar(path).name}, and "
                          "compute it again with --save-logits")
    yield from checked_rows(chunks, info.rows, checksums or RowChecksums(BLOCK_ROWS), refusal)
