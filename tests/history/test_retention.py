"""Retention: hourly and daily roll-ups keep totals exact; what ages out is dropped whole."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest

from ncs.history.keep import Keep, parse_keep
from ncs.history.retention import apply_keep
from ncs.history.store import append, opened
from tests.history.helpers import record, snapshot

T0 = 1_764_028_800  # a UTC midnight
SOURCES = ("web", "mail")


def _feed(store: str, days: int, seed: int) -> dict[tuple[str, str, int], int]:
    """Append a separate data set per source every ~20 minutes over DAYS; return bytes per (source, address, day)."""
    rng = random.Random(seed)
    expected: dict[tuple[str, str, int], int] = defaultdict(int)
    t = T0
    with opened(store, write=True) as con:  # one connection: opening costs more than a small append
        while t < T0 + days * 86400:
            for source in SOURCES:
                records = {f"203.0.113.{rng.randint(1, 40)}": None for _ in range(rng.randint(1, 12))}
                table = {a: record(rng.randint(1, 10**9), rng.randint(1, 1000), t - 30, t - 30)
                         for a in records}
                # every dump a data set of its own (start = t - 30): each adds its whole window
                append(con, snapshot(t - 30, t, table), source)
                for a, r in table.items():
                    expected[(source, a, (t - T0) // 86400)] += r.B
            t += rng.randint(1800, 5400)
    return expected


def _stored(store: str) -> dict[tuple[str, str, int], int]:
    """Return the stored bytes per (source, address, day)."""
    with opened(store) as con:
        rows = con.execute(
            """SELECT s.source, r.lo, (s.time - ?) // 86400, sum(c.bytes) FROM counters c
            JOIN snapshots s ON c.snap = s.id JOIN remotes r ON c.addr = r.id GROUP BY ALL""", [T0]).fetchall()
    return {(src, f"203.0.113.{lo & 255}", day): b for src, lo, day, b in rows}


def _levels(store: str) -> dict[str, int]:
    with opened(store) as con:
        return dict(con.execute("SELECT level, count(*) FROM snapshots GROUP BY level").fetchall())


@pytest.mark.parametrize("seed", [1, 2])
def test_roll_up_is_exact_on_totals_per_day_and_address(tmp_path: Path, seed: int):
    store = str(tmp_path / "h.duckdb")
    expected = _feed(store, 5, seed)
    assert _stored(store) == expected
    with opened(store, write=True) as con:
        apply_keep(con, Keep(raw=6 * 3600, hour=2 * 86400, day=400 * 86400))
        newest = con.execute("SELECT max(time) FROM snapshots").fetchall()[0][0]
        hours = con.execute("SELECT min(time), max(time) FROM snapshots WHERE level = 'hour'").fetchall()[0]
        days = con.execute("SELECT max(time) FROM snapshots WHERE level = 'day'").fetchall()[0][0]
        raw_after = con.execute("SELECT min(time) FROM snapshots WHERE level = 'raw' AND time < ? ",
                                [newest - 6 * 3600]).fetchall()[0][0]
    levels = _levels(store)
    assert set(levels) == {"raw", "hour", "day"}
    assert levels["day"] <= 2 * 5 and days % 86400 == T0 % 86400
    assert hours[0] % 3600 == 0 and hours[1] < newest - 6 * 3600
    assert raw_after is None  # only the recent raw snapshots stay as taken
    assert _stored(store) == expected


def test_rolling_up_twice_changes_nothing_and_old_days_are_dropped_whole(tmp_path: Path):
    store = str(tmp_path / "h.duckdb")
    expected = _feed(store, 4, 3)
    keep = Keep(raw=3600, hour=86400, day=2 * 86400)
    with opened(store, write=True) as con:
        apply_keep(con, keep)
        newest = con.execute("SELECT max(time) FROM snapshots").fetchall()[0][0]
    once = _stored(store)
    with opened(store, write=True) as con:
        apply_keep(con, keep)
    assert _stored(store) == once
    first_day_kept = (newest - 2 * 86400 - T0 + 86399) // 86400
    assert once == {k: v for k, v in expected.items() if k[2] >= first_day_kept}
    assert any(k[2] < first_day_kept for k in expected)


def test_a_year_of_hourly_snapshots_shrinks_to_days(tmp_path: Path):
    store = str(tmp_path / "h.duckdb")
    total = 0
    keep = parse_keep("raw=6h,hour=1d,day=1y")
    with opened(store, write=True) as con:  # what add_snapshot does, on one connection
        for hour in range(24 * 6):
            t = T0 + hour * 3600
            table = {f"198.51.100.{i}": record(1000 + i, 1, t, t) for i in range(1, 6)}
            total += sum(r.B for r in table.values())
            append(con, snapshot(t, t, table), "web")
            apply_keep(con, keep)
    levels = _levels(store)
    # newest = hour 143: raw from hour 137 on (both ends), by the hour from hour 119 (a day
    # before the newest) to 136, by the day before that (days 0 to 4)
    assert levels == {"raw": 7, "hour": 18, "day": 5}
    with opened(store) as con:
        assert con.execute("SELECT sum(bytes) FROM counters").fetchall()[0][0] == total


@pytest.mark.parametrize("text, message", [
    ("raw=2x", "'2x' is not a span of time (a number with s, m, h, d, w or y)"),
    ("week=2d", "'week=2d' is not LEVEL=SPAN with LEVEL one of raw, hour, day"),
    ("raw=3d,hour=1d", "'raw=3d,hour=1d': raw <= hour <= day is needed (got raw=3d,hour=1d,day=400d)"),
])
def test_bad_keep_policies_are_named(text, message):
    with pytest.raises(ValueError) as err:
        parse_keep(text)
    assert str(err.value) == message


def test_the_policy_reads_back():
    keep = parse_keep("raw=36h,day=2y")
    assert keep == Keep(raw=36 * 3600, hour=30 * 86400, day=2 * 365 * 86400)
    assert parse_keep(keep.text()) == keep
