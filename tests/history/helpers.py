"""Snapshots for the history tests, and the plain sums they are checked against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ncs.stats.columns import StatsColumns
from ncs.stats.header import time_line
from ncs.stats.record import Record
from tests.support.stats import sorted_records


def snapshot(start: int, current: int, records: dict[str, Record]) -> StatsColumns:
    """Return a stats table of RECORDS under a header with START and CURRENT."""
    header = [time_line("start", start), time_line("current", current)]
    return StatsColumns.from_records(header, sorted_records(records))


def record(b: int, c: int, e: int, s: int, names: Iterable[str] = ()) -> Record:
    """Return a record of window B bytes, C packets since E, in the data set started at S."""
    return Record(B=b, C=c, E=e, L=e, S=s, N=list(names))


def window_traffic(dumps: list[dict[str, Record]]) -> dict[str, tuple[int, int]]:
    """Return each address's traffic over DUMPS of one data set, in order, windows counted once.

    A window is identified by its E; its traffic is what the last dump that
    saw it says (B and C only grow inside a window).
    """
    last: dict[tuple[str, int], tuple[int, int]] = {}
    for dump in dumps:
        for address, r in dump.items():
            last[(address, r.E)] = (r.B, r.C)
    total: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (address, _), (b, c) in last.items():
        total[address][0] += b
        total[address][1] += c
    return {a: (b, c) for a, (b, c) in total.items()}
