"""Questions to the history store: each address's traffic over a window, its series, first-seen time.

`window_totals` sums each address's traffic over a window and finds the
latest values of its record's fields; `window_series` cuts the traffic of
chosen addresses into time buckets.  Every window's rows are found through
the range of its snapshot ids, which lets DuckDB skip the rest of the
store.  What comes back is numpy columns, one row per address in ascending
address order (`ncs.stats.addresses`), ready to become a `StatsColumns`
for grouping.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from ncs.history.schema import arrow_result, missing_fields, scalar, select_fields
from ncs.stats.addresses import AddressKeys
from ncs.stats.record import FIELDS, NAMES_KEY


@dataclass(frozen=True)
class Window:
    """The time span [since, until) of a question, cut into `buckets` equal parts for series."""

    since: int
    until: int
    buckets: int = 24

    @property
    def span(self) -> int:
        """Return the window's length in seconds (at least 1)."""
        return max(1, self.until - self.since)

    def before(self) -> Window:
        """Return the window of the same length just before this one."""
        return Window(self.since - self.span, self.since, self.buckets)

    def edges(self) -> list[int]:
        """Return the start time of each bucket."""
        return [self.since + self.span * k // self.buckets for k in range(self.buckets)]


@dataclass
class WindowTotals:
    """Per address (ascending): traffic over a window and the latest field values.

    `addr` is each address's number in the store; `fields[key]` holds each
    numeric field of the address's latest snapshot in the window, `names`
    its names.
    """

    addr: np.ndarray
    keys: AddressKeys
    bytes: np.ndarray
    packets: np.ndarray
    #: bytes in the window of the same length just before
    before: np.ndarray
    fields: dict[str, np.ndarray]
    names: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.bytes)


def newest_time(con: duckdb.DuckDBPyConnection, source: str | None = None) -> int | None:
    """Return the time of the store's newest snapshot (of SOURCE, if given), or None if empty."""
    if source is None:
        return scalar(con, "SELECT max(time) FROM snapshots")
    return scalar(con, "SELECT max(time) FROM snapshots WHERE source = ?", [source])


def _window_rows(source: str | None) -> str:
    """Return the FROM clause of a window's counter rows, with `t` the snapshot time and `k` its bucket.

    Rows are stored snapshot by snapshot, so the range of snapshot ids lets
    DuckDB skip the row groups outside the window without reading them.
    """
    where = "s.time >= $since AND s.time < $until" + (" AND s.source = $source" if source else "")
    return f"""(SELECT c.snap, c.addr, c.bytes, c.packets, s.time AS t,
                   least(CAST((s.time - $since) * $buckets // $span AS BIGINT), $buckets - 1) AS k
               FROM counters c JOIN snapshots s ON c.snap = s.id
               WHERE {where} AND c.snap BETWEEN $first AND $last)"""


def _params(con: duckdb.DuckDBPyConnection, window: Window, source: str | None) -> dict:
    """Return the named parameters of `_window_rows`, with the range of the window's snapshot ids."""
    params = {"since": window.since, "until": window.until}
    where = "time >= $since AND time < $until"
    if source:
        params["source"] = source
        where += " AND source = $source"
    ids = con.execute(f"SELECT min(id), max(id) FROM snapshots WHERE {where}", params).fetchall()[0]
    first, last = (0, -1) if ids[0] is None else ids
    return {**params, "buckets": window.buckets, "span": window.span, "first": first, "last": last}


