"""The stats table in memory: one row per address, one numpy column per numeric field.

`StatsColumns` is what the reader returns, what a report groups, what the
coalescer merges and what the column writer writes.  Building a Python
object per address costs more than reading the file, so nothing here does
that unless asked for one row (`record`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ncs.stats.addresses import AddressKeys
from ncs.stats.header import header_number, header_value
from ncs.stats.record import NAMES_KEY, NUMBER_KEYS, Record

#: The names of an unnamed address (shared, read-only).
NO_NAMES: Sequence[str] = ()


def number_column(values: list) -> np.ndarray:
    """Return VALUES as int64 if all are ints that fit, else as an object array of them as they are.

    Floats and integers beyond int64 (possible in Data::Dumper files) are
    kept exactly; nothing is rounded on the way to a report or a merge.
    """
    if all(type(v) is int for v in values):
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def concat_numbers(parts: list[np.ndarray]) -> np.ndarray:
    """Return number columns one after the other (int64, or object if any part is object)."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    if all(p.dtype == np.int64 for p in parts):
        return np.concatenate(parts)
    return number_column([v for p in parts for v in p.tolist()])


@dataclass(eq=False)
class StatsColumns:
    """A stats file's header and records as columns; row i is the address `addresses[i]`.

    `numbers[key]` is the column of each numeric key of `ncs.stats.record`:
    int64 when every value is an integer that fits, otherwise an object
    array of the values as read.  `names[i]` is a sequence of names (empty
    for an unnamed address); treat `names` as read-only: it is a list, or,
    for a table read for a merge, a `ncs.stats.namearena.PackedNames`.
    `keys` are the addresses as numbers (`ncs.stats.addresses`).  The address texts are
    kept as read; a table made by a merge has none and spells them from
    its keys when asked.
    """

    header: list[str]
    keys: AddressKeys
    numbers: dict[str, np.ndarray]
    names: Sequence[Sequence[str]]
    source: str = ""
    texts: list[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def addresses(self) -> list[str]:
        """Return the address texts, row by row (as read, or canonical for a merged table)."""
        if self.texts is None:
            self.texts = self.keys.texts()
        return self.texts

    def column(self, key: str) -> np.ndarray:
        """Return the numeric column KEY ("B", "C", ...)."""
        return self.numbers[key]

    def value(self, key: str, row: int) -> int | float:
        """Return the value of numeric KEY in ROW as a Python number."""
        v = self.numbers[key][row]
        return v.item() if isinstance(v, np.generic) else v

    def record(self, row: int) -> Record:
        """Return ROW as a new Record."""
        values = {k: self.value(k, row) for k in NUMBER_KEYS}
        return Record(**values, **{NAMES_KEY: list(self.names[row])})

    def all_int64(self, keys: Sequence[str] = NUMBER_KEYS) -> bool:
        """Return whether every column of KEYS is int64 (no float or huge value anywhere)."""
        return all(self.numbers[k].dtype == np.int64 for k in keys)

    def take(self, rows: np.ndarray) -> StatsColumns:
        """Return a new table of the rows at positions ROWS, in that order."""
        at = rows.tolist()
        names = self.names
        texts = None if self.texts is None else [self.texts[i] for i in at]
        return StatsColumns(self.header, self.keys.take(rows),
                            {k: c[rows] for k, c in self.numbers.items()},
                            [names[i] for i in at], self.source, texts)

    def slice(self, start: int, stop: int) -> StatsColumns:
        """Return rows START to STOP as a new table (its columns are views of this one's)."""
        at = slice(start, stop)
        texts = None if self.texts is None else self.texts[at]
        return StatsColumns(self.header, self.keys.take(at), {k: c[at] for k, c in self.numbers.items()},
                            self.names[at], self.source, texts)

    def ascending(self) -> StatsColumns:
        """Return the table in ascending address order (itself if it is already).

        Equal addresses spelled differently keep their order.
        """
        if self.keys.ascending():
            return self  # stats files are written in address order
        return self.take(self.keys.order())

    def header_value(self, key: str) -> str | None:
        """Return the text of header line KEY, stripped, or None (see ncs.stats.header)."""
        return header_value(self.header, key)

    def header_number(self, key: str) -> float | None:
        """Return the number leading header line KEY, or None (see ncs.stats.header)."""
        return header_number(self.header, key)

    @classmethod
    def from_records(cls, header: list[str], records: Iterable[tuple[str, Record]],
                     source: str = "") -> StatsColumns:
        """Return the table of (address, Record) pairs, in their order.

        Raises ValueError naming the first address that is not an IP address.
        """
        pairs = list(records)
        texts = [a for a, _ in pairs]
        numbers = {k: number_column([getattr(r, k) for _, r in pairs]) for k in NUMBER_KEYS}
        names = [tuple(getattr(r, NAMES_KEY)) or NO_NAMES for _, r in pairs]
        return cls(list(header), AddressKeys.of(texts), numbers, names, source, texts)

    @classmethod
    def empty(cls, header: list[str] | None = None, source: str = "") -> StatsColumns:
        """Return a table of no records."""
        return cls(list(header or []), AddressKeys.empty(),
                   {k: np.zeros(0, np.int64) for k in NUMBER_KEYS}, [], source, [])
