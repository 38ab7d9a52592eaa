"""libpcap's 32-bit statistics made monotonic, and the drops line of a live agent's file."""

from __future__ import annotations

from ncs.agent.capture import WRAP, DropCounter


def test_drop_counters_survive_32_bit_wraps():
    c = DropCounter()
    c.update((WRAP - 10, WRAP - 2, 0))
    c.update((5, 3, 1))  # both counters wrapped: +15 received, +5 dropped
    c.update((5, 3, 1))  # no change
    c.update((100, 3, 1))
    assert (c.received, c.dropped, c.ifdropped) == (WRAP - 10 + 15 + 95, WRAP - 2 + 5, 1)
