"""What a packet counts: the IP header's length, unless it is 0 or more than the frame had on the wire.

The cases are built here (the tcpdump project's captures are not on this
machine): TSO / BIG TCP super-packets whose IPv4 total length is 0, an IPv6
jumbogram (payload length 0 and a Jumbo option), IP lengths beyond the frame,
Ethernet padding.  tshark, where it runs, counts every frame's wire length
per endpoint; ncs must agree with it on every capture without padding.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.agent.decode import Decoder
from ncs.agent.keys import RemoteKeys
from tests.agent.reference import decode_one
from tests.agent.test_decode import ME4, ME6, both_ways, pack_batch, traffic
from tests.support.pcapgen import LINKTYPE_EN10MB, Frame, Pkt, build, link_frame, write_pcap
from tests.support.stats import read_stats

AGENT = [sys.executable, "-m", "ncs.agent.cli"]
T0 = 1_700_000_000
SNAPLEN = 96  # the agent's default: super-packets are cut, their wire length is pcap's `len`


def with_ip_length(frame: Frame, value: int, wire: int) -> Frame:
    """Return FRAME with its IP length field (IPv4 total, IPv6 payload) set to VALUE, WIRE long on the wire."""
    data = bytearray(frame.data)
    at = 14 + (4 if data[14] >> 4 == 6 else 2)
    data[at:at + 2] = struct.pack("!H", value)
    return Frame(frame.sec, frame.usec, bytes(data), 0, wire_len=wire, pkt=frame.pkt)


def jumbogram(src: str, dst: str, sec: int, payload: int) -> Frame:
    """An IPv6 jumbogram on Ethernet: payload length 0, a hop-by-hop Jumbo Payload option, PAYLOAD bytes of UDP."""
    import ipaddress

    body_len = 8 + 8 + payload  # hop-by-hop header (8) + UDP header (8) + payload
    hop = struct.pack("!BBBBI", 17, 0, 0xC2, 4, body_len)  # next: UDP; Jumbo option of 4 bytes
    udp = struct.pack("!HHHH", 40000, 53, 0, 0)  # UDP length 0 in a jumbogram
    head = struct.pack("!IHBB16s16s", 0x60000000, 0, 0, 64, ipaddress.ip_address(src).packed,
                       ipaddress.ip_address(dst).packed)
    datagram = head + hop + udp + b"j" * min(payload, 200)  # the capture keeps the first bytes
    data = link_frame(LINKTYPE_EN10MB, datagram)
    return Frame(sec, 0, data, 0, wire_len=14 + 40 + body_len)


def cases() -> list[tuple[Frame, str, int]]:
    """(frame, remote, what ncs counts) for every length case, each remote its own case."""
    pk = [Pkt(f"198.51.100.{i}", ME4, T0 + i, proto="tcp", payload=b"t" * 1400) for i in range(1, 6)]
    pk.append(Pkt("2001:db8:100::1", ME6, T0 + 6, payload=b"s" * 20))
    f = build(LINKTYPE_EN10MB, pk)
    out = [
        (f[0], "198.51.100.1", 14 + 20 + 20 + 1400),  # an ordinary packet, cut by the snap length
        (with_ip_length(f[1], 0, 64_014), "198.51.100.2", 64_014),  # TSO super-packet, total length 0
        (with_ip_length(f[2], 0, 150_014), "198.51.100.3", 150_014),  # BIG TCP: beyond 64 KiB
        (with_ip_length(f[3], 60_000, 142), "198.51.100.4", 142),  # total length beyond the frame
        (with_ip_length(f[4], 1000, 1454), "198.51.100.5", 14 + 1000),  # shorter than the frame: stated
        (with_ip_length(f[5], 0xFFFF, 62), "2001:db8:100::1", 62),  # payload length beyond the frame
        (jumbogram("2001:db8:100::2", ME6, T0 + 7, 100_000), "2001:db8:100::2", 14 + 40 + 16 + 100_000),
    ]
    return out


def tshark_bytes(path: str) -> dict[str, int]:
    """Return tshark's bytes per IPv4 and IPv6 endpoint of the capture at PATH."""
    got: dict[str, int] = {}
    for table in ("ip", "ipv6"):
        res = subprocess.run(["tshark", "-n", "-r", path, "-q", "-z", f"endpoints,{table}"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        for line in res.stdout.splitlines():
            m = re.match(r"^\s*([0-9a-f.:]+)\s+(\d+)\s+(\d+)\s", line)
            if m and (":" in m.group(1) or "." in m.group(1)):
                got[m.group(1)] = int(m.group(3))
    return got


def replay(path: str, stats: str) -> dict[str, tuple[int, int]]:
    res = subprocess.run([*AGENT, "run", "--read", path, "--bpf", f"host {ME4} or host {ME6}", "--no-dns",
                          "--stats", stats], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return {a: (int(r.C), int(r.B)) for a, r in read_stats(stats).records.items()}


def test_length_field_zero_or_beyond_the_frame_counts_the_wire_length(tmp_path):
    built = cases()
    path = str(tmp_path / "lengths.pcap")
    write_pcap(path, LINKTYPE_EN10MB, [f for f, _, _ in built], snaplen=SNAPLEN)
    got = replay(path, str(tmp_path / "lengths.stats"))
    assert got == {remote: (1, counted) for _, remote, counted in built}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_per_remote_bytes_equal_tsharks(tmp_path):
    """Every case that counts a whole frame, many times over, mixed with ordinary traffic: B is tshark's bytes.

    (tshark counts frames, padding included; the case of a datagram shorter
    than its frame is checked above.)
    """
    whole = [f for f, _, counted in cases() if counted == f.wire_len]
    frames = whole * 3 + build(LINKTYPE_EN10MB, traffic(LINKTYPE_EN10MB))
    frames.sort(key=lambda f: f.sec)
    path = str(tmp_path / "mixed.pcap")
    write_pcap(path, LINKTYPE_EN10MB, frames, snaplen=SNAPLEN)
    got = replay(path, str(tmp_path / "mixed.stats"))
    theirs = tshark_bytes(path)
    assert got and all(theirs[remote] == bytes_ for remote, (_, bytes_) in got.items())


def test_ethernet_padding_is_not_counted(tmp_path):
    """The original's rule stays for frames longer than their datagram: link header + IP length."""
    frame = build(LINKTYPE_EN10MB, [Pkt("198.51.100.9", ME4, T0, payload=b"p")])[0]
    padded = frame.data + bytes(60 - len(frame.data))  # the minimum Ethernet frame
    path = str(tmp_path / "pad.pcap")
    write_pcap(path, LINKTYPE_EN10MB, [Frame(T0, 0, padded, 0)])
    assert replay(path, str(tmp_path / "pad.stats")) == {"198.51.100.9": (1, 14 + 20 + 8 + 1)}


def test_total_length_below_the_header_is_still_malformed():
    frame = build(LINKTYPE_EN10MB, [Pkt("198.51.100.9", ME4, T0, payload=b"x" * 40)])[0]
    short = with_ip_length(frame, 12, len(frame.data)).data
    got_batch, got_one, counters, _ = both_ways(LINKTYPE_EN10MB, [short])
    assert got_batch == got_one == [] and counters["malformed"] == 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(traffic(LINKTYPE_EN10MB)) - 1),
                          st.integers(0, 0xFFFF), st.booleans(), st.integers(0, 70_000),
                          st.integers(34, 200)), min_size=1, max_size=40))
