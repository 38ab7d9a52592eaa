"""Fleet benchmark of ncs-coalesce: the merge path in process, a fleet over real sshd, SSH compression, known_hosts.

    .venv/bin/python bench/bench_coalesce.py merge [--hosts 1000] [--records 50000] [--jobs 1]
                                                   [--pool 5000000 | --distinct] [--baseline-hosts N]
    .venv/bin/python bench/bench_coalesce.py fleet [--hosts 300] [--records 10000] [--sshd 6] [--jobs 8]
                                                   [--repeat 3] [--compare-with PYTHON]
    .venv/bin/python bench/bench_coalesce.py compression [--records 50000] [--rates 0,100,10,2]
    .venv/bin/python bench/bench_coalesce.py known-hosts [--hosts 5000]

merge: HOSTS generated sources (bench/fleetgen.py) go through
the coalescer's own path in one process: JOBS threads each take a host's
stats text, feed it in 64 KiB pieces to the stream reader, merge the table
into the composite and drop it; the composite is then written.  Measured
in a child process: wall time, CPU time (less what making the sources
cost), CPU per source record, peak RSS and bytes per composite address.
The baseline, in the same run, is the all-at-once merge ncs-coalesce did
before (every table held, merge_tables at the end) on the first
BASELINE_HOSTS hosts (all of them need memory for all the sources).

fleet (root): HOSTS inventory entries served by SSHD sshd
processes on loopback addresses; each entry's command prints its own
file.  Runs ncs-coalesce; then, over the same sshd, OpenSSH's `ssh HOST cat
FILE` of every file (JOBS at a time) as the baseline of moving the bytes
alone, and the all-at-once merge; with --compare-with, also the
ncs-coalesce of another installation (e.g. a venv of an earlier commit).
sshd's CPU is shown beside.

compression (root): one host of RECORDS records fetched with and without
SSH compression, directly on loopback and through the delaying relay of
tests/support/relay.py limited to each of RATES Mbit/s (0: no limit); wall
time and the coalescer's and sshd's CPU.

known-hosts: CPU to find one host's keys in a known_hosts file of a line
per host (1,000 and HOSTS lines): paramiko's SSHClient read the whole file
for every connection; ncs reads it once per run and looks hosts up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.fleetgen import BasesOnDisk, Fleet, fleet_bytes  # noqa: E402
from ncs import allocator, gcpause  # noqa: E402
from ncs.coalesce.composite import Composite  # noqa: E402
from ncs.stats.merge import merge_tables  # noqa: E402
from ncs.stats.streamread import StatsStream  # noqa: E402
from ncs.stats.writer import write_stats  # noqa: E402
from tests.support.measure import Measured, run_measured  # noqa: E402

DATA = REPO / "bench" / "data"
FEED = 1 << 16  # bytes handed to the stream reader at a time, as recv() gives them


def _fleet(args: argparse.Namespace) -> Fleet:
    return Fleet(args.hosts, args.records, None if args.distinct else args.pool, args.bases)


# --------------------------------------------------------------------------
# merge: the coalescer's path in process


def merge_child(args: argparse.Namespace) -> None:
    """Run the merge path (in this process, measured by the parent); print a JSON line of figures."""
    fleet = _fleet(args)
    bases = BasesOnDisk(fleet.base_paths(DATA))  # read per host: the generator holds no memory
    made = [0.0]
    guard = threading.Lock()

    def source(host: int) -> bytes:
        started = time.thread_time()
        data = fleet_bytes(fleet, bases, host)
        with guard:
            made[0] += time.thread_time() - started
        return data

    def read(host: int):
        data = source(host)
        stream = StatsStream.for_merge(f"h{host}:stdout")
        for at in range(0, len(data), FEED):
            stream.feed(data[at:at + FEED])
        del data
        return stream.finish(allow_empty=False)

    hosts = args.baseline_hosts if args.all_at_once else args.hosts
    out = Path(args.output)
    if args.all_at_once:
        with ThreadPoolExecutor(args.jobs) as pool:
            tables = list(pool.map(read, range(hosts)))
        merged = merge_tables(tables)
        merged.header = ["ncs version 1.0.0"]
        users = len(merged)
        write_stats(str(out), merged)
    else:
        allocator.few_arenas()  # as ncs-coalesce does
        built = Composite()

        def work(host: int) -> None:
            built.add(host, f"h{host}", read(host))

        with gcpause.paused():  # as ncs-coalesce runs
            with ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(work, range(hosts)))
            users = len(built.merge)
            merged_peak = _peak_rss_mib()
            built.write(str(out))
    size = out.stat().st_size
    out.unlink()
    print(json.dumps({"hosts": hosts, "records": hosts * args.records, "users": users,
                      "made_cpu": made[0], "bytes": size,
                      "merged_peak": merged_peak if not args.all_at_once else 0}))


def _peak_rss_mib() -> float:
    """Return this process's peak resident set size so far (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_merge(args: argparse.Namespace) -> None:
    fleet = _fleet(args)
    fleet.base_paths(DATA)  # made here, not in the measured child
    print(f"merge path: {args.hosts} hosts x {args.records} records, "
          f"{'distinct addresses' if args.distinct else f'addresses from a pool of {args.pool:,}'}, "
          f"jobs={args.jobs}  [load average {os.getloadavg()[0]:.2f}]")
    rows = []
    for label, extra in (("streaming merge (ncs-coalesce)", []),
                         (f"all at once, first {args.baseline_hosts} hosts (before)",
                          ["--all-at-once"])):
        if "--all-at-once" in extra and args.baseline_hosts <= 0:
            continue
        with tempfile.TemporaryDirectory(dir=DATA) as tmp:
            argv = [sys.executable, __file__, "_merge-child", *_passed(args), *extra,
                    "--output", str(Path(tmp) / "composite.stats")]
            done = run_measured(argv, timeout=24 * 3600, cwd=REPO)
        if done.returncode != 0:
            raise SystemExit(f"{label} failed: {done.stderr.strip()[-2000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append((label, done, figures))
    _merge_table(rows, args.jobs)


def _passed(args: argparse.Namespace) -> list[str]:
    """Return the options of ARGS that the child needs."""
    out = ["--hosts", str(args.hosts), "--records", str(args.records), "--jobs", str(args.jobs),
           "--pool", str(args.pool), "--bases", str(args.bases),
           "--baseline-hosts", str(args.baseline_hosts)]
    return out + (["--distinct"] if args.distinct else [])


def _merge_table(rows: list[tuple[str, Measured, dict]], jobs: int) -> None:
    print(f"{'':40} {'records':>12} {'composite':>11} {'wall s':>7} {'CPU s':>7} "
          f"{'us/record':>9} {'peak MiB':>9} {'B/address':>9}")
    for label, done, fig in rows:
        cpu = done.cpu - fig["made_cpu"]
        per = 1e6 * cpu / fig["records"]
        per_address = (done.peak_rss_mib * 2**20) / fig["users"]
        print(f"{label:40} {fig['records']:12,} {fig['users']:11,} {done.seconds:7.1f} {cpu:7.1f} "
              f"{per:9.2f} {done.peak_rss_mib:9.0f} {per_address:9.0f}")
    label, done, fig = rows[0]
    budget = (200 * fig["users"] + 64 * 2**20 * jobs) / 2**20
    print(f"  target: CPU <= 2 us per source record; peak RSS <= 200 B x {fig['users']:,} "
          f"addresses + 64 MiB x {jobs} jobs = {budget:,.0f} MiB")
    print(f"  (CPU excludes making the sources: {fig['made_cpu']:.1f} s; the composite file "
          f"is {fig['bytes'] / 2**20:,.0f} MiB; peak before writing it {fig['merged_peak']:,.0f} MiB)")
    if len(rows) > 1:
        _, old, old_fig = rows[1]
        new_per = (done.cpu - fig["made_cpu"]) / fig["records"]
        old_per = (old.cpu - old_fig["made_cpu"]) / old_fig["records"]
        print(f"  CPU per record, before / now: {old_per / new_per:.2f}")


# --------------------------------------------------------------------------
# fleet: ncs-coalesce against real sshd


def bench_fleet(args: argparse.Namespace) -> None:
    from tests.support.sshd import SshdFactory, make_client_key

    fleet = _fleet(args)
    bases = [p.read_bytes() for p in fleet.base_paths(DATA)]
    files = DATA / f"fleet-hosts-{args.hosts}x{args.records}-{fleet.directory(DATA).name}"
    files.mkdir(exist_ok=True)
    paths = [files / f"h{h:04d}.stats" for h in range(args.hosts)]
    for h, path in enumerate(paths):
        if not path.exists():
            path.write_bytes(fleet_bytes(fleet, bases, h))
    del bases
    total = sum(p.stat().st_size for p in paths)
    with tempfile.TemporaryDirectory(prefix="ncs-bench-fleet-") as tmp:
        base = Path(tmp)
        key = make_client_key(base / "keys")
        factory = SshdFactory(base / "sshd")
        try:
            servers = [factory.start() for _ in range(args.sshd)]
            known = base / "known_hosts"
            for server in servers:
                server.authorize(key)
                with known.open("a") as f:
                    f.write(server.known_hosts_line() + "\n")
            inventory = _fleet_inventory(base, servers, paths, key.path, known, args.jobs)
            print(f"fleet: {args.hosts} inventory entries x {args.records} records "
                  f"({total / 2**20:,.0f} MiB), {args.sshd} sshd on loopback, jobs={args.jobs}"
                  f"  [load average {os.getloadavg()[0]:.2f}]")
            runs = [
                ("ncs-coalesce (with its history append)",
                 [sys.executable, "-m", "ncs.coalesce.cli", "-i", str(inventory),
                  "-o", str(base / "composite.stats"), "--force"]),
                ("ncs-coalesce --no-history", [sys.executable, "-m", "ncs.coalesce.cli", "-i", str(inventory),
                                               "-o", str(base / "plain.stats"), "--force", "--no-history"]),
                ("ssh HOST cat FILE (OpenSSH), bytes only",
                 [sys.executable, __file__, "_cat-child", str(inventory)]),
                ("all at once (before)", [sys.executable, __file__, "_fleet-child", str(inventory),
                                          str(base / "all.stats")]),
            ]
            if args.compare_with:
                runs.append((f"ncs-coalesce of {args.compare_with}",
                             [args.compare_with, "-m", "ncs.coalesce.cli", "-i", str(inventory),
                              "-o", str(base / "other.stats"), "--force"]))
            records = args.hosts * args.records
            measured: dict[str, list[tuple[Measured, float]]] = {label: [] for label, _ in runs}
            for round_ in range(args.repeat):
                for label, argv in runs:  # round by round, so that load changes hit them all
                    before = sum(_children_cpu(s.pid) for s in servers)
                    # another installation runs away from this checkout's ncs/
                    done = run_measured(argv, timeout=3600,
                                        cwd="/" if argv[0] == args.compare_with else REPO)
                    sshd = sum(_children_cpu(s.pid) for s in servers) - before
                    if done.returncode != 0:
                        raise SystemExit(f"{label} failed ({done.returncode}): "
                                         f"{done.stderr.strip()[-500:]}")
                    measured[label].append((done, sshd))
                print(f"  round {round_ + 1} done  [load average {os.getloadavg()[0]:.2f}]")
            print(f"{'best of ' + str(args.repeat) + ' (CPU)':40} {'wall s':>7} {'CPU s':>7} "
                  f"{'us/record':>9} {'peak MiB':>9} {'sshd CPU s':>10}  CPU s of each round")
            for label, rows in measured.items():
                done, sshd = min(rows, key=lambda r: r[0].cpu)
                print(f"{label:40} {done.seconds:7.1f} {done.cpu:7.1f} "
                      f"{1e6 * done.cpu / records:9.2f} {done.peak_rss_mib:9.0f} {sshd:10.1f}  "
                      + " ".join(f"{d.cpu:.1f}" for d, _ in rows))
            print("  target: CPU <= 2 us per source record, peak RSS <= 600 MiB")
        finally:
            factory.teardown()


def _fleet_inventory(base: Path, servers: list, paths: list[Path], key: str, known: Path,
                     jobs: int) -> Path:
    import yaml

    hosts = {}
    for h, path in enumerate(paths):
        server = servers[h % len(servers)]
        hosts[f"h{h:04d}"] = {"address": server.address, "port": server.port,
                              "command": f"cat {path}"}
    inventory = base / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({
        "defaults": {"user": "root", "identity": key, "known_hosts": str(known),
                     "ssh_agent": False, "ssh_config": False, "timeout": 600},
        "hosts": hosts, "jobs": jobs}, sort_keys=False))
    return inventory


