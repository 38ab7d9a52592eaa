"""The agent's reverse lookups end to end: a real nsd, live and replayed traffic."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ncs.hostport import format_hostport
from tests.agent.test_live import dump_now, read_until
from tests.support.nsd import SOA_MNAME, Ptr
from tests.support.pcapgen import LINKTYPE_EN10MB, Pkt, build, write_pcap
from tests.support.stats import read_stats

AGENT = os.path.join(os.path.dirname(sys.executable), "ncs-agent")
A4, B4, C4, D4 = "198.51.100.21", "198.51.100.22", "198.51.100.23", "198.51.100.24"
B6 = "2001:db8:100::22"


def send_udp(host, dest: str, count: int = 3) -> None:
    family = "AF_INET6" if ":" in dest else "AF_INET"
    host.run([sys.executable, "-c",
              f"import socket\ns=socket.socket(socket.{family},socket.SOCK_DGRAM)\n"
              f"for _ in range({count}): s.sendto(b'x'*50,('{dest}',9))\n"])


def test_live_names_nxdomain_and_own_queries_not_counted(netlab, nsd_server, tmp_path):
    """Names arrive for remotes; the agent's own DNS traffic to the server is not a remote."""
    a = netlab.add_host("a", A4, "2001:db8:100::21")
    b = netlab.add_host("b", B4, B6)
    c = netlab.add_host("c", C4)
    d = netlab.add_host("d", D4)
    # The name server listens on the lab bridge's address: the agent's queries
    # leave through the very interface it captures.
    server, port = nsd_server.start_reverse(
        [Ptr(B4, ["bee.example.com"], 600), Ptr(C4, ["c1.example.net", "c2.example.org"], 1200),
         Ptr(B6, ["bee6.example.com"], 900)], host=netlab.root_ipv4)
    stats = tmp_path / "dns.stats"
    agent = a.popen([AGENT, "--name", f"dns{os.getpid()}", "run",
                     "--bpf", f"host {A4} or host 2001:db8:100::21", "--device", "eth0",
                     "--nameserver", f"{server}:{port}", "--stats", str(stats)],
                    stderr=subprocess.PIPE, text=True)
    read_until(agent.stderr, "capturing on eth0")
    for host, dest in ((b, A4), (c, A4), (d, A4), (b, "2001:db8:100::21")):
        send_udp(host, dest)

    def names_settled() -> bool:
        dump_now(agent, stats)
        recs = read_stats(str(stats)).records
        return all(recs.get(x) is not None and recs[x].N for x in (B4, C4, D4, B6))

    deadline = time.monotonic() + 20
    while not names_settled():
        assert time.monotonic() < deadline, read_stats(str(stats)).records
        time.sleep(0.3)
    got = read_stats(str(stats))
    now = got.header_number("current")
    recs = got.records
    assert recs[B4].N == ["bee.example.com"] and abs(recs[B4].T - (now + 600)) <= 5
    assert recs[C4].N == ["c1.example.net", "c2.example.org"] and abs(recs[C4].T - (now + 1200)) <= 5
    assert recs[D4].N == [":" + SOA_MNAME]
    assert recs[B6].N == ["bee6.example.com"]
    assert netlab.root_ipv4 not in recs, "the agent's own DNS queries were counted"
    assert "sent=" in got.header_value("dns")
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=15) == 0


