"""Helpers for coalescer tests: generated stats files, an independent expected merge, a fleet of sshd hosts."""

from __future__ import annotations

import os
import pty
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ncs.stats.merge import merge_tables
from ncs.stats.record import Record
from tests.support.measure import run_measured
from tests.support.sshd import Sshd, SshdFactory, SshKey
from tests.support.stats import StatsFile, as_file, sorted_records, write_atomic

REPO = Path(__file__).resolve().parents[2]


def make_records(rng: random.Random, count: int, start: int, names: list[str],
                 prefix: str = "198.51.100.") -> dict[str, Record]:
    """Return COUNT random records whose addresses come from a small shared pool.

    The pool (PREFIX + 1..count*2) makes hosts overlap on purpose, so that
    merging has sums, maxima and name unions to do.
    """
    records: dict[str, Record] = {}
    pool = list(range(1, min(254, count * 2) + 1))
    for last in rng.sample(pool, count):
        e = start + rng.randint(0, 5000)
        picked = rng.sample(names, rng.randint(0, min(3, len(names))))
        records[f"{prefix}{last}"] = Record(
            B=rng.randint(40, 10**6), C=rng.randint(1, 5000), E=e, S=start - rng.randint(0, 900),
            R=rng.randint(0, 10**5), W=rng.randint(0, 10**8), T=e + rng.randint(0, 86400),
            L=e + rng.randint(0, 300), N=picked)
    return records


def stats_header(start: int, hits: int, rate: int, users: int, label: str) -> list[str]:
    """Return header lines like an agent's (start, current, hits, bytes, users, device, bpf)."""
    return [
        "ncs version 1.0.0",
        f"start:\t{start},\tMon Apr 24 17:00:12 2006",
        f"current:\t{start + 6000},\tMon Apr 24 18:40:12 2006",
        f"hits:\t\t{hits} per minute",
        f"bytes:\t{rate} per second",
        f"users:\t{users}",
        "device:\teth0\tnon-promiscuous",
        f"bpf:\t\thost {label}",
    ]


def write_stats(path: Path, records: dict[str, Record], start: int, hits: int = 10,
                rate: int = 100, label: str = "x") -> Path:
    """Write RECORDS as a stats file at PATH with the agent's writer; returns PATH."""
    write_atomic(str(path), stats_header(start, hits, rate, len(records), label),
                 sorted_records(records))
    return path


def expected_merge(tables: list[dict[str, Record]]) -> dict[str, tuple]:
    """The merge docs/formats.md describes, written out plainly for the tests.

    Returns address -> (B, C, E, S, R, W, T, L, tuple(N)) so that results compare
    with ==, whatever record class holds them.
    """
    out: dict[str, list] = {}
    for table in tables:
        for addr, r in table.items():
            if addr not in out:
                out[addr] = [r.B, r.C, r.E, r.S, r.R, r.W, r.T, r.L, list(r.N)]
                continue
            m = out[addr]
            m[0] += r.B
            m[1] += r.C
            m[2] = max(m[2], r.E)
            m[3] = min(m[3], r.S)
            m[4] += r.R
            m[5] += r.W
            m[6] = max(m[6], r.T)
            m[7] = max(m[7], r.L)
            m[8] += [n for n in r.N if n not in m[8]]
    return {a: (*m[:8], tuple(m[8])) for a, m in out.items()}


def merge_records(tables: list[dict[str, Record]]) -> dict[str, Record]:
    """Return the production merge (ncs.stats.merge) of TABLES, as {address: Record}."""
    return as_file(merge_tables([StatsFile([], t).columns() for t in tables])).records


def as_tuples(records: dict[str, Record]) -> dict[str, tuple]:
    """Return records in expected_merge's shape."""
    return {a: (r.B, r.C, r.E, r.S, r.R, r.W, r.T, r.L, tuple(r.N)) for a, r in records.items()}


@dataclass
class Host:
    """One inventory entry of a test fleet and the server behind it."""

    name: str
    server: Sshd
    settings: dict


