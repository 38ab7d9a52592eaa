"""Fuzzing the live path: crafted frames sent over a veth to a live agent count what a replay of them counts.

Host B sends mutated Ethernet frames (random IP length fields, flipped bytes,
cuts, foreign ethertypes) out of its interface with a raw packet socket; the
agent captures them on host A's end with its default snap length.  The same
frames, written to a capture file cut to the same snap length, are replayed:
the live agent must count exactly what the replay counts (per remote B and C,
and every `skipped:` reason), survive every frame, and drop none.
"""

from __future__ import annotations

import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pcapy

from ncs.agent.decode import Decoder
from ncs.agent.keys import RemoteKeys
from tests.agent.reference import decode_one
from tests.agent.test_live import read_until
from tests.support.pcapgen import LINKTYPE_EN10MB, Frame, Pkt, build, write_pcap
from tests.support.stats import StatsFile, read_stats

AGENT = [sys.executable, "-m", "ncs.agent.cli"]
A4, A6 = "198.51.100.61", "2001:db8:100::61"
B4, B6 = "198.51.100.62", "2001:db8:100::62"
FRAMES = 1500
SNAPLEN = 96
SEED = 10
VLAN_TYPES = (b"\x81\x00", b"\x88\xa8", b"\x91\x00")  # the kernel may take tags out: not sent

# Sends the length-prefixed frames of a file out of eth0; prints how many went.
SEND_RAW = """
import socket, struct, sys
data = open(sys.argv[1], "rb").read()
with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
    s.bind(("eth0", 0))
    at = sent = 0
    while at < len(data):
        (n,) = struct.unpack_from("!H", data, at)
        s.send(data[at + 2:at + 2 + n])
        at += 2 + n
        sent += 1
print(sent)
"""


def mac_of(host) -> bytes:
    out = host.run(["ip", "link", "show", "eth0"]).stdout
    return bytes.fromhex(re.search(r"link/ether ([0-9a-f:]+)", out).group(1).replace(":", ""))


def base_frames(rng: np.random.Generator, n: int) -> list[bytes]:
    """N valid frames to, from and past A, of every protocol and family, random sizes."""
    pkts = []
    others4 = [B4, "198.51.100.63", "203.0.113.9"]
    others6 = [B6, "2001:db8:100::63", "2001:db8:7::9"]
    for _ in range(n):
        six = bool(rng.integers(2))
        me, others = (A6, others6) if six else (A4, others4)
        remote = others[rng.integers(len(others))]
        src, dst = (me, remote) if rng.integers(2) else (remote, me)
        if rng.integers(10) == 0:
            src = others[(others.index(remote) + 1) % len(others)]  # neither side is A
        pkts.append(Pkt(src, dst, 1_700_000_000, proto=("udp", "tcp", "icmp")[rng.integers(3)],
                        payload=bytes(rng.integers(0, 256, rng.integers(0, 1400), dtype=np.uint8))))
    return [f.data for f in build(LINKTYPE_EN10MB, pkts)]


def mutate(rng: np.random.Generator, frame: bytes, dst_mac: bytes, src_mac: bytes) -> bytes:
    """Return FRAME addressed from SRC_MAC to DST_MAC, damaged one random way (or not at all)."""
    data = bytearray(dst_mac + src_mac + frame[12:])
    ip = 14
    kind = rng.integers(6)
    if kind == 0:  # the IP length field: 0, anything, near the truth
        at = ip + (4 if data[ip] >> 4 == 6 else 2)
        value = (0, int(rng.integers(0, 65536)), max(0, len(data) - ip + int(rng.integers(-30, 30))))
        data[at:at + 2] = struct.pack("!H", value[rng.integers(3)])
    elif kind == 1:  # flipped bytes anywhere past the MAC addresses
        for _ in range(rng.integers(1, 5)):
            data[rng.integers(12, len(data))] = rng.integers(256)
    elif kind == 2:  # cut short (a link header at least: the socket wants one)
        data = data[:rng.integers(14, len(data) + 1)]
    elif kind == 3:  # not IP
        data[12:14] = (b"\x08\x06", b"\x12\x34", b"\x88\xcc")[rng.integers(3)]
    elif kind == 4:  # header garbage
        data[ip:ip + 40] = bytes(rng.integers(0, 256, 40, dtype=np.uint8))
    if bytes(data[12:14]) in VLAN_TYPES:
        data[12:14] = b"\x08\x00"
    return bytes(data)


