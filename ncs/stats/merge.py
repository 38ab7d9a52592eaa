"""Merging tables: every address once, its values combined by its fields' merge rules.

The rules come from `ncs.stats.record.FIELDS`: B, C, R and W are summed
(up to `ncs.stats.numbers.MAX_VALUE`), E, L and T take the latest, S the
earliest, and N is the union of the names in first-seen order, at most
`ncs.stats.nameunion.MAX_NAMES` of them.  This is the plain merge of tables
held all at once, and the reference that the streaming merge
(`ncs.stats.streammerge`) is held to.  The work is vectorised: the tables'
key columns are concatenated and sorted once (stably, so "first seen" is the
order of the tables), every address becomes a run of rows, and each numeric
column is reduced over the runs in one numpy call.  Only addresses named in
more than one table, or with more names than the cap, cost a Python step each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ncs.stats.addresses import AddressKeys
from ncs.stats.columns import StatsColumns, concat_numbers
from ncs.stats.nameunion import MAX_NAMES, unite
from ncs.stats.numbers import MAX_VALUE
from ncs.stats.record import FIELDS, NAMES_KEY

_REDUCE = {"sum": np.add, "max": np.maximum, "min": np.minimum}
#: Sums of int64 values are exact below this bound; beyond it they are taken as Python ints.
_INT64_SAFE = 2**63 - 1


def merge_tables(tables: Sequence[StatsColumns], header: list[str] | None = None,
                 source: str = "", max_names: int = MAX_NAMES) -> StatsColumns:
    """Return the merge of TABLES, in ascending address order, with HEADER as its header.

    Addresses are matched by value (`ncs.stats.addresses`), so two spellings
    of one IPv6 address are one record.  For names, "first seen" means the
    earliest table in TABLES; an address keeps at most MAX_NAMES of them.
    The tables are not modified.
    """
    keys = AddressKeys.concat([t.keys for t in tables])
    n = len(keys)
    order = keys.order()
    ordered = keys.take(order)
    head = ordered.run_starts() if n else np.zeros(0, bool)
    starts = np.flatnonzero(head)
    numbers = {}
    for f in FIELDS:
        if f.key == NAMES_KEY:
            continue
        column = concat_numbers([t.numbers[f.key] for t in tables])[order]
        numbers[f.key] = _reduce(column, starts, f.merge)
    all_names = [ns for t in tables for ns in t.names]
    names = _united_names([all_names[i] for i in order.tolist()], starts, n, max_names)
    return StatsColumns(list(header or []), ordered.take(starts), numbers, names, source)


def _reduce(column: np.ndarray, starts: np.ndarray, rule: str) -> np.ndarray:
    """Return COLUMN reduced by RULE over the runs that begin at STARTS."""
    if len(starts) == 0:
        return column[:0]
    if len(starts) == len(column):
        return column  # no address twice: nothing to combine
    if rule == "sum" and column.dtype == np.int64:
        longest = int(np.diff(np.append(starts, len(column))).max())
        largest = max(abs(int(column.max())), abs(int(column.min())))
        if largest * longest > _INT64_SAFE:
            # Exact sums beyond int64: Python ints, added in order.
            column = column.astype(object)
    reduced = _REDUCE[rule].reduceat(column, starts)
    if rule == "sum" and reduced.dtype == object:
        # A sum past the bound every reader holds values to stays at the
        # bound, so the composite reads back (stacking) whatever the inputs.
        reduced = np.minimum(reduced, MAX_VALUE)
    return reduced


def _united_names(names: list[Sequence[str]], starts: np.ndarray, n: int,
                  cap: int) -> list[Sequence[str]]:
    """Return, per run of NAMES beginning at STARTS, the union of its names (`nameunion.unite`).

    A run of one list whose length is within CAP keeps that list itself.
    """
    lengths = np.diff(np.append(starts, n))
    united = [names[i] for i in starts.tolist()]
    for j in np.flatnonzero(lengths > 1).tolist():
        start = int(starts[j])
        run = names[start:start + int(lengths[j])]
        if any(run[1:]):
            united[j] = unite(run, cap)
    for j, ns in enumerate(united):
        if len(ns) > cap:
            united[j] = list(ns[:cap])
    return united
