"""The numpy writer: IPv6 laid out by numpy equals inet_ntop's; names laid out or spliced equal the record writer's."""

from __future__ import annotations

import dataclasses
import socket
import struct

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ncs.stats import fastwriter
from ncs.stats.columns import NO_NAMES, StatsColumns
from ncs.stats.namearena import NameBytes
from ncs.stats.record import Record
from ncs.stats.writer import chunk_blocks, record_text


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


# Names of every kind the writer meets: plain ones (laid out in cells), and
# those it must splice: long, quoted, unprintable (NUL is the hole byte),
# non-ASCII, a lone surrogate; empty names and lists of several.
NAME = st.text(max_size=70) | st.sampled_from(
    ["", "a.example", "x" * (fastwriter.NAME_CELL_BYTES - 3), "x" * (fastwriter.NAME_CELL_BYTES - 2),
     "it's", "back\\slash", "nul\0", "tab\there", "\x7f", "\u00e9t\u00e9", "\ud800", "~ !"])
NAME_LISTS = st.lists(st.lists(NAME, max_size=3) | st.lists(NAME, min_size=1, max_size=1),
                      min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(NAME_LISTS, st.booleans())
def test_names_laid_out_or_spliced_equal_the_record_writer(lists, huge):
    """Names given as strings or as bytes (the streaming merge's way) come out as
    format_record writes them; a chunk the numpy layout refuses (a value past
    2**62) falls back to format_record with the bytes' names too."""
    value = 2**62 + 1 if huge else 7
    items = [(f"10.0.{i // 256}.{i % 256}", Record(B=value, C=i, E=3, L=4, R=5, S=6, T=7, W=8, N=list(ns)))
             for i, ns in enumerate(lists)]
    want = "".join(record_text(items)).encode()
    chunk = StatsColumns.from_records([], items)
    assert bytes(chunk_blocks(chunk)) == want
    ones = [i for i, ns in enumerate(lists) if len(ns) == 1]
    single = NameBytes.of_texts(ones, [lists[i][0] for i in ones])
    rest = dataclasses.replace(chunk, names=[ns if len(ns) != 1 else NO_NAMES for ns in chunk.names])
    assert bytes(chunk_blocks(rest, single)) == want
    if not huge:
        laid = [i for i in ones if lists[i][0].isascii() and lists[i][0].isprintable()
                and "'" not in lists[i][0] and "\\" not in lists[i][0]
                and len(lists[i][0]) + 3 <= fastwriter.NAME_CELL_BYTES]
        cells, spliced = fastwriter._name_cells(len(lists), single)
        assert sorted(spliced.rows.tolist()) == sorted(set(ones) - set(laid))
        assert (cells is None) == (not laid)