def window_totals(con: duckdb.DuckDBPyConnection, window: Window, source: str | None = None,
                  new_only: bool = False, before: bool = True) -> WindowTotals:
    """Return every address with a row in WINDOW (of SOURCE, if given): its traffic and latest fields.

    NEW_ONLY: only the addresses first seen inside the window.  One scan of
    the window's rows sums each address's traffic and notes its latest
    snapshot; with BEFORE, one of the window before sums its bytes then
    (`before`, else 0).  The fields are read from the latest snapshots only.  Sums are cast back to
    BIGINT: DuckDB's HUGEINT reaches Python as decimals, one object per value.
    """
    only = "WHERE addr IN (SELECT id FROM remotes WHERE first >= $since)" if new_only else ""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE ncs_latest AS
        SELECT addr, sum(bytes)::BIGINT AS b, sum(packets)::BIGINT AS p, arg_max(snap, t) AS snap
        FROM {_window_rows(source)} {only} GROUP BY addr""", _params(con, window, source))
    earlier = window.before() if before else Window(window.since, window.since)  # empty: no rows
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE ncs_before AS
        SELECT addr, sum(bytes)::BIGINT AS b FROM {_window_rows(source)}
        WHERE addr IN (SELECT addr FROM ncs_latest) GROUP BY addr""", _params(con, earlier, source))
    try:
        span = con.execute("SELECT min(snap), max(snap) FROM ncs_latest").fetchall()[0]
        head = arrow_result(
            con, f"""SELECT l.addr, r.is6, r.hi, r.lo, l.b, l.p, coalesce(e.b, 0) AS before,
                   {select_fields(missing_fields(con), "c.")}
            FROM ncs_latest l JOIN counters c ON c.snap = l.snap AND c.addr = l.addr
            JOIN remotes r ON r.id = l.addr LEFT JOIN ncs_before e ON e.addr = l.addr
            WHERE c.snap BETWEEN $first AND $last
            ORDER BY r.is6, r.hi, r.lo""", {"first": span[0] or 0, "last": -1 if span[1] is None else span[1]})
    finally:
        con.execute("DROP TABLE IF EXISTS ncs_latest")
        con.execute("DROP TABLE IF EXISTS ncs_before")
    fields = {f.key: _numbers(head[f.key]) for f in FIELDS if f.key != NAMES_KEY}
    names = [tuple(n or ()) for n in head[NAMES_KEY].to_pylist()]
    return WindowTotals(_numbers(head["addr"]), _keys(head), _numbers(head["b"]), _numbers(head["p"]),
                        _numbers(head["before"]), fields, names)


def window_series(con: duckdb.DuckDBPyConnection, window: Window, addr: np.ndarray,
                  source: str | None = None, only: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return the (address x bucket) bytes and packets over WINDOW of the addresses numbered ADDR.

    With ONLY, the rows of other addresses are dropped before grouping (a
    table shows a few hundred addresses: grouping every address by bucket
    costs more than the rest of the report); without, ADDR must hold every
    address of the window.
    """
    series_b = np.zeros((len(addr), window.buckets), dtype=np.int64)
    series_p = np.zeros((len(addr), window.buckets), dtype=np.int64)
    where = "WHERE addr IN (SELECT id FROM ncs_addr)" if only else ""
    con.register("ncs_addr", pa.table({"id": pa.array(addr, type=pa.int32())}))
    try:
        found = arrow_result(
            con, f"""SELECT addr, k, sum(bytes)::BIGINT AS b, sum(packets)::BIGINT AS p
            FROM {_window_rows(source)} {where} GROUP BY addr, k""", _params(con, window, source))
    finally:
        con.unregister("ncs_addr")
    rows = rows_of(addr, _numbers(found["addr"]))
    known = rows >= 0
    k = _numbers(found["k"])[known]
    series_b[rows[known], k] = _numbers(found["b"])[known]
    series_p[rows[known], k] = _numbers(found["p"])[known]
    return series_b, series_p


def first_seen(con: duckdb.DuckDBPyConnection, addr: np.ndarray) -> np.ndarray:
    """Return when each address numbered ADDR was first seen in the store."""
    con.register("ncs_addr", pa.table({"id": pa.array(addr, type=pa.int32())}))
    try:
        found = arrow_result(con, "SELECT r.id, r.first FROM remotes r SEMI JOIN ncs_addr a ON r.id = a.id")
    finally:
        con.unregister("ncs_addr")
    return _aligned(addr, _numbers(found["id"]), _numbers(found["first"]))


def rows_of(addr: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Return the position in ADDR of each number of FOUND (-1 where ADDR lacks it)."""
    if not len(found):
        return np.zeros(0, dtype=np.int64)
    top = int(max(addr.max(initial=0), found.max())) + 1
    position = np.full(top, -1, dtype=np.int64)
    position[addr] = np.arange(len(addr))
    return position[found]


def _aligned(addr: np.ndarray, found: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Return VALUES of the addresses numbered FOUND placed at their positions in ADDR, 0 elsewhere."""
    out = np.zeros(len(addr), dtype=values.dtype if len(values) else np.int64)
    rows = rows_of(addr, found)
    known = rows >= 0
    out[rows[known]] = values[known]
    return out


def _keys(table: pa.Table) -> AddressKeys:
    """Return the address columns of an Arrow result as AddressKeys."""
    return AddressKeys(table["is6"].to_numpy().astype(bool), table["hi"].to_numpy().astype(np.uint64),
                       table["lo"].to_numpy().astype(np.uint64))


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """Return an Arrow number column as numpy (int64 or float64), nulls as 0."""
    return column.fill_null(0).to_numpy()
