"""Stats files as numpy columns: the form reports work on, without a Record object per address.

A report needs whole columns (sums, maxima, orderings) and, for the classic
text and JSON, every address's values once.  Building a Record per address
costs more than reading the file, so `read_columns` turns the canonical
layout straight into columns; every other dialect (and every error) goes
through the parser of `agent.statsparse`, so values and messages are the
parser's in both cases.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from agent.statsfile import Record, StatsFile
from agent.statsparse import (
    CanonicalBlocks,
    NotCanonical,
    canonical_blocks,
    canonical_header,
    parse_stats,
    read_text,
)
from agent.twocore import ForkedCall, can_fork

__all__ = ["NUMBER_KEYS", "StatsColumns", "columns_from_text", "read_columns"]

#: The numeric keys of a record, in the order of `Record`'s fields.
NUMBER_KEYS = ("B", "C", "E", "S", "R", "W", "T")

_EMPTY: Sequence[str] = ()
#: Below this many characters of records, a file is read in one process.
_TWO_CORE_CHARS = 8 << 20
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


@dataclass(slots=True, eq=False)
class StatsColumns:
    """A stats file as columns; row i is addresses[i], B[i], ..., names[i].

    Each numeric column is int64 when all its values are integers that fit,
    which is what ncs and the original agent write; otherwise it is an object
    array of the values exactly as parsed (floats, huge integers), so that
    nothing is rounded on the way to a report.  `names[i]` is a sequence of
    names (an empty tuple for an unnamed address); treat it as read-only.
    """

    header: list[str]
    addresses: list[str]
    B: np.ndarray
    C: np.ndarray
    E: np.ndarray
    S: np.ndarray
    R: np.ndarray
    W: np.ndarray
    T: np.ndarray
    names: list[Sequence[str]]
    source: str = ""

    def __len__(self) -> int:
        return len(self.addresses)

    def column(self, key: str) -> np.ndarray:
        """Return the numeric column KEY ("B", "C", "E", "S", "R", "W" or "T")."""
        return getattr(self, key)

    def all_int64(self, keys: Sequence[str] = NUMBER_KEYS) -> bool:
        """Return whether every column of KEYS is int64 (no float or huge value anywhere)."""
        return all(self.column(k).dtype == np.int64 for k in keys)

    def value(self, key: str, row: int) -> int | float:
        """Return the value of KEY in ROW as a Python number."""
        v = self.column(key)[row]
        return v.item() if isinstance(v, np.generic) else v

    def record(self, row: int) -> Record:
        """Return ROW as a new Record."""
        b, c, e, s, r, w, t = (self.value(k, row) for k in NUMBER_KEYS)
        return Record(B=b, C=c, E=e, S=s, R=r, W=w, T=t, N=list(self.names[row]))

    def take(self, order: np.ndarray) -> StatsColumns:
        """Return new columns holding the rows at positions ORDER, in that order."""
        rows = order.tolist()
        addresses, names = self.addresses, self.names
        numbers = [self.column(k)[order] for k in NUMBER_KEYS]
        return StatsColumns(self.header, [addresses[i] for i in rows], *numbers,
                            [names[i] for i in rows], self.source)

    def to_statsfile(self) -> StatsFile:
        """Return the same data as a StatsFile of Records (in row order)."""
        return StatsFile(list(self.header), {a: self.record(i) for i, a in enumerate(self.addresses)},
                         self.source)

    @classmethod
    def from_statsfile(cls, stats: StatsFile) -> StatsColumns:
        """Return the columns of a parsed StatsFile (its records in file order)."""
        records = list(stats.records.values())
        numbers = [_number_column([getattr(r, k) for r in records]) for k in NUMBER_KEYS]
        names = [tuple(r.N) if r.N else _EMPTY for r in records]
        return cls(list(stats.header), list(stats.records), *numbers, names, stats.source)


def _number_column(values: list) -> np.ndarray:
    """Return VALUES as int64 if all are ints that fit, else as an object array of them."""
    if all(type(v) is int for v in values):
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def read_columns(path: str, *, allow_empty: bool = True) -> StatsColumns:
    """Read the stats file at PATH ('-': standard input) into columns.

    Raises StatsFormatError as `agent.statsparse.read_stats` does (a
    malformed or unreadable file, naming it and the line).
    """
    source = "<stdin>" if path == "-" else path
    return columns_from_text(read_text(path, source), source, allow_empty=allow_empty)


def columns_from_text(text: str, source: str = "<string>", *, allow_empty: bool = True) -> StatsColumns:
    """Return the columns of the stats file TEXT (any dialect); see `read_columns`."""
    fast = _canonical_columns(text, source)
    if fast is not None:
        return fast
    return StatsColumns.from_statsfile(parse_stats(text, source, allow_empty=allow_empty))


def _canonical_columns(text: str, source: str) -> StatsColumns | None:
    """Return the columns of TEXT in the exact canonical layout; None if it is not (or empty)."""
    found = canonical_header(text)
    if found is None:
        return None
    header, start, end = found
    # Millions of small strings and lists hold no cycles: the collector's
    # passes over them would only cost time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if end - start >= _TWO_CORE_CHARS and can_fork():
            # A big file is read on two cores, each half in whole records.
            mid = text.find("\n\t},\n", start + (end - start) // 2)
            mid = end if mid < 0 else mid + 5
            second_half = ForkedCall(lambda: _range_columns(text, mid, end))
            first, second = _range_columns(text, start, mid), second_half.result()
            parts = None if first is None or second is None else [first, second]
        else:
            whole = _range_columns(text, start, end)
            parts = None if whole is None else [whole]
    finally:
        if gc_was_enabled:
            gc.enable()
    if parts is None:
        return None
    addresses = [a for part in parts for a in part.addresses]
    if len(set(addresses)) != len(addresses):
        return None  # a duplicate address: let the parser name its line
    numbers = [_concatenate([part.numbers[i] for part in parts]) for i in range(len(NUMBER_KEYS))]
    names = [n for part in parts for n in part.names]
    return StatsColumns(header, addresses, *numbers, names, source)


class _Part(NamedTuple):
    """The columns of a run of canonical records."""

    addresses: list[str]
    numbers: list[np.ndarray]
    names: list[Sequence[str]]


def _range_columns(text: str, start: int, end: int) -> _Part | None:
    """Return the columns of the records in TEXT[START:END], or None if they are not canonical."""
    addresses: list[str] = []
    numbers: list[list[np.ndarray]] = [[] for _ in NUMBER_KEYS]
    names: list[Sequence[str]] = []
    try:
        for blocks in canonical_blocks(text, start, end):
            addresses += blocks.addresses
            for column, key in zip(numbers, NUMBER_KEYS, strict=True):
                column.append(_text_column(blocks.column(CanonicalBlocks.NUMBER_FIELDS[key])))
            lists = blocks.column(5)
            if "\\" in "".join(lists):
                names += [tuple(ns) if ns else _EMPTY for ns in blocks.names()]
            else:  # no escapes: every name is the text between two quotes
                names += [n[1:-2].split("','") if n else _EMPTY for n in lists]
    except NotCanonical:
        return None
    return _Part(addresses, [_concatenate(column) for column in numbers], names)


def _text_column(texts: list[str]) -> np.ndarray:
    """Return decimal TEXTS (checked by the canonical regex) as int64, or as Python ints if huge."""
    column = np.fromstring("\n".join(texts), dtype=np.int64, sep="\n")
    # numpy's text reader saturates a value beyond int64 at the limits
    # instead of failing; any value at a limit is read again exactly.
    if not ((column == _INT64_MAX) | (column == _INT64_MIN)).any():
        return column
    return _number_column(list(map(int, texts)))


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """Return the chunks' columns as one (int64, or object if any chunk is object)."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    if all(p.dtype == np.int64 for p in parts):
        return np.concatenate(parts)
    column = np.empty(sum(len(p) for p in parts), dtype=object)
    column[:] = [v for p in parts for v in p.tolist()]
    return column
