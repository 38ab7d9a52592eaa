"""The capture: batches equal libpcap's packets one by one, damaged files, link types, libpcap's counters."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pcapy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncs.agent.capture import WRAP, Capture, DropCounter
from tests.support.pcapgen import LINKTYPE_EN10MB, Frame, Pkt, build, write_pcap, write_pcapng
from tests.support.stats import read_stats

AGENT = [sys.executable, "-m", "ncs.agent.cli"]
ME = "198.51.100.10"
EXIT_DAMAGED = 4  # docs/agent.md: run --read on a damaged file


def test_drop_counters_survive_32_bit_wraps():
    c = DropCounter()
    c.update((WRAP - 10, WRAP - 2, 0))
    c.update((5, 3, 1))  # both counters wrapped: +15 received, +5 dropped
    c.update((5, 3, 1))  # no change
    c.update((100, 3, 1))
    assert (c.received, c.dropped, c.ifdropped) == (WRAP - 10 + 15 + 95, WRAP - 2 + 5, 1)


def one_by_one(path: str, bpf: str) -> list[tuple[int, int, int, int, bytes]]:
    """Return (sec, usec, caplen, wire length, bytes) of every packet, read by pcapy-ng's next()."""
    reader = pcapy.open_offline(path)
    reader.setfilter(bpf)
    out = []
    while True:
        hdr, data = reader.next()
        if hdr is None:
            return out
        sec, usec = hdr.getts()
        out.append((sec, usec, hdr.getcaplen(), hdr.getlen(), data))


def batched(path: str, bpf: str, size: int) -> list[tuple[int, int, int, int, bytes]]:
    """The same, read by Capture.read_batch in batches of SIZE."""
    capture = Capture.open_file(path, bpf)
    out = []
    while len(frames := capture.read_batch(size)):
        meta = struct.iter_unpack("=IIII", frames.meta)
        for (sec, usec, off, cap), wire in zip(meta, frames.wire.tolist(), strict=True):
            out.append((sec, usec, cap, wire, frames.pkts[off:off + cap]))
    capture.close()
    return out


frame_sizes = st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 3000), st.booleans()),
                       min_size=0, max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame_sizes, st.integers(1, 70), st.sampled_from([60, 96, 1600]), st.booleans())
def test_batches_hold_what_libpcap_reads_one_by_one(tmp_path, sizes, batch, snaplen, ng):
    """The spool-and-batch fast path against pcapy-ng's per-packet next(): same frames, same wire lengths."""
    frames = []
    for i, (payload, extra, mine) in enumerate(sizes):
        p = Pkt(ME if mine else "198.51.100.9", "198.51.100.7", 1_700_000_000 + i, i * 7,
                payload=bytes([i % 256]) * payload)
        f = build(LINKTYPE_EN10MB, [p])[0]
        frames.append(Frame(f.sec, f.usec, f.data, f.counted_len, wire_len=len(f.data) + extra))
    path = str(tmp_path / ("f.pcapng" if ng else "f.pcap"))
    (write_pcapng if ng else write_pcap)(path, LINKTYPE_EN10MB, frames, snaplen=snaplen)
    for bpf in ("", f"src host {ME}"):
        assert batched(path, bpf, batch) == one_by_one(path, bpf)


# -- damaged capture files --------------------------------------------------

def traffic(n: int) -> list[Frame]:
    """N UDP packets to ME from 50 sources, 100 a second, of varied sizes."""
    return build(LINKTYPE_EN10MB, [Pkt(f"198.51.100.{1 + i % 50}", ME, 1_700_000_000 + i // 100,
                                       i % 100 * 1000, payload=b"x" * (i % 300)) for i in range(n)])


def record_offsets(frames: list[Frame]) -> list[int]:
    """Return where each frame's record starts in a classic pcap file of FRAMES."""
    offsets, at = [], 24
    for f in frames:
        offsets.append(at)
        at += 16 + len(f.data)
    return offsets


def damage(kind: str, path: Path, frames: list[Frame], k: int) -> int:
    """Write a capture of FRAMES damaged at frame K in the way KIND says; returns the frames before it."""
    if kind == "pcapng-cut-in-last-block":
        write_pcapng(str(path), LINKTYPE_EN10MB, frames, snaplen=1000)
        path.write_bytes(path.read_bytes()[:-7])
        return len(frames) - 1
    write_pcap(str(path), LINKTYPE_EN10MB, frames, snaplen=1000)
    data = path.read_bytes()
    at = record_offsets(frames)[k]
    if kind == "cut-inside-a-record":
        data = data[:at + 16 + 5]
    elif kind == "bad-record-length":
        data = data[:at + 8] + struct.pack("<I", 0x7FFFFFFF) + data[at + 12:]
    elif kind == "caplen-above-snaplen":
        # libpcap reads the snap length's worth (frame K and the start of the
        # next records) and then fails on the bytes that follow
        data = data[:at + 8] + struct.pack("<I", 1200) + data[at + 12:]
        k += 1
    path.write_bytes(data)
    return k


