"""Benchmark of ncs-report on a million-record stats file: read, group, render each format.

    .venv/bin/python bench/bench_report.py [--records 1000000] [--regen]

Writes bench/data/report-<N>.stats once (synthetic: addresses spread over
/24s and /64s, two thirds with names under a few thousand domains), then
prints, for every grouping and format, the wall time, CPU time (user +
system) and peak RSS of a separate `ncs-report` process (os.wait4's
rusage), then the read rates (the reader, as ncs-report reads, and the general
parser alone) and grouping times in this process (wall and
CPU: the machine may be shared, CPU time is the steadier figure).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ncs.report.group import make_report  # noqa: E402
from ncs.stats.columns import StatsColumns  # noqa: E402
from ncs.stats.parser import parse_general  # noqa: E402
from ncs.stats.reader import read_stats, read_text  # noqa: E402
from ncs.stats.record import Record  # noqa: E402
from ncs.stats.writer import write_stats  # noqa: E402

NOW = 1145923334
SUFFIXES = ["com", "net", "org", "co.uk", "com.au", "de", "io"]


def synthetic_records(count: int, seed: int = 1) -> list[tuple[str, Record]]:
    """Return COUNT records in address order: 90% IPv4 in ~64k /24s, 10% IPv6."""
    rng = random.Random(seed)
    v4 = count * 9 // 10
    items: list[tuple[str, Record]] = []
    for i in range(v4):
        net, host = divmod(i, 14)
        a = f"{10 + net // 65536}.{(net // 256) % 256}.{net % 256}.{host * 17 + 1}"
        items.append((a, _record(rng, i)))
    for i in range(count - v4):
        net, host = divmod(i, 5)
        items.append((f"2001:db8:{net // 65536:x}:{net % 65536:x}::{host + 1:x}", _record(rng, i)))
    return items


def _record(rng: random.Random, i: int) -> Record:
    kind = i % 3
    if kind == 0:
        names: list[str] = []
    elif kind == 1:
        names = [f"h{i}.d{rng.randrange(3000)}.{rng.choice(SUFFIXES)}"]
    else:
        names = [f"mail{i}.d{rng.randrange(3000)}.{rng.choice(SUFFIXES)}", f"alias{i}.example.net"]
    w = rng.paretovariate(1.2) * 3600
    return Record(B=rng.randrange(100000), C=rng.randrange(1000), E=NOW - rng.randrange(86400),
                  S=NOW - 86400, R=rng.randrange(100000), W=round(w), T=NOW + 3600, N=names)


def timed(label: str, func):
    """Run FUNC, print its wall and CPU time; return its result."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = func()
    print(f"{label:<34} {time.perf_counter() - t0:7.2f} s wall {time.process_time() - c0:7.2f} s CPU")
    return result


def run_format(path: Path, fmt: str, by: str) -> tuple[float, float, float, int]:
    """Run ncs-report in a child; return (wall s, CPU s, peak RSS MiB, output bytes)."""
    cmd = [str(Path(sys.executable).parent / "ncs-report"), "--format", fmt, "--by", by, str(path)]
    out_path = path.with_suffix(f".{by}.{fmt}.out")
    with open(out_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE,
                                env=dict(os.environ, COLUMNS="160"))
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"ncs-report --format {fmt} failed: {err.strip()}")
    size = out_path.stat().st_size
    out_path.unlink()
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--regen", action="store_true", help="rewrite the data file")
    args = ap.parse_args()
    data = REPO / "bench" / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"report-{args.records}.stats"
    if args.regen or not path.exists():
        items = timed(f"generate {args.records} records", lambda: synthetic_records(args.records))
        table = StatsColumns.from_records(["ncs version 1.0.0"], items)
        timed("write stats file", lambda: write_stats(str(path), table))
        del table
        del items
    print(f"stats file: {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    # The child processes run before this process loads the file: Linux keeps
    # the parent's peak RSS in a forked child's ru_maxrss, even across exec.
    print()
    print(f"{'ncs-report process':<32} {'wall s':>7} {'CPU s':>7} {'peak RSS MiB':>13} {'output MiB':>11}")
    for by in ("prefix", "domain"):
        for fmt in ("table", "text", "html", "json"):
            secs, cpu, rss, size = run_format(path, fmt, by)
            print(f"{'--by ' + by + ' --format ' + fmt:<32} {secs:7.2f} {cpu:7.2f} {rss:13.0f}"
                  f" {size / 2**20:11.1f}")
    print()

    gc.disable()  # as ncs-report itself does (report/cli.py)
    for label, reader in (("read (ncs.stats.reader)", read_stats),
                          ("general parser (ncs.stats.parser)",
                           lambda p: parse_general(read_text(p, p), p)[1])):
        t0, c0 = time.perf_counter(), time.process_time()
        stats = reader(str(path))
        read_s, read_cpu = time.perf_counter() - t0, time.process_time() - c0
        n = len(stats)
        print(f"{label:<34} {read_s:7.2f} s wall {read_cpu:7.2f} s CPU"
              f"  {n / read_s:8.0f} records/s wall, {n / read_cpu:8.0f} records/s CPU")
        del stats
    columns = read_stats(str(path))
    for by in ("prefix", "domain"):
        rep = timed(f"group by {by}", lambda by=by: make_report(columns, by=by))
        print(f"{'':<34} {len(rep.groups)} groups")

    print(f"in-process peak RSS so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
