"""A stats text fed in pieces reads as parse_stats reads it whole: same table, or the same error."""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.stats import reader
from ncs.stats.errors import StatsFormatError
from ncs.stats.namearena import PackedNames
from ncs.stats.quoting import decode_stats_bytes
from ncs.stats.record import Record
from ncs.stats.streamread import StatsStream, read_runs
from tests.stats.test_parser import ORIGINAL_AGENT_FILE
from tests.stats.test_reader import addresses, names, records, text_of
from tests.support.stats import as_file


def streamed(text: str, rnd: random.Random, piece_bytes: int, keep_texts: bool = True) -> StatsStream:
    """Return a StatsStream fed TEXT's UTF-8 bytes in random cuts (inside characters too)."""
    data = text.encode()
    stream = StatsStream("f", piece_bytes=piece_bytes, keep_texts=keep_texts)
    at = 0
    while at < len(data):
        step = rnd.randint(1, 3 * piece_bytes)
        stream.feed(data[at:at + step])
        at += step
    return stream


def assert_same(text: str, rnd: random.Random, piece_bytes: int = 200) -> None:
    """TEXT fed in pieces gives parse_stats' table with its texts, or its error, word for word."""
    try:
        want = reader.parse_stats(text, "f", allow_empty=False)
    except StatsFormatError as err:
        with pytest.raises(StatsFormatError) as got:
            streamed(text, rnd, piece_bytes).finish(allow_empty=False)
        assert str(got.value) == str(err)
        return
    got = streamed(text, rnd, piece_bytes).finish(allow_empty=False)
    assert as_file(got) == as_file(want)
    assert got.addresses == want.addresses
    assert [c.dtype for c in got.numbers.values()] == [c.dtype for c in want.numbers.values()]


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(addresses, records, max_size=30), st.randoms(use_true_random=False))
def test_written_files_read_the_same_in_pieces(recs, rnd) -> None:
    assert_same(text_of(recs), rnd)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(addresses, records, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_damaged_files_fail_with_the_readers_error(recs, rnd: random.Random) -> None:
    data = list(text_of(recs))
    for _ in range(rnd.randint(1, 3)):
        op = rnd.choice(("flip", "cut", "insert", "repeat"))
        at = rnd.randrange(len(data))
        if op == "flip":
            data[at] = rnd.choice("0123456789-'\\\t ,{}[]=>x\n")
        elif op == "cut":
            del data[at:at + rnd.randint(1, 5)]
        elif op == "insert":
            data[at:at] = rnd.choice(["0", "-", "'", "\n", "\t", "  ", "\n\t},\n"])
        else:  # an address again further on: a duplicate that pieces must find across their cuts
            first = "".join(data).find("\t'")
            if first >= 0:
                quoted = "".join(data)[first:].split("'")[1]
                text = "".join(data)
                last = text.rfind("\t'")
                end = text.find("'", last + 2)
                data = list(text[:last + 2] + quoted + text[end:])
    assert_same("".join(data), rnd, piece_bytes=rnd.choice([1, 50, 200, 1000]))


# IPv6 addresses as inet_ntop spells them and otherwise: all digits, capitals.
any_spelling = addresses | st.integers(0, 2**128 - 1).flatmap(lambda v: st.sampled_from(
    [ipaddress.IPv6Address(v).exploded, ipaddress.IPv6Address(v).compressed.upper()]))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(any_spelling, records, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_without_texts_the_table_is_the_readers_by_value(recs, rnd: random.Random) -> None:
    """keep_texts=False (the coalescer's way) gives the reader's keys, values and names, or its error.

    A spelling of an address seen before, somewhere in the text, must still
    be the reader's duplicate (the same text) or not (another spelling).
    """
    text = text_of(recs)
    if rnd.random() < 0.5:  # an address again, in its own or in another spelling, further on
        address = rnd.choice(list(recs))
        again = rnd.choice([address, ipaddress.ip_address(address).exploded])
        last = text.rfind("\t'")
        text = text[:last + 2] + again + text[text.find("'", last + 2):]
    piece_bytes = rnd.choice([1, 50, 200, 1000])
    try:
        want = reader.parse_stats(text, "f", allow_empty=False)
    except StatsFormatError as err:
        with pytest.raises(StatsFormatError) as got_error:
            streamed(text, rnd, piece_bytes, keep_texts=False).finish(allow_empty=False)
        assert str(got_error.value) == str(err)
        return
    got = streamed(text, rnd, piece_bytes, keep_texts=False).finish(allow_empty=False)
    assert got.keys.int_keys() == want.keys.int_keys()
    assert {k: c.tolist() for k, c in got.numbers.items()} == {k: c.tolist() for k, c in want.numbers.items()}
    assert [list(n) for n in got.names] == [list(n) for n in want.names]


#: The shortest record block a stats file can hold, in bytes.
SHORTEST_BLOCK = len(text_of({"0.0.0.0": Record()})) - len(text_of({}))


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(any_spelling, records, max_size=40), st.sampled_from([1, 150, 600, 5000]),
       st.booleans())
def test_a_file_read_in_runs_is_the_file_read_whole(recs, piece_bytes: int, repeat: bool) -> None:
    """read_runs (how ncs-coalesce reads its composite back) gives the reader's rows a run at a time.

    Or its error, word for word (a repeat found across runs too); a run
    holds a few times PIECE_BYTES of text at most.
    """
    text = text_of(recs)
    if repeat and recs:
        last = text.rfind("\t'")
        text = text[:last + 2] + min(recs) + text[text.find("'", last + 2):]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.stats"
        path.write_text(text)
        try:
            want = reader.parse_stats(text, str(path))
        except StatsFormatError as err:
            with pytest.raises(StatsFormatError) as got_error:
                list(read_runs(str(path), piece_bytes=piece_bytes))
            assert str(got_error.value) == str(err)
            return
        runs = list(read_runs(str(path), piece_bytes=piece_bytes))
    assert sum(map(len, runs)) == len(want)
    assert [k for r in runs for k in r.keys.int_keys()] == want.keys.int_keys()
    for key, column in want.numbers.items():
        assert [v for r in runs for v in r.numbers[key].tolist()] == column.tolist()
    assert [list(n) for r in runs for n in r.names] == [list(n) for n in want.names]
    if piece_bytes >= 600:
        # A run is a few pieces at most (the stream looks for a cut again once
        # its pending text has doubled), not the file.
        assert all(len(r) <= 4 * piece_bytes // SHORTEST_BLOCK + 2 for r in runs)


def test_other_dialects_and_odd_texts_read_the_same() -> None:
    rnd = random.Random(3)
    dumper = "$VAR1 = { '198.51.100.9' => { 'B' => '240', 'R' => '723.5', 'N' => [ 'a' ] } };\n"
    name = "\u00e9t\u00e9.example"  # two-byte characters cut between feeds
    big = text_of({f"10.0.{i // 250}.{i % 250}": Record(B=i, N=[name] if i % 3 else [])
                   for i in range(500)})
    for text in (ORIGINAL_AGENT_FILE, dumper, "", "\n# ncs version 1.0.0\n", "garbage\n", big,
                 big.replace("\n{\n", "\n# late comment\n{\n"), big + "trailing\n",
                 big[:len(big) // 2]):
        for piece_bytes in (1, 64, 4096):
            assert_same(text, rnd, piece_bytes)


@pytest.mark.parametrize("for_merge", [False, True])
def test_bytes_that_are_not_utf8_read_as_the_reader_decodes_them(for_merge: bool) -> None:
    text = text_of({f"10.0.0.{i}": Record(B=i, N=["\u00e9t\u00e9"]) for i in range(1, 99)})
    data = text.encode().replace(b"\xc3\xa9", b"\xc3", 3)
    want = reader.parse_stats(decode_stats_bytes(data), "f")
    for step in (1, 7, 100):
        stream = StatsStream("f", piece_bytes=300, keep_texts=not for_merge, packed_names=for_merge)
        for at in range(0, len(data), step):
            stream.feed(data[at:at + step])
        assert as_file(stream.finish()) == as_file(want)


# Names as hosts send them: mostly one plain name (the reader's fast path), some empty or
# not ASCII, some lists of several or with quotes (a piece then goes to the reader).
host_names = st.one_of(
    st.lists(st.from_regex(r"[a-z0-9.-]{0,14}", fullmatch=True), min_size=1, max_size=1),
    st.lists(st.text("a\u00e9\u2713.", max_size=5), max_size=1),
    st.just([]), names)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(any_spelling, st.tuples(records, host_names), max_size=60),
       st.sampled_from([1, 100, 400, 3000]), st.randoms(use_true_random=False))
def test_names_read_for_a_merge_are_the_readers(recs, piece_bytes, rnd: random.Random) -> None:
    """StatsStream.for_merge's names (one name a row in bytes) are parse_stats' names, row by row."""
    text = text_of({a: dataclasses.replace(r, N=n) for a, (r, n) in recs.items()})
    want = reader.parse_stats(text, "f")
    stream = StatsStream("f", piece_bytes=piece_bytes, keep_texts=False, packed_names=True)
    data = text.encode()
    at = 0
    while at < len(data):
        step = rnd.randint(1, 2 * piece_bytes)
        stream.feed(data[at:at + step])
        at += step
        if rnd.random() < 0.3:  # runs handed on midway (as read_runs does), then the rest
            for run in stream.take():
                assert [list(n) for n in run.names] == [list(n) for n in want.names[:len(run)]]
                want.names[:len(run)] = []
    got = stream.finish()
    assert [list(n) for n in got.names] == [list(n) for n in want.names]


def test_a_typical_host_hands_its_names_on_in_bytes() -> None:
    """A host's usual output (one plain name or none a row) reaches the merge with no name as a string."""
    recs = {f"10.0.{i // 250}.{i % 250}": Record(B=i, N=[f"h{i}.example"] if i % 3 else []) for i in range(3000)}
    data = text_of(recs).encode()
    stream = StatsStream.for_merge("f")
    stream.feed(data)
    got = stream.finish()
    assert isinstance(got.names, PackedNames)
    assert got.names.single.rows.tolist() == [i for i in range(3000) if i % 3]
    assert got.names.single.texts() == [f"h{i}.example" for i in range(3000) if i % 3]
    assert all(n == () for n in got.names.rest)


def test_a_name_with_a_record_end_inside_is_read_whole() -> None:
    # A cut inside the quoted name would break the piece; the rest is then read whole.
    recs = {f"10.0.0.{i}": Record(B=i, N=["x"]) for i in range(1, 60)}
    text = text_of(recs).replace("['x',]", "['a\n\t},\nb',]", 1)
    assert_same(text, random.Random(1), piece_bytes=30)


@pytest.mark.parametrize("text", ["garbage line\n" * 20_000, "# a comment\n\n  \x1b[2J\x00" * 9000,
                                  "\n\n" + "x" * 300_000, "my dump\n" * 9999, "$ x\n" * 9999,
                                  "'unterminated" + "x" * 100_000])
def test_text_that_cannot_be_a_stats_file_fails_early_or_reads_the_same(text) -> None:
    try:
        reader.parse_stats(text, "f")
    except StatsFormatError as err:
        want = str(err)
    stream = StatsStream("f")
    data = text.encode()
    with pytest.raises(StatsFormatError) as got:
        for at in range(0, len(data), 1000):
            stream.feed(data[at:at + 1000])
        stream.finish()
    assert str(got.value) == want
    if not text.startswith(("my", "'")):  # "my" and a quote may start a table: read at the end
        assert stream.size < 10_000  # seen after the first pieces: the rest is never held


def test_pieces_bound_the_text_held() -> None:
    recs = {f"10.{i // 65536}.{i // 256 % 256}.{i % 256}": Record(B=i, N=["n.example"])
            for i in range(20_000)}
    data = text_of(recs).encode()
    stream = StatsStream("f", piece_bytes=4096)
    held = 0
    for at in range(0, len(data), 1000):
        stream.feed(data[at:at + 1000])
        held = max(held, stream._chars)
    assert held < 3 * 4096  # a look that cuts nothing waits until the text has doubled
    assert len(stream.finish()) == 20_000
