"""Merging stats tables and the composite file: arithmetic, name union, header, stacking, Perl interop."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from ncs.coalesce.composite import Composite, Failure, Source, composite_header
from ncs.stats.columns import StatsColumns
from ncs.stats.record import Record
from tests.coalesce.fleet import (
    as_tuples,
    expected_merge,
    make_records,
    merge_records,
    stats_header,
)
from tests.support.stats import StatsFile, read_stats

START = 1_700_000_000


def _tables(seed: int, count: int, size: int) -> list[dict[str, Record]]:
    rng = random.Random(seed)
    names = ["a.example.com", "b.example.net", "mail.example.org", ":ns1.example.com"]
    return [make_records(rng, size, START + 100 * i, names) for i in range(count)]


def test_merge_sums_and_extremes_match_the_design():
    tables = _tables(7, 4, 60)
    merged = merge_records(tables)
    assert as_tuples(merged) == expected_merge(tables)
    # the pool is small, so most addresses really were merged from several sources
    shared = [a for a in merged if sum(a in t for t in tables) > 1]
    assert len(shared) > 30


def test_merge_does_not_modify_its_sources():
    tables = _tables(8, 2, 30)
    before = [as_tuples(t) for t in tables]
    merge_records(tables)
    assert [as_tuples(t) for t in tables] == before


def test_names_are_united_as_plain_strings_in_first_seen_order():
    # The original compared names as regular expressions: 'a.b' swallowed 'axb'
    # and '(x' could not be compared at all.
    one = {"192.0.2.1": Record(B=1, C=1, E=5, S=1, N=["a.b", "(x"])}
    two = {"192.0.2.1": Record(B=2, C=3, E=4, S=0, N=["axb", "a.b", "c+"])}
    three = {"192.0.2.1": Record(B=4, C=5, E=9, S=2, N=["(x", "A.B"])}
    merged = merge_records([one, two, three])["192.0.2.1"]
    assert merged.N == ["a.b", "(x", "axb", "c+", "A.B"]
    assert (merged.B, merged.C, merged.E, merged.S) == (7, 9, 9, 0)


def test_composite_header_keeps_sources_and_adds_totals():
    tables = _tables(9, 2, 20)
    sources = [Source.of(f"h{i}", StatsFile(stats_header(START + i, 30 + i, 500 + i, 20, f"h{i}"), t).columns())
               for i, t in enumerate(tables)]
    records = merge_records(tables)
    header = composite_header(sources, [Failure("h9", "connection refused")], len(records), now=START + 9999)
    composite = StatsFile(header, records)
    assert composite.header_number("start") == START
    assert composite.header_number("current") == START + 9999
    assert composite.header_number("hits") == 61
    assert composite.header_number("bytes") == 1001
    assert composite.header_number("users") == len(records)
    assert composite.header_value("composite") == "2 sources ok, 1 failed"
    assert "source:\th9\tfailed\tconnection refused" in header
    assert "[h1] bpf:\t\thost h1" in header


def test_composite_header_escapes_hostile_source_lines():
    bad = StatsFile(["start:\t1,\tx", "bpf:\thost x\x1b[31m\rfake: 1"], {}).columns()
    header = composite_header([Source.of("evil", bad)], [Failure("h\nx", "a\nb")], 0, now=5)
    assert all("\n" not in line and "\r" not in line and "\x1b" not in line for line in header)


def _write_composite(path: Path, sources: list[tuple[str, StatsColumns]]) -> Path:
    built = Composite()
    for rank, (name, table) in enumerate(sources):
        built.add(rank, name, table)
    built.write(str(path))
    return path


def test_composite_is_a_stats_file_and_composites_stack(tmp_path: Path):
    tables = _tables(10, 4, 50)
    sources = [(f"h{i}", StatsFile(stats_header(START, 1, 1, 50, f"h{i}"), t).columns())
               for i, t in enumerate(tables)]
    left = read_stats(str(_write_composite(tmp_path / "left", sources[:2])))
    right = read_stats(str(_write_composite(tmp_path / "right", sources[2:])))
    top = read_stats(str(_write_composite(tmp_path / "top", [("left", left.columns()),
                                                                ("right", right.columns())])))
    assert as_tuples(top.records) == expected_merge(tables)
    assert list(top.records) == sorted(top.records, key=lambda a: tuple(map(int, a.split("."))))
    assert top.header_value("composite") == "2 sources ok, 0 failed"
    assert any(line.startswith("[left] [h1] bpf:") for line in top.header)


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_perl_do_reads_the_composite(tmp_path: Path):
    tables = _tables(11, 2, 10)
    sources = [(f"h{i}", StatsFile(stats_header(START, 1, 1, 10, "x"), t).columns())
               for i, t in enumerate(tables)]
    path = _write_composite(tmp_path / "composite", sources)
    expected = expected_merge(tables)
    script = ('my $h = do $ARGV[0]; die "do: $@ $!" unless ref $h; '
              'for (sort keys %$h) { my $r = $h->{$_}; '
              'print join("|", $_, @$r{qw(B C E S R W T L)}, @{$r->{N}}), "\\n" }')
    out = subprocess.run(["perl", "-e", script, str(path)], capture_output=True, text=True, check=True)
    got = {}
    for line in out.stdout.splitlines():
        addr, *fields = line.split("|")
        got[addr] = (*map(int, fields[:8]), tuple(fields[8:]))
    assert got == expected


def test_the_composite_header_counts_addresses_past_the_names_cap(tmp_path: Path):
    many = [f"n{i}.example" for i in range(100)]
    built = Composite()
    built.add(0, "h0", StatsFile(stats_header(START, 1, 1, 2, "h0"),
                                 {"192.0.2.1": Record(B=1, N=many[:70]),
                                  "192.0.2.2": Record(B=1, N=["x"])}).columns())
    built.add(1, "h1", StatsFile(stats_header(START, 1, 1, 1, "h1"),
                                 {"192.0.2.1": Record(B=1, N=many[30:])}).columns())
    built.write(str(tmp_path / "composite"))
    composite = read_stats(str(tmp_path / "composite"))
    assert composite.records["192.0.2.1"].N == many[:64]
    assert "names-capped:\t1 addresses had more than 64 names; the first 64 kept" in composite.header


def test_a_written_composite_takes_no_more_hosts(tmp_path: Path):
    """Writing seals the merge (its address index is freed first): a late host is refused, not lost."""
    tables = _tables(5, 2, 10)
    built = Composite()
    built.add(0, "h0", StatsFile([], tables[0]).columns())
    built.write(str(tmp_path / "composite"))
    with pytest.raises(RuntimeError, match="sealed"):
        built.add(1, "h1", StatsFile([], tables[1]).columns())
    assert as_tuples(read_stats(str(tmp_path / "composite")).records) == expected_merge(tables[:1])


def test_the_composite_is_written_by_this_process_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No forked second core for the composite (it costs CPU a coalescer pays for), even for a
    table big enough that the agent's and the report's writers would split it."""
    from ncs import twocore
    from ncs.stats import writer

    def no_fork() -> int:
        raise AssertionError("the composite writer forked")

    tables = _tables(6, 3, 60)
    built = Composite()
    for rank, table in enumerate(tables):
        built.add(rank, f"h{rank}", StatsFile([], table).columns())
    with monkeypatch.context() as m:
        m.setattr(twocore, "MIN_RECORDS", 1)
        m.setattr(writer, "CHUNK_ROWS", 16)
        m.setattr(os, "fork", no_fork)
        built.write(str(tmp_path / "composite"))
    assert as_tuples(read_stats(str(tmp_path / "composite")).records) == expected_merge(tables)
