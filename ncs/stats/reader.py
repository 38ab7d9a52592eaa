"""Reading stats files into columns: a vectorised fast path for the canonical layout, the parser for the rest.

`read_stats` returns a `StatsColumns` or raises `StatsFormatError`; never a
partial table.  Text in exactly the layout `ncs.stats.layout` declares (what
ncs and the original agent write) is split by one regular expression built
from that layout, and each number field becomes an int64 column in one C
call; a big file is read on two cores.  Anything else (another dialect, an
error) goes to `ncs.stats.parser`, so values and messages are the parser's
in both cases.  A key declared with a `default_from` (a field newer than
some files) may be missing from the layout: such files still take the fast
path, and the missing values are the other key's, as the parser gives them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from ncs import gcpause, twocore
from ncs.stats.addresses import AddressKeys, pack_addresses
from ncs.stats.columns import NO_NAMES, StatsColumns, concat_numbers, number_column
from ncs.stats.errors import StatsFormatError, UnreadableStats
from ncs.stats.layout import (
    BLOCK_CLOSE,
    BLOCK_OPEN,
    CLOSING,
    GLUE,
    OPENING,
    RECORD_OPEN,
    comment_text,
    field_line,
)
from ncs.stats.numbers import MAX_DIGITS
from ncs.stats.parser import parse_general
from ncs.stats.quoting import decode_stats_bytes, unquote_single
from ncs.stats.record import DEFAULT_FROM, FIELDS, KEYS, NAMES_KEY, NUMBER_KEYS

__all__ = ["StatsFormatError", "parse_stats", "read_stats", "read_text"]


def read_stats(path: str, *, allow_empty: bool = True) -> StatsColumns:
    """Read the stats file at PATH ('-' reads standard input) into columns.

    Returns the table (its `source` is PATH, or "<stdin>").  Raises
    StatsFormatError for a malformed file, naming it and the line, and
    also when the file cannot be read ("PATH: cannot read: reason").
    """
    source = "<stdin>" if path == "-" else path
    return parse_stats(read_text(path, source), source, allow_empty=allow_empty)


def read_text(path: str, source: str) -> str:
    """Return the decoded text of PATH or stdin (the bytes are freed on return).

    Raises StatsFormatError ("SOURCE: cannot read: reason") when it cannot be read.
    """
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise UnreadableStats(source, exc.strerror or str(exc)) from exc
    return decode_stats_bytes(data)


def parse_stats(text: str, source: str = "<string>", *, allow_empty: bool = True) -> StatsColumns:
    """Return the table of the stats file TEXT, in any accepted dialect.

    An empty (or whitespace-only) text is the original agent's empty table and
    gives an empty table, unless ALLOW_EMPTY is false, when it raises.
    Addresses are kept as written.  Raises StatsFormatError naming SOURCE
    and the line of the first problem.
    """
    if not text.strip():
        if allow_empty:
            return StatsColumns.empty(source=source)
        raise StatsFormatError(source, 1, "empty file, expected a stats file header and table")
    fast = _canonical_columns(text, source)
    if fast is not None:
        return fast
    header, records = parse_general(text, source)
    return StatsColumns.from_records(header, records, source)


# --------------------------------------------------------------------------
# The fast path, built from the layout.

# No leading zeros (Perl reads a bare 010 as octal; the parser rejects it),
# no sign and at most MAX_DIGITS digits: anything else is no value a stats
# file may hold (ncs.stats.numbers), and the parser names its line.
_INT = rf"(0|[1-9][0-9]{{0,{MAX_DIGITS - 1}}}+)"
# The body of a names list.  The loop is unrolled (runs of plain characters,
# then one escape) because a per-character alternation doubles the cost of
# the whole match.
_NAMES = r"((?:'[^'\\\n]*+(?:\\[^\n][^'\\\n]*+)*+',)*+)"


def _field_pattern(key: str) -> str:
    """Return the pattern of KEY's line in a record block; the value is its group.

    A key with a default (a field newer than some files) may be missing: its
    line is optional and its group then None.
    """
    before, after = field_line(key)
    line = re.escape(before) + (_NAMES if key == NAMES_KEY else _INT) + re.escape(after)
    return f"(?:{line})?" if key in DEFAULT_FROM else line


# One record block; the groups are the address, then each key's value in
# file order.  Addresses are checked by inet_pton afterwards: cheaper than a
# strict regex.
_RECORD = re.compile(
    re.escape(RECORD_OPEN) + r"'([0-9A-Fa-f:.]+)'[\t ]" + re.escape(BLOCK_OPEN)
    + "".join(_field_pattern(f.key) for f in FIELDS)
    + re.escape(BLOCK_CLOSE)
)
_HEAD = re.compile(r"\n?((?:#[^\n]*\n)*)" + re.escape(OPENING))
#: The end of every record block: where a chunk of the body may be cut.
_RECORD_END = GLUE[-1].lstrip(",")
_NAME_IN_LIST = re.compile(r"'((?:[^'\\]|\\.)*)',", re.S)
#: About the length of a record block without names (to judge a text's size in records).
_TYPICAL_RECORD_CHARS = 128
#: Characters of body text handed to one regex split; bounds peak memory.
_CHUNK_CHARS = 1 << 22
_INT64_MAX = np.iinfo(np.int64).max


class _Blocks(NamedTuple):
    """One chunk of canonical record blocks, split into its fields (all still text).

    `parts` is the regex split of the chunk: field f of record i is
    `parts[i * STRIDE + OFFSET[f]]` ("address" or a key).
    """

    parts: list[str]
    keys: AddressKeys

    STRIDE = 2 + len(KEYS)
    OFFSET = {"address": 1, **{key: 2 + i for i, key in enumerate(KEYS)}}

    def column(self, field: str) -> list[str]:
        """Return the text of FIELD ("address", or a key) of every record."""
        return self.parts[self.OFFSET[field]::self.STRIDE]


class _NotCanonical(Exception):
    """The text is not exactly in the canonical layout (not an error: use the parser)."""


def _canonical_header(text: str) -> tuple[list[str], int, int] | None:
    """Return (header lines, body start, body end) of canonical TEXT, or None if it is not."""
    head = _HEAD.match(text)
    if head is None or not text.endswith(CLOSING):
        return None
    body_end = len(text) - len(CLOSING)
    if body_end < head.end():
        return None
    # split("\n"), not splitlines(): the latter also breaks at \x85 or U+2028.
    header = [comment_text(line) for line in head.group(1).split("\n")[:-1]]
    return header, head.end(), body_end


def _blocks(text: str, start: int, end: int) -> Iterator[_Blocks]:
    """Yield the record blocks of TEXT[START:END] chunk by chunk (bounded memory).

    Every address is checked with inet_pton.  Raises _NotCanonical as soon as
    a chunk is not a run of canonical record blocks.
    """
    # The split leaves the text between matches at every stride-th place; a
    # canonical body has nothing between its records.  Columns are then taken
    # by slicing, so that conversions run in C over whole columns rather than
    # in a Python loop per record.
    pos = start
    while pos < end:
        stop = text.find(_RECORD_END, min(pos + _CHUNK_CHARS, end))
        stop = end if stop < 0 else min(stop + len(_RECORD_END), end)
        parts = _RECORD.split(text[pos:stop])
        if any(parts[0::_Blocks.STRIDE]):
            raise _NotCanonical
        try:
            # The checked addresses' bytes are kept: they are the sort keys.
            keys = AddressKeys.from_packed(*pack_addresses(parts[1::_Blocks.STRIDE]))
        except (OSError, ValueError):
            raise _NotCanonical from None
        yield _Blocks(parts, keys)
        pos = stop


def _canonical_columns(text: str, source: str) -> StatsColumns | None:
    """Return the table of TEXT in the exact canonical layout; None if it is not.

    None means "not recognised", never "malformed": the parser then reads the
    text and reports the error, if there is one, with its line.
    """
    found = _canonical_header(text)
    if found is None:
        return None
    header, start, end = found
    with gcpause.paused():
        # A big file is read on two cores, each half in whole records.
        ranges = [(start, end)]
        records = (end - start) // _TYPICAL_RECORD_CHARS
        if twocore.worth_splitting(records):
            mid = text.find(_RECORD_END, start + (end - start) // 2)
            if mid >= 0:
                mid += len(_RECORD_END)
                ranges = [(start, mid), (mid, end)]
        parts: list[_Part | None] = []
        names: list[Sequence[str]] = []
        for part in twocore.map_in_halves(lambda r: _range_columns(text, *r), ranges, records,
                                          wire=(_packed, _unpacked)):
            parts.append(part)
            # The first half's names are parsed here while the child still reads.
            names += _names(part.name_lists) if part is not None else []
        if None in parts:
            return None
        addresses = [a for part in parts for a in part.addresses]
        keys = AddressKeys.concat([part.keys for part in parts])
        # Strictly ascending addresses (as ncs writes them) are distinct texts;
        # otherwise the texts are compared.
        if not keys.ascending(strictly=True) and len(set(addresses)) != len(addresses):
            return None  # a duplicate address: let the parser name its line
        numbers = {key: concat_numbers([part.numbers[key] for part in parts]) for key in NUMBER_KEYS}
    return StatsColumns(header, keys, numbers, names, source, addresses)


class _Part(NamedTuple):
    """The columns of a run of canonical records (names still as their list bodies)."""

    addresses: list[str]
    numbers: dict[str, np.ndarray]
    #: the text between the brackets of each record's names list
    name_lists: list[str]
    keys: AddressKeys


def _range_columns(text: str, start: int, end: int) -> _Part | None:
    """Return the columns of the records in TEXT[START:END], or None if they are not canonical."""
    addresses: list[str] = []
    numbers: dict[str, list[np.ndarray]] = {key: [] for key in NUMBER_KEYS}
    name_lists: list[str] = []
    keys: list[AddressKeys] = []
    try:
        for blocks in _blocks(text, start, end):
            addresses += blocks.column("address")
            keys.append(blocks.keys)
            for key, column in numbers.items():
                if key not in DEFAULT_FROM:
                    column.append(_text_column(blocks.column(key)))
            for key, source in DEFAULT_FROM.items():
                numbers[key].append(_defaulted_column(blocks.column(key), blocks.column(source),
                                                      numbers[source][-1]))
            name_lists += blocks.column(NAMES_KEY)
    except _NotCanonical:
        return None
    return _Part(addresses, {k: concat_numbers(c) for k, c in numbers.items()}, name_lists,
                 AddressKeys.concat(keys))


# A part crosses from the forked reader as a few big objects: addresses and
# names lists (which hold no newline) joined into one text each, because
# pickling half a million small strings and lists costs more than parsing them.
_Packed = tuple[str, str, dict[str, np.ndarray], AddressKeys]


def _packed(part: _Part | None) -> _Packed | None:
    if part is None:
        return None
    return "\n".join(part.addresses), "\n".join(part.name_lists), part.numbers, part.keys


def _unpacked(packed: _Packed | None) -> _Part | None:
    if packed is None:
        return None
    addresses, name_lists, numbers, keys = packed
    if not len(keys):
        return _Part([], numbers, [], keys)
    return _Part(addresses.split("\n"), numbers, name_lists.split("\n"), keys)


def list_names(body: str) -> list[str]:
    """Return the names of the body of a canonical names list ("'a','b\\'c',"), unescaped."""
    if not body:
        return []
    if "\\" not in body:
        return body[1:-2].split("','")
    return [unquote_single(m) for m in _NAME_IN_LIST.findall(body)]


def _names(bodies: list[str]) -> list[Sequence[str]]:
    """Return the names of every record from the bodies of their names lists."""
    if "\\" in "".join(bodies):
        return [list_names(b) if b else NO_NAMES for b in bodies]
    # No escapes anywhere: list_names' own fast case, without a call per record.
    return [b[1:-2].split("','") if b else NO_NAMES for b in bodies]


def _defaulted_column(texts: list[str | None], source_texts: list[str],
                      source: np.ndarray) -> np.ndarray:
    """Return the column of an optional key: its TEXTS, SOURCE's value where a record lacks it.

    SOURCE is the column of the key it defaults to, SOURCE_TEXTS that column's texts.
    """
    if None not in texts:
        return _text_column(texts)  # type: ignore[arg-type]
    if texts.count(None) == len(texts):
        return source.copy()  # a file from before the key existed
    return _text_column([s if t is None else t for t, s in zip(texts, source_texts, strict=True)])


def _text_column(texts: list[str]) -> np.ndarray:
    """Return decimal TEXTS (checked by the canonical regex) as int64, or as Python ints beyond it."""
    column = np.fromstring("\n".join(texts), dtype=np.int64, sep="\n")
    # numpy's text reader saturates a value beyond int64 at the limit
    # instead of failing; any value at the limit is read again exactly
    # (at most MAX_DIGITS digits: int() takes no time over them).
    if not (column == _INT64_MAX).any():
        return column
    return number_column(list(map(int, texts)))