@dataclass
class Fleet:
    """sshd hosts that accept one client key, and the inventory/known_hosts that point at them."""

    factory: SshdFactory
    key: SshKey
    base: Path
    hosts: list[Host] = field(default_factory=list)
    top: dict = field(default_factory=dict)

    @property
    def known_hosts(self) -> Path:
        return self.base / "known_hosts"

    @property
    def inventory_path(self) -> Path:
        return self.base / "inventory.yaml"

    @property
    def composite(self) -> Path:
        return self.base / "composite.stats"

    def server(self, **kw) -> Sshd:
        """Start an sshd that authorizes the fleet key and is listed in known_hosts."""
        server = self.factory.start(**kw)
        server.authorize(self.key)
        with self.known_hosts.open("a") as f:
            f.write(server.known_hosts_line() + "\n")
        return server

    def add(self, name: str, server: Sshd | None = None, **settings) -> Host:
        """Add inventory entry NAME served by SERVER (a new sshd if None) with SETTINGS."""
        host = Host(name, server or self.server(), settings)
        self.hosts.append(host)
        return host

    def serve_file(self, name: str, path: Path, server: Sshd | None = None, **settings) -> Host:
        """Add a host whose dump command prints PATH."""
        return self.add(name, server, command=f"cat {path}", **settings)

    def write_inventory(self, **top) -> Path:
        """Write the inventory for the fleet's hosts (TOP overrides top-level keys); returns its path."""
        doc = {
            "defaults": {"user": "root", "identity": self.key.path,
                         "known_hosts": str(self.known_hosts), "ssh_agent": False,
                         "ssh_config": False, "connect_timeout": 3, "timeout": 10},
            "hosts": {h.name: {"address": h.server.address, "port": h.server.port, **h.settings}
                      for h in self.hosts},
            "cache": str(self.composite),
            "lock": str(self.base / "coalesce.lock"),
            **self.top, **top,
        }
        self.inventory_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.inventory_path

    def run(self, *args: str, timeout: float = 120) -> Run:
        """Write the inventory and run ncs-coalesce on it; returns the finished run."""
        self.write_inventory()
        return run_coalesce("-i", str(self.inventory_path), *args, timeout=timeout)


@dataclass
class Run:
    """A finished ncs-coalesce process."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    #: its CPU seconds and peak resident set size
    cpu: float = 0.0
    peak_rss_mib: float = 0.0

    def summary(self) -> dict[str, list[str]]:
        """Parse the per-host summary lines (name, status, records, seconds[, reason])."""
        rows = {}
        for line in self.stderr.splitlines():
            parts = line.split("\t")
            if len(parts) >= 4 and parts[1] in ("ok", "failed"):
                rows[parts[0]] = parts
        return rows


    def totals(self) -> tuple[int, int, int, int, int | None] | None:
        """Parse the totals line: (hosts, ok, failed, records, addresses or None); None without one."""
        found = _TOTALS.findall(self.stderr)
        assert len(found) <= 1, f"more than one totals line: {found}"
        if not found:
            return None
        *counts, addresses = found[0]
        hosts, ok, failed, records = (int(c.replace(",", "")) for c in counts)
        return hosts, ok, failed, records, int(addresses.replace(",", "")) if addresses else None


_TOTALS = re.compile(r"^([\d,]+) hosts?, ([\d,]+) ok, ([\d,]+) failed; ([\d,]+) records "
                     r"(?:merged into ([\d,]+) addresses|no composite written) in [\d.]+ s$", re.M)


def run_coalesce(*args: str, timeout: float = 120) -> Run:
    """Run `python -m ncs.coalesce.cli ARGS` (stderr not a terminal: plain summary lines)."""
    done = run_measured([sys.executable, "-m", "ncs.coalesce.cli", *args], timeout, cwd=REPO)
    return Run(done.returncode, done.stdout, done.stderr, done.seconds, done.cpu, done.peak_rss_mib)


def run_in_terminal(argv: list[str]) -> tuple[int, str]:
    """Run ARGV with a pseudo-terminal as stdout and stderr; return (exit status, what it showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # child: stdout and stderr are the terminal
        os.chdir(REPO)
        os.environ.update({"COLUMNS": "500", "TERM": "xterm"})
        os.execv(argv[0], argv)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")
