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

Names: an address with one name (almost all that have any) keeps it as
bytes in a `NameArena`, compared and stored for whole tables at once; an
address with several keeps a tuple in `_many`.  A table read for a merge
(`StatsStream.for_merge`) brings those single names in bytes already
(`PackedNames`), so most names never become strings on their way in.
Memory per composite address: the key (17 bytes), eight numbers (64), the
rank columns (8), where its name is (12) and the name's bytes, and the
index (10-20).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from ncs.stats.addresses import AddressKeys
from ncs.stats.addressindex import AddressIndex
from ncs.stats.columns import NO_NAMES, StatsColumns
from ncs.stats.growing import FAST_GROWTH, GrowingColumns, object_array
from ncs.stats.merge import merge_tables
from ncs.stats.namearena import NameArena, NameBytes, PackedNames
from ncs.stats.nameunion import MAX_NAMES, bounded, insert_ranked
from ncs.stats.numbers import MAX_VALUE
from ncs.stats.record import FIELDS, NAMES_KEY

#: nrank of an address without names.
_NO_RANK = -1
#: nrank of an address whose names came from several tables (their ranks are in `_ranks`).
_MIXED = -2
#: nlen of an address with several names (they are in `_many`); 0: none; above 0: one, in the arena.
_MANY = -1
_RULES = {f.key: f.merge for f in FIELDS if f.key != NAMES_KEY}
_INT64 = np.dtype(np.int64)
_SUM_MIN_MAX = {"sum": np.add, "max": np.maximum, "min": np.minimum}


