"""Big dumps are formatted on two cores; the file is the same as from one.  IPv6
address texts laid out by numpy equal inet_ntop's."""

from __future__ import annotations

import socket
import struct

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ncs.agent import dumptext, runner
from ncs.agent.config import AgentConfig
from ncs.agent.statsparse import read_stats

ME = "198.51.100.10"


def many_remotes_pcap(path: str, n: int) -> None:
    """N UDP packets to ME, each from its own 10.x.y.z source, one second apart per 1000."""
    rng = np.random.default_rng(3)
    src = (0x0A000000 + rng.permutation(1 << 22)[:n]).astype(">u4")
    frame = bytearray(bytes(12) + b"\x08\x00" + struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 18, 1, 0, 64, 17, 0, bytes(4), bytes([198, 51, 100, 10]))
        + struct.pack("!HHHH", 1000, 53, 26, 0) + bytes(18))
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, s in enumerate(src.tobytes()[j:j + 4] for j in range(0, 4 * n, 4)):
            frame[26:30] = s
            out.write(struct.pack("<IIII", 1_700_000_000 + i // 1000, 0, len(frame), len(frame)))
            out.write(frame)


def test_two_core_dump_equals_one_core_dump(tmp_path, monkeypatch):
    n = runner.PARALLEL_DUMP + 1000
    pcap = str(tmp_path / "many.pcap")
    many_remotes_pcap(pcap, n)
    cfg = AgentConfig(bpf=f"host {ME}", read=pcap, stats=str(tmp_path / "two.stats"), dns=False)
    capture = runner.Capture.open_file(pcap, cfg.bpf)
    agent = runner.Agent(cfg, capture, [ME])
    while True:
        pkts, meta = capture.read_batch()
        if not meta:
            break
        agent.ingest(pkts, meta)
    agent.write(agent.last_second)  # >= PARALLEL_DUMP records: two processes
    monkeypatch.setattr(runner, "PARALLEL_DUMP", 10 * n)
    cfg.stats = str(tmp_path / "one.stats")
    agent.write(agent.last_second)
    two, one = (tmp_path / "two.stats").read_bytes(), (tmp_path / "one.stats").read_bytes()
    assert two == one
    stats = read_stats(str(tmp_path / "two.stats"))
    assert len(stats.records) == n
    assert all(r.C == 1 and r.B == 14 + 46 for r in stats.records.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.pcap", "one.stats", "two.stats"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x10, 0xABC]) | st.integers(0, 0xFFFF),
                         min_size=8, max_size=8), min_size=1, max_size=40))
@example([[0] * 5 + [0xFFFF, 0x102, 0x304], [0] * 6 + [0x102, 0x304], [0] * 8, [0] * 7 + [1],
          [0] * 6 + [0xFFFF, 0], [1] + [0] * 7, [1, 0, 0, 2, 0, 0, 3, 4], [0, 0, 1, 0, 0, 0, 0, 0]])
def test_ipv6_texts_equal_inet_ntop(groups):
    """IPv6 addresses laid out by numpy read exactly as libc's inet_ntop writes them,
    zero runs, IPv4-mapped and IPv4-compatible forms included."""
    packed = [b"".join(g.to_bytes(2, "big") for g in words) for words in groups]
    halves = np.array([struct.unpack("!QQ", p) for p in packed], np.uint64).reshape(-1, 2)
    cells, lengths = dumptext.v6_address_block(halves[:, 0].copy(), halves[:, 1].copy())
    raw = cells.view(np.uint8)
    got = [raw[i][raw[i] != 0].tobytes().decode() for i in range(len(packed))]
    want = [socket.inet_ntop(socket.AF_INET6, p) for p in packed]
    assert got == want
    assert lengths.tolist() == [len(w) for w in want]
