"""Live capture on a veth between two namespaces: the stats file shows exactly what was sent."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.stats import read_stats

AGENT = os.path.join(os.path.dirname(sys.executable), "ncs-agent")
A4, B4 = "198.51.100.11", "198.51.100.12"
UDP_SIZES = [1, 100, 1000, 1472] * 3


def read_until(stream, text: str, limit: int = 5) -> list[str]:
    """Read lines from STREAM until one contains TEXT; return them (fails after LIMIT lines)."""
    lines = []
    for _ in range(limit):
        lines.append(stream.readline())
        if text in lines[-1]:
            return lines
    raise AssertionError(f"no {text!r} in {lines}")


def wait_for(pred, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stamp(path: Path):
    try:
        st = path.stat()
        return (st.st_ino, st.st_mtime_ns)
    except FileNotFoundError:
        return None


def dump_now(proc: subprocess.Popen, path: Path) -> None:
    """SIGUSR1 the agent and wait until the stats file has been replaced."""
    before = stamp(path)
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: stamp(path) not in (None, before), what=f"dump of {path}")


def pcap_lengths(path: Path, peer: str) -> tuple[int, int]:
    """(packets, bytes) to or from PEER in an Ethernet pcap written by tcpdump: 14 + IP total length."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    peer_b = bytes(int(x) for x in peer.split("."))
    pos, count, total = 24, 0, 0
    while pos + 16 <= len(data):
        _s, _u, incl, _orig = struct.unpack_from(endian + "IIII", data, pos)
        frame = data[pos + 16: pos + 16 + incl]
        pos += 16 + incl
        if frame[12:14] == b"\x08\x00" and peer_b in (frame[26:30], frame[30:34]):
            count += 1
            total += 14 + struct.unpack_from("!H", frame, 16)[0]
    return count, total


@pytest.mark.parametrize("give_device", [True, False], ids=["device", "found-by-netifaces"])
def test_live_capture_counts_exactly(netlab, tmp_path, give_device):
    a = netlab.add_host("a", A4)
    b = netlab.add_host("b", B4)
    stats = tmp_path / "live.stats"
    oracle = tmp_path / "tcp.pcap"
    # tcpdump is the independent witness for TCP, whose segment sizes the kernel decides
    dump = a.popen(["tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-n", "-w", str(oracle),
                    f"tcp and host {A4}"],
                   stderr=subprocess.PIPE, text=True)
    assert "listening on" in dump.stderr.readline()
    argv = [AGENT, "run", "--bpf", f"host {A4} and (udp or tcp)", "--no-dns", "--stats", str(stats)]
    if give_device:
        argv += ["--device", a.ifname]
    agent = a.popen(argv, stderr=subprocess.PIPE, text=True)
    read_until(agent.stderr, "capturing on eth0")
    dump_now(agent, stats)
    if give_device is False:
        assert read_stats(str(stats)).header_value("device").startswith("eth0")

    sender = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"for n in {UDP_SIZES!r}: s.sendto(b'u'*n,('{A4}',9))\n"
        "t=socket.create_connection(('" + A4 + "',7000),timeout=5)\n"
        "t.sendall(b'T'*20000); t.shutdown(socket.SHUT_WR); t.recv(10); t.close()\n"
    )
    listener = a.popen([sys.executable, "-c",
                        "import socket\n"
                        f"l=socket.create_server(('{A4}',7000)); c,_=l.accept()\n"
                        "while c.recv(65536): pass\n"
                        "c.close()\n"])
    time.sleep(0.3)
    b.run([sys.executable, "-c", sender])
    listener.wait(timeout=10)
    time.sleep(0.5)
    dump_now(agent, stats)
    got = read_stats(str(stats))
    dump.terminate()  # flushes and closes the witness file
    dump.wait(timeout=10)
    tcp_count, tcp_bytes = pcap_lengths(oracle, B4)
    assert tcp_count >= 5
    r = got.records[B4]
    assert r.C == len(UDP_SIZES) + tcp_count
    assert r.B == sum(14 + 20 + 8 + n for n in UDP_SIZES) + tcp_bytes
    assert set(got.records) == {B4}

    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=15) == 0, agent.stderr.read()
    final = read_stats(str(stats))
    assert final.records[B4].C == r.C
    # libpcap's counters reach the header: everything received, nothing dropped
    assert final.header_number("drops") == 0
    assert final.header_number("received") >= r.C
    assert not Path(str(stats) + ".tmp").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
