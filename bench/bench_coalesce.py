"""Benchmark of ncs-coalesce: merging many big stats files, and fetching from namespace hosts over SSH.

    .venv/bin/python bench/bench_coalesce.py [--files 50] [--records 100000] [--hosts 4] [--regen]

Merge: writes FILES synthetic stats files of RECORDS records each into
bench/data/coalesce-<FILES>x<RECORDS>/ once (addresses drawn from a pool of
twice RECORDS, so files overlap heavily and the merge sums, takes maxima and
unites names), then reads them one at a time and merges each into the
composite, timing the read and the merge separately; prints records per
second for both, the composite write time and the process's peak RSS.
Target: merge >= 500k records/s.

Fetch (root, needs namespaces and sshd): HOSTS namespace hosts, each with its
own sshd serving a stats file of --host-records records; fetches every host
alone, then all with jobs=HOSTS, and prints seconds per host with where they
went (connect, transfer, parse) and the ratio of the concurrent total to the
slowest single host.  Target: ratio <= 2.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ncs import gcpause  # noqa: E402
from ncs.coalesce.composite import Source, composite_header  # noqa: E402
from ncs.coalesce.inventory import HostSpec  # noqa: E402
from ncs.coalesce.sshfetch import FetchResult, fetch_all, fetch_host  # noqa: E402
from ncs.stats.columns import StatsColumns  # noqa: E402
from ncs.stats.merge import merge_tables  # noqa: E402
from ncs.stats.reader import read_stats  # noqa: E402
from ncs.stats.record import Record  # noqa: E402
from ncs.stats.writer import write_stats  # noqa: E402

START = 1_700_000_000
NAMES = [f"host{i}.example{i % 50}.com" for i in range(500)]


def pool_address(i: int) -> str:
    """Return the I-th address of the synthetic pool (IPv4, with every 10th one IPv6)."""
    if i % 10 == 9:
        return f"2001:db8:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::1"
    return f"10.{(i >> 16) & 0xff}.{(i >> 8) & 0xff}.{i & 0xff}"


def names_of(i: int, rng: random.Random) -> list[str]:
    """Return the PTR names of pool address I as one host saw them.

    DNS gives every host the same names for an address, so they are a
    function of the address; 2% of the time a host has an older, different
    answer, which makes the merge unite names.
    """
    if i % 5 >= 3:
        return []
    if rng.random() < 0.02:
        return [NAMES[(i + 1) % len(NAMES)]]
    return [NAMES[i % len(NAMES)]]


def make_table(rng: random.Random, records: int) -> dict[str, Record]:
    """Return RECORDS random records drawn from a pool of 2*RECORDS addresses."""
    table = {}
    for i in rng.sample(range(records * 2), records):
        e = START + rng.randint(0, 80000)
        names = names_of(i, rng)
        table[pool_address(i)] = Record(B=rng.randint(40, 10**6), C=rng.randint(1, 5000), E=e, S=START - rng.randint(0, 900), R=rng.randint(0, 10**5), W=rng.randint(0, 10**8), T=e + 3600, N=names)
    return table


def header(label: str, records: int) -> list[str]:
    return ["ncs version 1.0.0", f"start:\t{START},\tx", f"current:\t{START + 86400},\tx",
            "hits:\t\t100 per minute", "bytes:\t1000 per second", f"users:\t{records}",
            "device:\teth0\tnon-promiscuous", f"bpf:\t\thost {label}"]


def generate(directory: Path, files: int, records: int, regen: bool) -> list[Path]:
    """Write the synthetic stats files (once); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"src{i:03d}.stats" for i in range(files)]
    missing = [p for p in paths if regen or not p.exists()]
    if missing:
        print(f"generating {len(missing)} files of {records} records in {directory} ...", flush=True)
    for path in missing:
        rng = random.Random(path.name)
        write_table(path, header(path.stem, records), make_table(rng, records))
    return paths


