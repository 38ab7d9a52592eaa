"""Benchmark: write and read back a stats file of N synthetic records (default 1,000,000).

Usage: .venv/bin/python bench/bench_statsfile.py [--records N] [--dir DIR] [--keep]

Prints records/s (wall clock and CPU time: the machine is shared, CPU time is
the steadier figure) for the writer (agent.statsfile.write_atomic) and the
reader (agent.statsparse.read_stats), each with the peak RSS of the process
after that phase; times `perl -e 'do FILE'` on the same file as a reference
measured in the same run; and checks that the records read equal the records
written (numbers rounded as the writer rounds them).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import socket
import subprocess
import tempfile
import time

from ncs.agent.statsfile import Record, sorted_records, write_atomic
from ncs.agent.statsparse import read_stats


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_V6_PREFIX = bytes.fromhex("20010db800000000")


def make_records(count: int, seed: int = 1) -> dict[str, Record]:
    """Return COUNT records: 90% IPv4, 10% IPv6, about half with one or two names."""
    rng = random.Random(seed)
    records: dict[str, Record] = {}
    start = 1_700_000_000
    while len(records) < count:
        if rng.random() < 0.9:
            address = socket.inet_ntop(socket.AF_INET, rng.getrandbits(32).to_bytes(4, "big"))
        else:
            low = rng.getrandbits(64).to_bytes(8, "big")
            address = socket.inet_ntop(socket.AF_INET6, _V6_PREFIX + low)
        kind = rng.random()
        if kind < 0.5:
            names: list[str] = []
        elif kind < 0.9:
            names = [f"host-{rng.getrandbits(24):x}.example.net"]
        else:
            names = [f"a{rng.getrandbits(16)}.example.org", "mail.example.org"]
        first = start + rng.randrange(86400)
        records[address] = Record(
            rng.randrange(60, 10_000_000),
            rng.randrange(1, 50_000),
            first,
            start,
            rng.random() * 5000,
            rng.random() * 5e7,
            first + rng.randrange(86400) if names else 0,
            names,
        )
    return records


def perl_reference(path: str, read_s: float, count: int) -> None:
    """Time `perl do FILE` on the same file, the reader the format was made for."""
    if shutil.which("perl") is None:
        print("perl:  not installed, no reference figure")
        return
    script = "my $d = do $ARGV[0]; die $@ if $@; print scalar(keys %$d), qq(\\n);"
    t0 = time.perf_counter()
    proc = subprocess.run(["perl", "-e", script, path], capture_output=True, text=True)
    perl_s = time.perf_counter() - t0
    if proc.returncode != 0 or proc.stdout.strip() != str(count):
        print(f"perl:  failed: {proc.stderr.strip()[:200]}")
        return
    print(f"perl do FILE (reference): {count / perl_s:,.0f} records/s ({perl_s:.2f} s); "
          f"ncs read / perl = {perl_s / read_s:.2f}x the speed")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="directory for the file (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the written file")
    args = parser.parse_args()

    t0 = time.perf_counter()
    records = make_records(args.records)
    items = sorted_records(records)
    print(f"generated+sorted {len(items):,} records in {time.perf_counter() - t0:.2f} s, "
          f"peak RSS {peak_rss_mib():.0f} MiB")

    workdir = tempfile.mkdtemp(prefix="ncs-bench-", dir=args.dir)
    path = os.path.join(workdir, "stats.txt")
    header = ["ncs version 1.0.0", "start:\t1700000000,\tbench", f"users:\t{len(items)}"]

    t0, c0 = time.perf_counter(), time.process_time()
    write_atomic(path, header, items)
    write_s, write_cpu = time.perf_counter() - t0, time.process_time() - c0
    size = os.path.getsize(path)
    print(f"write: {len(items) / write_s:,.0f} records/s wall, {len(items) / write_cpu:,.0f} "
          f"records/s CPU ({write_s:.2f} s, {size / 1e6:.0f} MB), peak RSS {peak_rss_mib():.0f} MiB")

    t0, c0 = time.perf_counter(), time.process_time()
    parsed = read_stats(path)
    read_s, read_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"read:  {len(parsed.records) / read_s:,.0f} records/s wall, "
          f"{len(parsed.records) / read_cpu:,.0f} records/s CPU ({read_s:.2f} s), "
          f"peak RSS {peak_rss_mib():.0f} MiB")
    perl_reference(path, read_s, len(parsed.records))

    # The writer rounds with %.0f; compare against the same rounding of the input.
    mismatches = 0
    for address, rec in items:
        got = parsed.records.get(address)
        want = (round(rec.B), round(rec.C), rec.E, rec.S, round(rec.R), round(rec.W), rec.T, rec.N)
        if got is None or (got.B, got.C, got.E, got.S, got.R, got.W, got.T, got.N) != want:
            mismatches += 1
    print(f"check: {len(parsed.records):,} records read, {mismatches} mismatches")

    if args.keep:
        print(f"kept {path}")
    else:
        os.unlink(path)
        os.rmdir(workdir)
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