def test_replayed_flood_keeps_table_and_dns_queue_bounded(nsd_server, tmp_path):
    """30,000 new sources in a replay: at most max_hosts records, the DNS queue never past its bound."""
    server, port = nsd_server.start_reverse([Ptr("198.51.100.7", ["seven.example.com"], 600)])
    me = "192.0.2.10"
    pkts = [Pkt("198.51.100.7", me, 1_700_000_000, payload=b"x")]
    pkts += [Pkt(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", me, 1_700_000_000 + i // 1000)
             for i in range(30_000)]
    path = tmp_path / "flood.pcap"
    write_pcap(str(path), LINKTYPE_EN10MB, build(LINKTYPE_EN10MB, pkts))
    out = tmp_path / "flood.stats"
    res = subprocess.run([AGENT, "run", "--read", str(path), "--bpf", f"host {me}", "--max-hosts",
                          "5000", "--nameserver", f"{server}:{port}", "--stats", str(out)],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    got = read_stats(str(out))
    assert len(got.records) <= 5000
    assert got.header_number("evicted") >= 30_001 - 5000
    dns = dict(item.split("=") for item in got.header_value("dns").split())
    # the resolver's queue (10,000) plus its in-flight bound (100) is the ceiling
    assert int(dns["peak"]) <= 10_100
    assert int(dns["queue_full"]) > 0
    assert int(dns["sent"]) >= 1
    # the first address, answered early, kept its name unless it was evicted
    seven = got.records.get("198.51.100.7")
    assert seven is None or seven.N in ([], ["seven.example.com"])
    assert Path(str(out) + ".tmp").exists() is False


def pcap_totals(path: Path) -> tuple[int, int]:
    """Return (frames, bytes on the wire) of a pcap file that tcpdump wrote."""
    data = path.read_bytes()
    endian = "<" if struct.unpack_from("<I", data)[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    pos, frames, total = 24, 0, 0
    while pos + 16 <= len(data):
        _sec, _frac, kept, wire = struct.unpack_from(endian + "IIII", data, pos)
        pos += 16 + kept
        frames += 1
        total += wire
    return frames, total


def other_traffic(host, server: str, mine: str) -> None:
    """Exchange unfragmented UDP between the name server's address and MINE (on HOST), both ways."""
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((server, 0))
        sock.settimeout(5)
        for size in (50, 70, 90):
            sock.sendto(b"o" * size, (mine, 9))
        family_name = "AF_INET6" if family == socket.AF_INET6 else "AF_INET"
        host.run([sys.executable, "-c",
                  f"import socket\ns=socket.socket(socket.{family_name},socket.SOCK_DGRAM)\n"
                  f"for n in (60, 80): s.sendto(b'r'*n,('{server}',{sock.getsockname()[1]}))\n"])
        assert len(sock.recv(100)) + len(sock.recv(100)) == 140


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_fragmented_answers_to_the_agent_are_not_counted(family, netlab, nsd_server, tmp_path):
    """A PTR answer bigger than the path MTU arrives in IP fragments: none of them is counted.

    The name server's other traffic with the agent's host is counted, exactly as
    a tcpdump beside the agent sees it.
    """
    a = netlab.add_host("a", "198.51.100.26", "2001:db8:100::26")
    b = netlab.add_host("b", "198.51.100.27", "2001:db8:100::27")
    mine, peer = (a.ipv4, b.ipv4) if family == 4 else (a.ipv6, b.ipv6)
    names = [f"host-{i:02d}-with-a-rather-long-label.example.com" for i in range(15)]
    server, port = nsd_server.start_reverse([Ptr(peer, names, 600)],
                                            host=netlab.root_ipv4 if family == 4 else netlab.root_ipv6)
    if family == 4:
        # the answers leave the root namespace through the lab bridge: a small MTU there fragments them
        subprocess.run(["ip", "link", "set", netlab.bridge, "mtu", "300"], check=True)
        fragment = "ip[6:2] & 0x1fff != 0"
    else:
        # No IPv6 link is smaller than 1280 bytes, more than an answer to the agent's EDNS
        # size (1232) needs; a route MTU locked below the answer has the root namespace
        # fragment it at the source instead.
        subprocess.run(["ip", "-6", "route", "replace", f"{mine}/128", "dev", netlab.bridge,
                        "mtu", "lock", "400"], check=True)
        fragment = "ip6[6] == 44"
    stats = tmp_path / "frag.stats"
    agent = a.popen([AGENT, "run", "--bpf", f"host {mine}", "--device", "eth0",
                     "--nameserver", format_hostport(server, port), "--stats", str(stats)],
                    stderr=subprocess.PIPE, text=True)
    read_until(agent.stderr, "capturing on eth0")
    witnesses = {"fragments": f"src host {server} and {fragment}",
                 "other": f"(ip or ip6) and host {server} and host {mine} and not udp port {port}"
                          f" and not ({fragment})"}
    tcpdumps = {}
    for what, expression in witnesses.items():
        tcpdumps[what] = a.popen(["tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-n",
                                  "-w", str(tmp_path / f"{what}.pcap"), expression],
                                 stderr=subprocess.PIPE, text=True)
        assert "listening on" in tcpdumps[what].stderr.readline()
    send_udp(b, mine)

    def answered() -> bool:
        dump_now(agent, stats)
        dns = dict(item.split("=") for item in read_stats(str(stats)).header_value("dns").split())
        return int(dns["answered"]) + int(dns["failed"]) + int(dns["nxdomain"]) >= 1

    deadline = time.monotonic() + 20
    while not answered():
        assert time.monotonic() < deadline, "the name server's answer never came"
        time.sleep(0.3)
    other_traffic(a, server, mine)
    time.sleep(0.5)  # the last packets reach the agent and the witness
    dump_now(agent, stats)
    for tcpdump in tcpdumps.values():
        tcpdump.terminate()  # flushes and closes its file
        tcpdump.wait(timeout=10)
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=15) == 0
    assert pcap_totals(tmp_path / "fragments.pcap")[0] >= 2, \
        "the answer was not fragmented: the test proves nothing"
    records = read_stats(str(stats)).records
    assert records[peer].N == names, "the answer did not reach the resolver whole"
    # IPv6 neighbour discovery asks multicast addresses: remotes as well, not the test's concern
    unicast = {address for address in records if not ipaddress.ip_address(address).is_multicast}
    assert unicast == {peer, server}, f"unexpected remotes: {records}"
    frames, wire = pcap_totals(tmp_path / "other.pcap")
    assert frames >= 5  # the five datagrams other_traffic exchanged, and what they caused
    assert (records[server].C, records[server].B) == (frames, wire), \
        "the name server's traffic was not counted exactly as the witness saw it"
