"""Grouping of stats records by network prefix or by registrable domain, ordering and totals.

A report is a list of groups: each group holds its addresses, the sums of
their R and W and of their current windows (C packets and B bytes since E),
their latest E and their latest last-seen time L.  Every record lands in
exactly one group, so the groups always add up to the totals.

Two orders (`ORDERS`):

* "classic", the original report's: groups by bytes per second,
  `int(W/3600)`, descending, ties to the group whose first address is
  lower; addresses ascending within a group.
* "bandwidth", for the reports a person reads (table, HTML, JSON): the same,
  but ties are broken by the window's bytes first (so in the first five
  minutes, before any rate folds, the top talkers still come first), and
  within a group the addresses are ordered the same way: W, then B,
  descending, then ascending address.

The work is done on numpy columns (see `report.addresses`): the records are
put in address order once, each record gets a group number, one stable sort
makes every group a contiguous slice of rows, and the sums are reductions
over those slices.  A group is a view of its slice; nothing is built per
address unless a renderer asks for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from ncs.report.domains import DomainFinder, registrable_domain
from ncs.stats.addresses import network_label
from ncs.stats.columns import StatsColumns
from ncs.stats.record import Record

__all__ = [
    "CHUNK_ADDRESSES",
    "ORDERS",
    "DEFAULT_V4_PREFIX",
    "DEFAULT_V6_PREFIX",
    "Group",
    "GroupingError",
    "Member",
    "Report",
    "Totals",
    "check_prefixes",
    "chunk_groups",
    "make_report",
    "registrable_domain",
]

#: Default prefix lengths of a group: IPv4 /24, IPv6 /64.
DEFAULT_V4_PREFIX = 24
DEFAULT_V6_PREFIX = 64

#: The orders of a report (see the module docstring).
ORDERS = ("bandwidth", "classic")

#: About how many addresses the text and JSON renderers format and write at once.
CHUNK_ADDRESSES = 16384

# Below this magnitude every sum of integral float64 values is exact, so any
# summation order (numpy's reduceat adds pairwise) gives the sequential result.
_EXACT_SUM_LIMIT = float(2**52)


@dataclass(slots=True)
class Member:
    """One address of a group: its text, numeric sort key and record."""

    address: str
    key: int
    record: Record


class MemberView(Sequence[Member]):
    """The members of one group, made on demand from rows START..STOP of a table."""

    __slots__ = ("_start", "_stop", "_table")

    def __init__(self, table: StatsColumns, start: int, stop: int) -> None:
        self._table, self._start, self._stop = table, start, stop

    def __len__(self) -> int:
        return self._stop - self._start

    def _member(self, row: int) -> Member:
        return Member(self._table.addresses[row], self._table.keys.key(row), self._table.record(row))

    @overload
    def __getitem__(self, index: int) -> Member: ...
    @overload
    def __getitem__(self, index: slice) -> list[Member]: ...
    def __getitem__(self, index: int | slice) -> Member | list[Member]:
        rows = range(self._start, self._stop)[index]
        if isinstance(rows, range):
            return [self._member(row) for row in rows]
        return self._member(rows)

    def __iter__(self) -> Iterator[Member]:
        return (self._member(row) for row in range(self._start, self._stop))


@dataclass(slots=True, eq=False)
class Group:
    """A report group: its label, its members (in the report's order) and their sums.

    `label` is the network ("198.51.100.0/24") or the registrable domain
    ("example.co.uk"); `domain` is None for a network.  R, W, B and C are the
    sums of the members' values (floats), E and L the latest of theirs.  The
    members are rows `start` to `stop` of `table`, shared by all groups of a
    report.
    """

    domain: str | None
    table: StatsColumns = field(repr=False)
    start: int
    stop: int
    R: float = 0.0
    W: float = 0.0
    E: int = 0
    B: float = 0.0
    C: float = 0.0
    L: int = 0
    #: prefix lengths of a network label (IPv4, IPv6)
    prefixes: tuple[int, int] = (DEFAULT_V4_PREFIX, DEFAULT_V6_PREFIX)
    _label: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """Return the domain, or the network of the first address ("198.51.100.0/24")."""
        if self._label is None:
            # Made on first use: the classic text report never shows it.
            self._label = self.domain or network_label(self.first_key, *self.prefixes)
        return self._label

    @property
    def kind(self) -> str:
        """Return "domain" or "prefix"."""
        return "prefix" if self.domain is None else "domain"

    @property
    def count(self) -> int:
        """Return the number of addresses in the group."""
        return self.stop - self.start

    @property
    def members(self) -> MemberView:
        """Return the members (address, key, record) in the report's order, made on demand."""
        return MemberView(self.table, self.start, self.stop)

    @property
    def addresses(self) -> list[str]:
        """Return the address texts, in the report's order."""
        return self.table.addresses[self.start:self.stop]

    @property
    def names(self) -> list[Sequence[str]]:
        """Return each address's names, in the order of `addresses` (read-only sequences)."""
        return self.table.names[self.start:self.stop]

    def column(self, key: str) -> np.ndarray:
        """Return the members' values of numeric KEY ("B", "R"...), in the order of `addresses`."""
        return self.table.column(key)[self.start:self.stop]

    @property
    def records(self) -> list[Record]:
        """Return new Records of the members, in the order of `addresses` (one object each: slow)."""
        columns = self.table
        return [columns.record(row) for row in range(self.start, self.stop)]

    @property
    def first_key(self) -> int:
        """Return the sort key of the group's first member (any member's network is the group's)."""
        return self.table.keys.key(self.start)

    @property
    def bytes_per_second(self) -> int | float:
        """Return `int(W/3600)`, the figure groups are ordered by (W itself if not finite)."""
        return _rate(self.W)


@dataclass(frozen=True, slots=True)
class Totals:
    """Report totals: packets per minute, bytes per second, addresses, groups, the windows' sums.

    B and C are the sums of the current windows (bytes, packets), L the
    latest last-seen time (0 for an empty report).
    """

    packets_per_minute: float
    bytes_per_second: float
    addresses: int
    groups: int
    R: float
    W: float
    B: float = 0.0
    C: float = 0.0
    L: int = 0


@dataclass(slots=True)
class Report:
    """The grouped, ordered report of one stats file, ready for any renderer.

    `stats` holds the file's header lines and source name (and its columns).
    """

    stats: StatsColumns
    by: str
    v4_prefix: int
    v6_prefix: int
    groups: list[Group]
    totals: Totals
    order: str = "bandwidth"


class GroupingError(ValueError):
    """Raised for an impossible grouping request (a prefix length out of range)."""


def check_prefixes(v4_prefix: int, v6_prefix: int) -> None:
    """Raise GroupingError unless 0 <= v4_prefix <= 32 and 0 <= v6_prefix <= 128."""
    if not 0 <= v4_prefix <= 32:
        raise GroupingError(f"IPv4 prefix length {v4_prefix} is not between 0 and 32")
    if not 0 <= v6_prefix <= 128:
        raise GroupingError(f"IPv6 prefix length {v6_prefix} is not between 0 and 128")


def _rate(w: float) -> int | float:
    """Return int(W/3600); a non-finite W sorts as itself (NaN as 0) instead of raising."""
    if math.isfinite(w):
        return int(w / 3600)
    return 0 if math.isnan(w) else w


@dataclass(slots=True)
class _Slices:
    """Groups as slices of a table: rows starts[i]..stops[i]; label codes; first rows."""

    table: StatsColumns
    starts: np.ndarray
    stops: np.ndarray
    #: per group, the group's row in the address-ordered table (orders ties)
    first_rows: np.ndarray
    #: per group, the domain label, or None for a prefix group
    domains: list[str | None]


def _prefix_slices(table: StatsColumns, runs: np.ndarray) -> _Slices:
    """Return the prefix groups of an ascending TABLE whose prefix numbers are RUNS."""
    starts = _run_starts(runs)
    return _Slices(table, starts, _run_stops(starts, len(table)), starts, [None] * len(starts))


def _domain_slices(table: StatsColumns, runs: np.ndarray) -> _Slices:
    """Return the domain groups of an ascending TABLE (unnamed rows by prefix number RUNS)."""
    firsts = [ns[0] if ns else "" for ns in table.names]
    # Several addresses often share a name; each distinct name is judged once.
    names = list(dict.fromkeys(firsts))
    name_number = dict(zip(names, range(len(names))))
    # Domain numbers in order of first appearance; -1: no domain (by prefix).
    domain_code: dict[str, int] = {}
    number = domain_code.setdefault
    per_name = np.fromiter(
        (-1 if d is None else number(d, len(domain_code)) for d in DomainFinder().domains(names)),
        dtype=np.int64, count=len(names))
    domain_names = list(domain_code)
    codes = per_name[np.fromiter(map(name_number.__getitem__, firsts), dtype=np.int64, count=len(firsts))]
    codes = np.where(codes < 0, runs + len(domain_names), codes)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = _run_starts(sorted_codes)
    first_codes = sorted_codes[starts].tolist()
    domains = [domain_names[c] if c < len(domain_names) else None for c in first_codes]
    return _Slices(table.take(order), starts, _run_stops(starts, len(table)), order[starts], domains)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Return the positions where a run of equal VALUES begins."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))


def _run_stops(starts: np.ndarray, n: int) -> np.ndarray:
    """Return where each run ends, given where they begin and the number of rows N."""
    return np.append(starts[1:], n).astype(np.int64)


def _float_column(column: np.ndarray) -> np.ndarray:
    """Return a numeric COLUMN as float64 (an int beyond float range as +-inf)."""
    if column.dtype != object:
        return column.astype(np.float64)
    try:
        return column.astype(np.float64)
    except OverflowError:
        return np.array([_to_float(v) for v in column.tolist()], dtype=np.float64)


def _to_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _group_sums(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> list[float]:
    """Return the sum of VALUES over each slice, exactly as adding them one by one from 0.0."""
    if len(starts) == 0:
        return []
    if (
        np.isfinite(values).all()
        and (values == np.trunc(values)).all()
        and float(np.abs(values).sum()) < _EXACT_SUM_LIMIT
    ):
        # + 0.0: a slice of one -0.0 sums to 0.0 when added to 0.0 one by one.
        return (np.add.reduceat(values, starts) + 0.0).tolist()
    # Fractions or huge values: the order of additions shows in the last bits.
    flat = values.tolist()
    sums = []
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        total = 0.0
        for v in flat[start:stop]:
            total += v
        sums.append(total)
    return sums


def _group_latest(column: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> list[int]:
    """Return the latest value of a time COLUMN (E, L) in each slice (0 if none is later than 0)."""
    if len(starts) == 0:
        return []
    if column.dtype == np.int64:
        return np.maximum(np.maximum.reduceat(column, starts), 0).tolist()
    es = column.tolist()
    latest = []
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        e = 0
        for v in es[start:stop]:
            if v > e:
                e = v
        latest.append(e)
    return latest


def _order(ws: list[float], first_rows: np.ndarray, bs: list[float] | None = None) -> list[int]:
    """Return group indices by int(W/3600) descending, then by BS (if given) descending,
    then by first row ascending."""
    w = np.array(ws, dtype=np.float64)
    b = np.zeros(len(ws)) if bs is None else np.nan_to_num(np.array(bs, dtype=np.float64))
    if np.isfinite(w).all():
        return np.lexsort((first_rows, -b, -np.trunc(w / 3600.0))).tolist()
    firsts, tie = first_rows.tolist(), b.tolist()
    return sorted(range(len(ws)), key=lambda i: (-_rate(ws[i]), -tie[i], firsts[i]))


def _by_bandwidth_within(table: StatsColumns, starts: np.ndarray, stops: np.ndarray) -> StatsColumns:
    """Return TABLE with each slice's rows ordered by W, then B, descending, then as they were.

    The slices (groups) keep their places, so STARTS and STOPS still hold.
    """
    n = len(table)
    if n == 0 or len(starts) == n:
        return table  # every group holds one address
    group = np.repeat(np.arange(len(starts)), stops - starts)
    w = np.nan_to_num(_float_column(table.column("W")), nan=0.0)
    b = np.nan_to_num(_float_column(table.column("B")), nan=0.0)
    return table.take(np.lexsort((np.arange(n), -b, -w, group)))


def chunk_groups(groups: list[Group], addresses: int) -> Iterator[list[Group]]:
    """Yield GROUPS in order, in runs of about ADDRESSES addresses (at least one group each)."""
    chunk: list[Group] = []
    size = 0
    for group in groups:
        chunk.append(group)
        size += group.count
        if size >= addresses:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def compute_totals(groups: list[Group]) -> Totals:
    """Return the totals over all GROUPS: sum(R)/60, sum(W)/3600, counts, the windows' sums, latest L."""
    r_sum = sum(g.R for g in groups)
    w_sum = sum(g.W for g in groups)
    count = sum(g.count for g in groups)
    return Totals(r_sum / 60, w_sum / 3600, count, len(groups), r_sum, w_sum,
                  sum(g.B for g in groups), sum(g.C for g in groups),
                  max((g.L for g in groups), default=0))


def make_report(
    stats: StatsColumns,
    by: str = "prefix",
    v4_prefix: int = DEFAULT_V4_PREFIX,
    v6_prefix: int = DEFAULT_V6_PREFIX,
    order: str = "bandwidth",
) -> Report:
    """Return the grouped Report of the table STATS in ORDER ("bandwidth" or "classic").

    Raises GroupingError for a bad prefix length, grouping or order,
    ValueError for a record key that is not an IP address.
    """
    if by not in ("prefix", "domain"):
        raise GroupingError(f"unknown grouping {by!r} (prefix or domain)")
    if order not in ORDERS:
        raise GroupingError(f"unknown order {order!r} ({' or '.join(ORDERS)})")
    check_prefixes(v4_prefix, v6_prefix)
    table = stats.ascending()
    runs = table.keys.network_runs(v4_prefix, v6_prefix)
    slices = _prefix_slices(table, runs) if by == "prefix" else _domain_slices(table, runs)
    grouped, starts, stops = slices.table, slices.starts, slices.stops
    rs = _group_sums(_float_column(grouped.column("R")), starts, stops)
    ws = _group_sums(_float_column(grouped.column("W")), starts, stops)
    bs = _group_sums(_float_column(grouped.column("B")), starts, stops)
    cs = _group_sums(_float_column(grouped.column("C")), starts, stops)
    es = _group_latest(grouped.column("E"), starts, stops)
    ls = _group_latest(grouped.column("L"), starts, stops)
    if order == "bandwidth":
        grouped = _by_bandwidth_within(grouped, starts, stops)
    domains, prefixes = slices.domains, (v4_prefix, v6_prefix)
    start_rows, stop_rows = starts.tolist(), stops.tolist()
    groups = [
        Group(domains[i], grouped, start_rows[i], stop_rows[i], rs[i], ws[i], es[i], bs[i], cs[i],
              ls[i], prefixes)
        for i in _order(ws, slices.first_rows, bs if order == "bandwidth" else None)
    ]
    return Report(stats, by, v4_prefix, v6_prefix, groups, compute_totals(groups), order)
