"""The numpy writer's address texts: IPv6 laid out by numpy equals inet_ntop's."""

from __future__ import annotations

import socket
import struct

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ncs.stats import fastwriter


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
    cells, lengths = fastwriter.v6_address_block(halves[:, 0].copy(), halves[:, 1].copy())
    raw = cells.view(np.uint8)
    got = [raw[i][raw[i] != 0].tobytes().decode() for i in range(len(packed))]
    want = [socket.inet_ntop(socket.AF_INET6, p) for p in packed]
    assert got == want
    assert lengths.tolist() == [len(w) for w in want]
