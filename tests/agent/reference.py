"""The agent's rules written as literally as possible, one packet at a time: the oracles of its tests.

`ReferenceTable` applies the update rules of docs/formats.md packet by
packet (it shares no code with agent/table.py); `decode_one` decodes one
frame in plain Python (it shares only constants with agent/decode.py).
"""

from __future__ import annotations

import struct

from ncs.agent.decode import (
    DLT_EN10MB,
    DLT_IPV4,
    DLT_IPV6,
    DLT_LINUX_SLL,
    DLT_LINUX_SLL2,
    DLT_LOOP,
    DLT_NULL,
    DLT_RAW_VALUES,
    ETH_IPV4,
    ETH_IPV6,
    MAX_VLAN_TAGS,
    NULL_AF_INET,
    NULL_AF_INET6,
    VLAN_TPIDS,
    Decoder,
    PayloadFilter,
)


class ReferenceTable:
    def __init__(self, start: int) -> None:
        self.start = start
        self.rec: dict[int, dict] = {}
        self.rate = 0.0
        self.bw = 0.0
        self.ra = 0
        self.ba = 0
        self.next = start + 300
        self.last_fold = start

    def packet(self, now: int, key: int, length: int) -> None:
        # global rates
        if now < self.next or (self.rate < 1 and self.ra < 5):
            self.ra += 1
            self.ba += length
        else:
            d = max(1, now - self.start) if self.rate < 1 else 3600 + now - self.last_fold
            m = 3600 / d
            self.rate = (self.rate + self.ra) * m
            self.bw = (self.bw + self.ba) * m
            self.ra, self.ba, self.next, self.last_fold = 1, length, now + 60, now
        # the record
        x = self.rec.get(key)
        if x is None:
            self.rec[key] = dict(B=length, C=1, E=now, L=now, S=self.start, R=0.0, W=0.0, T=0, N=[])
            return
        x["L"] = now
        if now < x["E"] + 300 or (x["E"] == x["S"] and x["C"] < 5):
            x["B"] += length
            x["C"] += 1
        else:
            if x["E"] == x["S"]:
                m = 3600 / (now - x["S"])
            else:
                m = 3600 / (3600 + now - x["E"])
            x["R"] = (x["R"] + x["C"]) * m
            x["W"] = (x["W"] + x["B"]) * m
            x["E"] = now
            x["B"] = length
            x["C"] = 1


# --------------------------------------------------------------------------
# The decoding rules, one frame at a time in plain Python: the oracle the
# agent's vectorised decoder (agent/decode.py) is checked against.


def keeps_payload(pf: PayloadFilter, data: bytes) -> bool:
    """Return whether one captured frame passes match/nomatch (case-insensitive substrings)."""
    region = data[pf.payload:].lower()
    if pf.match and pf.match.lower() not in region:
        return False
    return not (pf.nomatch and pf.nomatch.lower() in region)


def decode_one(dec: Decoder, data: bytes, wire: int | None = None) -> tuple[int, int] | None:
    """Decode one captured frame, WIRE bytes long on the wire (default: as captured).

    Returns (remote key, counted length), or None if the frame is not
    accounted; updates DEC's counters as its batch decoder would (except
    `packets`).  The counted length is the link header plus the length the
    IP header states, unless that length field is 0 or the stated length is
    more than WIRE: then WIRE.
    """
    wire = len(data) if wire is None else wire
    found = _link_one(dec, data)
    if found is None:
        return None
    l3, et = found
    counters = dec.counters
    if et == ETH_IPV4:
        if len(data) < l3 + 20:
            counters.truncated += 1
            return None
        ihl = (data[l3] & 15) * 4
        total = struct.unpack_from("!H", data, l3 + 2)[0]
        if data[l3] >> 4 != 4 or ihl < 20 or 0 < total < ihl:
            counters.malformed += 1
            return None
        src, dst = data[l3 + 12:l3 + 16], data[l3 + 16:l3 + 20]
        field, length = total, l3 + total
    else:
        if len(data) < l3 + 40:
            counters.truncated += 1
            return None
        if data[l3] >> 4 != 6:
            counters.malformed += 1
            return None
        src, dst = data[l3 + 8:l3 + 24], data[l3 + 24:l3 + 40]
        field = struct.unpack_from("!H", data, l3 + 4)[0]
        length = l3 + 40 + field
    if field == 0 or length > wire:
        length = wire
    sm, dm = src in dec.mon_set, dst in dec.mon_set
    if sm and dm:
        counters.local += 1
        return None
    if not sm and not dm:
        counters.foreign += 1
        return None
    if dec.filter is not None and not keeps_payload(dec.filter, data):
        counters.filtered += 1
        return None
    remote = dst if sm else src
    counters.accounted += 1
    return dec.keys.key_of_packed(remote), length


def _link_one(dec: Decoder, data: bytes) -> tuple[int, int] | None:
    """Return (offset of the IP header, ethertype) of one frame, or None (counted) if it has none."""
    lt = dec.linktype
    need = {DLT_EN10MB: 14, DLT_LINUX_SLL: 16, DLT_LINUX_SLL2: 20, DLT_NULL: 4, DLT_LOOP: 4}
    if len(data) < need.get(lt, 1):
        dec.counters.truncated += 1
        return None
    if lt == DLT_EN10MB:
        et = struct.unpack_from("!H", data, 12)[0]
        l3 = 14
        for _ in range(MAX_VLAN_TAGS):
            if et not in VLAN_TPIDS:
                break
            if len(data) < l3 + 4:
                dec.counters.truncated += 1
                return None
            et = struct.unpack_from("!H", data, l3 + 2)[0]
            l3 += 4
    elif lt == DLT_LINUX_SLL:
        et, l3 = struct.unpack_from("!H", data, 14)[0], 16
    elif lt == DLT_LINUX_SLL2:
        et, l3 = struct.unpack_from("!H", data, 0)[0], 20
    elif lt in DLT_RAW_VALUES or lt in (DLT_IPV4, DLT_IPV6):
        version = data[0] >> 4
        et, l3 = (ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else -1), 0
    else:
        af = struct.unpack_from("!I", data, 0)[0]
        if lt == DLT_NULL and af > 0xFFFF:
            af = struct.unpack_from("<I", data, 0)[0]
        et = ETH_IPV4 if af in NULL_AF_INET else ETH_IPV6 if af in NULL_AF_INET6 else -1
        l3 = 4
    if et not in (ETH_IPV4, ETH_IPV6):
        dec.counters.not_ip += 1
        return None
    return l3, et
