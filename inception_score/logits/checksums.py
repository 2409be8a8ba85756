"""What keeps a logits file honest beyond its fingerprint of the images: a sha256 of each block of its
rows, recorded in the sidecar and checked whenever the rows are read (re-scored or resumed), and the
check that every field of the sidecar has the type the format gives it.

A checksum is no signature: whoever edits a row can write its new digest too. It catches a row changed
by hand, by a tool or by a damaged disk, which would otherwise change the score without a word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..score import strict_json
from ..errors import InputError

# What a field of a sidecar may hold: the JSON types allowed (bool is not an int here, though Python
# says it is; a float is never a count).
FieldKind = tuple[type, ...]
COUNT: FieldKind = (int,)
TEXT: FieldKind = (str,)
FLAG: FieldKind = (bool,)
OPTIONAL_TEXT: FieldKind = (str, type(None))
DIGESTS: FieldKind = (list,)  # of hex strings


def block_count(rows: int, block_rows: int) -> int:
    """How many digests cover ``rows`` rows, one per ``block_rows`` (the last block may be partial)."""
    return -(-rows // block_rows)


class RowChecksums:
    """The sha256 of each block of ``block_rows`` rows, built as rows are appended in order: complete
    blocks are final, the open one is hashed so far."""

    def __init__(self, block_rows: int) -> None:
        self.block_rows = block_rows
        self.rows = 0
        self._complete: list[str] = []
        self._open = hashlib.sha256()

    def add(self, rows: np.ndarray) -> None:
        """Append ``(B, C)`` rows, exactly as the file holds them (little-endian float32, C order)."""
        data = memoryview(np.ascontiguousarray(rows)).cast("B")
        row_bytes = data.nbytes // max(len(rows), 1)
        start = 0
        while start < len(rows):
            take = min(self.block_rows - self.rows % self.block_rows, len(rows) - start)
            self._open.update(data[start * row_bytes : (start + take) * row_bytes])
            start += take
            self.rows += take
            if self.rows % self.block_rows == 0:
                self._complete.append(self._open.hexdigest())
                self._open = hashlib.sha256()

    def digests(self) -> tuple[str, ...]:
        """One hex digest per block of the rows appended so far."""
        partial = [self._open.hexdigest()] if self.rows % self.block_rows else []
        return tuple(self._complete + partial)


def checked_rows(chunks: Iterable[np.ndarray], expected: Sequence[str], checksums: RowChecksums,
                 refusal: Callable[[str], InputError]) -> Iterator[np.ndarray]:
    """``chunks`` (the rows in order, ``(B, C)`` each), each passed on once the blocks it completes
    match ``expected``; the last, partial block is compared when they end. The first block that differs
    is ``refusal("rows A-B")``. ``checksums``: empty, it holds the checksums of every row at the end."""
    block_rows, checked = checksums.block_rows, 0
    for chunk in chunks:
        checksums.add(chunk)
        complete = checksums.rows // block_rows
        if complete > checked:
            now = checksums.digests()
            for index in range(checked, complete):
                if index >= len(expected) or now[index] != expected[index]:
                    raise refusal(_rows_of(index, block_rows, checksums.rows))
            checked = complete
        yield chunk
    now = checksums.digests()
    if len(now) > checked and (checked >= len(expected) or now[checked] != expected[checked]):
        raise refusal(_rows_of(checked, block_rows, checksums.rows))


def _rows_of(index: int, block_rows: int, rows: int) -> str:
    start = index * block_rows
    return f"rows {start}-{min(start + block_rows, rows) - 1}"


def checked_fields(data: Any, kinds: Mapping[str, FieldKind], required: Sequence[str], where: str) -> dict[str, Any]:
    """``data`` (a parsed JSON object) when every key is one of ``kinds``, each ``required`` key is
    present, every value has its kind (a list of :data:`DIGESTS` holds hex strings), and counts are not
    negative; else :class:`InputError` naming the field and what it holds."""
    if not isinstance(data, dict):
        raise InputError(f"{where} holds a JSON {type(data).__name__}, not an object of fields")
    unknown = sorted(set(data) - set(kinds))
    missing = [key for key in required if key not in data]
    if unknown or missing:
        what = f"unknown field(s) {unknown}" if unknown else f"no field(s) {missing}"
        raise InputError(f"{where} has {what}: it was not written by this version of inception-score, or was edited")
    for key, value in data.items():
        kind = kinds[key]
        wrong = not isinstance(value, kind) or (isinstance(value, bool) and bool not in kind)
        if kind is COUNT and not wrong and value < 0:
            wrong = True
        if kind is DIGESTS and not wrong and not all(isinstance(item, str) and _is_hex(item) for item in value):
            wrong = True
        if wrong:
            expected = {COUNT: "a whole number of at least 0", TEXT: "a string", FLAG: "true or false",
                        OPTIONAL_TEXT: "a string or null", DIGESTS: "a list of hex digests"}[kind]
            raise InputError(f"{where}: field {key!r} holds {_shown(value)}, not {expected}: the file was edited or "
                             "damaged; compute it again with --save-logits")
    return data


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) > 0


def _shown(value: Any) -> str:
    text = strict_json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
