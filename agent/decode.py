"""Decode captured frames into (second, remote key, counted length), a whole batch at a time.

The decoder works on a batch of frames (agent.capture.Frames: pcapy-ng's
`next_batch` layout plus each frame's wire length) with numpy: every field
of every packet in the batch is read by one vectorised gather, so Python does
a fixed amount of work per batch rather than per packet.  The tests hold it
to a plain per-packet decoder (tests/agent/reference.py).

The counted length of a packet is its link-layer header plus the IP datagram
length from the IP header (IPv4 total length; IPv6 40 + payload length), so
it does not depend on the snap length and Ethernet padding is not counted;
but when that length field is 0 (a TSO or BIG TCP super-packet, an IPv6
jumbogram) or the stated length is more than the frame had on the wire, the
wire length is counted instead (docs/formats.md).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ncs.agent.keys import RemoteKeys

# Link types as pcap reports them (DLT_*), with the LINKTYPE_* file values that
# libpcap may pass through unchanged.
DLT_NULL = 0
DLT_EN10MB = 1
DLT_RAW_VALUES = (12, 14, 101)  # DLT_RAW differs between systems; 101 is LINKTYPE_RAW
DLT_IPV4 = 228
DLT_IPV6 = 229
DLT_LOOP = 108
DLT_LINUX_SLL = 113
DLT_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
MAX_VLAN_TAGS = 2
# BSD loopback address-family values: AF_INET is 2 everywhere, AF_INET6 is 24
# (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS) or 10 (Linux).
NULL_AF_INET = (2,)
NULL_AF_INET6 = (10, 24, 28, 30)

# Reading a field past a short frame must not leave the buffer: the batch is
# padded so every gather stays in bounds, and a per-packet caplen test decides
# whether the value is real.
_PAD = bytes(128)


class PacketBatch(NamedTuple):
    """The contract between decoding and accounting: accounted packets, in capture order."""

    sec: np.ndarray  # int64 timestamp second of each packet
    key: np.ndarray  # uint64 remote key (see agent.keys)
    length: np.ndarray  # int64 counted length


@dataclass
class DecodeCounters:
    """Why packets were or were not accounted."""

    packets: int = 0  # frames seen (after BPF)
    accounted: int = 0
    not_ip: int = 0  # ARP, unknown ethertype, too many VLAN tags
    truncated: int = 0  # link or IP header not fully captured
    malformed: int = 0  # bad IP version or header length, total length below the header
    foreign: int = 0  # neither address is monitored
    local: int = 0  # both addresses are monitored
    filtered: int = 0  # dropped by match/nomatch

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class PayloadFilter:
    """match/nomatch: case-insensitive substring tests on bytes [payload, caplen)."""

    payload: int = 0
    match: bytes | None = None
    nomatch: bytes | None = None

    @property
    def active(self) -> bool:
        return bool(self.match) or bool(self.nomatch)

    def regex(self, needle: bytes) -> re.Pattern:
        # A lookahead finds overlapping occurrences too, so a hit that starts
        # before the payload offset cannot hide one that starts inside it.
        return re.compile(b"(?=" + re.escape(needle) + b")", re.IGNORECASE | re.DOTALL)


class _Words:
    """Integers at any byte offset of a batch, read with one gather each.

    Each attribute is an overlapping view of the padded batch buffer with a
    stride of one byte: element i is the integer starting at byte i.  Reading
    a field of every frame is then a single gather, whatever the alignment.
    """

    def __init__(self, buf: np.ndarray) -> None:
        self.u8 = buf
        self.be16, self.be32, self.be64, self.le32 = (
            np.ndarray(shape=(len(buf) - np.dtype(t).itemsize + 1,), dtype=t, buffer=buf,
                       strides=(1,))
            for t in (">u2", ">u4", ">u8", "<u4"))


class Decoder:
    """Turns frames of one link type into PacketBatch records for the monitored addresses."""

    def __init__(self, linktype: int, monitored: list[str], keys: RemoteKeys,
                 payload_filter: PayloadFilter | None = None) -> None:
        if not is_supported(linktype):
            raise ValueError(f"unsupported link type {linktype}")
        self.linktype = linktype
        self.keys = keys
        self.filter = payload_filter if payload_filter and payload_filter.active else None
        addrs = [ipaddress.ip_address(a) for a in monitored]
        self.mon4 = np.array([int(a) for a in addrs if a.version == 4], dtype=np.uint64)
        self.mon6 = [(int(a) >> 64, int(a) & 0xFFFFFFFFFFFFFFFF) for a in addrs if a.version == 6]
        self.mon_set = {a.packed for a in addrs}
        self.counters = DecodeCounters()
        if self.filter:
            self._match_re = self.filter.regex(self.filter.match) if self.filter.match else None
            self._nomatch_re = self.filter.regex(self.filter.nomatch) if self.filter.nomatch else None

    # -- batch path --------------------------------------------------------

    def decode(self, pkts: bytes, meta: bytes, wire: np.ndarray) -> PacketBatch:
        """Decode one batch; return the accounted packets in order.

        PKTS and META are laid out as pcapy-ng's `next_batch` returns them
        (packed frames; sec, usec, offset, captured length per frame); WIRE
        holds each frame's length on the wire.
        """
        m = np.frombuffer(meta, dtype=np.uint32).reshape(-1, 4)
        n = len(m)
        self.counters.packets += n
        if n == 0:
            return PacketBatch(np.empty(0, np.int64), np.empty(0, np.uint64), np.empty(0, np.int64))
        sec = m[:, 0].astype(np.int64)
        off = m[:, 2].astype(np.int64)
        cap = m[:, 3].astype(np.int64)
        buf = np.frombuffer(pkts + _PAD, dtype=np.uint8)

        w = _Words(buf)
        l3, et = self._link_layer(w, off)
        hdr = l3 - off
        link_ok = cap >= np.maximum(hdr, 1)
        is4 = link_ok & (et == ETH_IPV4)
        is6 = link_ok & (et == ETH_IPV6)
        self.counters.not_ip += int(np.count_nonzero(link_ok & ~is4 & ~is6))
        self.counters.truncated += int(np.count_nonzero(~link_ok))

        # IP header present in full?
        full4 = is4 & (cap >= hdr + 20)
        full6 = is6 & (cap >= hdr + 40)
        self.counters.truncated += int(np.count_nonzero((is4 & ~full4) | (is6 & ~full6)))
        first = buf[l3]
        ihl = (first & 15).astype(np.int64) * 4
        field = w.be16[l3 + 2].astype(np.int64)  # IPv4 total length
        iplen = field
        if is6.any():  # IPv6: 40 + payload length, from another offset
            field = np.where(is6, w.be16[l3 + 4].astype(np.int64), field)
            iplen = np.where(is6, 40 + field, field)
        good4 = full4 & (first >> 4 == 4) & (ihl >= 20) & ((iplen >= ihl) | (field == 0))
        good6 = full6 & (first >> 4 == 6)
        self.counters.malformed += int(np.count_nonzero((full4 & ~good4) | (full6 & ~good6)))

        key = np.zeros(n, dtype=np.uint64)
        acc = np.zeros(n, dtype=bool)
        if good4.any():
            idx = np.nonzero(good4)[0]
            at = l3[idx]
            src, dst = w.be32[at + 12].astype(np.uint64), w.be32[at + 16].astype(np.uint64)
            sm, dm = self._is_mon4(src), self._is_mon4(dst)
            self._count_sides(sm, dm)
            one = sm ^ dm
            key[idx[one]] = np.where(sm, dst, src)[one]
            acc[idx[one]] = True
        if good6.any():
            idx = np.nonzero(good6)[0]
            at = l3[idx]
            shi, slo = w.be64[at + 8].astype(np.uint64), w.be64[at + 16].astype(np.uint64)
            dhi, dlo = w.be64[at + 24].astype(np.uint64), w.be64[at + 32].astype(np.uint64)
            sm = self._is_mon6(shi, slo)
            dm = self._is_mon6(dhi, dlo)
            self._count_sides(sm, dm)
            one = sm ^ dm
            rhi = np.where(sm, dhi, shi)[one]
            rlo = np.where(sm, dlo, slo)[one]
            key[idx[one]] = self.keys.v6_keys(rhi, rlo)
            acc[idx[one]] = True

        if self.filter is not None and acc.any():
            keep = self._payload_keep(pkts, off, cap, n)
            self.counters.filtered += int(np.count_nonzero(acc & ~keep))
            acc &= keep

        sel = np.nonzero(acc)[0]
        self.counters.accounted += len(sel)
        return PacketBatch(sec[sel], key[sel], counted_length(hdr[sel], field[sel], iplen[sel],
                                                              wire[sel]))

    def _count_sides(self, src_mon: np.ndarray, dst_mon: np.ndarray) -> None:
        self.counters.local += int(np.count_nonzero(src_mon & dst_mon))
        self.counters.foreign += int(np.count_nonzero(~src_mon & ~dst_mon))

    def _is_mon4(self, addr: np.ndarray) -> np.ndarray:
        if len(self.mon4) > 8:
            return np.isin(addr, self.mon4)
        hit = np.zeros(len(addr), dtype=bool)
        for m in self.mon4:
            hit |= addr == m
        return hit

    def _is_mon6(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(hi), dtype=bool)
        for mhi, mlo in self.mon6:
            hit |= (hi == np.uint64(mhi)) & (lo == np.uint64(mlo))
        return hit

    def _link_layer(self, w: _Words, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (offset of the IP header, ethertype) for every frame; ethertype -1 if unknown."""
        lt = self.linktype
        if lt == DLT_EN10MB:
            et = w.be16[off + 12].astype(np.int64)
            l3 = off + 14
            for _ in range(MAX_VLAN_TAGS):
                tagged = (et == VLAN_TPIDS[0]) | (et == VLAN_TPIDS[1]) | (et == VLAN_TPIDS[2])
                if not tagged.any():
                    break
                et = np.where(tagged, w.be16[l3 + 2], et)
                l3 = np.where(tagged, l3 + 4, l3)
            return l3, et
        if lt == DLT_LINUX_SLL:
            return off + 16, w.be16[off + 14].astype(np.int64)
        if lt == DLT_LINUX_SLL2:
            return off + 20, w.be16[off].astype(np.int64)
        if lt in DLT_RAW_VALUES or lt in (DLT_IPV4, DLT_IPV6):
            return off, _version_ethertype(w.u8[off] >> 4)
        # BSD null (host byte order, either endianness) and OpenBSD loop (network order)
        af_be = w.be32[off].astype(np.int64)
        af = af_be if lt == DLT_LOOP else np.where(af_be > 0xFFFF, w.le32[off], af_be)
        et = np.where(np.isin(af, NULL_AF_INET), ETH_IPV4,
                      np.where(np.isin(af, NULL_AF_INET6), ETH_IPV6, -1))
        return off + 4, et

    def _payload_keep(self, pkts: bytes, off: np.ndarray, cap: np.ndarray, n: int) -> np.ndarray:
        keep = np.ones(n, dtype=bool)
        start = off + self.filter.payload
        end = off + cap
        if self._match_re is not None:
            keep &= self._hits(self._match_re, len(self.filter.match), pkts, start, end, off, n)
        if self._nomatch_re is not None:
            keep &= ~self._hits(self._nomatch_re, len(self.filter.nomatch), pkts, start, end, off, n)
        return keep

    @staticmethod
    def _hits(regex: re.Pattern, width: int, pkts: bytes, start: np.ndarray, end: np.ndarray,
              off: np.ndarray, n: int) -> np.ndarray:
        """Return, per frame, whether the needle occurs wholly inside [start, end)."""
        pos = np.fromiter((m.start() for m in regex.finditer(pkts)), dtype=np.int64)
        hit = np.zeros(n, dtype=bool)
        if len(pos):
            which = np.searchsorted(off, pos, side="right") - 1
            inside = (pos >= start[which]) & (pos + width <= end[which])
            hit[which[inside]] = True
        return hit


def counted_length(link: np.ndarray, field: np.ndarray, iplen: np.ndarray,
                   wire: np.ndarray) -> np.ndarray:
    """Return the lengths to count: LINK + IPLEN, or WIRE when FIELD is 0 or LINK + IPLEN exceeds WIRE.

    LINK is the link-layer header's length, FIELD the IP header's length
    field (IPv4 total length, IPv6 payload length), IPLEN the datagram
    length it states, WIRE the frame's length on the wire.
    """
    stated = link + iplen
    return np.where((field == 0) | (stated > wire), wire, stated)


def _version_ethertype(version: np.ndarray) -> np.ndarray:
    return np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, -1))


def is_supported(linktype: int) -> bool:
    """Return whether frames of LINKTYPE can be decoded."""
    return linktype in (DLT_NULL, DLT_EN10MB, DLT_LOOP, DLT_LINUX_SLL, DLT_LINUX_SLL2,
                        DLT_IPV4, DLT_IPV6) or linktype in DLT_RAW_VALUES
