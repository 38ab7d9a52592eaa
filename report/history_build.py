"""A report over time from the history store: the window, the view, and the grouped table with series.

The three views (`VIEWS`) rank addresses and groups differently:

* "top": top talkers, by bytes over the window;
* "new": remotes first seen inside the window, by bytes over the window;
* "movers": by the size of the change of bytes against the window of the
  same length just before (a remote that fell silent is a mover too).

The addresses of the window become a `StatsColumns` whose B and C are the
window's bytes and packets, whose other fields are the latest snapshot's,
and whose W is the view's rank (times 3600, so that `report.group` orders
by it); `report.group.make_report` then groups them as any report.  A
column `row` travels with the table so that each grouped address finds its
series, change and first-seen time again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np

from ncs.history.durations import parse_duration
from ncs.history.query import (
    Window,
    WindowTotals,
    first_seen,
    newest_time,
    window_series,
    window_totals,
)
from ncs.report.display import full_time
from ncs.report.group import Group, Report, make_report
from ncs.stats.addresses import AddressKeys
from ncs.stats.columns import StatsColumns
from ncs.stats.header import time_line
from ncs.stats.quoting import safe_text

#: The views of a history report (see the module docstring).
VIEWS = ("top", "new", "movers")
#: The column of a history table that holds each address's row in the view's own arrays.
ROW = "row"
#: Points of a series (sparkline, chart, JSON).
BUCKETS = 24


@dataclass
class HistoryReport:
    """A grouped report over WINDOW in VIEW, with per-address arrays indexed by the `row` column.

    `series_bytes[row]`, `series_packets[row]`: traffic per bucket of the
    window (zero for the addresses of groups past the `top` it was built
    for); `change[row]`: bytes in the window less bytes in the window
    before; `first[row]`: first-seen time in the store.
    """

    view: str
    window: Window
    report: Report
    series_bytes: np.ndarray
    series_packets: np.ndarray
    change: np.ndarray
    first: np.ndarray
    source: str | None = None

    def rows(self, group: Group) -> np.ndarray:
        """Return the view's rows of GROUP's addresses, in the group's order."""
        return group.column(ROW).astype(np.int64)

    def group_series(self, group: Group) -> tuple[np.ndarray, np.ndarray]:
        """Return GROUP's bytes and packets per bucket (the sums of its addresses')."""
        rows = self.rows(group)
        return self.series_bytes[rows].sum(axis=0), self.series_packets[rows].sum(axis=0)

    def group_bytes(self, group: Group) -> int:
        """Return GROUP's bytes over the window, exactly."""
        return int(group.column("B").sum())

    def group_packets(self, group: Group) -> int:
        """Return GROUP's packets over the window, exactly."""
        return int(group.column("C").sum())

    def group_change(self, group: Group) -> int:
        """Return GROUP's change of bytes against the window before."""
        return int(self.change[self.rows(group)].sum())

    def group_first(self, group: Group) -> int:
        """Return when GROUP's earliest address was first seen."""
        return int(self.first[self.rows(group)].min())

    def total_series(self) -> np.ndarray:
        """Return the bytes per bucket of every address of the report."""
        return self.series_bytes.sum(axis=0)


