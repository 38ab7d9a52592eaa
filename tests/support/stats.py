"""Stats files in tests: a dict view of a table, and the plain record-by-record writer.

Production code holds a stats file as `ncs.stats.columns.StatsColumns`; a
test usually wants "the record of this address".  `StatsFile` is that view,
made from the real reader's columns, so every test still reads through the
production reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ncs.files import replace_file
from ncs.stats import reader
from ncs.stats.addresses import address_key
from ncs.stats.columns import StatsColumns
from ncs.stats.header import header_number, header_value
from ncs.stats.layout import CLOSING, opening_text
from ncs.stats.record import Record
from ncs.stats.writer import record_text


@dataclass
class StatsFile:
    """A stats file as a test looks at it: header lines and {address: Record} in file order."""

    header: list[str]
    records: dict[str, Record]
    source: str = ""

    def header_value(self, key: str) -> str | None:
        return header_value(self.header, key)

    def header_number(self, key: str) -> float | None:
        return header_number(self.header, key)

    def columns(self) -> StatsColumns:
        return StatsColumns.from_records(self.header, self.records.items(), self.source)


def as_file(table: StatsColumns) -> StatsFile:
    """Return the dict view of TABLE (its rows in order)."""
    return StatsFile(list(table.header), {a: table.record(i) for i, a in enumerate(table.addresses)},
                     table.source)


def read_stats(path: str, *, allow_empty: bool = True) -> StatsFile:
    """Read PATH with the production reader; return the dict view."""
    return as_file(reader.read_stats(path, allow_empty=allow_empty))


def parse_stats(text: str, source: str = "<string>", *, allow_empty: bool = True) -> StatsFile:
    """Parse TEXT with the production reader; return the dict view."""
    return as_file(reader.parse_stats(text, source, allow_empty=allow_empty))


def sorted_records(records: Mapping[str, Record]) -> list[tuple[str, Record]]:
    """Return RECORDS' items in file order (IPv4 numerically, then IPv6); ValueError for a bad address."""
    return sorted(records.items(), key=lambda item: address_key(item[0]))


def stats_text(header: list[str], records: Iterable[tuple[str, Record]]) -> str:
    """Return a whole stats file written record by record (the reference writer)."""
    return opening_text(header) + "".join(record_text(records)) + CLOSING


def write_atomic(path: str, header: list[str], records: Iterable[tuple[str, Record]]) -> None:
    """Write a stats file of (address, Record) pairs (already in file order), record by record."""
    replace_file(path, [stats_text(header, records).encode()])
