"""Fixture `nsd_server`: a real nsd on a free loopback port serving the reverse zones a test supplies."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

NSD = "/usr/sbin/nsd"
NSD_CHECKCONF = "/usr/sbin/nsd-checkconf"

# Distinctive SOA MNAME so that an NXDOMAIN answer is recognisable as ':' + this.
SOA_MNAME = "ns1.soa-example.org"
SOA_RNAME = "hostmaster.soa-example.org"

# The reverse zones reverse_zones() builds unless told otherwise.
DEFAULT_NETWORKS = ("198.51.100.0/24", "2001:db8:100::/64")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Ptr:
    """PTR records for one address: zone-file name texts (may hold \\DDD escapes) and their TTL."""

    address: str
    names: list[str] = field(default_factory=list)
    ttl: int = 3600


def reverse_owner(address: str) -> str:
    """Return the absolute reverse name of `address` (in-addr.arpa. or ip6.arpa.)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa."
    nibbles = ip.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + ".ip6.arpa."


def reverse_zone_name(network: str) -> str:
    """Return the reverse zone name (no final dot) of a /8, /16, /24 or nibble-aligned IPv6 network.

    Raises ValueError for a prefix that does not fall on a label boundary.
    """
    net = ipaddress.ip_network(network)
    if net.version == 4:
        if net.prefixlen not in (8, 16, 24):
            raise ValueError(f"IPv4 reverse zone needs /8, /16 or /24: {network}")
        octets = str(net.network_address).split(".")[: net.prefixlen // 8]
        return ".".join(reversed(octets)) + ".in-addr.arpa"
    if net.prefixlen % 4:
        raise ValueError(f"IPv6 reverse zone needs a multiple of 4 bits: {network}")
    nibbles = net.network_address.exploded.replace(":", "")[: net.prefixlen // 4]
    return ".".join(reversed(nibbles)) + ".ip6.arpa"


def reverse_zones(
    entries: Iterable[Ptr | tuple[str, list[str], int]],
    networks: Iterable[str] = DEFAULT_NETWORKS,
    *,
    soa_ttl: int = 3600,
    negative_ttl: int = 900,
    soa_mname: str = SOA_MNAME,
) -> dict[str, str]:
    """Build zone texts {zone name: zone file} with SOA, NS and the entries' PTR records.

    Every network gets a zone (possibly without PTRs, for NXDOMAIN answers);
    names without a final dot are made absolute. The SOA's MINIMUM field is
    `negative_ttl`. Raises ValueError if an entry lies outside every network.
    """
    nets = [ipaddress.ip_network(n) for n in networks]
    zones = {
        str(net): [
            f"$ORIGIN {reverse_zone_name(str(net))}.",
            f"@ {soa_ttl} IN SOA {soa_mname}. {SOA_RNAME}. 1 3600 900 604800 {negative_ttl}",
            f"@ {soa_ttl} IN NS {soa_mname}.",
        ]
        for net in nets
    }
    for entry in entries:
        ptr = entry if isinstance(entry, Ptr) else Ptr(*entry)
        ip = ipaddress.ip_address(ptr.address)
        net = next((n for n in nets if ip.version == n.version and ip in n), None)
        if net is None:
            raise ValueError(f"{ptr.address} is in none of the networks {list(map(str, nets))}")
        for name in ptr.names:
            target = name if name.endswith(".") else name + "."
            zones[str(net)].append(f"{reverse_owner(ptr.address)} {ptr.ttl} IN PTR {target}")
    return {reverse_zone_name(n): "\n".join(lines) + "\n" for n, lines in zones.items()}


def _alive(pid: int) -> bool:
    """Return True if `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(pid: int) -> list[int]:
    """Return the pids of every live descendant of `pid` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def _free_port(host: str) -> int:
    """Return a port that is free for both UDP and TCP on `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free UDP+TCP port on {host}")


class NsdServer:
    """One nsd instance in its own directory; start() may be called again after stop()."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.host = ""
        self.port = 0
        self.pid: int | None = None
        self._runs = 0

    def start(self, zones: dict[str, str], host: str = "127.0.0.1") -> tuple[str, int]:
        """Start nsd on `host` and a free port serving {zone name: zone file text}.

        Returns (host, port) once nsd answers. Raises RuntimeError with nsd's
        log if the configuration is rejected or nsd does not come up.
        """
        self.stop()
        last_error = ""
        for _ in range(3):  # another process may grab the chosen port first
            port = _free_port(host)
            run_dir = self._write_config(zones, host, port)
            try:
                self._launch(run_dir, host, port, next(iter(zones)))
            except RuntimeError as exc:
                last_error = str(exc)
                self.stop()
                continue
            self.host, self.port = host, port
            return host, port
        raise RuntimeError(last_error)

    def start_reverse(
        self, entries: Iterable[Ptr | tuple[str, list[str], int]], host: str = "127.0.0.1", **options
    ) -> tuple[str, int]:
        """Build reverse zones with reverse_zones(entries, **options) and start(); returns (host, port)."""
        return self.start(reverse_zones(entries, **options), host)

    def _write_config(self, zones: dict[str, str], host: str, port: int) -> Path:
        """Write zone files and nsd.conf into a fresh run directory; return that directory."""
        self._runs += 1
        run_dir = self.workdir / f"run{self._runs}"
        run_dir.mkdir(parents=True)
        zone_blocks = []
        for index, (name, text) in enumerate(zones.items()):
            zone_file = run_dir / f"zone{index}.zone"
            zone_file.write_text(text)
            zone_blocks.append(f'zone:\n  name: "{name}"\n  zonefile: "{zone_file}"\n')
        six = ":" in host
        conf = (
            "server:\n"
            f"  ip-address: {host}@{port}\n"
            f"  do-ip4: {'no' if six else 'yes'}\n"
            f"  do-ip6: {'yes' if six else 'no'}\n"
            '  username: ""\n'
            '  chroot: ""\n'
            '  database: ""\n'
            f'  zonesdir: "{run_dir}"\n'
            f'  pidfile: "{run_dir}/nsd.pid"\n'
            f'  xfrdfile: "{run_dir}/xfrd.state"\n'
            f'  zonelistfile: "{run_dir}/zone.list"\n'
            f'  xfrdir: "{run_dir}"\n'
            f'  logfile: "{run_dir}/nsd.log"\n'
            "  server-count: 1\n"
            # Response rate limiting would drop answers to a test's burst of
            # NXDOMAIN queries from 127.0.0.1 (seen with 2500 queries).
            "  rrl-ratelimit: 0\n"
            "  rrl-whitelist-ratelimit: 0\n"
            "  verbosity: 1\n"
            "remote-control:\n"
            "  control-enable: no\n" + "".join(zone_blocks)
        )
        (run_dir / "nsd.conf").write_text(conf)
        return run_dir

    def _launch(self, run_dir: Path, host: str, port: int, probe_zone: str) -> None:
        """Check the config, start nsd and wait until it answers an SOA query for `probe_zone`."""
        conf = run_dir / "nsd.conf"
        check = subprocess.run([NSD_CHECKCONF, str(conf)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nsd-checkconf {conf}: {check.stderr.strip() or check.stdout.strip()}")
        # nsd daemonises: its output must go to a file, never to a pipe we would wait on.
        with open(run_dir / "nsd.stderr", "wb") as err:
            started = subprocess.run(
                [NSD, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )
        pidfile = run_dir / "nsd.pid"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.pid is None and pidfile.exists():
                text = pidfile.read_text().strip()
                self.pid = int(text) if text.isdigit() else None
            if started.returncode == 0 and self.pid is not None and _answers(host, port, probe_zone):
                return
            if started.returncode != 0 or (self.pid is not None and not _alive(self.pid)):
                break
            time.sleep(0.05)
        log = ""
        for name in ("nsd.stderr", "nsd.log"):
            path = run_dir / name
            if path.exists():
                log += path.read_text(errors="replace")
        raise RuntimeError(f"nsd did not start on {host}@{port}: {log.strip()[-2000:]}")

    def stop(self) -> None:
        """Stop nsd by the pid from its pidfile: TERM, then KILL after a grace period. Idempotent."""
        pid, self.pid = self.pid, None
        if pid is None or not _alive(pid):
            return
        family = [pid, *_descendants(pid)]
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            time.sleep(0.05)
        for leftover in family:
            if _alive(leftover):
                try:
                    os.kill(leftover, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _answers(host: str, port: int, zone: str) -> bool:
    """Return True if the server at host:port answers an SOA query for `zone` with NOERROR."""
    try:
        response = dns.query.udp(dns.message.make_query(zone, "SOA"), host, port=port, timeout=0.2)
    except (OSError, dns.exception.DNSException):
        return False
    return response.rcode() == dns.rcode.NOERROR


@pytest.fixture
def nsd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsdServer]:
    """An NsdServer for this test: call .start(zones) or .start_reverse(entries); stopped afterwards."""
    if not (shutil.which(NSD) and shutil.which(NSD_CHECKCONF)):
        pytest.skip("nsd is not installed (apt-get install nsd)")
    server = NsdServer(tmp_path_factory.mktemp("nsd"))
    try:
        yield server
    finally:
        server.stop()
