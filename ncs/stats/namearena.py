"""Names kept as bytes in one growing buffer: a composite's millions of names without an object each.

A Python string costs 49 bytes before its text and lands, among the
short-lived objects of every host's table, in memory the allocator then
cannot give back.  The streaming merge keeps each address's name here
instead: its UTF-8 bytes appended to one numpy buffer, found by (start,
length).  Whole arrays of names are stored, compared and taken back at
once, as strings or, for the writer, as bytes (`NameBytes`).  A host's
table comes to the merge with its single names in bytes too
(`PackedNames`, made by the byte reader), so they are never strings on
the way in either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ncs.stats.columns import NO_NAMES
from ncs.stats.growing import FAST_GROWTH

_CODEC = ("utf-8", "surrogatepass")  # any Python string, and back


def _encoded(texts: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """Return (TEXTS' UTF-8 bytes one after the other, the byte length of each).

    TEXTS may be a list or a 1-D object array of strings.
    """
    joined = "".join(texts)
    blob = joined.encode(*_CODEC)
    if len(blob) == len(joined):  # all ASCII: a byte per character
        return blob, np.fromiter(map(len, texts), np.int64, len(texts))
    return blob, np.fromiter((len(t.encode(*_CODEC)) for t in texts), np.int64, len(texts))


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Return the positions start, start + 1, ... of every range, one after the other."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    begins = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - begins, lengths)


def _decoded(blob: bytes, lengths: np.ndarray) -> list[str]:
    """Return the texts of BLOB cut into pieces of LENGTHS bytes."""
    text = blob.decode(*_CODEC)
    ends = np.cumsum(lengths)
    if len(text) == len(blob):  # ASCII: cut the text where the bytes were cut
        return [text[a:b] for a, b in zip((ends - lengths).tolist(), ends.tolist(), strict=True)]
    return [blob[a:b].decode(*_CODEC) for a, b in zip((ends - lengths).tolist(), ends.tolist(), strict=True)]


@dataclass(frozen=True)
class NameBytes:
    """One name for each of some rows of a table, as UTF-8 bytes: what the numpy writer lays out."""

    #: the rows (positions in the table)
    rows: np.ndarray
    #: every row's name, one after the other (uint8)
    data: np.ndarray
    #: the length in bytes of each row's name
    lengths: np.ndarray

    @classmethod
    def of_texts(cls, rows: Sequence[int] | np.ndarray, texts: Sequence[str]) -> NameBytes:
        """Return the names TEXTS of ROWS as bytes."""
        blob, lengths = _encoded(texts)
        return cls(np.asarray(rows, np.int64), np.frombuffer(blob, np.uint8), lengths)

    def __len__(self) -> int:
        return len(self.rows)

    def texts(self) -> list[str]:
        """Return the names as strings, in the order of `rows`."""
        return _decoded(self.data.tobytes(), self.lengths)

    def take(self, keep: np.ndarray) -> NameBytes:
        """Return the names where the boolean array KEEP (one per name) is true."""
        return NameBytes(self.rows[keep], self.data[np.repeat(keep, self.lengths)], self.lengths[keep])

    def with_rows(self, rows: np.ndarray) -> NameBytes:
        """Return the same names as the names of ROWS (one for each name, in order)."""
        return NameBytes(rows, self.data, self.lengths)

    @classmethod
    def concat(cls, parts: Sequence[NameBytes]) -> NameBytes:
        """Return the names of PARTS one after the other (their rows as they are)."""
        if len(parts) == 1:
            return parts[0]
        return cls(np.concatenate([p.rows for p in parts]), np.concatenate([p.data for p in parts]),
                   np.concatenate([p.lengths for p in parts]))


class PackedNames(Sequence[Sequence[str]]):
    """A table's names, row by row, where the rows with exactly one name that is not empty hold it in bytes.

    What the stream reader gives a merge (`ncs.stats.streamread.StatsStream.for_merge`):
    the streaming merge stores and compares those bytes as they are, and
    no string is made for them.  Anything else that reads the rows gets
    them as the reader's tuples of strings, made once, on first use.
    """

    def __init__(self, rest: list[Sequence[str]], single: NameBytes) -> None:
        #: every row's names; NO_NAMES at the rows of `single`
        self.rest = rest
        #: the rows with one name, and that name (rows ascending)
        self.single = single
        self._whole: list[Sequence[str]] | None = None

    def whole(self) -> list[Sequence[str]]:
        """Return every row's names as tuples of strings (made on the first call)."""
        if self._whole is None:
            whole = list(self.rest)
            for row, text in zip(self.single.rows.tolist(), self.single.texts(), strict=True):
                whole[row] = (text,)
            self._whole = whole
        return self._whole

    def __len__(self) -> int:
        return len(self.rest)

    def __getitem__(self, index):  # type: ignore[override]
        return self.whole()[index]

    def __iter__(self) -> Iterator[Sequence[str]]:
        return iter(self.whole())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedNames):
            other = other.whole()
        return self.whole() == other

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Sequence[Sequence[str]]) -> list[Sequence[str]]:
        return self.whole() + list(other)