def _children_cpu(pid: int) -> float:
    """Return the CPU seconds of PID's reaped children (sshd's sessions), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def cat_child(inventory: str) -> None:
    """Fetch every inventory entry's bytes with OpenSSH's ssh, JOBS at a time, into /dev/null."""
    import subprocess

    from ncs.coalesce.inventory import load_inventory

    inv = load_inventory(inventory)

    def fetch(spec) -> int:
        return subprocess.run(
            ["ssh", "-q", "-i", spec.identity, "-o", "BatchMode=yes", "-o",
             f"UserKnownHostsFile={spec.known_hosts}", "-o", "StrictHostKeyChecking=yes",
             "-p", str(spec.port), f"root@{spec.address}", spec.command],
            stdout=subprocess.DEVNULL, check=False).returncode

    with ThreadPoolExecutor(inv.jobs) as pool:
        failed = sum(1 for rc in pool.map(fetch, inv.hosts) if rc)
    if failed:
        raise SystemExit(f"{failed} hosts failed")


def fleet_child(inventory: str, output: str) -> None:
    """The all-at-once coalescer: fetch every host, keep every table, merge_tables, write."""
    from ncs.coalesce.inventory import load_inventory
    from ncs.coalesce.sshfetch import fetch_all

    inv = load_inventory(inventory)
    results = fetch_all(inv.hosts, inv.jobs)
    failed = [r.reason for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} hosts failed: {failed[0]}")
    merged = merge_tables([r.stats for r in results])
    merged.header = ["ncs version 1.0.0"]
    write_stats(output, merged)


# --------------------------------------------------------------------------
# compression


def bench_compression(args: argparse.Namespace) -> None:
    from ncs.coalesce.inventory import HostSpec
    from ncs.coalesce.sshfetch import fetch_host
    from tests.support.relay import DelayRelay
    from tests.support.sshd import SshdFactory, make_client_key

    fleet = Fleet(1, args.records, None, 1)
    path = fleet.base_paths(DATA)[0]
    size = path.stat().st_size
    with tempfile.TemporaryDirectory(prefix="ncs-bench-compress-") as tmp:
        base = Path(tmp)
        key = make_client_key(base / "keys")
        factory = SshdFactory(base / "sshd")
        try:
            server = factory.start()
            server.authorize(key)
            print(f"compression: one host, {args.records} records ({size / 2**20:.1f} MiB), "
                  f"best of {args.repeat}  [load average {os.getloadavg()[0]:.2f}]")
            print(f"{'link':22} {'compression':>11} {'wall s':>7} {'client CPU s':>12} "
                  f"{'sshd CPU s':>10}")
            for rate in [float(r) for r in args.rates.split(",")]:
                relay = None
                address, port = server.address, server.port
                if rate:
                    relay = DelayRelay((server.address, server.port), args.delay,
                                       rate * 1e6 / 8).start()
                    address, port = relay.address, relay.port
                known = base / "known_hosts"
                known.write_text(f"[{address}]:{port} {server.host_key_public}\n")
                label = "loopback" if not rate else f"{rate:g} Mbit/s, {2 * args.delay:g} s RTT"
                for compress in (False, True):
                    spec = HostSpec(name="h", address=address, port=port, user="root",
                                    identity=key.path, known_hosts=str(known), ssh_agent=False,
                                    ssh_config=None, timeout=3600, command=f"cat {path}",
                                    compression=compress)
                    best = None
                    for _ in range(args.repeat):
                        sshd0, cpu0 = _children_cpu(server.pid), time.process_time()
                        result = fetch_host(spec)
                        cpu = time.process_time() - cpu0
                        time.sleep(0.5)  # until sshd has reaped the session and counted its CPU
                        sshd = _children_cpu(server.pid) - sshd0
                        if not result.ok:
                            raise SystemExit(f"fetch failed: {result.reason}")
                        if best is None or result.seconds < best[0]:
                            best = (result.seconds, cpu, sshd)
                    print(f"{label:22} {'on' if compress else 'off':>11} {best[0]:7.2f} "
                          f"{best[1]:12.2f} {best[2]:10.2f}")
                if relay is not None:
                    relay.stop()
        finally:
            factory.teardown()


# --------------------------------------------------------------------------
# known_hosts of a fleet


def bench_known_hosts(args: argparse.Namespace) -> None:
    """CPU to find one host's keys in a known_hosts file of a line per host: paramiko's way, ours."""
    import subprocess

    import paramiko

    from ncs.coalesce.sshkeys import KnownHostsFile

    with tempfile.TemporaryDirectory(prefix="ncs-bench-known-") as tmp:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{tmp}/k"], check=True)
        kind, data = Path(f"{tmp}/k.pub").read_text().split()[:2]
        print(f"{'lines':>7} {'paramiko: load per connection':>30} {'ncs: read once':>15} {'ncs: lookup':>12}")
        for lines in (1_000, args.hosts):
            path = f"{tmp}/known_hosts"
            with open(path, "w") as f:
                f.writelines(f"[host{i}.example]:22 {kind} {data}\n" for i in range(lines))
            last = f"[host{lines - 1}.example]:22"
            started = time.process_time()
            assert paramiko.HostKeys(path).lookup(last) is not None  # what SSHClient did per host
            theirs = time.process_time() - started
            started = time.process_time()
            known = KnownHostsFile.read(path)
            read = time.process_time() - started
            started = time.process_time()
            for _ in range(100):
                assert known.lookup(last)
            lookup = (time.process_time() - started) / 100
            print(f"{lines:7,} {1e3 * theirs:27,.0f} ms {1e3 * read:12,.0f} ms {1e6 * lookup:9,.0f} us")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("merge", "fleet", "compression", "known-hosts", "_merge-child",
                                    "_cat-child", "_fleet-child"))
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--hosts", type=int)
    p.add_argument("--records", type=int)
    p.add_argument("--jobs", type=int)
    p.add_argument("--pool", type=int, default=5_000_000,
                   help="merge: addresses the fleet's hosts draw from (default 5,000,000)")
    p.add_argument("--distinct", action="store_true", help="every source record a new address")
    p.add_argument("--bases", type=int, default=20, help="base files the hosts are variants of")
    p.add_argument("--baseline-hosts", type=int, default=100,
                   help="merge: hosts of the all-at-once baseline (0: none)")
    p.add_argument("--sshd", type=int, default=6, help="fleet: sshd processes")
    p.add_argument("--compare-with", metavar="PYTHON",
                   help="fleet: also run the ncs-coalesce of another installation's Python")
    p.add_argument("--rates", default="0,100,10,2", help="compression: link rates, Mbit/s")
    p.add_argument("--delay", type=float, default=0.02, help="compression: one-way delay, s")
    p.add_argument("--repeat", type=int, default=3, help="fleet, compression: rounds")
    p.add_argument("--all-at-once", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args()
    defaults = {"merge": (1000, 50_000, 1), "_merge-child": (1000, 50_000, 1),
                "fleet": (300, 10_000, 8), "compression": (1, 50_000, 1),
                "known-hosts": (5_000, 1, 1)}
    hosts, records, jobs = defaults.get(args.what, (1, 1, 1))
    args.hosts = args.hosts or hosts
    args.records = args.records or records
    args.jobs = args.jobs or jobs
    if args.what == "fleet" and not (args.distinct or "--pool" in sys.argv):
        args.distinct = True  # a fleet of distinct addresses, unless a pool is asked for
    DATA.mkdir(parents=True, exist_ok=True)
    {"merge": bench_merge, "_merge-child": merge_child, "fleet": bench_fleet,
     "compression": bench_compression, "known-hosts": bench_known_hosts,
     "_cat-child": lambda a: cat_child(*a.rest),
     "_fleet-child": lambda a: fleet_child(*a.rest)}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
