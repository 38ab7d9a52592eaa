"""Benchmark: write and read back a stats file of N synthetic records (default 1,000,000).

Usage: .venv/bin/python bench/bench_statsfile.py [--records N] [--dir DIR] [--keep]

Prints records/s (wall clock and CPU time: the machine is shared, CPU time is
the steadier figure) for the column writer (ncs.stats.writer.write_stats, as
agents and coalescers write), the record-by-record writer, and the reader
(ncs.stats.reader.read_stats), each with the peak RSS of the process
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

from ncs.files import replace_file
from ncs.stats.addresses import address_key
from ncs.stats.columns import StatsColumns
from ncs.stats.layout import CLOSING, opening_text
from ncs.stats.reader import read_stats
from ncs.stats.record import Record
from ncs.stats.writer import record_text, write_stats


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
        records[address] = Record(B=rng.randrange(60, 10_000_000), C=rng.randrange(1, 50_000), E=first, S=start, R=rng.random() * 5000, W=rng.random() * 5e7, T=first + rng.randrange(86400) if names else 0, N=names)
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
    items = sorted(records.items(), key=lambda item: address_key(item[0]))
    table = StatsColumns.from_records([], items)
    print(f"generated+sorted {len(items):,} records in {time.perf_counter() - t0:.2f} s, "
          f"peak RSS {peak_rss_mib():.0f} MiB")

    workdir = tempfile.mkdtemp(prefix="ncs-bench-", dir=args.dir)
    path = os.path.join(workdir, "stats.txt")
    header = ["ncs version 1.0.0", "start:\t1700000000,\tbench", f"users:\t{len(items)}"]

    table.header = header
    t0, c0 = time.perf_counter(), time.process_time()
    write_stats(path, table)
    write_s, write_cpu = time.perf_counter() - t0, time.process_time() - c0
    size = os.path.getsize(path)
    print(f"write: {len(items) / write_s:,.0f} records/s wall, {len(items) / write_cpu:,.0f} "
          f"records/s CPU ({write_s:.2f} s, {size / 1e6:.0f} MB), peak RSS {peak_rss_mib():.0f} MiB"
          "  (column writer, ncs.stats.writer.write_stats)")
    del table
    slow = path + ".one-by-one"
    t0, c0 = time.perf_counter(), time.process_time()
    replace_file(slow, (t.encode() for t in (opening_text(header), *record_text(items), CLOSING)))
    slow_s, slow_cpu = time.perf_counter() - t0, time.process_time() - c0
    same = open(slow, "rb").read() == open(path, "rb").read()
    os.unlink(slow)
    print(f"       {len(items) / slow_s:,.0f} records/s wall, {len(items) / slow_cpu:,.0f} records/s CPU "
          f"({slow_s:.2f} s) record by record (format_record); same bytes: {same}")

    t0, c0 = time.perf_counter(), time.process_time()
    parsed = read_stats(path)
    read_s, read_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"read:  {len(parsed) / read_s:,.0f} records/s wall, "
          f"{len(parsed) / read_cpu:,.0f} records/s CPU ({read_s:.2f} s), "
          f"peak RSS {peak_rss_mib():.0f} MiB  (ncs.stats.reader.read_stats)")
    perl_reference(path, read_s, len(parsed))

    # The writer rounds with %.0f; compare against the same rounding of the input.
    mismatches = 0 if parsed.addresses == [a for a, _ in items] else len(items)
    for i, (_, rec) in enumerate(items):
        got = parsed.record(i)
        want = (round(rec.B), round(rec.C), rec.E, rec.S, round(rec.R), round(rec.W), rec.T, rec.N)
        if (got.B, got.C, got.E, got.S, got.R, got.W, got.T, got.N) != want:
            mismatches += 1
    print(f"check: {len(parsed):,} records read, {mismatches} mismatches")
    if not same:
        mismatches += 1

    if args.keep:
        print(f"kept {path}")
    else:
        os.unlink(path)
        os.rmdir(workdir)
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
