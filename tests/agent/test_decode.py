"""Decoding every link type: generated captures, expected values from the generator."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest

from ncs.agent.capture import Capture
from ncs.agent.decode import Decoder, PayloadFilter
from ncs.agent.keys import RemoteKeys
from tests.agent.reference import decode_one
from tests.support.pcapgen import (
    ALL_LINKTYPES,
    LINKTYPE_EN10MB,
    Frame,
    Pkt,
    build,
    write_pcap,
    write_pcapng,
)
from tests.support.stats import read_stats

ME4, ME6 = "198.51.100.10", "2001:db8:100::10"
BPF = f"host {ME4} or host {ME6}"
# BPF's `host` does not look inside 802.1Q/802.1ad frames: each `vlan` shifts
# the offsets by one tag, so tagged traffic needs the expression repeated.
BPF_VLAN = f"{BPF} or (vlan and ({BPF} or (vlan and ({BPF}))))"
AGENT = [sys.executable, "-m", "ncs.agent.cli"]


def traffic(linktype: int) -> list[Pkt]:
    """A mix of directions, protocols, families, sizes, options, fragments and tags."""
    pk = [
        Pkt("198.51.100.7", ME4, 1_700_000_000, payload=b"x" * 100),
        Pkt(ME4, "198.51.100.7", 1_700_000_000, 5, proto="tcp", payload=b"y" * 1400),
        Pkt("198.51.100.8", ME4, 1_700_000_001, proto="icmp", payload=b"p" * 56),
        Pkt("198.51.100.8", ME4, 1_700_000_002, ip_options=b"\x01\x01\x01\x00", payload=b"o" * 10),
        Pkt("198.51.100.9", ME4, 1_700_000_003, payload=b"f" * 1000, more_fragments=True),
        Pkt("198.51.100.9", ME4, 1_700_000_003, 9, payload=b"g" * 200, frag_offset=126),
        Pkt("2001:db8:100::7", ME6, 1_700_000_004, payload=b"v6" * 300),
        Pkt(ME6, "2001:db8:100::7", 1_700_000_004, 7, proto="tcp"),
        Pkt(ME6, "2001:db8:100::99", 1_700_000_005, proto="icmp"),
    ]
    if linktype == LINKTYPE_EN10MB:
        pk += [
            Pkt("198.51.100.20", ME4, 1_700_000_006, payload=b"q" * 30, vlans=(100,)),
            Pkt("198.51.100.20", ME4, 1_700_000_006, payload=b"q" * 40, vlans=(200, 300)),
            Pkt("2001:db8:100::20", ME6, 1_700_000_006, payload=b"z", vlans=(5,)),
        ]
    return pk


def expected(frames: list[Frame]) -> dict[str, dict]:
    """Per remote address: B, C, E computed from what the generator wrote."""
    exp: dict[str, dict] = defaultdict(lambda: {"B": 0, "C": 0, "E": None})
    for f in frames:
        p = f.pkt
        remote = p.dst if p.src in (ME4, ME6) else p.src
        e = exp[remote]
        e["B"] += f.counted_len
        e["C"] += 1
        e["E"] = f.sec if e["E"] is None else e["E"]
    return dict(exp)


def run_agent(path: str, *extra: str, bpf: str = BPF) -> subprocess.CompletedProcess:
    return subprocess.run([*AGENT, "run", "--read", path, "--bpf", bpf, "--no-dns", *extra],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
@pytest.mark.parametrize("linktype", ALL_LINKTYPES)
def test_replay_counts_every_link_type(tmp_path, linktype, ng):
    frames = build(linktype, traffic(linktype))
    path = str(tmp_path / ("t.pcapng" if ng else "t.pcap"))
    # a snap length shorter than most packets: the counted length must not change
    (write_pcapng if ng else write_pcap)(path, linktype, frames, snaplen=80)
    out = tmp_path / "out.stats"
    res = run_agent(path, "--stats", str(out), bpf=BPF_VLAN if linktype == LINKTYPE_EN10MB else BPF)
    assert res.returncode == 0, res.stderr
    stats = read_stats(str(out))
    exp = expected(frames)
    assert set(stats.records) == set(exp)
    start = frames[0].sec
    for address, e in exp.items():
        r = stats.records[address]
        assert (r.B, r.C, r.E, r.S, r.R, r.W, r.T, r.N) == (e["B"], e["C"], e["E"], start, 0, 0, 0, [])
    assert stats.header_number("start") == start
    assert stats.header_number("current") == frames[-1].sec
    assert stats.header_number("users") == len(exp)


def test_stats_to_stdout(tmp_path):
    frames = build(LINKTYPE_EN10MB, traffic(LINKTYPE_EN10MB))
    path = str(tmp_path / "t.pcap")
    write_pcap(path, LINKTYPE_EN10MB, frames)
    res = run_agent(path, "--stats", "-")
    assert res.returncode == 0
    assert "'198.51.100.7'\t=> {" in res.stdout and res.stdout.endswith("  };\n}\n")


def pack_batch(datas: list[bytes], secs: list[int] | None = None,
               wires: list[int] | None = None) -> tuple[bytes, bytes, np.ndarray]:
    """Lay frames out as a capture's Frames: bytes, (sec, usec, off, caplen), wire lengths.

    WIRES defaults to the captured lengths (frames captured whole).
    """
    meta, off = b"", 0
    for i, d in enumerate(datas):
        meta += struct.pack("=IIII", (secs or [1_700_000_000] * len(datas))[i], 0, off, len(d))
        off += len(d)
    wire = np.array(wires if wires is not None else [len(d) for d in datas], dtype=np.int64)
    return b"".join(datas), meta, wire


def both_ways(linktype: int, datas: list[bytes], pf: PayloadFilter | None = None,
              wires: list[int] | None = None):
    """Decode DATAS (WIRES long on the wire) with the batch decoder and the per-packet one."""
    wires = wires if wires is not None else [len(d) for d in datas]
    batch_dec = Decoder(linktype, [ME4, ME6], RemoteKeys(), pf)
    b = batch_dec.decode(*pack_batch(datas, wires=wires))
    keys = batch_dec.keys
    got_batch = [(keys.address(int(k)), int(n)) for k, n in zip(b.key, b.length, strict=True)]
    one_dec = Decoder(linktype, [ME4, ME6], RemoteKeys(), pf)
    got_one = []
    for d, wire in zip(datas, wires, strict=True):
        r = decode_one(one_dec, d, wire)
        if r is not None:
            got_one.append((one_dec.keys.address(r[0]), r[1]))
    counters_one = one_dec.counters.as_dict()
    counters_one["packets"] = len(datas)
    return got_batch, got_one, batch_dec.counters.as_dict(), counters_one


@pytest.mark.parametrize("linktype", ALL_LINKTYPES)
def test_broken_frames_are_skipped_and_counted(linktype):
    good = [f.data for f in build(linktype, traffic(linktype))]
    ok = good[0]
    broken = [
        b"",  # empty
        ok[:3],  # shorter than any link header
        ok[:len(ok) - len(traffic(linktype)[0].payload) - 8 - 19],  # IP header cut short
    ]
    bad_version = bytearray(ok)
    ihl_at = len(ok) - len(traffic(linktype)[0].payload) - 8 - 20
    bad_version[ihl_at] = 0x75  # version 7
    bad_ihl = bytearray(ok)
    bad_ihl[ihl_at] = 0x43  # header length 12 bytes
    datas = good + broken + [bytes(bad_version), bytes(bad_ihl)]
    if linktype == LINKTYPE_EN10MB:
        arp = bytes(12) + b"\x08\x06" + bytes(28)
        datas.append(arp)
    got_batch, got_one, cb, co = both_ways(linktype, datas)
    assert got_batch == got_one
    assert cb == co
    assert cb["accounted"] == len(good)
    assert cb["truncated"] >= 2 and cb["malformed"] >= 1
    skipped = sum(v for k, v in cb.items() if k not in ("packets", "accounted"))
    assert cb["accounted"] + skipped == len(datas)


def test_random_garbage_never_crashes_and_agrees():
    rng = np.random.default_rng(5)
    good = [f.data for f in build(LINKTYPE_EN10MB, traffic(LINKTYPE_EN10MB))]
    datas = []
    for _ in range(400):
        base = bytearray(good[rng.integers(len(good))])
        for _ in range(rng.integers(0, 4)):
            base[rng.integers(len(base))] = rng.integers(256)
        datas.append(bytes(base[: rng.integers(0, len(base) + 1)]))
    for lt in ALL_LINKTYPES:
        got_batch, got_one, cb, co = both_ways(lt, datas)
        assert got_batch == got_one and cb == co


def test_payload_match_and_nomatch(tmp_path):
    pk = [
        Pkt("198.51.100.1", ME4, 1_700_000_000, payload=b"..\x0aSomeDomain\x03com.."),
        Pkt("198.51.100.2", ME4, 1_700_000_000, payload=b"..\x0asomedomain\x03COM..nope"),
        Pkt("198.51.100.3", ME4, 1_700_000_000, payload=b"..other.."),
        # the needle lies partly before the payload offset: not a match
        Pkt("198.51.100.4", ME4, 1_700_000_000, sport=0x0A73, payload=b"omedomain\x03com"),
    ]
    datas = [f.data for f in build(LINKTYPE_EN10MB, pk)]
    offset = 14 + 20 + 8
    pf = PayloadFilter(offset, match=b"\x0asomedomain\x03com", nomatch=b"NOPE")
    got_batch, got_one, cb, co = both_ways(LINKTYPE_EN10MB, datas, pf)
    assert got_batch == got_one and cb == co
    assert [a for a, _ in got_batch] == ["198.51.100.1"]
    assert cb["filtered"] == 3


def test_cli_match_escape_end_to_end(tmp_path):
    pk = [Pkt("198.51.100.1", ME4, 1_700_000_000, payload=b"\x0asomedomain\x03com"),
          Pkt("198.51.100.2", ME4, 1_700_000_000, payload=b"nothing here")]
    frames = build(LINKTYPE_EN10MB, pk)
    path = str(tmp_path / "m.pcap")
    write_pcap(path, LINKTYPE_EN10MB, frames)
    out = tmp_path / "m.stats"
    res = run_agent(path, "--match", r"\x{a}SOMEDOMAIN\x{3}com", "--payload", "42",
                    "--snaplen", "90", "--stats", str(out))
    assert res.returncode == 0, res.stderr
    stats = read_stats(str(out))
    assert list(stats.records) == ["198.51.100.1"]
    assert stats.header_value("contains") == r"\x{a}SOMEDOMAIN\x{3}com"
    assert stats.header_value("fragment") == "42 - 90"


def test_capture_batches_match_per_packet_decoding(tmp_path):
    """The same file read in batches by the agent's capture, decoded both ways."""
    frames = build(LINKTYPE_EN10MB, traffic(LINKTYPE_EN10MB) * 50)
    path = str(tmp_path / "b.pcap")
    write_pcap(path, LINKTYPE_EN10MB, frames, snaplen=64)
    capture = Capture.open_file(path, "ip or ip6 or vlan")
    dec = Decoder(capture.linktype, [ME4, ME6], RemoteKeys())
    got = []
    while len(batch := capture.read_batch(100)):
        b = dec.decode(batch.pkts, batch.meta, batch.wire)
        got += [(dec.keys.address(int(k)), int(n)) for k, n in zip(b.key, b.length, strict=True)]
    one = Decoder(1, [ME4, ME6], RemoteKeys())
    want = []
    for f in frames:
        r = decode_one(one, f.data[:64], f.wire_len)
        want.append((one.keys.address(r[0]), r[1]))
    assert got == want
    assert [n for _, n in got] == [f.counted_len for f in frames]


