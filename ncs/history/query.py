"""Questions to the history store: each address's traffic over a window, its series, first-seen time.

`window_totals` answers one window in two scans of its rows: the traffic per
address and time bucket (the series), and per address the latest values of
the record's fields.  What comes back is numpy columns, one row per address
in ascending address order (`ncs.stats.addresses`), ready to become a
`StatsColumns` for grouping.
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
    """Per address (ascending): traffic over a window, its series, the latest field values.

    `fields[key]` holds each numeric field of the address's latest snapshot
    in the window, `names` its names; `series_bytes[i, k]` and
    `series_packets[i, k]` the traffic of address i in bucket k.
    """

    keys: AddressKeys
    bytes: np.ndarray
    packets: np.ndarray
    fields: dict[str, np.ndarray]
    names: list[tuple[str, ...]]
    series_bytes: np.ndarray
    series_packets: np.ndarray

    def __len__(self) -> int:
        return len(self.bytes)


def newest_time(con: duckdb.DuckDBPyConnection, source: str | None = None) -> int | None:
    """Return the time of the store's newest snapshot (of SOURCE, if given), or None if empty."""
    if source is None:
        return scalar(con, "SELECT max(time) FROM snapshots")
    return scalar(con, "SELECT max(time) FROM snapshots WHERE source = ?", [source])


def _window_rows(source: str | None) -> str:
    """Return the FROM clause of a window's counter rows, with `t` the snapshot time and `k` its bucket."""
    where = "s.time >= $since AND s.time < $until" + (" AND s.source = $source" if source else "")
    return f"""(SELECT c.*, s.time AS t,
                   least(CAST((s.time - $since) * $buckets // $span AS BIGINT), $buckets - 1) AS k
               FROM counters c JOIN snapshots s ON c.snap = s.id WHERE {where})"""


def _params(window: Window, source: str | None) -> dict:
    """Return the named parameters of `_window_rows`."""
    params = {"since": window.since, "until": window.until, "buckets": window.buckets,
              "span": window.span}
    if source:
        params["source"] = source
    return params


def window_totals(con: duckdb.DuckDBPyConnection, window: Window, source: str | None = None) -> WindowTotals:
    """Return every address with a row in WINDOW (of SOURCE, if given): traffic, series, fields."""
    rows = _window_rows(source)
    fields_sql = select_fields(missing_fields(con))
    latest = ", ".join(f'arg_max("{f.key}", t) AS "{f.key}"' for f in FIELDS)
    params = _params(window, source)
    head = arrow_result(
        con, f"""SELECT is6, hi, lo, sum(bytes) AS b, sum(packets) AS p, {latest}
        FROM (SELECT is6, hi, lo, bytes, packets, t, {fields_sql} FROM {rows})
        GROUP BY is6, hi, lo ORDER BY is6, hi, lo""", params)
    per_bucket = arrow_result(
        con, f"""SELECT is6, hi, lo, k, sum(bytes) AS b, sum(packets) AS p FROM {rows}
        GROUP BY is6, hi, lo, k ORDER BY is6, hi, lo""", params)
    keys = _keys(head)
    series_b, series_p = _series(keys, per_bucket, window.buckets)
    fields = {f.key: _numbers(head[f.key]) for f in FIELDS if f.key != NAMES_KEY}
    names = [tuple(n or ()) for n in head[NAMES_KEY].to_pylist()]
    return WindowTotals(keys, _numbers(head["b"]), _numbers(head["p"]), fields, names, series_b, series_p)


def window_bytes(con: duckdb.DuckDBPyConnection, window: Window, keys: AddressKeys,
                 source: str | None = None) -> np.ndarray:
    """Return the bytes of each address of KEYS (ascending) over WINDOW; 0 where it has none."""
    found = arrow_result(
        con, f"""SELECT is6, hi, lo, sum(bytes) AS b FROM {_window_rows(source)}
        GROUP BY is6, hi, lo ORDER BY is6, hi, lo""", _params(window, source))
    return _spread(keys, _keys(found), _numbers(found["b"]))


def first_seen(con: duckdb.DuckDBPyConnection, keys: AddressKeys) -> np.ndarray:
    """Return when each address of KEYS (ascending) was first seen in the store (0 if never)."""
    con.register("ncs_keys", pa.table({"is6": keys.is6, "hi": keys.hi, "lo": keys.lo}))
    try:
        found = arrow_result(
            con, """SELECT r.is6, r.hi, r.lo, min(r.first) AS first FROM remotes r
            SEMI JOIN ncs_keys k ON r.is6 = k.is6 AND r.hi = k.hi AND r.lo = k.lo
            GROUP BY r.is6, r.hi, r.lo ORDER BY r.is6, r.hi, r.lo""")
    finally:
        con.unregister("ncs_keys")
    return _spread(keys, _keys(found), _numbers(found["first"]))


def _keys(table: pa.Table) -> AddressKeys:
    """Return the address columns of an Arrow result as AddressKeys."""
    return AddressKeys(table["is6"].to_numpy().astype(bool), table["hi"].to_numpy().astype(np.uint64),
                       table["lo"].to_numpy().astype(np.uint64))


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """Return an Arrow number column as numpy (int64 or float64), nulls as 0."""
    return column.fill_null(0).to_numpy()


def _positions(keys: AddressKeys, found: AddressKeys) -> tuple[np.ndarray, np.ndarray]:
    """Return (where each of FOUND sits in KEYS, whether it is there at all); both ascending."""
    both = AddressKeys.concat([keys, found])
    order = both.order()  # stable: a key of KEYS comes before an equal key of FOUND
    is_found = order >= len(keys)
    # KEYS ascend, so carrying the latest KEYS index forward gives the one each FOUND key follows.
    before = np.maximum.accumulate(np.where(is_found, -1, order))[is_found]
    found_rows = order[is_found] - len(keys)
    at = np.maximum(before, 0)
    same = ((before >= 0) & (keys.is6[at] == found.is6[found_rows]) & (keys.hi[at] == found.hi[found_rows])
            & (keys.lo[at] == found.lo[found_rows])) if len(keys) else np.zeros(len(found_rows), bool)
    rows = np.empty(len(found), dtype=np.int64)
    rows[found_rows] = at
    matched = np.empty(len(found), dtype=bool)
    matched[found_rows] = same
    return rows, matched


def present_in(keys: AddressKeys, found: AddressKeys) -> np.ndarray:
    """Return, for each address of FOUND (ascending), whether KEYS (ascending) holds it."""
    if not len(found):
        return np.zeros(0, bool)
    return _positions(keys, found)[1]


def _spread(keys: AddressKeys, found: AddressKeys, values: np.ndarray) -> np.ndarray:
    """Return VALUES of the FOUND addresses placed at their rows of KEYS, 0 elsewhere."""
    out = np.zeros(len(keys), dtype=values.dtype if len(values) else np.int64)
    if len(found):
        rows, matched = _positions(keys, found)
        out[rows[matched]] = values[matched]
    return out


def _series(keys: AddressKeys, per_bucket: pa.Table, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (address x bucket) matrices of bytes and packets from per-bucket rows."""
    series_b = np.zeros((len(keys), buckets), dtype=np.int64)
    series_p = np.zeros((len(keys), buckets), dtype=np.int64)
    if per_bucket.num_rows:
        rows, _ = _positions(keys, _keys(per_bucket))  # the same addresses as KEYS
        k = per_bucket["k"].to_numpy()
        series_b[rows, k] = _numbers(per_bucket["b"])
        series_p[rows, k] = _numbers(per_bucket["p"])
    return series_b, series_p