def write_table(path: Path, lines: list[str], table: dict[str, Record]) -> None:
    """Write TABLE as a stats file with the production writer."""
    write_stats(str(path), StatsColumns.from_records(lines, table.items()))


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_merge(files: int, records: int, regen: bool) -> None:
    paths = generate(REPO / "bench" / "data" / f"coalesce-{files}x{records}", files, records, regen)
    acc = StatsColumns.empty()
    read_s = merge_s = merge_cpu = 0.0
    total = 0
    sources = []
    for path in paths:
        t0 = time.perf_counter()
        stats = read_stats(str(path))
        t1 = time.perf_counter()
        c1 = time.process_time()
        with gcpause.paused():
            acc = merge_tables([acc, stats])
        c2 = time.process_time()
        t2 = time.perf_counter()
        read_s += t1 - t0
        merge_s += t2 - t1
        merge_cpu += c2 - c1
        total += len(stats)
        # keep only the header: holding every source's records would measure the bench, not the merge
        sources.append(Source.of(path.stem, stats))
        del stats
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "composite.stats")
        acc.header = composite_header(sources, [], len(acc))
        write_stats(out, acc)
        size = os.path.getsize(out)
    write_s = time.perf_counter() - t0
    print(f"merge: {files} files x {records} records = {total} records -> {len(acc)} addresses")
    print(f"  read   {read_s:8.2f} s  {total / read_s:12,.0f} records/s  (ncs.stats.reader)")
    print(f"  merge  {merge_s:8.2f} s  {total / merge_s:12,.0f} records/s  (target >= 500,000)"
          f"  [CPU time {merge_cpu:.2f} s: {total / merge_cpu:,.0f} records/s]")
    print(f"  write  {write_s:8.2f} s  {len(acc) / write_s:12,.0f} records/s  ({size / 2**20:.0f} MiB composite)")
    print(f"  peak RSS {peak_rss_mib():.0f} MiB")


def bench_fetch(hosts: int, sizes: list[int]) -> None:
    from tests.support.netns import NetLab, netlab_skip_reason
    from tests.support.sshd import SshdFactory, make_client_key

    reason = netlab_skip_reason()
    if reason:
        print(f"fetch: skipped ({reason})")
        return
    with tempfile.TemporaryDirectory(prefix="ncs-bench-coalesce-") as tmp:
        base = Path(tmp)
        key = make_client_key(base / "keys")
        known = base / "known_hosts"
        lab = NetLab()
        factory = SshdFactory(base / "sshd")
        try:
            servers = []
            for i in range(hosts):
                address = f"198.51.100.{150 + i}"
                host = lab.add_host(f"h{i}", address)
                server = factory.start(address=address, port=2222, netns=host.netns)
                server.authorize(key)
                with known.open("a") as f:
                    f.write(server.known_hosts_line() + "\n")
                servers.append(server)
            for records in sizes:
                fetch_round(base, servers, key.path, str(known), records)
        finally:
            factory.teardown()
            lab.teardown()


def stage_text(result: FetchResult) -> str:
    """Return 'connect X, transfer Y, parse Z' for a successful fetch."""
    st = result.stages
    if st is None:
        return "no breakdown"
    return f"connect {st.connect:.2f}, transfer {st.transfer:.2f}, parse {st.parse:.2f}"


def fetch_round(base: Path, servers: list, identity: str, known: str, records: int) -> None:
    """Fetch a stats file of RECORDS records from every server: each alone, then all at once."""
    specs = []
    for i, server in enumerate(servers):
        stats = base / f"h{i}-{records}.stats"
        write_table(stats, header(f"h{i}", records), make_table(random.Random(i), records))
        specs.append(HostSpec(name=f"h{i}", address=server.address, port=server.port, user="root",
                              identity=identity, known_hosts=known, ssh_agent=False,
                              ssh_config=None, timeout=120, command=f"cat {stats}"))
    hosts = len(specs)
    size = os.path.getsize(base / f"h0-{records}.stats")
    print(f"fetch: {hosts} namespace hosts, {records} records ({size / 2**20:.1f} MiB) each"
          f"  [load average {os.getloadavg()[0]:.2f}]")
    singles = []
    for spec in specs:
        result = fetch_host(spec)
        assert result.ok, result.reason
        singles.append(result.seconds)
        print(f"  {spec.name} alone   {result.seconds:6.2f} s  ({stage_text(result)})")
    t0 = time.perf_counter()
    results = fetch_all(specs, hosts)
    total = time.perf_counter() - t0
    assert all(r.ok for r in results), [r.reason for r in results]
    print(f"  all {hosts} with jobs={hosts}: {total:6.2f} s")
    for r in results:
        print(f"    {r.name} {r.seconds:6.2f} s  ({stage_text(r)})")
    print(f"  ratio total / slowest single host: {total / max(singles):.2f} (target <= 2)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=50)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--hosts", type=int, default=4)
    p.add_argument("--host-records", default="10000,100000",
                   help="records per host file, comma-separated sizes (one round each)")
    p.add_argument("--regen", action="store_true", help="rewrite the synthetic files")
    p.add_argument("--skip-merge", action="store_true")
    p.add_argument("--skip-fetch", action="store_true")
    args = p.parse_args()
    if not args.skip_merge:
        bench_merge(args.files, args.records, args.regen)
    if not args.skip_fetch:
        bench_fetch(args.hosts, [int(n) for n in args.host_records.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
