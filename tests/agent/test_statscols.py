"""The column reader agrees with the parser on every input: same values, same errors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.statscols import _fast, columns_from_bytes
from agent.statsfile import Record, iter_stats_text, sorted_records
from agent.statsparse import StatsFormatError, decode_stats_bytes, parse_stats

addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda v: ".".join(str(v >> s & 255) for s in (24, 16, 8, 0))),
    st.integers(0, 2**128 - 1).map(lambda v: __import__("ipaddress").IPv6Address(v).compressed),
)
names = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10),
                 max_size=3)
records = st.builds(Record, B=st.integers(0, 10**15), C=st.integers(0, 10**9),
                    E=st.integers(0, 2**33), S=st.integers(0, 2**33), R=st.integers(0, 10**12),
                    W=st.integers(0, 10**15), T=st.integers(0, 2**33), N=names)


def text_of(recs: dict[str, Record]) -> str:
    return "".join(iter_stats_text(["ncs version 1.0.0", "start:\t1,\tx"], sorted_records(recs)))


def same(data: bytes) -> None:
    """columns_from_bytes(data) must equal parse_stats(data), or raise the same error."""
    try:
        want = parse_stats(decode_stats_bytes(data), "f")
    except StatsFormatError as err:
        with pytest.raises(StatsFormatError) as got:
            columns_from_bytes(data, "f")
        assert str(got.value) == str(err)
        return
    got = columns_from_bytes(data, "f").to_statsfile()
    assert got.header == want.header
    assert list(got.records) == list(want.records)
    assert got.records == want.records


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(addresses, records, max_size=40))
def test_written_files_read_the_same_and_take_the_fast_path(recs):
    data = text_of(recs).encode()
    assert _fast(data, "f") is not None
    same(data)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(addresses, records, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_damaged_files_give_the_parsers_answer(recs, rnd: random.Random):
    data = bytearray(text_of(recs).encode())
    for _ in range(rnd.randint(1, 3)):
        op = rnd.choice(("flip", "cut", "insert"))
        at = rnd.randrange(len(data))
        if op == "flip":
            data[at] = rnd.choice(b"0123456789-'\\\t ,{}[]=>x\n")
        elif op == "cut":
            del data[at:at + rnd.randint(1, 5)]
        else:
            data[at:at] = rnd.choice([b"0", b"-", b"'", b"\n", b"\t", b"  "])
    same(bytes(data))


@pytest.mark.parametrize("change", [
    ("B\t=> 5,", "B\t=> 05,"),  # octal to Perl: the parser rejects it
    ("C\t=> 7,", "C\t=> -7,"),  # negative: not the writer's, the parser decides
    ("'198.51.100.7'\t", "'198.51.100.7' "),  # wrong padding
    ("'198.51.100.7'", "'198.51.100.07'"),  # not an address the parser accepts
    ("N\t=> ['a.example',]", "N\t=> ['a.example']"),  # list without the trailing comma
    ("N\t=> ['a.example',]", "N\t=> ['a\\\\b\\'c',]"),  # escapes
])
def test_hand_made_variants(change):
    rec = Record(B=5, C=7, E=9, S=1, R=2, W=3, T=4, N=["a.example"])
    text = text_of({"198.51.100.7": rec, "2001:db8::1": Record(B=1)})
    assert change[0] in text
    same(text.replace(change[0], change[1], 1).encode())
