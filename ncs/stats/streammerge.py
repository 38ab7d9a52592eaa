"""The streaming merge: tables merged one at a time, in any order, into one composite that only grows.

ncs-coalesce merges each host's table as soon as it has arrived and then
drops it, so its memory follows the composite, not the sum of the hosts.
Each arriving table is matched against the composite through an
`AddressIndex`: addresses already there are combined in place by their
fields' merge rules (one numpy operation per field), new ones are appended.
The cost of a table is proportional to its own size, whatever the size of
the composite.

The result equals `ncs.stats.merge.merge_tables` of the same tables in
their given order (a hypothesis property holds the two together), even
when the tables arrive in another order: every table comes with its
position (its rank), and the names of an address are kept with the rank
that brought each of them (`ncs.stats.nameunion.insert_ranked`).  Sums,
minima and maxima of integers do not depend on the order; values that are
not integers (only in Data::Dumper files) are added in arrival order.

Memory per composite address: the key (17 bytes), seven numbers (56), the
rank columns (8), the index (8-16), the names (a reference, plus the list
for a named address) and up to a quarter more while a column waits to grow.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from operator import itemgetter

import numpy as np

from ncs.stats.addresses import AddressKeys
from ncs.stats.addressindex import AddressIndex
from ncs.stats.columns import NO_NAMES, StatsColumns
from ncs.stats.growing import GrowingColumns, object_array
from ncs.stats.merge import merge_tables
from ncs.stats.nameunion import MAX_NAMES, bounded, insert_ranked
from ncs.stats.record import FIELDS, NAMES_KEY

#: nrank of an address without names.
_NO_RANK = -1
#: nrank of an address whose names came from several tables (their ranks are in `_ranks`).
_MIXED = -2
_RULES = {f.key: f.merge for f in FIELDS if f.key != NAMES_KEY}
_INT64 = np.dtype(np.int64)


def _compact(lists: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Return (LISTS as the composite keeps names, how many names each holds).

    One name is kept as the string itself, several as a tuple, none as
    NO_NAMES: no list object per address (a third of the memory of a named
    address), and nothing the cyclic garbage collector has to walk.
    """
    names = object_array(lists)
    lengths = np.fromiter(map(len, lists), np.int64, len(lists))
    single = np.flatnonzero(lengths == 1)
    if len(single):
        names[single] = object_array(list(map(itemgetter(0), names[single])))
    for i in np.flatnonzero(lengths > 1).tolist():
        names[i] = tuple(names[i])
    empty = np.flatnonzero(lengths == 0)
    if len(empty):
        names[empty] = object_array([NO_NAMES] * len(empty))
    return names, lengths


def _compact_one(names: Sequence[str]) -> str | Sequence[str]:
    """Return one address's NAMES as `_compact` keeps them."""
    return names[0] if len(names) == 1 else tuple(names) if names else NO_NAMES


def _expanded(names: str | Sequence[str]) -> Sequence[str]:
    """Return names kept by `_compact` as a sequence of names."""
    return (names,) if type(names) is str else names


def _distinct(table: StatsColumns) -> StatsColumns:
    """Return TABLE with each address once: itself, or (two spellings of one address) its own merge.

    That merge keeps every name (the cap is applied when the table joins the
    composite: a first list's repeats must not take the places of names).
    """
    if table.keys.ascending(strictly=True):
        return table
    ordered = table.keys.take(table.keys.order())
    if ordered.run_starts().all():
        return table
    return merge_tables([table], table.header, table.source, max_names=sys.maxsize)


