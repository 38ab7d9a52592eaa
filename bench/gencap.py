#!/usr/bin/env python3
"""Synthetic capture generator: writes a classic pcap of Ethernet/IPv4/IPv6 TCP/UDP traffic of one host.

Every packet has the monitored host on one side and a remote address on the
other (either direction). Remote addresses come from a pool of --remotes K
addresses (skewed, so a few remotes are busy and many are quiet) or, with
--remotes 0, are new for every packet. Headers are well formed: the pcap wire
length, the IP total length (IPv6: 40 + payload length) and the UDP length all
describe the real packet; only the first --snaplen bytes are stored, the
payload is zeros. Checksums (IPv4 header, TCP, UDP) are correct for that
zero payload.

The whole file is built with numpy a chunk of packets at a time, so millions of
packets take seconds. The same options and seed always give the same file.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import dataclass

import numpy as np

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
ETH_LEN = 14
MAX_WIRE = 1514  # Ethernet frame without FCS at MTU 1500
MIN_WIRE = 60  # shortest Ethernet frame without FCS
HEADER_ROOM = 16 + ETH_LEN + 40 + 20  # pcap record + Ethernet + IPv6 + TCP: the widest header
START_TIME = 1_700_000_000  # first packet's timestamp (2023-11-14), fixed for reproducible files
HOST_MAC = bytes.fromhex("020000000010")
PEER_MAC = bytes.fromhex("020000000001")
TCP_SHARE = 0.7
MULT_24 = 0x9E3779B1 & 0xFFFFFF  # odd, so x -> x*MULT mod 2**24 is a bijection
CHUNK_BYTES = 64 << 20  # working set per chunk of packets

PCAP_RECORD = np.dtype([("ts_sec", "<u4"), ("ts_usec", "<u4"), ("incl_len", "<u4"), ("orig_len", "<u4")])
ETHER = [("eth_dst", "u1", (6,)), ("eth_src", "u1", (6,)), ("ethertype", ">u2")]
# TCP and UDP share the port words; the rest is TCP's header, or for UDP its
# length and checksum followed by (zero) payload.
L4 = [("sport", ">u2"), ("dport", ">u2"), ("w1", ">u4"), ("w2", ">u4"),
      ("tcp_off", "u1"), ("tcp_flags", "u1"), ("tcp_win", ">u2"), ("tcp_sum", ">u2"), ("tcp_urg", ">u2")]
IPV4 = [("ver_ihl", "u1"), ("tos", "u1"), ("tot_len", ">u2"), ("ip_id", ">u2"), ("frag", ">u2"),
        ("ttl", "u1"), ("proto", "u1"), ("ip_sum", ">u2"), ("src", ">u4"), ("dst", ">u4")]
IPV6 = [("vtf", ">u4"), ("plen", ">u2"), ("nxt", "u1"), ("hlim", "u1"),
        ("src_hi", ">u8"), ("src_lo", ">u8"), ("dst_hi", ">u8"), ("dst_lo", ">u8")]


@dataclass(frozen=True)
class CaptureSpec:
    """What to generate; field names follow the command-line options."""

    packets: int
    remotes: int
    snaplen: int
    host: str
    host6: str
    pps: float
    seed: int
    ipv6_share: float
    start: int = START_TIME


def row_width(snaplen: int) -> int:
    """Return the bytes per packet row while building: pcap record header plus the largest capture."""
    return max(HEADER_ROOM, 16 + min(snaplen, MAX_WIRE))


def record_dtype(ip_fields: list[tuple[str, str]], width: int) -> np.dtype:
    """Return a structured dtype of one packet row (pcap record + headers), padded to width bytes."""
    base = np.dtype(PCAP_RECORD.descr + ETHER + ip_fields + L4)
    return np.dtype({"names": list(base.names), "formats": [base.fields[n][0] for n in base.names],
                     "offsets": [base.fields[n][1] for n in base.names], "itemsize": width})


def mix64(x: np.ndarray, seed: int) -> np.ndarray:
    """Return a well-mixed 64-bit hash of each value (splitmix64 finaliser)."""
    z = x.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def remote_is_v6(idx: np.ndarray, spec: CaptureSpec) -> np.ndarray:
    """Return, for each remote index, whether that remote is an IPv6 address."""
    if spec.ipv6_share <= 0:
        return np.zeros(idx.shape, dtype=bool)
    threshold = np.uint64(min(int(spec.ipv6_share * 2**32), 2**32))
    return (mix64(idx, spec.seed) >> np.uint64(32)) < threshold


def remote_v4(idx: np.ndarray, seed: int) -> np.ndarray:
    """Return a distinct IPv4 address (as uint32) for each distinct index: 10.x.y.z, then 11/8..."""
    idx = idx.astype(np.uint64)
    low = ((idx & np.uint64(0xFFFFFF)) * np.uint64(MULT_24) + np.uint64(seed & 0xFFFFFF)) & np.uint64(0xFFFFFF)
    return (((np.uint64(10) + (idx >> np.uint64(24))) << np.uint64(24)) | low).astype(np.uint32)


def remote_v6(idx: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (high, low) 64-bit halves of a distinct 2001:db8::/32 address for each index.

    The /64 is scattered (so grouping by /64 has work to do) and the interface id
    is the index plus one, which keeps the addresses distinct.
    """
    subnet = mix64(idx, seed + 1) & np.uint64(0xFFFFFFFF)
    high = np.uint64(0x20010DB8 << 32) | subnet
    return high, idx.astype(np.uint64) + np.uint64(1)