def replay(path: Path, stats: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*AGENT, "run", "--read", str(path), "--bpf", f"host {ME}", "--no-dns",
                           "--stats", str(stats)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["cut-inside-a-record", "bad-record-length", "caplen-above-snaplen",
                                  "pcapng-cut-in-last-block"])
def test_damaged_capture_counts_every_complete_packet(tmp_path, kind):
    """Every complete packet before the damage is counted, the file written, the damage one line, exit 4."""
    frames = traffic(5000)
    damaged = tmp_path / "damaged.cap"
    good = damage(kind, damaged, frames, 4176)
    whole = tmp_path / "whole.pcap"  # the same packets, undamaged: the oracle
    write_pcap(str(whole), LINKTYPE_EN10MB, frames[:good], snaplen=1000)
    assert replay(whole, tmp_path / "whole.stats").returncode == 0

    res = replay(damaged, tmp_path / "damaged.stats")
    assert res.returncode == EXIT_DAMAGED
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"ncs-agent: {damaged}: damaged capture file: ")
    got, want = read_stats(str(tmp_path / "damaged.stats")), read_stats(str(tmp_path / "whole.stats"))
    assert got.records == want.records
    assert sum(r.C for r in got.records.values()) == sum(r.C for r in want.records.values()) > 0


# -- link types the agent does not decode -----------------------------------

@pytest.mark.parametrize("linktype, name", [(258, " (PKTAP)"), (239, " (NFLOG)"), (242, " (IPOIB)"),
                                            (284, "")])  # 284, DSA tags: libpcap 1.9 has no name
def test_unsupported_link_type_is_named_not_the_bpf(tmp_path, linktype, name):
    path = tmp_path / "other.pcap"
    write_pcap(str(path), linktype, [Frame(1_700_000_000, 0, bytes(64), 64)])
    res = replay(path, tmp_path / "x.stats")
    assert res.returncode == 1
    assert res.stderr == f"ncs-agent: {path}: link type {linktype}{name} is not one the agent decodes\n"
    assert "bpf" not in res.stderr
    assert not (tmp_path / "x.stats").exists()


# -- fuzzed capture files ---------------------------------------------------

FUZZ_FILES = 200
# Reads every file named on the command line through the agent's capture and decoder; prints
# one verdict a file: "ok N" (frames read), or the exception's type and one-line message.
READ_ALL = """
import sys
from ncs.agent.capture import Capture, CaptureError
from ncs.agent.decode import Decoder
from ncs.agent.errors import ConfigError
from ncs.agent.keys import RemoteKeys
for path in sys.argv[1:]:
    try:
        capture = Capture.open_file(path, "ip or ip6 or arp")
        decoder = Decoder(capture.linktype, ["198.51.100.10"], RemoteKeys())
        n = 0
        while len(frames := capture.read_batch(64)):
            decoder.decode(frames.pkts, frames.meta, frames.wire)
            n += len(frames)
        capture.close()
        print("ok", n)
    except (CaptureError, ConfigError) as err:
        print(type(err).__name__, str(err).replace(chr(10), " "))
"""


def fuzzed_capture(rng, good: bytes) -> bytes:
    """Return GOOD with a few random bytes changed (often in the headers), cut, or both."""
    data = bytearray(good)
    for _ in range(rng.integers(1, 6)):
        at = rng.integers(0, 64) if rng.integers(2) else rng.integers(0, len(data))
        data[at] = rng.integers(256)
    if rng.integers(3) == 0:
        data = data[:rng.integers(0, len(data) + 1)]
    return bytes(data)


def test_fuzzed_capture_files_never_break_the_reader(tmp_path):
    """200 mutated pcap and pcapng files: each is read to its end or refused with one line, in a
    separate process (a crash of libpcap would show as its exit status)."""
    rng = np.random.default_rng(11)
    frames = traffic(60)
    originals = []
    for ng in (False, True):
        path = tmp_path / ("good.pcapng" if ng else "good.pcap")
        (write_pcapng if ng else write_pcap)(str(path), LINKTYPE_EN10MB, frames, snaplen=200)
        originals.append(path.read_bytes())
    paths = []
    for i in range(FUZZ_FILES):
        path = tmp_path / f"fuzz{i}.cap"
        path.write_bytes(fuzzed_capture(rng, originals[i % 2]))
        paths.append(str(path))
    res = subprocess.run([sys.executable, "-c", READ_ALL, *paths], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    verdicts = res.stdout.splitlines()
    assert len(verdicts) == FUZZ_FILES
    kinds = {line.split()[0] for line in verdicts}
    assert kinds <= {"ok", "CaptureError", "CaptureDamaged"}, kinds
    assert "ok" in kinds and "CaptureDamaged" in kinds  # the fuzzer reached both outcomes
    # through the command line: exit 0, 1 or 4, at most one line, a stats file unless exit 1
    for i, path in enumerate(paths[:12]):
        out = tmp_path / f"fuzz{i}.stats"
        run = replay(Path(path), out)
        assert run.returncode in (0, 1, 4) and run.stderr.count("\n") <= 1, run.stderr
        assert out.exists() == (run.returncode != 1)
