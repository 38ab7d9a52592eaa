"""The byte reader reads record blocks exactly as parse_stats does, or declines (None); never otherwise."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.stats import reader
from ncs.stats.bytereader import read_blocks
from ncs.stats.errors import StatsFormatError
from ncs.stats.layout import CLOSING, OPENING
from ncs.stats.quoting import decode_stats_bytes
from ncs.stats.record import Record
from tests.stats.test_reader import addresses, names, text_of
from tests.support.stats import as_file

# Values the byte reader takes itself: plain decimals of at most 18 digits.
# Every width up to the byte reader's 18 digits; columns of at most 15 take its float path.
SMALL = st.integers(0, 999) | st.integers(0, 10**15 - 1) | st.integers(0, 10**18 - 1)
PLAIN = st.builds(Record, B=SMALL, C=SMALL, E=SMALL, S=SMALL, R=SMALL, W=SMALL, T=SMALL, L=SMALL,
                  N=names)


def body_of(text: str) -> bytes:
    """Return the record blocks of a stats text (between the opening and the closing)."""
    return text[text.index(OPENING) + len(OPENING):len(text) - len(CLOSING)].encode()


def assert_same_or_declined(body: bytes) -> bool:
    """read_blocks(BODY) is None, or exactly parse_stats' table; returns whether it read it."""
    try:
        want = reader.parse_stats("\n" + OPENING + decode_stats_bytes(body) + CLOSING, "f")
    except StatsFormatError:
        want = None
    got = read_blocks(body, "f")
    if got is None:
        return False
    assert want is not None, "read what the reader refuses"
    assert as_file(got).records == as_file(want).records
    assert list(as_file(got).records) == list(as_file(want).records)
    assert got.addresses == want.addresses
    assert [c.dtype for c in got.numbers.values()] == [c.dtype for c in want.numbers.values()]
    return True


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(addresses, PLAIN, min_size=1, max_size=30))
def test_written_blocks_are_read_by_the_byte_reader_as_the_reader_reads_them(recs) -> None:
    assert assert_same_or_declined(body_of(text_of(recs)))


# Names that need no escapes, lists of 0 to 3 (an empty name too): the byte
# reader's own fast path takes a piece of one such name per record.
PLAIN_NAMES = st.lists(st.text(st.sampled_from("ab.-1'"), max_size=5), max_size=3)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(addresses, st.builds(Record, B=SMALL, N=PLAIN_NAMES), min_size=1, max_size=30))
def test_plain_names_are_read_as_the_reader_reads_them(recs) -> None:
    assert assert_same_or_declined(body_of(text_of(recs)))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(addresses, PLAIN, min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_damaged_blocks_are_declined_or_read_right(recs, rnd: random.Random) -> None:
    data = bytearray(body_of(text_of(recs)))
    for _ in range(rnd.randint(1, 3)):
        at = rnd.randrange(len(data))
        op = rnd.choice(("flip", "cut", "insert"))
        if op == "flip":
            data[at] = ord(rnd.choice("0123456789-'\\\t ,{}[]=>x\n:."))
        elif op == "cut":
            del data[at:at + rnd.randint(1, 5)]
        else:
            data[at:at] = rnd.choice([b"0", b"-", b"'", b"\n", b"\t", b"  ", b"\xc3", b"1" * 19])
    assert_same_or_declined(bytes(data))


def test_what_the_byte_reader_leaves_to_the_reader() -> None:
    rec = Record(B=5, C=7, E=9, S=1, R=2, W=3, T=4, N=["a.example"])
    body = body_of(text_of({"198.51.100.7": rec, "2001:db8::1": Record(B=1)}))
    assert assert_same_or_declined(body)
    for old, new in ((b"B\t=> 5,", b"B\t=> -5,"),  # negative
                     (b"B\t=> 5,", b"B\t=> 1234567890123456789,"),  # 19 digits
                     (b"B\t=> 5,", b"B\t=> 05,"),  # octal to Perl
                     (b"'198.51.100.7'", b"'198.51.100.07'"),  # not an address to inet_pton
                     (b"'2001:db8::1'", b"'198.51.100.7'"),  # a repeat
                     (b"'2001:db8::1'", b"'1.2.3.4'"),  # not in order
                     (b"['a.example',]", b"['a.example']")):  # another list shape
        changed = body.replace(old, new, 1)
        assert changed != body
        assert read_blocks(changed, "f") is None, new
