"""Writing stats files: one record at a time (the reference) or a whole table of columns at once.

Both are built from the layout of `ncs.stats.layout`.  `format_record` is the
plain writer of one record.  `chunk_blocks` writes a chunk of rows with the
numpy writer of `ncs.stats.fastwriter`, falling back to `format_record` for a
chunk that holds a value numpy cannot lay out; the output is the same byte
for byte.  `write_stats` replaces a file atomically with a table's text.

Numbers are written as Perl's sprintf("%.0f") prints them: rounded half to
even on the binary value, like C.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ncs import twocore
from ncs.files import replace_file
from ncs.stats import fastwriter
from ncs.stats.columns import StatsColumns
from ncs.stats.layout import CLOSING, GLUE, RECORD_OPEN, opening_text, separator
from ncs.stats.namearena import NameBytes
from ncs.stats.numbers import BadNumber, check_value
from ncs.stats.quoting import names_body, perl_quote
from ncs.stats.record import KEYS, NAMES_KEY, Record

#: Rows laid out at once by the numpy writer.  This bounds its working memory,
#: about 1.2 KiB a row of the widest records (IPv6, big numbers, a long
#: name): 10 MiB a chunk.  Small enough that glibc serves a chunk's arrays
#: from memory the previous chunk freed, instead of mapping (and the kernel
#: zeroing) fresh pages for every chunk, as it did for the 40 MiB of 32,768
#: rows; the fleet benchmark's composite of 3 million rows was written with
#: 0.43-0.54 us of CPU a row against 0.88-0.98 (in process, same run), and
#: chunks of 2,048-4,096 rows saved nothing more.
CHUNK_ROWS = 8192


def _record_format(number: str) -> str:
    """Return the %-format of a record block: address, separator, then each key's value."""
    parts = [RECORD_OPEN, "%s%s"]
    for glue, key in zip(GLUE, KEYS, strict=False):
        parts += [glue.replace("%", "%%"), "%s" if key == NAMES_KEY else number]
    parts.append(GLUE[-1].replace("%", "%%"))
    return "".join(parts)


# Python's round() rounds half to even exactly as C's %.0f does, and "%d" of
# its result is several times cheaper than "%.0f".
_FORMAT_INT = _record_format("%d")
_NAMES_AT = KEYS.index(NAMES_KEY)


def format_record(address: str, rec: Record) -> str:
    """Return the text block of one record, from "\\t'ADDR'" to "\\t},".

    Raises ValueError ("ADDR: KEY: reason: value") for a value no reader
    accepts (`ncs.stats.numbers`: not finite, negative or too large): what
    ncs writes, it reads back.
    """
    values = [getattr(rec, k) for k in KEYS]
    for key, value in zip(KEYS, values):
        if key != NAMES_KEY:
            try:
                check_value(value)
            except BadNumber as err:
                raise ValueError(f"{address}: {key}: {err}: {value!r}") from None
    values[_NAMES_AT] = names_body(values[_NAMES_AT])
    head = (perl_quote(address), separator(address))
    return _FORMAT_INT % (*head, *[v if type(v) is int or i == _NAMES_AT else round(v)
                                   for i, v in enumerate(values)])


def record_text(records: Iterable[tuple[str, Record]]) -> Iterator[str]:
    """Yield the record blocks of (address, Record) pairs (already in address order) in chunks."""
    chunk: list[str] = []
    for address, rec in records:
        chunk.append(format_record(address, rec))
        if len(chunk) >= 4096:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)


def chunk_blocks(chunk: StatsColumns, single: NameBytes | None = None) -> bytes | bytearray:
    """Return the record blocks of a CHUNK of rows (in ascending address order).

    SINGLE, if given, holds the rows whose one name comes as bytes (their
    names in CHUNK are empty): how the streaming merge hands its names over.
    """
    names = chunk.names
    named = {i: ns for i, ns in enumerate(names) if ns} if any(names) else None
    text = fastwriter.record_blocks(chunk.keys, chunk.numbers, named, single)
    if text is not None:
        return text
    # A value the numpy layout refuses (negative, not finite, huge): record by record.
    if single is not None and len(single):
        names = list(names)
        for row, name in zip(single.rows.tolist(), single.texts(), strict=True):
            names[row] = (name,)
        chunk = dataclasses.replace(chunk, names=names)
    return "".join(record_text((chunk.keys.text(i), chunk.record(i)) for i in range(len(chunk)))).encode()


def table_blocks(blocks_of: Callable[[int, int], bytes | bytearray], rows: int, v6_rows: int = 0,
                 spool_dir: str | None = None, two_cores: bool = True) -> Iterator[bytes | bytearray]:
    """Yield the record blocks of a table of ROWS rows in ascending address order, chunk by chunk.

    BLOCKS_OF(start, stop) returns the record blocks of rows START to STOP
    (`chunk_blocks` of them); the last V6_ROWS rows are IPv6 (their text
    costs about three times as much, which balances the halves of a big
    table written on two cores).  SPOOL_DIR is where the second core's half
    waits (see ncs.twocore.stream_in_halves).  Without TWO_CORES the table
    is written in this process only: less CPU in all, more wall time.
    """
    starts = list(range(0, rows, CHUNK_ROWS))
    if not two_cores:
        return (blocks_of(start, min(start + CHUNK_ROWS, rows)) for start in starts)
    first_v6 = rows - v6_rows
    cost = np.cumsum([min(CHUNK_ROWS, rows - a) + 2 * max(0, min(a + CHUNK_ROWS, rows) - max(a, first_v6))
                      for a in starts])
    split_at = int(np.searchsorted(cost, cost[-1] / 2)) if starts else None
    return twocore.stream_in_halves(lambda start: blocks_of(start, min(start + CHUNK_ROWS, rows)),
                                    starts, rows, spool_dir, split_at)


def column_blocks(columns: StatsColumns) -> Iterator[bytes | bytearray]:
    """Yield the record blocks of a whole table in ascending address order (big tables on two cores)."""
    table = columns.ascending()
    return table_blocks(lambda start, stop: chunk_blocks(table.slice(start, stop)), len(table),
                        int(np.count_nonzero(table.keys.is6)))


def file_chunks(header: list[str], blocks: Iterable[bytes | bytearray]) -> Iterator[bytes | bytearray]:
    """Yield a whole stats file as bytes: header lines, opening, record BLOCKS, closing."""
    yield opening_text(header).encode()
    yield from blocks
    yield CLOSING.encode()


def write_stats(path: str, columns: StatsColumns) -> None:
    """Replace the stats file at PATH with COLUMNS (header and records) atomically.

    Raises OSError, or ValueError for a value no reader accepts (see
    format_record); the previous file then stays as it was.
    """
    replace_file(path, file_chunks(columns.header, column_blocks(columns)))