@dataclass
class _Names:
    """The names of a table's rows, as the merge takes them."""

    #: how many names each row has
    counts: np.ndarray
    #: the rows with exactly one name (not empty), and that name in bytes
    single: NameBytes
    #: every row's names as they came; at the rows of `single`, the name or NO_NAMES (see `lists_of`)
    lists: np.ndarray

    @classmethod
    def of(cls, names: Sequence[Sequence[str]]) -> _Names:
        """Return the NAMES of a table's rows (a list, or PackedNames from the reader), sorted out."""
        if isinstance(names, PackedNames):
            counts = np.fromiter(map(len, names.rest), np.int64, len(names))
            counts[names.single.rows] = 1
            return cls(counts, names.single, object_array(names.rest))
        every = object_array(names)
        counts = np.fromiter(map(len, names), np.int64, len(names))
        ones = np.flatnonzero(counts == 1)
        texts = list(map(itemgetter(0), every[ones]))
        # an empty name cannot be told from "no names" in the arena: it goes with the rest
        if not all(texts):
            kept = np.fromiter(map(bool, texts), bool, len(texts))
            ones, texts = ones[kept], [t for t in texts if t]
        return cls(counts, NameBytes.of_texts(ones, texts), every)

    def lists_of(self, rows: np.ndarray) -> list[Sequence[str]]:
        """Return the names of ROWS (positions in the table, ascending), a sequence of strings each."""
        lists = self.lists[rows].tolist()
        in_bytes = (self.counts[rows] == 1) & ~np.fromiter(map(bool, lists), bool, len(lists))
        if in_bytes.any():
            texts = self.single.take(np.isin(self.single.rows, rows[in_bytes])).texts()
            for i, text in zip(np.flatnonzero(in_bytes).tolist(), texts, strict=True):
                lists[i] = (text,)
        return lists

    def take(self, rows: np.ndarray) -> _Names:
        """Return the names of ROWS (positions in the table, ascending) only."""
        where = np.full(len(self.counts), -1, np.int64)
        where[rows] = np.arange(len(rows))
        kept = self.single.take(where[self.single.rows] >= 0)
        return _Names(self.counts[rows], kept.with_rows(where[kept.rows]),
                      self.lists[rows])


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
    """A composite built by `add`ing tables one at a time; `order` and `rows` give it in address order."""

    def __init__(self, max_names: int = MAX_NAMES, capacity: int = 1024) -> None:
        if max_names < 1:
            raise ValueError("max_names must be at least 1")
        self.max_names = max_names
        # first: the lowest rank of a table holding the address; nrank: the rank
        # that brought every name of the address, or _NO_RANK / _MIXED; nstart
        # and nlen: where its one name is in the arena (nlen 0: none; _MANY)
        self._rows = GrowingColumns({"is6": bool, "hi": np.uint64, "lo": np.uint64,
                                     **{key: np.int64 for key in _RULES},
                                     "first": np.int32, "nrank": np.int32,
                                     "nstart": np.int64, "nlen": np.int32},
                                    capacity, FAST_GROWTH)
        self._arena = NameArena()
        self._many: dict[int, tuple[str, ...]] = {}  # row -> its names, for rows of several
        self._ranks: dict[int, list[int]] = {}  # row -> rank of each name, for _MIXED rows
        self._repeats: set[int] = set()  # rows whose names hold a repeat (kept from the first list)
        self._capped: set[int] = set()  # rows that had more names than max_names
        self._index: AddressIndex | None = AddressIndex()  # None once sealed
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
        if self._index is None:
            raise RuntimeError("the merge was sealed: it takes no more tables")
        if rank in self._seen_ranks:
            raise ValueError(f"rank {rank} was merged already")
        self._seen_ranks.add(rank)
        table = _distinct(table)
        rows, ends = self._index.lookup(table.keys, self.keys())
        hit = np.flatnonzero(rows >= 0)
        miss = np.flatnonzero(rows < 0)
        names = _Names.of(table.names)
        if len(hit):
            at = rows[hit]
            for key, rule in _RULES.items():
                self._combine(key, rule, at, table.numbers[key][hit])
            self._merge_names(at, names.take(hit), rank)
        if len(miss):
            self._append(table, miss, names.take(miss), ends[miss], rank)

    def seal(self) -> None:
        """Take no more tables, and free the address index (10-20 bytes an address) that only `add` uses.

        Called before the composite is written, so that the sort and the
        writing do not add to the peak of the merge.
        """
        self._index = None

    def _append(self, table: StatsColumns, miss: np.ndarray, names: _Names, ends: np.ndarray,
                rank: int) -> None:
        """Add the addresses at positions MISS of TABLE as new rows (NAMES: theirs)."""
        new = table.keys.take(miss)
        count = len(miss)
        nstart = np.zeros(count, np.int64)
        nlen = np.zeros(count, np.int32)
        nstart[names.single.rows], nlen[names.single.rows] = self._arena.put_bytes(names.single)
        start, stop = self._rows.append({
            "is6": new.is6, "hi": new.hi, "lo": new.lo,
            **{key: table.numbers[key][miss] for key in _RULES},
            "first": np.full(count, rank, np.int32),
            "nrank": np.where(names.counts > 0, rank, _NO_RANK).astype(np.int32),
            "nstart": nstart, "nlen": nlen})
        # a new address's list is the first: kept as it is, repeats too, up to the cap
        rest = np.flatnonzero(names.counts > 0)
        rest = rest[~np.isin(rest, names.single.rows)]
        for i in rest.tolist():
            self._settle(start + i, list(names.lists[i]), None)
        assert self._index is not None  # add() checked
        self._index.insert(new, np.arange(start, stop), ends, self.keys())

    def _combine(self, key: str, rule: str, rows: np.ndarray, values: np.ndarray) -> None:
        """Combine VALUES into column KEY at ROWS (distinct) by RULE: sum, min or max."""
        column = self._rows.view(key)
        if column.dtype == _INT64 and values.dtype == _INT64:
            old = column[rows]
            if rule != "sum":
                column[rows] = _SUM_MIN_MAX[rule](old, values)
                return
            total = old + values
            # int64 wraps silently; an exact sum beyond it needs Python ints
            if not (((old ^ total) & (values ^ total)) < 0).any():
                column[rows] = total
                return
        if column.dtype == _INT64:
            self._rows.to_object(key)
            column = self._rows.view(key)
        combined = _SUM_MIN_MAX[rule](column[rows], values.astype(object))
        if rule == "sum":
            # as merge_tables: a sum past the bound every reader holds values
            # to stays at the bound (values are never negative, so clamping
            # at each step equals clamping once)
            combined = np.minimum(combined, MAX_VALUE)
        column[rows] = combined

    def _merge_names(self, rows: np.ndarray, incoming: _Names, rank: int) -> None:
        """Add the names INCOMING of the table at RANK to the addresses at ROWS."""
        first_column, nrank_column = self._rows.view("first"), self._rows.view("nrank")
        nstart_column, nlen_column = self._rows.view("nstart"), self._rows.view("nlen")
        first = first_column[rows]
        becomes_first = rank < first
        first_column[rows] = np.minimum(first, rank)
        nrank = nrank_column[rows]
        counts = incoming.counts
        single = incoming.single
        # Nothing brought: only the repeats a former first list kept can change.
        slow = np.zeros(len(rows), bool)
        if self._repeats:
            slow = (counts == 0) & becomes_first & np.isin(rows, list(self._repeats))
        # No names yet and one name brought: it is the union, whatever the order.
        fresh = nrank[single.rows] == _NO_RANK
        if fresh.any():
            at = rows[single.rows[fresh]]
            nstart_column[at], nlen_column[at] = self._arena.put_bytes(single.take(fresh))
            nrank_column[at] = rank
        # The same one name again (the usual case: hosts agree on an address's name).
        same = np.zeros(len(rows), bool)
        held = single.take(~fresh)
        if len(held):
            stored = rows[held.rows]
            candidates = (nlen_column[stored] > 0) & (nrank[held.rows] >= 0)
            equal = np.zeros(len(held), bool)
            if candidates.any():
                pick = np.flatnonzero(candidates)
                equal[pick] = self._arena.equal_bytes(nstart_column[stored[pick]], nlen_column[stored[pick]],
                                                      held.take(candidates))
            same[held.rows[equal]] = True
        nrank_column[rows[same]] = np.minimum(nrank[same], rank)
        slow |= (counts > 0) & ~same
        slow[single.rows[fresh]] = False
        at = np.flatnonzero(slow)
        for i, brought in zip(at.tolist(), incoming.lists_of(at), strict=True):
            row = int(rows[i])
            names, ranks = insert_ranked(self._names_of(row), self._ranks_of(row), rank,
                                         brought, bool(becomes_first[i]), self.max_names)
            self._settle(row, names, ranks)

    def _names_of(self, row: int) -> tuple[str, ...]:
        """Return the names of ROW."""
        length = int(self._rows.view("nlen")[row])
        if length == _MANY:
            return self._many[row]
        if length == 0:
            return NO_NAMES
        start = self._rows.view("nstart")[row:row + 1]
        return tuple(self._arena.get(start, np.array([length])))

    def _ranks_of(self, row: int) -> list[int]:
        """Return the rank of each name of ROW."""
        nrank = int(self._rows.view("nrank")[row])
        if nrank == _MIXED:
            return self._ranks[row]
        return [nrank] * len(self._names_of(row))

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
        self._many.pop(row, None)
        nlen = self._rows.view("nlen")
        if len(names) == 1 and names[0]:
            start, length = self._arena.put(names)
            self._rows.view("nstart")[row], nlen[row] = start[0], length[0]
        elif names:
            nlen[row] = _MANY
            self._many[row] = tuple(names)
        else:
            nlen[row] = 0
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

    def chunk(self, rows: np.ndarray) -> tuple[StatsColumns, NameBytes]:
        """Return the composite's ROWS (positions, e.g. a slice of `order()`) as the writer takes them.

        That is (the rows as a table whose names are only those of rows with
        several names, the rows with one name and that name in bytes): a
        composite's millions of single names go from the arena to the
        written text without becoming strings (`ncs.stats.writer.chunk_blocks`).
        """
        numbers = {key: self._rows.view(key)[rows] for key in _RULES}
        nlen = self._rows.view("nlen")[rows]
        one = np.flatnonzero(nlen > 0)
        single = self._arena.name_bytes(one, self._rows.view("nstart")[rows[one]],
                                        nlen[one].astype(np.int64))
        names: list[Sequence[str]] = [NO_NAMES] * len(rows)
        for i in np.flatnonzero(nlen == _MANY).tolist():
            # a list with repeats may keep names past the cap (see nameunion.bounded)
            names[i] = self._many[int(rows[i])][:self.max_names]
        return StatsColumns([], self.keys().take(rows), numbers, names), single

    def rows(self, rows: np.ndarray, header: Sequence[str] = (), source: str = "") -> StatsColumns:
        """Return the composite's ROWS (positions, e.g. a slice of `order()`) as a table."""
        table, single = self.chunk(rows)
        for i, text in zip(single.rows.tolist(), single.texts(), strict=True):
            table.names[i] = (text,)
        table.header, table.source = list(header), source
        return table

    def table(self, header: Sequence[str] = (), source: str = "") -> StatsColumns:
        """Return the whole composite in ascending address order (a copy: for tests and small merges)."""
        return self.rows(self.order(), header, source)