class StreamingMerge:
    """A composite built by `add`ing tables one at a time; `blocks`/`table` give it in address order."""

    def __init__(self, max_names: int = MAX_NAMES, capacity: int = 1024) -> None:
        if max_names < 1:
            raise ValueError("max_names must be at least 1")
        self.max_names = max_names
        # first: the lowest rank of a table holding the address; nrank: the
        # rank that brought every name of the address, or _NO_RANK / _MIXED
        self._rows = GrowingColumns({"is6": bool, "hi": np.uint64, "lo": np.uint64,
                                     **{key: np.int64 for key in _RULES},
                                     "first": np.int32, "nrank": np.int32, "names": object},
                                    capacity)
        self._ranks: dict[int, list[int]] = {}  # row -> rank of each name, for _MIXED rows
        self._repeats: set[int] = set()  # rows whose names hold a repeat (kept from the first list)
        self._capped: set[int] = set()  # rows that had more names than max_names
        self._index = AddressIndex()
        self._seen_ranks: set[int] = set()

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def capped(self) -> int:
        """Return how many addresses had more names than the cap (the later ones were dropped)."""
        return len(self._capped)

    def keys(self) -> AddressKeys:
        """Return the composite's addresses, in the order they were first added."""
        return AddressKeys(self._rows.view("is6"), self._rows.view("hi"), self._rows.view("lo"))

    def add(self, table: StatsColumns, rank: int) -> None:
        """Merge TABLE, the table at position RANK of the merge order (each rank once).

        The table is not modified and not kept.  Raises ValueError for a
        rank given before.
        """
        if rank in self._seen_ranks:
            raise ValueError(f"rank {rank} was merged already")
        self._seen_ranks.add(rank)
        table = _distinct(table)
        rows, ends = self._index.lookup(table.keys, self.keys())
        hit = np.flatnonzero(rows >= 0)
        miss = np.flatnonzero(rows < 0)
        names, lengths = _compact(table.names)
        if len(hit):
            at = rows[hit]
            for key, rule in _RULES.items():
                self._combine(key, rule, at, table.numbers[key][hit])
            self._merge_names(at, names[hit], lengths[hit], rank)
        if len(miss):
            self._append(table, miss, names[miss], lengths[miss], ends[miss], rank)

    def _append(self, table: StatsColumns, miss: np.ndarray, names: np.ndarray, lengths: np.ndarray,
                ends: np.ndarray, rank: int) -> None:
        """Add the addresses at positions MISS of TABLE as new rows (NAMES: theirs, `_compact`)."""
        new = table.keys.take(miss)
        start, stop = self._rows.append({
            "is6": new.is6, "hi": new.hi, "lo": new.lo,
            **{key: table.numbers[key][miss] for key in _RULES},
            "first": np.full(len(miss), rank, np.int32),
            "nrank": np.where(lengths > 0, rank, _NO_RANK).astype(np.int32),
            "names": names})
        # a new address's list is the first: kept as it is, repeats too, up to the cap
        for i in np.flatnonzero(lengths > 1).tolist():
            self._settle(start + i, list(_expanded(names[i])), None)
        self._index.insert(new, np.arange(start, stop), ends, self.keys())

    def _combine(self, key: str, rule: str, rows: np.ndarray, values: np.ndarray) -> None:
        """Combine VALUES into column KEY at ROWS (distinct) by RULE: sum, min or max."""
        column = self._rows.view(key)
        if column.dtype == _INT64 and values.dtype == _INT64:
            old = column[rows]
            if rule != "sum":
                column[rows] = (np.maximum if rule == "max" else np.minimum)(old, values)
                return
            total = old + values
            # int64 wraps silently; an exact sum beyond it needs Python ints
            if not (((old ^ total) & (values ^ total)) < 0).any():
                column[rows] = total
                return
        if column.dtype == _INT64:
            self._rows.to_object(key)
            column = self._rows.view(key)
        op = {"sum": np.add, "max": np.maximum, "min": np.minimum}[rule]
        column[rows] = op(column[rows], values.astype(object))

    def _merge_names(self, rows: np.ndarray, incoming: np.ndarray, lengths: np.ndarray,
                     rank: int) -> None:
        """Add the names INCOMING (`_compact`; LENGTHS: how many) of the table at RANK to ROWS."""
        first_column, nrank_column, names_column = (self._rows.view(c) for c in ("first", "nrank", "names"))
        first = first_column[rows]
        becomes_first = rank < first
        first_column[rows] = np.minimum(first, rank)
        nrank = nrank_column[rows]
        # Nothing brought: only the repeats a former first list kept can change.
        slow = np.zeros(len(rows), bool)
        if self._repeats:
            slow = (lengths == 0) & becomes_first & np.isin(rows, list(self._repeats))
        # No names yet and one name brought: it is the union, whatever the order.
        single = (lengths == 1) & (nrank == _NO_RANK)
        if single.any():
            names_column[rows[single]] = incoming[single]
            nrank_column[rows[single]] = rank
        both = (lengths > 0) & (nrank != _NO_RANK)
        # The same list again (the usual case: hosts agree on an address's names).
        same = np.zeros(len(rows), bool)
        uniform = both & (nrank >= 0)
        same[uniform] = names_column[rows[uniform]] == incoming[uniform]
        nrank_column[rows[same]] = np.minimum(nrank[same], rank)
        slow |= (lengths > 1) & (nrank == _NO_RANK)
        slow |= both & ~same
        for i in np.flatnonzero(slow).tolist():
            row = int(rows[i])
            names, ranks = insert_ranked(_expanded(names_column[row]), self._ranks_of(row), rank,
                                         _expanded(incoming[i]),
                                         bool(becomes_first[i]), self.max_names)
            self._settle(row, names, ranks)

    def _ranks_of(self, row: int) -> list[int]:
        """Return the rank of each name of ROW."""
        nrank = int(self._rows.view("nrank")[row])
        if nrank == _MIXED:
            return self._ranks[row]
        return [nrank] * len(_expanded(self._rows.view("names")[row]))

    def _settle(self, row: int, names: list[str], ranks: list[int] | None) -> None:
        """Store NAMES (RANKS: the rank of each; None: all of the row's own rank) for ROW."""
        distinct = len(set(names))
        if distinct > self.max_names:
            self._capped.add(row)
        if len(names) > self.max_names:
            kept, kept_ranks = bounded(names, ranks or [0] * len(names), self.max_names)
            names, ranks = kept, (None if ranks is None else kept_ranks)
            distinct = len(set(names))
        if distinct < len(names):
            self._repeats.add(row)
        else:
            self._repeats.discard(row)
        self._ranks.pop(row, None)
        self._rows.view("names")[row] = _compact_one(names)
        if ranks is None:
            return
        nrank = self._rows.view("nrank")
        if not ranks:
            nrank[row] = _NO_RANK
        elif ranks[0] == ranks[-1]:
            nrank[row] = ranks[0]
        else:
            nrank[row] = _MIXED
            self._ranks[row] = ranks

    def order(self) -> np.ndarray:
        """Return the rows in ascending address order."""
        return self.keys().order()

    def rows(self, rows: np.ndarray, header: Sequence[str] = (), source: str = "") -> StatsColumns:
        """Return the composite's ROWS (positions, e.g. a slice of `order()`) as a table."""
        numbers = {key: self._rows.view(key)[rows] for key in _RULES}
        names = [(ns,) if type(ns) is str else ns for ns in self._rows.view("names")[rows].tolist()]
        if self._repeats:
            # a list with repeats may keep names past the cap (see nameunion.bounded)
            for i in np.flatnonzero(np.isin(rows, list(self._repeats))).tolist():
                names[i] = names[i][:self.max_names]
        return StatsColumns(list(header), self.keys().take(rows), numbers, names, source)

    def chunks(self, size: int) -> Iterator[StatsColumns]:
        """Yield the composite in ascending address order, SIZE rows at a time."""
        order = self.order()
        for start in range(0, len(order), size):
            yield self.rows(order[start:start + size])

    def table(self, header: Sequence[str] = (), source: str = "") -> StatsColumns:
        """Return the whole composite in ascending address order (a copy: for tests and small merges)."""
        return self.rows(self.order(), header, source)