def test_batch_lengths_equal_the_per_packet_rule(draws):
    """Random IP length fields, wire lengths and snap lengths: the batch decoder agrees with decode_one."""
    base = build(LINKTYPE_EN10MB, [p for p in traffic(LINKTYPE_EN10MB) if not p.vlans] or [])
    datas, wires = [], []
    for index, value, set_it, extra, snap in draws:
        frame = base[index % len(base)]
        if set_it:
            frame = with_ip_length(frame, value, len(frame.data))
        datas.append(frame.data[:snap])
        wires.append(len(frame.data) + extra)
    got_batch, got_one, counters_batch, counters_one = both_ways(LINKTYPE_EN10MB, datas, wires=wires)
    assert got_batch == got_one and counters_batch == counters_one


def test_decoder_takes_the_wire_length_per_frame():
    """The wire length is per frame: the same bytes count differently on different wires."""
    frame = with_ip_length(build(LINKTYPE_EN10MB, [Pkt("198.51.100.9", ME4, T0)])[0], 0, 0).data
    dec = Decoder(LINKTYPE_EN10MB, [ME4], RemoteKeys())
    batch = dec.decode(*pack_batch([frame, frame, frame], wires=[100, 5000, 70_000]))
    assert batch.length.tolist() == [100, 5000, 70_000]
    one = Decoder(LINKTYPE_EN10MB, [ME4], RemoteKeys())
    assert [decode_one(one, frame, w)[1] for w in (100, 5000, 70_000)] == [100, 5000, 70_000]
    assert np.all(batch.sec == T0)


def test_tshark_parser_reads_both_tables(tmp_path):
    """The oracle's own check: tshark_bytes finds IPv4 and IPv6 endpoints with their totals."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    frames = build(LINKTYPE_EN10MB, [Pkt("198.51.100.9", ME4, T0, payload=b"x" * 10),
                                     Pkt("2001:db8:100::9", ME6, T0, payload=b"y" * 10)])
    path = str(tmp_path / "t.pcap")
    write_pcap(path, LINKTYPE_EN10MB, frames)
    sums: dict[str, int] = defaultdict(int)
    for f in frames:
        sums[f.pkt.src] += len(f.data)
    got = tshark_bytes(path)
    assert got["198.51.100.9"] == sums["198.51.100.9"] and got["2001:db8:100::9"] == sums["2001:db8:100::9"]
