"""Benchmark of the second core: each job ncs splits in two, with and without the split, at several sizes.

    .venv/bin/python bench/bench_twocore.py [--sizes 25000,50000,100000,200000,400000] [--repeat 3]

For every size N (records), builds one synthetic table (as bench_report.py
does: 90% IPv4, 10% IPv6, two thirds named), writes it, and times, best of
--repeat, each job that `ncs.twocore` may split: reading the file, the
classic text and the JSON report, the domain lookups, and writing the
table (the agent's dump and the composite use the same writer).  Each is
timed once with the split forced on and once with it off; the printed ratio
(one core / two cores) says from which size the second core pays, which is
what `ncs.twocore.MIN_RECORDS` encodes.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_report import synthetic_records  # noqa: E402

from ncs import gcpause, twocore  # noqa: E402
from ncs.report.group import make_report  # noqa: E402
from ncs.report.render_json import write_json  # noqa: E402
from ncs.report.render_text import write_text  # noqa: E402
from ncs.stats.columns import StatsColumns  # noqa: E402
from ncs.stats.reader import read_stats  # noqa: E402
from ncs.stats.writer import write_stats  # noqa: E402


def best(func, repeat: int) -> float:
    """Return the best wall time of REPEAT calls of FUNC."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def jobs(path: str, table: StatsColumns) -> dict:
    """Return the jobs to time, by name (each a function of no arguments)."""
    report = make_report(table, "prefix")
    return {
        "read": lambda: read_stats(path),
        "text report": lambda: write_text(report, io.StringIO()),
        "json report": lambda: write_json(report, io.StringIO()),
        "domain lookups": lambda: make_report(table, "domain"),
        "write": lambda: write_stats(path + ".out", table),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="25000,50000,100000,200000,400000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"MIN_RECORDS = {twocore.MIN_RECORDS}; ratio = one core / two cores (best of {args.repeat})")
    print(f"{'job':<16}" + "".join(f"{n:>18,}" for n in sizes))
    rows: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="ncs-twocore-") as tmp, gcpause.paused():
        for n in sizes:
            table = StatsColumns.from_records(["ncs version 1.0.0"], synthetic_records(n))
            path = os.path.join(tmp, f"t{n}.stats")
            write_stats(path, table)
            table = read_stats(path)
            for name, job in jobs(path, table).items():
                twocore.MIN_RECORDS = 1
                two = best(job, args.repeat)
                twocore.MIN_RECORDS = 10**12
                one = best(job, args.repeat)
                rows.setdefault(name, []).append(f"{one:6.2f}/{two:5.2f}={one / two:4.2f}")
            del table
    for name, cells in rows.items():
        print(f"{name:<16}" + "".join(f"{c:>18}" for c in cells))
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
