"""The reader's fast path agrees with the general parser on every input: same values, same types, same errors."""

from __future__ import annotations

import ipaddress
import os
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs import twocore
from ncs.stats import reader
from ncs.stats.columns import StatsColumns
from ncs.stats.errors import StatsFormatError
from ncs.stats.numbers import MAX_VALUE
from ncs.stats.parser import parse_general
from ncs.stats.record import Record
from tests.stats.test_parser import ORIGINAL_AGENT_FILE, ORIGINAL_AGENT_RECORDS
from tests.support.stats import StatsFile, as_file, sorted_records, stats_text

addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v))),
    st.integers(0, 2**128 - 1).map(lambda v: ipaddress.IPv6Address(v).compressed),
)
names = st.lists(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10),
                 max_size=3)
# Up to the bound of 20 digits: values beyond int64 must come back exact, as Python ints.
big = st.integers(0, 10**9) | st.integers(0, MAX_VALUE)
# L left out (None) takes E's value, as in a file written before the key existed.
records = st.builds(Record, B=big, C=big, E=st.integers(0, 2**33), S=st.integers(0, 2**33),
                    L=st.none() | st.integers(0, 2**33),
                    R=big, W=big, T=st.integers(0, 2**33), N=names)


def text_of(recs: dict[str, Record]) -> str:
    return stats_text(["ncs version 1.0.0", "start:\t1,\tx"], sorted_records(recs))


def plain_read(text: str, source: str) -> StatsFile:
    """The plain path: the general parser, whatever the dialect (an empty text is an empty table)."""
    if not text.strip():
        return StatsFile([], {}, source)
    header, records = parse_general(text, source)
    return StatsFile(header, dict(records), source)


