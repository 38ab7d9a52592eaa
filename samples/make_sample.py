"""Write samples/sample.pcap: half an hour of a web server's traffic, deterministic.

The monitored host is 198.51.100.10 / 2001:db8:100::10; its peers sit in the
documentation ranges.  Frames are Ethernet, cut at a snap length of 96 bytes
(the file stays small; the IP headers still say how big each packet was).
Run: python3 samples/make_sample.py [OUT]
"""

from __future__ import annotations

import ipaddress
import random
import struct
import sys

SERVER4, SERVER6 = "198.51.100.10", "2001:db8:100::10"
START = 1_764_000_000  # 2025-11-24 16:00:00 UTC
SPAN = 1800
SNAPLEN = 96

PEERS = (
    [(f"192.0.2.{i}", 40 - 3 * i) for i in range(1, 11)]
    + [(f"203.0.113.{10 * i}", 12 + i) for i in range(1, 9)]
    + [(f"198.51.100.{i}", 5) for i in (2, 3, 77, 200, 254)]
    + [(f"2001:db8:5::{i:x}", 10 + 4 * i) for i in range(1, 5)]
    + [("2001:db8:6::1", 6), ("192.0.2.250", 1)]
)


def ip_packet(src: str, dst: str, size: int, rng: random.Random) -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    sport, dport = (443, rng.randrange(32768, 61000)) if src in (SERVER4, SERVER6) else (
        rng.randrange(32768, 61000), 443)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, rng.getrandbits(32), 0, 5 << 4, 0x18, 502, 0, 0)
    body_len = size - (20 if s.version == 4 else 40)
    payload_len = body_len - len(tcp)
    if s.version == 4:
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, rng.getrandbits(16), 0x4000, 64, 6, 0,
                           s.packed, d.packed)
        ethertype = 0x0800
    else:
        head = struct.pack("!IHBB16s16s", 0x60000000, body_len, 6, 64, s.packed, d.packed)
        ethertype = 0x86DD
    frame = bytes.fromhex("02000000000a02000000000b") + struct.pack("!H", ethertype) + head + tcp
    return frame + bytes(max(0, payload_len))


def main(out: str) -> None:
    rng = random.Random(2006)
    events = []
    for peer, weight in PEERS:
        server = SERVER6 if ":" in peer else SERVER4
        sessions = max(1, weight // 4)
        for _ in range(sessions):
            t = rng.randrange(0, SPAN - 60)
            for k in range(weight * 3):
                t_pkt = t + k * rng.uniform(0.01, 2.0)
                if t_pkt >= SPAN:
                    break
                inbound = rng.random() < 0.4
                size = rng.choice((40, 52, 52, 576, 1420, 1500)) if not inbound else rng.choice((40, 52, 120, 600))
                if ":" in peer:
                    size = max(size, 60)
                src, dst = (peer, server) if inbound else (server, peer)
                events.append((START + t_pkt, src, dst, size))
    events.sort()
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
        for ts, src, dst, size in events:
            frame = ip_packet(src, dst, size, rng)
            cap = frame[:SNAPLEN]
            sec = int(ts)
            f.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(cap), len(frame)))
            f.write(cap)
    print(f"{out}: {len(events)} packets")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "samples/sample.pcap")