def draw_remote_indexes(rng: np.random.Generator, first: int, n: int, spec: CaptureSpec) -> np.ndarray:
    """Return the remote index of each packet of a chunk starting at packet `first`."""
    if spec.remotes == 0:
        return np.arange(first, first + n, dtype=np.uint64)
    # u**2 favours low indexes: a few busy remotes, a long tail of quiet ones
    u = rng.random(n)
    return np.minimum((u * u * spec.remotes).astype(np.uint64), np.uint64(spec.remotes - 1))


def draw_wire_lengths(rng: np.random.Generator, n: int, minimum: np.ndarray) -> np.ndarray:
    """Return frame lengths: about 45% small, 20% medium, 35% full-size, never below `minimum`."""
    kind = rng.random(n)
    wire = np.where(kind < 0.45, rng.integers(MIN_WIRE, 129, n),
                    np.where(kind < 0.65, rng.integers(129, 801, n), MAX_WIRE))
    return np.maximum(wire, minimum).astype(np.uint32)


def fold_checksum(total: np.ndarray) -> np.ndarray:
    """Return the one's-complement checksum (uint16) of per-row sums of 16-bit words."""
    for _ in range(3):
        total = (total & np.uint64(0xFFFF)) + (total >> np.uint64(16))
    return (~total & np.uint64(0xFFFF)).astype(np.uint16)


def word_sum(values: np.ndarray) -> np.ndarray:
    """Return the sum of the 16-bit words of each (up to 64-bit) value, as uint64."""
    v = values.astype(np.uint64)
    mask = np.uint64(0xFFFF)
    return (v & mask) + ((v >> np.uint64(16)) & mask) + ((v >> np.uint64(32)) & mask) + (v >> np.uint64(48))


def set_l4_checksum(rec: np.ndarray, t: dict[str, np.ndarray], pseudo: np.ndarray) -> None:
    """Set the TCP or UDP checksum of each row; `pseudo` is the word sum of both addresses.

    The payload is zeros, so the header and the pseudo-header decide the sum.
    """
    tcp = t["tcp"]
    total = pseudo + t["l4_len"] + np.where(tcp, 6, 17).astype(np.uint64)
    total += word_sum(rec["sport"]) + word_sum(rec["dport"]) + word_sum(rec["w1"]) + word_sum(rec["w2"])
    total += ((rec["tcp_off"].astype(np.uint64) << np.uint64(8)) | rec["tcp_flags"]) + word_sum(rec["tcp_win"])
    csum = fold_checksum(total)
    udp_sum = np.where(csum == 0, np.uint16(0xFFFF), csum)  # 0 would mean "no checksum" in UDP
    rec["tcp_sum"] = np.where(tcp, csum, 0)
    rec["w1"] = np.where(tcp, rec["w1"], rec["w1"] | udp_sum)


def ipv4_checksum(rec: np.ndarray) -> np.ndarray:
    """Return the IPv4 header checksum of each row (header without options, checksum field zero)."""
    total = (rec["ver_ihl"].astype(np.uint64) << np.uint64(8)) | rec["tos"]
    total += word_sum(rec["tot_len"]) + word_sum(rec["ip_id"]) + word_sum(rec["frag"])
    total += (rec["ttl"].astype(np.uint64) << np.uint64(8)) | rec["proto"]
    total += word_sum(rec["src"]) + word_sum(rec["dst"])
    return fold_checksum(total)