def assert_same(text: str) -> StatsColumns | None:
    """The reader's table of TEXT must hold exactly what the general parser reads, or fail with its error."""
    try:
        want = plain_read(text, "f")
    except StatsFormatError as err:
        with pytest.raises(StatsFormatError) as got:
            reader.parse_stats(text, "f")
        assert str(got.value) == str(err)
        return None
    columns = reader.parse_stats(text, "f")
    got = as_file(columns)
    assert (got.header, got.source) == (want.header, want.source)
    assert list(got.records) == list(want.records)
    assert got.records == want.records
    for address, rec in want.records.items():  # same types too: 5 and 5.0 print differently
        back = got.records[address]
        assert [type(getattr(back, k)) for k in "BCELSRWT"] == [type(getattr(rec, k)) for k in "BCELSRWT"]
    return columns


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(addresses, records, max_size=40))
def test_written_files_read_the_same(recs) -> None:
    columns = assert_same(text_of(recs))
    assert columns is not None and len(columns) == len(recs)
    # The key columns the reader keeps are the addresses' values.
    assert columns.keys is not None
    for i, address in enumerate(columns.addresses):
        ip = ipaddress.ip_address(address)
        value = int(columns.keys.hi[i]) << 64 | int(columns.keys.lo[i])
        assert (bool(columns.keys.is6[i]), value) == (ip.version == 6, int(ip))
    # int64 exactly when every value of the column fits
    for key in "BCR":
        fits = all(getattr(r, key) < 2**63 for r in recs.values())
        assert (columns.column(key).dtype == np.int64) == fits


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(addresses, records, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_damaged_files_give_the_parsers_answer(recs, rnd: random.Random) -> None:
    data = list(text_of(recs))
    for _ in range(rnd.randint(1, 3)):
        op = rnd.choice(("flip", "cut", "insert"))
        at = rnd.randrange(len(data))
        if op == "flip":
            data[at] = rnd.choice("0123456789-'\\\t ,{}[]=>x\n")
        elif op == "cut":
            del data[at:at + rnd.randint(1, 5)]
        else:
            data[at:at] = rnd.choice(["0", "-", "'", "\n", "\t", "  "])
    assert_same("".join(data))


@pytest.mark.parametrize("change", [
    ("B\t=> 5,", "B\t=> 05,"),  # octal to Perl: the parser rejects it
    ("C\t=> 7,", "C\t=> -7,"),  # negative
    ("W\t=> 3,", "W\t=> 9223372036854775807,"),  # the int64 limit itself
    ("W\t=> 3,", "W\t=> -9223372036854775809,"),  # one below int64
    ("'198.51.100.7'", "'198.51.100.07'"),  # not an address the parser accepts
    ("N\t=> ['a.example',]", "N\t=> ['a.example']"),  # list without the trailing comma
    ("N\t=> ['a.example',]", "N\t=> ['a\\\\b\\'c','d\\e',]"),  # escapes, and a literal backslash
    ("'2001:db8::1'", "'198.51.100.7'"),  # a duplicate address
    ("R\t=> 2,", "R\t=> 2.5,"),  # a float: the general parser's job
])
def test_hand_made_variants(change) -> None:
    rec = Record(B=5, C=7, E=9, S=1, R=2, W=3, T=4, N=["a.example"])
    text = text_of({"198.51.100.7": rec, "2001:db8::1": Record(B=1)})
    assert change[0] in text
    assert_same(text.replace(change[0], change[1], 1))


def without_last_seen(text: str, rows: str = "all") -> str:
    """Return TEXT with the L line of every record (or of every other one) left out."""
    lines = text.split("\n")
    l_lines = [i for i, line in enumerate(lines) if line.startswith("\t\tL\t=> ")]
    drop = set(l_lines if rows == "all" else l_lines[::2])
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


@pytest.mark.parametrize("rows", ["all", "every other"])
def test_files_without_the_last_seen_key_take_the_fast_path(rows: str) -> None:
    """The previous ncs and the original agent wrote no L: such files read fast, with L = E."""
    recs = {f"198.51.100.{i}": Record(B=i, C=1, E=100 + i, L=200 + i, S=1) for i in range(1, 7)}
    text = without_last_seen(text_of(recs), rows)
    columns = reader._canonical_columns(text, "f")
    assert columns is not None  # the fast path took it
    want = [100 + i if rows == "all" or i % 2 else 200 + i for i in range(1, 7)]
    assert columns.column("L").tolist() == want
    assert columns.column("L").dtype == np.int64
    assert_same(text)
    assert reader._canonical_columns(ORIGINAL_AGENT_FILE, "f") is not None


def test_other_dialects_and_empty_files() -> None:
    columns = assert_same(ORIGINAL_AGENT_FILE)
    assert columns is not None and as_file(columns).records == ORIGINAL_AGENT_RECORDS
    dumper = "$VAR1 = { '198.51.100.9' => { 'B' => '240', 'R' => '723.5', 'N' => [ 'a' ] } };\n"
    columns = assert_same(dumper)
    assert columns is not None and columns.column("R").dtype == object and columns.value("R", 0) == 723.5
    assert len(assert_same("") or []) == 0
    assert_same("\n# ncs version 1.0.0\n")  # a header without a table: truncated


def test_big_files_are_read_on_two_cores_with_the_same_result(monkeypatch, tmp_path: Path,
                                                              forks: list[int]) -> None:
    rng = random.Random(3)
    recs = {str(ipaddress.IPv4Address(rng.getrandbits(32))): Record(
        B=rng.randrange(10**6), C=rng.randrange(999), E=rng.randrange(2**31), S=5,
        R=rng.randrange(10**6), W=rng.randrange(10**9), T=0,
        N=[f"h{i}.example.com"] if i % 3 else []) for i in range(3000)}
    path = tmp_path / "big.stats"
    path.write_text(text_of(recs))
    one = reader.read_stats(str(path))
    monkeypatch.setattr(twocore, "MIN_RECORDS", 10)
    forks.clear()
    two = reader.read_stats(str(path))
    assert forks, "the two-core path was not taken"
    assert as_file(two) == as_file(one) == StatsFile(one.header, dict(sorted_records(recs)), str(path))
    # A damaged record in the second half: the parser's error, naming its line.
    text = path.read_text()
    lines = text.split("\n")
    bad = len(lines) * 3 // 4
    while not lines[bad].startswith("\t\tC\t=> "):
        bad += 1
    lines[bad] = "\t\tC\t=> x,"
    path.write_text("\n".join(lines))
    with pytest.raises(StatsFormatError, match=rf"^{path}:{bad + 1}: "):
        reader.read_stats(str(path))


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(StatsFormatError, match=rf"^{tmp_path / 'missing'}: cannot read: "):
        reader.read_stats(str(tmp_path / "missing"))


def test_a_dead_reader_child_costs_time_not_data(monkeypatch, tmp_path: Path) -> None:
    recs = {f"198.51.100.{i}": Record(B=i, C=1, E=5, S=1, R=2, W=3, T=0, N=[f"h{i}.example"])
            for i in range(200)}
    path = tmp_path / "s.stats"
    path.write_text(text_of(recs))
    monkeypatch.setattr(twocore, "MIN_RECORDS", 10)
    real = twocore.ForkedCall
    monkeypatch.setattr(twocore, "ForkedCall", lambda func, *a, **k: real(lambda: os._exit(9), *a, **k))
    assert as_file(reader.read_stats(str(path))).records == dict(sorted_records(recs))


@pytest.mark.parametrize(("written", "message"), [
    ("-7", "negative number: '-7'"),
    ("-0.5", "negative number: '-0.5'"),
    ("nan", "not a finite number: 'nan'"),
    ("-Inf", "not a finite number: '-Inf'"),
    ("'NaN'", "not a finite number: 'NaN'"),
    ("1e400", "not a finite number: '1e400'"),
    ("100000000000000000000", "number too large (more than 20 digits): '100000000000000000000'"),
    ("'1e20'", "number too large (more than 20 digits): '1e20'"),
    ("9" * 5000, f"number too long (5000 characters, at most 40): '{'9' * 37}...'"),
    ("'" + "0" * 50 + "1'", f"number too long (51 characters, at most 40): '{'0' * 37}...'"),
])
def test_values_no_stats_file_may_hold_are_refused_by_both_paths(written: str, message: str) -> None:
    """NaN, infinities, negatives and absurd lengths: the same one line from the fast path and the parser."""
    text = text_of({"198.51.100.7": Record(B=5, C=7, E=9, S=1, R=2, W=3, T=4), "2001:db8::1": Record(B=1)})
    line = text[:text.index("C\t=> 7,")].count("\n") + 1
    bad = text.replace("C\t=> 7,", f"C\t=> {written},", 1)
    for variant in (bad, bad + "# a trailing comment: the general parser\n"):
        with pytest.raises(StatsFormatError) as info:
            reader.parse_stats(variant, "f")
        assert str(info.value) == f"f:{line}: C: {message}"
        assert_same(variant)


@pytest.mark.parametrize(("written", "value"), [
    ("99999999999999999999", MAX_VALUE),  # twenty digits: the largest value
    ("9223372036854775808", 2**63),  # just beyond int64
    ("-0", 0),
    ("'+12'", 12),
    ("'1e19'", 1e19),
])
def test_values_within_the_bound_are_read_by_both_paths(written: str, value: int | float) -> None:
    text = text_of({"198.51.100.7": Record(B=5, C=7, E=9, S=1, R=2, W=3, T=4)})
    bad = text.replace("C\t=> 7,", f"C\t=> {written},", 1)
    for variant in (bad, bad + "# end\n"):
        got = reader.parse_stats(variant, "f").value("C", 0)
        assert (got, type(got)) == (value, type(value))
        assert_same(variant)
