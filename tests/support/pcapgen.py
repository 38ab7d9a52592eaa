"""Build capture files with known contents, for every link type the agent decodes.

Tests describe packets (`Pkt`), this module turns them into frames of a link
type and writes pcap or pcapng files.  Every frame also reports what the agent
must count for it (`Frame.counted_len`: link header plus the IP length written
into the IP header), computed here from what was built, never by the agent.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

import pytest

# pcap LINKTYPE_* values (as stored in capture files)
LINKTYPE_NULL = 0
LINKTYPE_EN10MB = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

ALL_LINKTYPES = (
    LINKTYPE_EN10MB,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    LINKTYPE_NULL,
    LINKTYPE_LOOP,
)


@dataclass
class Pkt:
    """One IP packet to build.  `sec`/`usec` are its capture timestamp."""

    src: str
    dst: str
    sec: int
    usec: int = 0
    proto: str = "udp"  # udp, tcp or icmp
    payload: bytes = b""
    sport: int = 40000
    dport: int = 53
    ip_options: bytes = b""  # IPv4 only; length a multiple of 4
    frag_offset: int = 0  # IPv4 fragment offset in 8-byte units
    more_fragments: bool = False
    vlans: tuple[int, ...] = ()  # 802.1Q tags (Ethernet only); two tags = 802.1ad QinQ


@dataclass
class Frame:
    """A built frame, its timestamp, and what the agent must count for it."""

    sec: int
    usec: int
    data: bytes
    counted_len: int  # link header + IP datagram length from the IP header
    wire_len: int = 0  # length written as the pcap record's original length
    pkt: Pkt | None = None
    extra: dict = field(default_factory=dict)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def transport(p: Pkt) -> tuple[int, bytes]:
    """Return (IP protocol number, transport header + payload) for P (checksums left 0)."""
    if p.proto == "udp":
        return 17, struct.pack("!HHHH", p.sport, p.dport, 8 + len(p.payload), 0) + p.payload
    if p.proto == "tcp":
        return 6, struct.pack("!HHIIBBHHH", p.sport, p.dport, 1, 0, 5 << 4, 0x18, 65535, 0, 0) + p.payload
    if p.proto == "icmp":
        v6 = ipaddress.ip_address(p.src).version == 6
        return (58 if v6 else 1), struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, 1, 1) + p.payload
    raise ValueError(f"unknown protocol {p.proto}")


def ip_datagram(p: Pkt) -> bytes:
    """Return the IPv4 or IPv6 datagram for P."""
    proto, body = transport(p)
    src, dst = ipaddress.ip_address(p.src), ipaddress.ip_address(p.dst)
    if src.version == 4:
        ihl = 5 + len(p.ip_options) // 4
        flags_frag = (0x2000 if p.more_fragments else 0) | p.frag_offset
        header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(body), 0x1234,
                             flags_frag, 64, proto, 0, src.packed, dst.packed) + p.ip_options
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + body
    header = struct.pack("!IHBB16s16s", 0x60000000, len(body), proto, 64, src.packed, dst.packed)
    return header + body


def ethertype_of(datagram: bytes) -> int:
    return 0x86DD if datagram[0] >> 4 == 6 else 0x0800


def link_frame(linktype: int, datagram: bytes, vlans: tuple[int, ...] = ()) -> bytes:
    """Return DATAGRAM wrapped in LINKTYPE's header."""
    et = ethertype_of(datagram)
    if linktype == LINKTYPE_EN10MB:
        head = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
        tags = b""
        for i, vid in enumerate(vlans):
            # outer tag of a QinQ pair is 802.1ad (0x88a8), inner tags 802.1Q
            tpid = 0x88A8 if (len(vlans) > 1 and i == 0) else 0x8100
            tags += struct.pack("!HH", tpid, vid & 0x0FFF)
        return head + tags + struct.pack("!H", et) + datagram
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), et) + datagram
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.pack("!HHIHBB8s", et, 0, 2, 1, 0, 6, bytes(8)) + datagram
    if linktype == LINKTYPE_RAW:
        return datagram
    if linktype == LINKTYPE_NULL:
        af = 30 if et == 0x86DD else 2  # Linux/BSD AF_INET is 2; AF_INET6 varies (24, 28, 30)
        return struct.pack("<I", af) + datagram  # host byte order of the writer: little-endian
    if linktype == LINKTYPE_LOOP:
        af = 24 if et == 0x86DD else 2
        return struct.pack("!I", af) + datagram
    raise ValueError(f"unsupported linktype {linktype}")


def build(linktype: int, pkts: list[Pkt]) -> list[Frame]:
    """Return the frames for PKTS on LINKTYPE, each with its expected counted length."""
    frames = []
    for p in pkts:
        datagram = ip_datagram(p)
        data = link_frame(linktype, datagram, p.vlans if linktype == LINKTYPE_EN10MB else ())
        frames.append(Frame(p.sec, p.usec, data, counted_len=len(data), wire_len=len(data), pkt=p))
    return frames


def write_pcap(path: str, linktype: int, frames: list[Frame], snaplen: int = 65535) -> None:
    """Write FRAMES as a classic little-endian microsecond pcap file, each cut to SNAPLEN."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
        for f in frames:
            data = f.data[:snaplen]
            out.write(struct.pack("<IIII", f.sec, f.usec, len(data), f.wire_len or len(f.data)))
            out.write(data)


def write_pcapng(path: str, linktype: int, frames: list[Frame], snaplen: int = 65535) -> None:
    """Write FRAMES as a pcapng file: one section, one interface, enhanced packet blocks."""

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        total = 12 + len(body)
        return struct.pack("<II", btype, total) + body + struct.pack("<I", total)

    with open(path, "wb") as out:
        out.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        out.write(block(0x00000001, struct.pack("<HHI", linktype, 0, snaplen)))
        for f in frames:
            data = f.data[:snaplen]
            ts = f.sec * 1_000_000 + f.usec
            body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data),
                               f.wire_len or len(f.data)) + data
            out.write(block(0x00000006, body))


@pytest.fixture
def pcap_writer(tmp_path):
    """Return write(name, linktype, pkts, snaplen=65535, ng=False) -> (path, frames)."""

    def write(name: str, linktype: int, pkts: list[Pkt], snaplen: int = 65535, ng: bool = False):
        frames = build(linktype, pkts)
        path = str(tmp_path / name)
        (write_pcapng if ng else write_pcap)(path, linktype, frames, snaplen)
        return path, frames

    return write