def pack_names(rows: int, named: np.ndarray, data: np.ndarray, lengths: np.ndarray) -> PackedNames:
    """Return the names of ROWS rows of which those at NAMED (ascending) have one name each.

    DATA: those names' UTF-8 bytes one after the other, LENGTHS bytes each.
    An empty name cannot be told from none in the arena: it stays a tuple.
    """
    rest: list[Sequence[str]] = [NO_NAMES] * rows
    empty = lengths == 0
    if empty.any():
        for row in named[empty].tolist():
            rest[row] = ("",)
        named, lengths = named[~empty], lengths[~empty]
    return PackedNames(rest, NameBytes(named, data, lengths))


class NameArena:
    """A growing buffer of names; `put` returns where they went, `get` and `equal` read them back."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self._bytes = np.empty(capacity, np.uint8)
        self.used = 0

    def put(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Append TEXTS; return (the start of each, its length in bytes)."""
        blob, lengths = _encoded(texts)
        return self._put(np.frombuffer(blob, np.uint8), lengths)

    def put_bytes(self, names: NameBytes) -> tuple[np.ndarray, np.ndarray]:
        """Append the NAMES given in bytes; return (the start of each, its length in bytes)."""
        return self._put(names.data, names.lengths)

    def _put(self, data: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        stop = self.used + len(data)
        if stop > len(self._bytes):
            grown = np.empty(max(stop, FAST_GROWTH * len(self._bytes)), np.uint8)
            grown[:self.used] = self._bytes[:self.used]
            self._bytes = grown
        self._bytes[self.used:stop] = data
        starts = self.used + np.cumsum(lengths) - lengths
        self.used = stop
        return starts, lengths

    def get(self, starts: np.ndarray, lengths: np.ndarray) -> list[str]:
        """Return the names stored at STARTS, LENGTHS bytes each."""
        return _decoded(self._bytes[_ranges(starts, lengths)].tobytes(), lengths)

    def name_bytes(self, rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> NameBytes:
        """Return the names stored at STARTS (LENGTHS bytes each) as the names of ROWS, in bytes."""
        return NameBytes(rows, self._bytes[_ranges(starts, lengths)], lengths)

    def equal(self, starts: np.ndarray, lengths: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Return, for each name stored at STARTS (LENGTHS bytes), whether it is TEXTS' one."""
        blob, theirs = _encoded(texts)
        return self._equal(starts, lengths, np.frombuffer(blob, np.uint8), theirs)

    def equal_bytes(self, starts: np.ndarray, lengths: np.ndarray, names: NameBytes) -> np.ndarray:
        """Return, for each name stored at STARTS (LENGTHS bytes), whether it is the one of NAMES."""
        return self._equal(starts, lengths, names.data, names.lengths)

    def _equal(self, starts: np.ndarray, lengths: np.ndarray, data: np.ndarray,
               theirs: np.ndarray) -> np.ndarray:
        same = theirs == lengths
        if not same.any():
            return same
        at = np.flatnonzero(same)
        mine = self._bytes[_ranges(starts[at], lengths[at])]
        offsets = np.cumsum(theirs) - theirs
        other = data[_ranges(offsets[at], lengths[at])]
        differ = (mine != other).astype(np.int64)
        # bytes that differ, per name: a name is equal when none of its bytes differs
        ends = np.cumsum(lengths[at])
        counts = np.diff(np.concatenate([[0], np.cumsum(differ)[ends - 1]])) if len(differ) else \
            np.zeros(len(at), np.int64)
        same[at] = counts == 0
        return same