def fill_common(rec: np.ndarray, t: dict[str, np.ndarray], spec: CaptureSpec) -> None:
    """Fill the pcap record header, Ethernet and transport fields shared by IPv4 and IPv6 rows."""
    inbound, wire, tcp = t["inbound"], t["wire"], t["tcp"]
    rec["ts_sec"] = t["ts_sec"]
    rec["ts_usec"] = t["ts_usec"]
    rec["orig_len"] = wire
    rec["incl_len"] = np.minimum(wire, spec.snaplen)
    host_mac = np.frombuffer(HOST_MAC, dtype=np.uint8)
    peer_mac = np.frombuffer(PEER_MAC, dtype=np.uint8)
    rec["eth_dst"] = np.where(inbound[:, None], host_mac, peer_mac)
    rec["eth_src"] = np.where(inbound[:, None], peer_mac, host_mac)
    rec["sport"] = np.where(inbound, t["remote_port"], t["host_port"])
    rec["dport"] = np.where(inbound, t["host_port"], t["remote_port"])
    l4_len = t["l4_len"]
    rec["w1"] = np.where(tcp, t["seq"], l4_len.astype(np.uint32) << np.uint32(16))
    rec["w2"] = np.where(tcp, t["ack"], 0)
    rec["tcp_off"] = np.where(tcp, 5 << 4, 0)
    rec["tcp_flags"] = np.where(tcp, 0x18, 0)  # PSH+ACK
    rec["tcp_win"] = np.where(tcp, 502, 0)


def build_v4(t: dict[str, np.ndarray], spec: CaptureSpec, width: int) -> np.ndarray:
    """Return the IPv4 rows of a chunk (t holds that subset's per-packet values)."""
    rec = np.zeros(len(t["wire"]), dtype=record_dtype(IPV4, width))
    fill_common(rec, t, spec)
    host = np.uint32(int(ipaddress.IPv4Address(spec.host)))
    remote = remote_v4(t["remote"], spec.seed)
    rec["ethertype"] = 0x0800
    rec["ver_ihl"] = 0x45
    rec["tot_len"] = t["wire"] - ETH_LEN
    rec["ip_id"] = t["ip_id"]
    rec["frag"] = 0x4000  # don't fragment
    rec["ttl"] = 64
    rec["proto"] = np.where(t["tcp"], 6, 17)
    rec["src"] = np.where(t["inbound"], remote, host)
    rec["dst"] = np.where(t["inbound"], host, remote)
    rec["ip_sum"] = ipv4_checksum(rec)
    set_l4_checksum(rec, t, word_sum(rec["src"]) + word_sum(rec["dst"]))
    return rec


def build_v6(t: dict[str, np.ndarray], spec: CaptureSpec, width: int) -> np.ndarray:
    """Return the IPv6 rows of a chunk (t holds that subset's per-packet values)."""
    rec = np.zeros(len(t["wire"]), dtype=record_dtype(IPV6, width))
    fill_common(rec, t, spec)
    host = int(ipaddress.IPv6Address(spec.host6))
    host_hi, host_lo = np.uint64(host >> 64), np.uint64(host & (2**64 - 1))
    hi, lo = remote_v6(t["remote"], spec.seed)
    rec["ethertype"] = 0x86DD
    rec["vtf"] = 6 << 28
    rec["plen"] = t["wire"] - ETH_LEN - 40
    rec["nxt"] = np.where(t["tcp"], 6, 17)
    rec["hlim"] = 64
    rec["src_hi"] = np.where(t["inbound"], hi, host_hi)
    rec["src_lo"] = np.where(t["inbound"], lo, host_lo)
    rec["dst_hi"] = np.where(t["inbound"], host_hi, hi)
    rec["dst_lo"] = np.where(t["inbound"], host_lo, lo)
    pseudo = word_sum(hi) + word_sum(lo) + word_sum(host_hi) + word_sum(host_lo)
    set_l4_checksum(rec, t, pseudo)
    return rec


