"""The names of one address merged from several tables: the union in first-seen order, under a cap.

The rule (docs/formats.md, "Merging tables"): the first table's list as it
is (repeats too), then each later table's names that are not yet in the
union, compared as plain strings; the union keeps at most `MAX_NAMES`
names, the first ones by that order, and the rest are dropped.
`unite` applies the rule to lists given in table order (what
`ncs.stats.merge.merge_tables` does); `insert_ranked` adds one table's list
to a union built from tables that arrived in any order, which is what the
streaming merge needs when hosts finish in their own time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

#: The most names an address keeps in a merged table.  A PTR answer holds a
#: few names; hosts that disagree add a few more.  Thousands of names on one
#: address come from a broken or hostile source, and would make every
#: report and every later merge of that address slow.
MAX_NAMES = 64


def unite(lists: Sequence[Sequence[str]], cap: int = MAX_NAMES) -> list[str]:
    """Return the union of LISTS (in table order) in first-seen order, at most CAP names."""
    out = list(lists[0][:cap])
    seen = set(out)
    for names in lists[1:]:
        if len(out) >= cap:
            break
        for name in names:
            if name not in seen:
                seen.add(name)
                out.append(name)
    return out[:cap]


def insert_ranked(names: Sequence[str], ranks: Sequence[int], rank: int, incoming: Sequence[str],
                  becomes_first: bool, cap: int = MAX_NAMES) -> tuple[list[str], list[int]]:
    """Return (names, ranks) of a union after the list INCOMING of the table at position RANK joins it.

    NAMES is the union of the tables merged so far, built by the rule as if
    they had come in table order, and RANKS the position of the table that
    brought each name (non-decreasing).  BECOMES_FIRST says that no table
    merged so far holding this address comes before RANK: INCOMING is then
    the first list, kept as it is, and repeats of the former first list
    collapse.  The first CAP names of the result are what `unite` gives for
    all those tables in order, whatever order they arrived in.  Names past
    the cap may be left out or kept; `bounded` says what to keep.
    """
    if becomes_first:
        out, out_ranks = list(incoming), [rank] * len(incoming)
        seen = set(out)
        rest = zip(names, ranks, strict=True)
    else:
        cut = bisect_left(ranks, rank)
        out, out_ranks = list(names[:cut]), list(ranks[:cut])
        seen = set(out)
        for name in incoming:
            if name not in seen:
                seen.add(name)
                out.append(name)
                out_ranks.append(rank)
        rest = zip(names[cut:], ranks[cut:], strict=True)
    # The tables after RANK keep their order, less the names now seen earlier.
    for name, r in rest:
        if len(seen) > cap:
            break  # past the cap already: the rest can never be shown
        if name not in seen:
            seen.add(name)
            out.append(name)
            out_ranks.append(r)
    return out, out_ranks


def bounded(names: list[str], ranks: list[int], cap: int) -> tuple[list[str], list[int]]:
    """Return what a union NAMES (with RANKS) must keep so that every later step stays exact under CAP.

    The first CAP entries (shown), then further names only while fewer than
    CAP distinct ones are kept: when the first list stops being first, its
    repeats collapse and the next distinct names move up into view.  At most
    2 * CAP entries; without repeats exactly the first CAP.  Shown are the
    first CAP entries.
    """
    if len(names) <= cap:
        return names, ranks
    keep_names, keep_ranks = names[:cap], ranks[:cap]
    seen = set(keep_names)
    for name, rank in zip(names[cap:], ranks[cap:], strict=True):
        if len(seen) >= cap:
            break
        if name not in seen:
            seen.add(name)
            keep_names.append(name)
            keep_ranks.append(rank)
    return keep_names, keep_ranks
