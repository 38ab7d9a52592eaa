"""Big dumps are formatted on two cores; the file is the same as from one."""

from __future__ import annotations

import struct

import numpy as np

from ncs import twocore
from ncs.agent import runner
from ncs.agent.config import AgentConfig
from ncs.stats.writer import CHUNK_ROWS
from tests.support.stats import read_stats

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


def test_two_core_dump_equals_one_core_dump(tmp_path, monkeypatch, forks):
    n = 2 * CHUNK_ROWS + 1000  # three chunks: a first half here, a second in the child
    monkeypatch.setattr(twocore, "MIN_RECORDS", n - 1)
    pcap = str(tmp_path / "many.pcap")
    many_remotes_pcap(pcap, n)
    cfg = AgentConfig(bpf=f"host {ME}", read=pcap, stats=str(tmp_path / "two.stats"), dns=False)
    capture = runner.Capture.open_file(pcap, cfg.bpf)
    agent = runner.Agent(cfg, capture, [ME])
    while len(frames := capture.read_batch()):
        agent.ingest(frames)
    agent.write(agent.last_second)  # >= MIN_RECORDS records: two processes
    assert forks, "the dump was not written on two cores"
    monkeypatch.setattr(twocore, "MIN_RECORDS", 10 * n)
    cfg.stats = str(tmp_path / "one.stats")
    agent.write(agent.last_second)
    two, one = (tmp_path / "two.stats").read_bytes(), (tmp_path / "one.stats").read_bytes()
    assert two == one
    stats = read_stats(str(tmp_path / "two.stats"))
    assert len(stats.records) == n
    assert all(r.C == 1 and r.B == 14 + 46 for r in stats.records.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.pcap", "one.stats", "two.stats"]
