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

from ncs.agent.statsfile import Record, StatsFile
from ncs.agent.statsparse import (
    CanonicalBlocks,
    NotCanonical,
    canonical_blocks,
    canonical_header,
    canonical_names,
    pack_addresses,
    parse_stats,
    read_text,
)
from ncs.agent.twocore import map_in_halves

__all__ = [
    "NUMBER_KEYS",
    "AddressKeys",
    "StatsColumns",
    "address_keys",
    "columns_from_text",
    "keys_from_packed",
    "read_columns",
]

#: The numeric keys of a record, in the order of `Record`'s fields.
NUMBER_KEYS = ("B", "C", "E", "S", "R", "W", "T")

_EMPTY: Sequence[str] = ()
#: Below this many characters of records, a file is read in one process.
_TWO_CORE_CHARS = 8 << 20
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


class AddressKeys(NamedTuple):
    """Numeric columns of addresses: their order and their networks, without text.

    `is6[i]` is True for an IPv6 address; an IPv4 address is `lo[i]` (and
    `hi[i]` is 0), an IPv6 address is `hi[i] * 2**64 + lo[i]`.
    """

    is6: np.ndarray
    hi: np.ndarray
    lo: np.ndarray

    def take(self, order: np.ndarray) -> AddressKeys:
        """Return the keys at positions ORDER."""
        return AddressKeys(self.is6[order], self.hi[order], self.lo[order])

    def ascending(self, strictly: bool = False) -> bool:
        """Return whether the addresses are in ascending order (IPv4 first; STRICTLY: no repeats)."""
        if len(self.is6) < 2:
            return True
        f0, f1 = self.is6[:-1], self.is6[1:]
        h0, h1 = self.hi[:-1], self.hi[1:]
        low = self.lo[1:] > self.lo[:-1] if strictly else self.lo[1:] >= self.lo[:-1]
        return bool(((f1 > f0) | ((f1 == f0) & ((h1 > h0) | ((h1 == h0) & low)))).all())

    def strictly_ascending(self) -> bool:
        """Return whether the addresses are ascending without any repeated value."""
        return self.ascending(strictly=True)


def address_keys(addresses: list[str]) -> AddressKeys:
    """Return the key columns of ADDRESSES; raises ValueError naming a bad address."""
    try:
        return keys_from_packed(*pack_addresses(addresses))
    except (OSError, ValueError):
        for a in addresses:
            try:
                pack_addresses([a])
            except (OSError, ValueError):
                raise ValueError(f"not an IP address: {a!r}") from None
        raise


def keys_from_packed(v6: list[bool], packed4: bytes, packed6: bytes) -> AddressKeys:
    """Return the key columns of addresses given their IPv6 flags and inet_pton bytes."""
    n = len(v6)
    is6 = np.array(v6, dtype=bool) if n else np.zeros(0, dtype=bool)
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    lo[~is6] = np.frombuffer(packed4, dtype=">u4")
    words = np.frombuffer(packed6, dtype=">u8").reshape(-1, 2)
    hi[is6] = words[:, 0]
    lo[is6] = words[:, 1]
    return AddressKeys(is6, hi, lo)


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
    #: the addresses' key columns when the reader had them at hand, else None
    keys: AddressKeys | None = None

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
        keys = None if self.keys is None else self.keys.take(order)
        return StatsColumns(self.header, [addresses[i] for i in rows], *numbers,
                            [names[i] for i in rows], self.source, keys)

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
        # A big file is read on two cores, each half in whole records.
        ranges = [(start, end)]
        if end - start >= _TWO_CORE_CHARS:
            mid = text.find("\n\t},\n", start + (end - start) // 2)
            ranges = [(start, end)] if mid < 0 else [(start, mid + 5), (mid + 5, end)]
        parts: list[_Part | None] = []
        names: list[Sequence[str]] = []
        for part in map_in_halves(lambda r: _range_columns(text, *r), ranges, wire=(_packed, _unpacked)):
            parts.append(part)
            # The first half's names are parsed here while the child still reads.
            names += _names(part.name_lists) if part is not None else []
        if None in parts:
            return None
        addresses = [a for part in parts for a in part.addresses]
        keys = _join_keys([part.keys for part in parts])
        # Strictly ascending addresses (as ncs writes them) are distinct texts;
        # otherwise the texts are compared.
        if not keys.strictly_ascending() and len(set(addresses)) != len(addresses):
            return None  # a duplicate address: let the parser name its line
        numbers = [_concatenate([part.numbers[i] for part in parts]) for i in range(len(NUMBER_KEYS))]
    finally:
        if gc_was_enabled:
            gc.enable()
    return StatsColumns(header, addresses, *numbers, names, source, keys)


class _Part(NamedTuple):
    """The columns of a run of canonical records (names still as their list bodies)."""

    addresses: list[str]
    numbers: list[np.ndarray]
    #: the text between the brackets of each record's names list
    name_lists: list[str]
    keys: AddressKeys


def _range_columns(text: str, start: int, end: int) -> _Part | None:
    """Return the columns of the records in TEXT[START:END], or None if they are not canonical."""
    addresses: list[str] = []
    numbers: list[list[np.ndarray]] = [[] for _ in NUMBER_KEYS]
    name_lists: list[str] = []
    keys: list[AddressKeys] = []
    try:
        for blocks in canonical_blocks(text, start, end):
            addresses += blocks.addresses
            keys.append(keys_from_packed(blocks.v6, blocks.packed4, blocks.packed6))
            for column, key in zip(numbers, NUMBER_KEYS, strict=True):
                column.append(_text_column(blocks.column(CanonicalBlocks.NUMBER_FIELDS[key])))
            name_lists += blocks.column(5)
    except NotCanonical:
        return None
    return _Part(addresses, [_concatenate(column) for column in numbers], name_lists, _join_keys(keys))


# A part crosses from the forked reader as a few big objects: addresses and
# names lists (which hold no newline) joined into one text each, because
# pickling half a million small strings and lists costs more than parsing them.
_Packed = tuple[str, str, list[np.ndarray], AddressKeys]


def _packed(part: _Part | None) -> _Packed | None:
    if part is None:
        return None
    return "\n".join(part.addresses), "\n".join(part.name_lists), part.numbers, part.keys


def _unpacked(packed: _Packed | None) -> _Part | None:
    if packed is None:
        return None
    addresses, name_lists, numbers, keys = packed
    if not len(keys.is6):
        return _Part([], numbers, [], keys)
    return _Part(addresses.split("\n"), numbers, name_lists.split("\n"), keys)


def _join_keys(parts: list[AddressKeys]) -> AddressKeys:
    """Return the key columns of PARTS one after the other."""
    if not parts:
        return AddressKeys(np.zeros(0, bool), np.zeros(0, np.uint64), np.zeros(0, np.uint64))
    return AddressKeys(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _names(bodies: list[str]) -> list[Sequence[str]]:
    """Return the names of every record from the bodies of their names lists."""
    if "\\" in "".join(bodies):
        return [canonical_names(b) if b else _EMPTY for b in bodies]
    # No escapes anywhere: canonical_names' own fast case, without a call per record.
    return [b[1:-2].split("','") if b else _EMPTY for b in bodies]


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
    return _number_column([v for p in parts for v in p.tolist()])