def one_by_one(frames: list[bytes], bpf: str) -> tuple[dict[str, tuple[int, int]], str]:
    """Return what the per-packet rules count for FRAMES cut to SNAPLEN: ({remote: (C, B)}, skipped line).

    libpcap's compiled BPF picks the frames; tests/agent/reference.py decodes them.
    """
    program = pcapy.compile(pcapy.DLT_EN10MB, SNAPLEN, bpf, 1, 0)
    dec = Decoder(LINKTYPE_EN10MB, [A4, A6], RemoteKeys())
    got: dict[str, tuple[int, int]] = {}
    for frame in frames:
        cut = frame[:SNAPLEN]
        if not program.filter(cut):
            continue
        found = decode_one(dec, cut, len(frame))
        if found is not None:
            remote = dec.keys.address(found[0])
            c, b = got.get(remote, (0, 0))
            got[remote] = (c + 1, b + found[1])
    skipped = " ".join(f"{k}={v}" for k, v in dec.counters.as_dict().items()
                       if k not in ("packets", "accounted"))
    return got, skipped


def counts(stats: StatsFile) -> tuple[dict[str, tuple[int, int]], str | None]:
    """Return ({remote: (C, B)}, the skipped line) of STATS."""
    return {a: (int(r.C), int(r.B)) for a, r in stats.records.items()}, stats.header_value("skipped")


def test_crafted_frames_over_a_veth_count_as_their_replay(netlab, tmp_path: Path) -> None:
    a, b = netlab.add_pair(A4, B4, A6, B6)  # a veth of their own: no bridge to judge the frames
    # A sends nothing: its own replies (ICMP errors, resets) would be captured too.  A queue of
    # length 0 drops every outgoing frame before the capture's tap sees it.
    a.run(["tc", "qdisc", "add", "dev", "eth0", "root", "pfifo", "limit", "0"])
    rng = np.random.default_rng(SEED)
    to_mac, from_mac = mac_of(a), mac_of(b)
    frames = [mutate(rng, f, to_mac, from_mac) for f in base_frames(rng, FRAMES)]

    stats = tmp_path / "live.stats"
    bpf = f"host {A4} or host {A6}"
    agent = a.popen([*AGENT, "run", "--device", "eth0", "--bpf", bpf, "--no-dns", "--snaplen",
                     str(SNAPLEN), "--stats", str(stats)], stderr=subprocess.PIPE, text=True)
    read_until(agent.stderr, "capturing on eth0")
    wire = tmp_path / "frames.bin"
    wire.write_bytes(b"".join(struct.pack("!H", len(f)) + f for f in frames))
    sent = b.run([sys.executable, "-c", SEND_RAW, str(wire)]).stdout.strip()
    assert sent == str(FRAMES)

    oracle = tmp_path / "frames.pcap"
    write_pcap(str(oracle), LINKTYPE_EN10MB, [Frame(1_700_000_000, i, f, 0, wire_len=len(f))
                                              for i, f in enumerate(frames)], snaplen=SNAPLEN)
    replayed = tmp_path / "replay.stats"
    res = subprocess.run([*AGENT, "run", "--read", str(oracle), "--bpf", bpf, "--no-dns", "--stats",
                          str(replayed)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    want = counts(read_stats(str(replayed)))
    assert want[0], "no frame passed the filter: the fuzzer tests nothing"
    assert want == one_by_one(frames, bpf)  # the replay itself against the per-packet rules

    deadline = time.monotonic() + 10
    while True:  # the frames are all sent; a dump holds what the kernel delivered
        before = stats.stat().st_mtime_ns if stats.exists() else 0
        agent.send_signal(signal.SIGUSR1)
        while not stats.exists() or stats.stat().st_mtime_ns == before:
            assert agent.poll() is None, agent.stderr.read()
            time.sleep(0.05)
        got = read_stats(str(stats))
        if counts(got) == want or time.monotonic() > deadline:
            break
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=15) == 0, agent.stderr.read()
    assert got.header_number("drops") == 0
    assert counts(got)[1] == want[1]
    assert counts(got)[0] == want[0]
