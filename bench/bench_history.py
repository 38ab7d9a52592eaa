"""Benchmark of the history store: a 1M-address append, reports over a 72M-row store, bytes per row.

    .venv/bin/python bench/bench_history.py [--addresses 1000000] [--store-addresses 100000]
        [--days 30] [--keep-store]

1. Appends a synthetic snapshot of --addresses records (90% IPv4 in /24s,
   10% IPv6 in /64s, a third with names) to a new store, then the next
   dump of the same data set (every window grown: the append compares
   with the previous snapshot), each timed.
2. Builds a store of --days days of hourly snapshots of --store-addresses
   addresses in SQL (30 days x 24 x 100k = 72M rows), the last 1% of the
   addresses first seen in the last three days; then times a 7-day report
   by prefix (query, grouping, JSON rendered into memory) and the
   new-remotes view over 7 days, and prints the bytes on disk per row.
3. Rolls the store up (raw=2d,hour=7d,day=400d) and prints its size per
   day of history.

Every step prints wall time, CPU time (user + system, this process and its
DuckDB threads) and the process's peak RSS so far.  Big files go to
bench/data/ and are deleted at the end unless --keep-store.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from ncs.history.keep import parse_keep  # noqa: E402
from ncs.history.retention import apply_keep  # noqa: E402
from ncs.history.store import WRITER_THREADS, add_snapshot, opened  # noqa: E402
from ncs.report.history_build import build_history  # noqa: E402
from ncs.report.history_json import write_history_json  # noqa: E402
from ncs.report.history_table import render_history_table  # noqa: E402
from ncs.stats.addresses import AddressKeys  # noqa: E402
from ncs.stats.columns import StatsColumns  # noqa: E402
from ncs.stats.header import time_line  # noqa: E402
from ncs.stats.record import FIELDS  # noqa: E402

DATA = REPO / "bench" / "data"
T0 = 1_764_028_800  # a UTC midnight


class Step:
    """Times a step: wall and CPU seconds, and the peak RSS at its end."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> Step:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{self.what:<48} wall {self.seconds:7.2f} s  cpu {cpu:7.2f} s  peak RSS {rss:7.0f} MB",
              flush=True)