def chunk_values(rng: np.random.Generator, first: int, n: int, spec: CaptureSpec) -> dict[str, np.ndarray]:
    """Return the per-packet values of packets first .. first+n-1 (one array per field)."""
    index = np.arange(first, first + n, dtype=np.uint64)
    usec = (index * np.uint64(1_000_000) / spec.pps).astype(np.uint64)
    remote = draw_remote_indexes(rng, first, n, spec)
    v6 = remote_is_v6(remote, spec)
    tcp = rng.random(n) < TCP_SHARE
    header = np.where(v6, 40, 20) + np.where(tcp, 20, 8)
    wire = draw_wire_lengths(rng, n, ETH_LEN + header)
    return {
        "ts_sec": (np.uint64(spec.start) + usec // np.uint64(1_000_000)).astype(np.uint32),
        "ts_usec": (usec % np.uint64(1_000_000)).astype(np.uint32),
        "remote": remote,
        "v6": v6,
        "tcp": tcp,
        "inbound": rng.random(n) < 0.5,
        "wire": wire,
        "l4_len": (wire - ETH_LEN - np.where(v6, 40, 20)).astype(np.uint32),
        "remote_port": rng.integers(1024, 65536, n).astype(np.uint16),
        "host_port": np.where(tcp, rng.choice(np.array([22, 80, 443], dtype=np.uint16), n),
                              rng.choice(np.array([53, 123], dtype=np.uint16), n)),
        "seq": rng.integers(0, 2**32, n, dtype=np.uint32),
        "ack": rng.integers(0, 2**32, n, dtype=np.uint32),
        "ip_id": rng.integers(0, 2**16, n, dtype=np.uint16),
    }


def build_chunk(rng: np.random.Generator, first: int, n: int, spec: CaptureSpec) -> np.ndarray:
    """Return the pcap bytes (records with their data) of packets first .. first+n-1."""
    width = row_width(spec.snaplen)
    t = chunk_values(rng, first, n, spec)
    rows = np.zeros((n, width), dtype=np.uint8)
    v6 = t["v6"]
    for selector, build in ((~v6, build_v4), (v6, build_v6)):
        if selector.any():
            subset = {k: v[selector] for k, v in t.items()}
            rows[selector] = build(subset, spec, width).view(np.uint8).reshape(-1, width)
    stored = 16 + np.minimum(t["wire"], spec.snaplen)
    keep = np.arange(width, dtype=np.uint32)[None, :] < stored[:, None]
    return rows[keep]


def global_header(snaplen: int) -> bytes:
    """Return the 24-byte classic pcap file header (microsecond timestamps, Ethernet)."""
    return np.array([(PCAP_MAGIC, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)],
                    dtype=[("magic", "<u4"), ("major", "<u2"), ("minor", "<u2"), ("zone", "<i4"),
                           ("sigfigs", "<u4"), ("snaplen", "<u4"), ("link", "<u4")]).tobytes()


def write_capture(path: str, spec: CaptureSpec) -> None:
    """Write the capture to path atomically (PATH.tmp, then rename).

    Raises OSError if the file cannot be written; nothing is left at path then.
    """
    rng = np.random.default_rng(spec.seed)
    chunk = max(1024, CHUNK_BYTES // (row_width(spec.snaplen) * 4))
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as out:
            out.write(global_header(spec.snaplen))
            for first in range(0, spec.packets, chunk):
                build_chunk(rng, first, min(chunk, spec.packets - first), spec).tofile(out)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def parse_args(argv: list[str] | None) -> tuple[str, CaptureSpec]:
    """Return (output path, spec) from the command line; exits with status 2 on a bad value."""
    p = argparse.ArgumentParser(description="write a synthetic pcap of one host's traffic")
    p.add_argument("output", help="pcap file to write")
    p.add_argument("--packets", type=int, default=1_000_000, help="number of packets (default 1000000)")
    p.add_argument("--remotes", type=int, default=50_000,
                   help="size of the remote address pool; 0: a new address for every packet")
    p.add_argument("--snaplen", type=int, default=96, help="bytes stored per packet (default 96)")
    p.add_argument("--host", default="198.51.100.10", help="monitored IPv4 address")
    p.add_argument("--host6", default="2001:db8:100::10", help="monitored IPv6 address")
    p.add_argument("--pps", type=float, default=10_000.0,
                   help="packets per second of capture time (the file spans packets/pps seconds)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ipv6-share", type=float, default=0.1, help="share of remotes that are IPv6 (0..1)")
    p.add_argument("--start", type=int, default=START_TIME, help="Unix time of the first packet")
    p.add_argument("--link", choices=["en10mb"], default="en10mb", help="link type (Ethernet only)")
    a = p.parse_args(argv)
    problems = []
    if a.packets < 0:
        problems.append(f"--packets {a.packets}: must be >= 0")
    if a.remotes < 0:
        problems.append(f"--remotes {a.remotes}: must be >= 0")
    if not 1 <= a.snaplen <= 262144:
        problems.append(f"--snaplen {a.snaplen}: must be 1..262144")
    if a.pps <= 0:
        problems.append(f"--pps {a.pps}: must be > 0")
    if not 0 <= a.ipv6_share <= 1:
        problems.append(f"--ipv6-share {a.ipv6_share}: must be between 0 and 1")
    if a.seed < 0:
        problems.append(f"--seed {a.seed}: must be >= 0")
    for opt, value, kind in (("--host", a.host, ipaddress.IPv4Address), ("--host6", a.host6, ipaddress.IPv6Address)):
        try:
            kind(value)
        except ValueError:
            problems.append(f"{opt} {value!r}: not an {'IPv4' if kind is ipaddress.IPv4Address else 'IPv6'} address")
    if problems:
        p.error(problems[0])
    return a.output, CaptureSpec(packets=a.packets, remotes=a.remotes, snaplen=a.snaplen, host=a.host,
                                 host6=a.host6, pps=a.pps, seed=a.seed, ipv6_share=a.ipv6_share, start=a.start)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (1 when the file cannot be written)."""
    path, spec = parse_args(argv)
    try:
        write_capture(path, spec)
    except OSError as err:
        print(f"gencap: {path}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