def parse_since(text: str, newest: int) -> int:
    """Return the start of the window: NEWEST less a span ("24h", "7d"), or a local DATE[THH:MM].

    Raises ValueError (one line) for anything else.
    """
    try:
        return newest - parse_duration(text)
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(text.strip()).timestamp())
    except ValueError:
        raise ValueError(f"--since '{text}' is neither a span (24h, 7d) nor a date "
                         "(YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None


def the_window(con: duckdb.DuckDBPyConnection, since: str, source: str | None) -> Window:
    """Return the window from SINCE to just after the store's newest snapshot (of SOURCE)."""
    newest = newest_time(con, source)
    until = (int(time.time()) if newest is None else newest) + 1
    return Window(parse_since(since, until - 1), until, BUCKETS)


def build_history(con: duckdb.DuckDBPyConnection, since: str, view: str, by: str, v4_prefix: int,
                  v6_prefix: int, source: str | None = None, top: int = 0,
                  change: bool = True) -> HistoryReport:
    """Return the history report of VIEW over the window SINCE, grouped BY prefix or domain.

    TOP > 0: only the first TOP groups get their series (what a table or a
    page shows); 0: every group.  CHANGE: compute the change against the
    window before (always for movers; else 0, as a table shows none).
    Raises ValueError for a bad SINCE, GroupingError for a bad grouping.
    """
    window = the_window(con, since, source)
    now = window_totals(con, window, source, new_only=view == "new", before=change or view == "movers")
    if view == "movers":
        now = _with_gone(now, window_totals(con, window.before(), source))
    first = first_seen(con, now.addr)
    change = now.bytes - now.before
    keep = first >= window.since if view == "new" else np.ones(len(now), bool)
    rank = np.abs(change) if view == "movers" else now.bytes
    table = _as_table(now, window, rank, source)
    rows = np.flatnonzero(keep)
    report = make_report(table.take(rows), by, v4_prefix, v6_prefix, "bandwidth")
    shown = report.groups[:top] if top > 0 else report.groups
    wanted = np.concatenate([g.column(ROW) for g in shown]).astype(np.int64) if shown else np.zeros(0, np.int64)
    series_b = np.zeros((len(now), window.buckets), dtype=np.int64)
    series_p = np.zeros_like(series_b)
    series_b[wanted], series_p[wanted] = window_series(con, window, now.addr[wanted], source,
                                                       only=len(wanted) < len(now))
    return HistoryReport(view, window, report, series_b, series_p, change, first, source)


def _with_gone(now: WindowTotals, earlier: WindowTotals) -> WindowTotals:
    """Return NOW plus the addresses of EARLIER it lacks (with no traffic now), in ascending order."""
    gone = ~np.isin(earlier.addr, now.addr)
    if not gone.any():
        return now
    keys = AddressKeys.concat([now.keys, earlier.keys.take(gone)])
    order = keys.order()

    def joined(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
        return np.concatenate([mine, theirs])[order]

    silent = np.zeros(int(gone.sum()), np.int64)
    names = now.names + [earlier.names[i] for i in np.flatnonzero(gone).tolist()]
    return WindowTotals(joined(now.addr, earlier.addr[gone]), keys.take(order), joined(now.bytes, silent),
                        joined(now.packets, silent), joined(now.before, earlier.bytes[gone]),
                        {k: joined(v, earlier.fields[k][gone]) for k, v in now.fields.items()},
                        [names[i] for i in order.tolist()])


def _as_table(now: WindowTotals, window: Window, rank: np.ndarray, source: str | None) -> StatsColumns:
    """Return the window's addresses as a StatsColumns: B, C the window's traffic, W the view's rank."""
    numbers = dict(now.fields)
    numbers["B"] = now.bytes.astype(np.int64)
    numbers["C"] = now.packets.astype(np.int64)
    numbers["W"] = rank.astype(np.float64) * 3600.0
    numbers["R"] = now.packets.astype(np.float64) * 3600.0 / window.span
    numbers[ROW] = np.arange(len(now), dtype=np.int64)
    header = [time_line("start", window.since), time_line("current", window.until - 1)]
    return StatsColumns(header, now.keys, numbers, list(now.names), source or "history")


#: What each view's heading says.
VIEW_TITLES = {"top": "Top talkers", "new": "New remotes (first seen in the window)",
               "movers": "Top movers (change against the window before)"}


def history_title(h: HistoryReport) -> str:
    """Return the heading: the view, the window in local time, the grouping and the source."""
    source = f", source {safe_text(h.source)}" if h.source else ""
    return (f"{VIEW_TITLES[h.view]}, {full_time(h.window.since)} to {full_time(h.window.until - 1)}, "
            f"by {h.report.by}{source}")