def synthetic_snapshot(count: int, start: int, now: int, grow: int = 0) -> StatsColumns:
    """Return COUNT records in address order; GROW adds to every window (the next dump)."""
    rng = np.random.default_rng(1)
    v4 = count * 9 // 10
    v6 = count - v4
    is6 = np.r_[np.zeros(v4, bool), np.ones(v6, bool)]
    i4 = np.arange(v4, dtype=np.uint64)
    lo4 = (np.uint64(10 << 24) + (i4 // np.uint64(14)) * np.uint64(256) + i4 % np.uint64(14) * np.uint64(17)
           + np.uint64(1))
    i6 = np.arange(v6, dtype=np.uint64)
    hi6 = np.uint64(0x20010DB8 << 32) + i6 // np.uint64(5)
    lo6 = i6 % np.uint64(5) + np.uint64(1)
    keys = AddressKeys(is6, np.r_[np.zeros(v4, np.uint64), hi6], np.r_[lo4, lo6])
    b = rng.integers(60, 10**7, count) + grow
    numbers = {"B": b, "C": b // 500 + 1, "E": np.full(count, start + 60), "L": np.full(count, now),
               "R": rng.random(count) * 1000, "S": np.full(count, start), "T": np.zeros(count, np.int64),
               "W": rng.random(count) * 10**6}
    names = [(f"h{i}.d{i % 3000}.example.com",) if i % 3 == 1 else () for i in range(count)]
    header = [time_line("start", start), time_line("current", now)]
    return StatsColumns(header, keys, {k: np.asarray(v) for k, v in numbers.items()}, names, "bench")


def bench_append(count: int) -> None:
    """Time the append of a COUNT-address snapshot, then of the same data set's next dump."""
    store = DATA / "append.duckdb"
    _remove(store)
    first = synthetic_snapshot(count, T0, T0 + 3600)
    second = synthetic_snapshot(count, T0, T0 + 7200, grow=1000)
    with Step(f"append {count:,} addresses (new store)"):
        add_snapshot(str(store), first, "bench")
    with Step(f"append {count:,} addresses (next dump, compared)"):
        add_snapshot(str(store), second, "bench")
    with opened(str(store)) as con:
        rows = con.execute("SELECT count(*), sum(bytes) FROM counters").fetchall()[0]
    size = store.stat().st_size
    print(f"  {rows[0]:,} rows, {size / 1e6:.1f} MB, {size / rows[0]:.1f} bytes per row; "
          f"second dump added {rows[1] - int(first.column('B').sum()):,} bytes "
          f"(expected {1000 * count:,})")
    _remove(store)


#: A month made or rolled up at once is bulk work, not a writer's append
#: (bounded by ncs.history.store.WRITER_MEMORY): it gets room.
BULK_MEMORY = "SET memory_limit = '16GB'"


def generate_store(store: Path, addresses: int, days: int) -> int:
    """Write DAYS of hourly snapshots of ADDRESSES addresses in SQL; return the rows."""
    hours = days * 24
    late = addresses - max(1, addresses // 100)  # addresses from here on appear in the last 3 days
    add_snapshot(str(store), synthetic_snapshot(1, T0, T0), "seed")  # creates the tables
    fields = ", ".join(f'"{f.key}"' for f in FIELDS)
    with opened(str(store), write=True) as con:
        con.execute(BULK_MEMORY)
        con.execute("DELETE FROM counters")
        con.execute("DELETE FROM snapshots")
        con.execute("DELETE FROM taken")
        con.execute("DELETE FROM remotes")
        con.execute(f"""INSERT INTO snapshots SELECT i + 1, 'bench', {T0}, {T0} + i * 3600, 'raw', 0
                        FROM range({hours}) t(i)""")
        con.execute("INSERT INTO taken SELECT source, start, time FROM snapshots")
        first_late = T0 + (hours - 72) * 3600
        con.execute(f"""INSERT INTO remotes SELECT j + 1, j >= {addresses * 9 // 10},
                        CASE WHEN j >= {addresses * 9 // 10} THEN {0x20010DB8 << 32} + j // 5 ELSE 0 END,
                        CASE WHEN j >= {addresses * 9 // 10} THEN j % 5 + 1
                             ELSE {10 << 24} + (j // 14) * 256 + j % 14 * 17 + 1 END,
                        CASE WHEN j >= {late} THEN {first_late} ELSE {T0} END
                        FROM range({addresses}) a(j)""")
        # Address j is remotes.id j + 1; the traffic is a hash of hour and address.
        con.execute(f"""INSERT INTO counters (snap, addr, bytes, packets, {fields})
            SELECT i + 1, j + 1, v, v // 500 + 1, v, v // 500 + 1, {T0} + i * 3600,
                   {T0} + i * 3600 + 3000, CASE WHEN j % 3 = 1 THEN ['h' || j || '.example.com'] ELSE [] END,
                   (v % 1000)::DOUBLE, {T0}, 0, v::DOUBLE * 3
            FROM (SELECT t.i, r.id - 1 AS j, (hash(t.i, r.id) % 100000)::BIGINT AS v
                  FROM range({hours}) t(i), remotes r WHERE r.first <= {T0} + t.i * 3600)
            ORDER BY i, j""")
        con.execute("UPDATE snapshots SET rows = (SELECT count(*) FROM counters WHERE snap = snapshots.id)")
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM counters").fetchall()[0][0]


def bench_store(addresses: int, days: int, keep_store: bool) -> None:
    """Build the big store, time the reports over it, roll it up, print the sizes."""
    store = DATA / "history-bench.duckdb"
    _remove(store)
    with Step(f"generate {days} days x 24 x {addresses:,} addresses"):
        rows = generate_store(store, addresses, days)
    size = store.stat().st_size
    print(f"  {rows:,} rows, {size / 1e9:.2f} GB on disk, {size / rows:.2f} bytes per row, "
          f"{size / days / 1e6:.1f} MB per day of history")
    with opened(str(store)) as con:
        for view in ("top", "new", "movers"):
            for _ in (1, 2):
                with Step(f"7-day {view}, by prefix: table of the top 100") as step:
                    h = build_history(con, "7d", view, "prefix", 24, 64, top=100, change=False)
                    render_history_table(h, io.StringIO(), top=100, addresses=20, width=160)
            print(f"  {h.report.totals.addresses:,} addresses in {len(h.report.groups):,} groups "
                  f"({'under' if step.seconds < 2 else 'OVER'} 2 s)")
            with Step(f"7-day {view}, by prefix: JSON of every address"):
                write_history_json(build_history(con, "7d", view, "prefix", 24, 64), io.StringIO())
    with Step("roll up: raw=2d,hour=7d,day=400d"), opened(str(store), write=True) as con:
        con.execute(BULK_MEMORY)
        apply_keep(con, parse_keep("raw=2d,hour=7d,day=400d"))
        con.execute("CHECKPOINT")
        levels = con.execute("SELECT level, count(*), sum(rows) FROM snapshots GROUP BY level ORDER BY 1"
                             ).fetchall()
        kept = con.execute("SELECT count(*) FROM counters").fetchall()[0][0]
    size = store.stat().st_size
    print(f"  levels {levels}; {kept:,} rows; {size / 1e9:.2f} GB on disk (DuckDB reuses freed blocks, "
          "it does not shrink the file)")
    compact = DATA / "history-compact.duckdb"
    _remove(compact)
    with Step("copy into a fresh file (what a compaction gives)"), opened(str(store), write=True) as con:
        name = con.execute("SELECT current_database()").fetchall()[0][0]
        con.execute(f"ATTACH '{compact}' AS fresh")
        con.execute(f'COPY FROM DATABASE "{name}" TO fresh')
        con.execute("DETACH fresh")
    size = compact.stat().st_size
    print(f"  {size / 1e6:.0f} MB, {size / kept:.2f} bytes per row, {size / days / 1e6:.1f} MB per day "
          f"of history")
    if not keep_store:
        _remove(store)
        _remove(compact)


def _remove(path: Path) -> None:
    """Delete a store and its side files."""
    for p in (path, Path(str(path) + ".wal"), Path(str(path) + ".lock")):
        if p.exists():
            p.unlink()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addresses", type=int, default=1_000_000)
    p.add_argument("--store-addresses", type=int, default=100_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--keep-store", action="store_true")
    args = p.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"cpus {os.cpu_count()}, duckdb threads: {WRITER_THREADS} appending, default querying")
    bench_append(args.addresses)
    bench_store(args.store_addresses, args.days, args.keep_store)


if __name__ == "__main__":
    main()