def test_unreadable_capture_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture file at all")
    res = run_agent(str(bad), "--stats", str(tmp_path / "x.stats"))
    assert res.returncode != 0
    assert res.stderr.count("\n") == 1 and str(bad) in res.stderr
    assert not (tmp_path / "x.stats").exists()


def test_bad_bpf_is_one_line_error(tmp_path):
    frames = build(LINKTYPE_EN10MB, traffic(LINKTYPE_EN10MB))
    path = str(tmp_path / "t.pcap")
    write_pcap(path, LINKTYPE_EN10MB, frames)
    res = subprocess.run([*AGENT, "run", "--read", path, "--bpf", "host 198.51.100.10 and bogus",
                          "--stats", "-"], capture_output=True, text=True)
    assert res.returncode != 0 and res.stderr.count("\n") == 1 and "bpf" in res.stderr


def test_uniform_batches_agree_with_per_packet_decoding():
    """Equal captured lengths (a fixed snap length on big packets), IPv4 and IPv6 mixed."""
    pk = [p for p in traffic(LINKTYPE_EN10MB) if len(p.payload) >= 100 and not p.vlans] * 20
    whole = build(LINKTYPE_EN10MB, pk)
    cut = [f.data[:64] for f in whole]
    got_batch, got_one, cb, co = both_ways(LINKTYPE_EN10MB, cut, wires=[f.wire_len for f in whole])
    assert got_batch == got_one and cb == co
    assert [n for _, n in got_batch] == [f.counted_len for f in whole]
