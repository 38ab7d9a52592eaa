"""The merge keeps every value a stats file may hold: sums stop at the bound, so composites stack."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.stats.merge import merge_tables
from ncs.stats.numbers import MAX_VALUE
from ncs.stats.reader import read_stats
from ncs.stats.record import Record
from ncs.stats.writer import write_stats
from tests.support.stats import StatsFile, as_file

ADDRESSES = st.sampled_from(["198.51.100.1", "198.51.100.2", "2001:db8::1"])
VALUES = st.integers(0, 10**6) | st.integers(MAX_VALUE - 10**6, MAX_VALUE) | st.integers(0, MAX_VALUE)
RECORDS = st.builds(Record, B=VALUES, C=VALUES, E=VALUES, S=VALUES, R=VALUES,
                    W=VALUES | st.floats(0, 1e19), T=VALUES, L=VALUES)
TABLES = st.lists(st.dictionaries(ADDRESSES, RECORDS, max_size=3), min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(TABLES)
def test_merged_sums_stop_at_the_bound_and_the_composite_reads_back(tmp_path_factory, tables) -> None:
    merged = merge_tables([StatsFile([], t).columns() for t in tables])
    got = as_file(merged).records
    for address, rec in got.items():
        mine = [t[address] for t in tables if address in t]
        for key in "BCRW":
            assert getattr(rec, key) == min(sum(getattr(r, key) for r in mine), MAX_VALUE), key
        assert rec.E == max(r.E for r in mine) and rec.S == min(r.S for r in mine)
        assert rec.L == max(r.L for r in mine) and rec.T == max(r.T for r in mine)
    path = tmp_path_factory.getbasetemp() / "merged.stats"
    write_stats(str(path), merged)
    back = as_file(read_stats(str(path))).records
    assert {a: [round(getattr(r, k)) for k in "BCELRSTW"] for a, r in back.items()} == \
        {a: [round(getattr(r, k)) for k in "BCELRSTW"] for a, r in got.items()}


def test_a_sum_past_the_bound_stays_readable(tmp_path: Path) -> None:
    """Two hosts at the bound: the composite holds the bound, not a 21-digit number no reader takes."""
    top = Record(B=MAX_VALUE, C=1, W=MAX_VALUE)
    merged = merge_tables([StatsFile([], {"198.51.100.1": top}).columns()] * 2)
    write_stats(str(tmp_path / "c.stats"), merged)
    rec = as_file(read_stats(str(tmp_path / "c.stats"))).records["198.51.100.1"]
    assert (rec.B, rec.C, rec.W) == (MAX_VALUE, 2, MAX_VALUE)
