"""The stats file writer: exact layout, order, atomic replace, and Perl reading it back."""

from __future__ import annotations

import ipaddress
import os
import random
import re
import shutil
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncs import __version__
from ncs.stats import writer
from ncs.stats.addresses import address_key, key_text
from ncs.stats.columns import StatsColumns
from ncs.stats.header import Header, header_lines
from ncs.stats.numbers import MAX_VALUE
from ncs.stats.record import Record
from ncs.stats.writer import column_blocks, file_chunks
from tests.support.stats import StatsFile, parse_stats, sorted_records, stats_text, write_atomic

PERL = shutil.which("perl")
needs_perl = pytest.mark.skipif(PERL is None, reason="perl is not installed")


def render(header: list[str], records: dict[str, Record]) -> str:
    """Return the text the writers produce for RECORDS in file order.

    The record-by-record writer and the column writer must agree byte for
    byte (the column writer spells addresses canonically).
    """
    items = sorted_records(records)
    text = stats_text(header, items)
    if all(key_text(address_key(a)) == a for a, _ in items):
        table = StatsColumns.from_records(header, items)
        assert b"".join(file_chunks(header, column_blocks(table))).decode() == text
    return text


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch):
    """Run the test with local time = UTC, so header dates are known in advance."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ---------------------------------------------------------------------------
# Layout, byte for byte


def test_header_lines_layout(utc: None) -> None:
    header = Header(
        start=1145923212,
        current=1144040000,  # a single-digit day: localtime pads it with a space
        hits_per_minute=3832.4,
        bytes_per_second=5927.5,  # %.0f rounds half to even: 5928
        users=1234,
        device="eth1",
        promiscuous=False,
        bpf="dst host my.host.com",
        payload=54,
        snaplen=90,
        match=b"\nsomedomain\x03com",
        extra=[("drops", "17")],
    )
    assert header_lines(header) == [
        f"ncs version {__version__}",
        "start:\t1145923212,\tTue Apr 25 00:00:12 2006",
        "current:\t1144040000,\tMon Apr  3 04:53:20 2006",
        "hits:\t\t3832 per minute",
        "bytes:\t5928 per second",
        "users:\t1234",
        "device:\teth1\tnon-promiscuous",
        "bpf:\t\tdst host my.host.com",
        "fragment:\t54 - 90",
        "contains:\t\\x{a}somedomain\\x{3}com",
        "drops:\t17",
    ]


def test_header_lines_promiscuous_without_match(utc: None) -> None:
    header = Header(1, 2, 0.5, 2.5, 0, "veth0", True, "host 198.51.100.10")
    lines = header_lines(header)
    assert lines[3:] == [
        "hits:\t\t0 per minute",
        "bytes:\t2 per second",
        "users:\t0",
        "device:\tveth0\tpromiscuous",
        "bpf:\t\thost 198.51.100.10",
    ]


LAYOUT_RECORDS = {
    # Given out of order on purpose: the writer's order is checked below.
    "2001:db8::10": Record(B=1, C=1, E=1145760000, S=1145757331, R=0, W=0, T=0, N=[]),
    "123.123.123.123": Record(B=7, C=1, E=1145760001, S=1145757331, R=0.5, W=1.5, T=0, N=["it's"]),
    "10.0.0.1": Record(B=240, C=4, E=1145760699, L=1145760750, S=1145757331, R=722.5, W=43359.5, T=1145790478, N=["hostname1", "hostname2"]),
    "2001:db8::9": Record(B=2, C=1, E=1145760002, S=1145757331, R=2.5, W=3.5, T=0, N=[":soa.example.net"]),
    "9.0.0.1": Record(B=60, C=1, E=1145760003, S=1145757331, R=0.4999, W=1e6, T=0, N=["back\\slash"]),
    "10.100.100.10": Record(B=1, C=1, E=1, S=1, R=0, W=0, T=0, N=[]),
    "10.100.100.100": Record(B=1, C=1, E=1, S=1, R=0, W=0, T=0, N=[]),
}

# docs/formats.md, written out by hand: a tab after a quoted address of at
# most 13 characters and one space after a longer one, keys in sorted order,
# %.0f rounding (half to even), names with a comma after each.
EXPECTED_LAYOUT = """
# ncs version 1.0.0
# start:\t1145757331,\tsomewhen
{
  my $dump = {
\t'9.0.0.1'\t=> {
\t\tB\t=> 60,
\t\tC\t=> 1,
\t\tE\t=> 1145760003,
\t\tL\t=> 1145760003,
\t\tN\t=> ['back\\\\slash',],
\t\tR\t=> 0,
\t\tS\t=> 1145757331,
\t\tT\t=> 0,
\t\tW\t=> 1000000,
\t},
\t'10.0.0.1'\t=> {
\t\tB\t=> 240,
\t\tC\t=> 4,
\t\tE\t=> 1145760699,
\t\tL\t=> 1145760750,
\t\tN\t=> ['hostname1','hostname2',],
\t\tR\t=> 722,
\t\tS\t=> 1145757331,
\t\tT\t=> 1145790478,
\t\tW\t=> 43360,
\t},
\t'10.100.100.10'\t=> {
\t\tB\t=> 1,
\t\tC\t=> 1,
\t\tE\t=> 1,
\t\tL\t=> 1,
\t\tN\t=> [],
\t\tR\t=> 0,
\t\tS\t=> 1,
\t\tT\t=> 0,
\t\tW\t=> 0,
\t},
\t'10.100.100.100' => {
\t\tB\t=> 1,
\t\tC\t=> 1,
\t\tE\t=> 1,
\t\tL\t=> 1,
\t\tN\t=> [],
\t\tR\t=> 0,
\t\tS\t=> 1,
\t\tT\t=> 0,
\t\tW\t=> 0,
\t},
\t'123.123.123.123' => {
\t\tB\t=> 7,
\t\tC\t=> 1,
\t\tE\t=> 1145760001,
\t\tL\t=> 1145760001,
\t\tN\t=> ['it\\'s',],
\t\tR\t=> 0,
\t\tS\t=> 1145757331,
\t\tT\t=> 0,
\t\tW\t=> 2,
\t},
\t'2001:db8::9'\t=> {
\t\tB\t=> 2,
\t\tC\t=> 1,
\t\tE\t=> 1145760002,
\t\tL\t=> 1145760002,
\t\tN\t=> [':soa.example.net',],
\t\tR\t=> 2,
\t\tS\t=> 1145757331,
\t\tT\t=> 0,
\t\tW\t=> 4,
\t},
\t'2001:db8::10'\t=> {
\t\tB\t=> 1,
\t\tC\t=> 1,
\t\tE\t=> 1145760000,
\t\tL\t=> 1145760000,
\t\tN\t=> [],
\t\tR\t=> 0,
\t\tS\t=> 1145757331,
\t\tT\t=> 0,
\t\tW\t=> 0,
\t},
  };
}
"""


def test_layout_byte_for_byte() -> None:
    text = render([f"ncs version {__version__}", "start:\t1145757331,\tsomewhen"], LAYOUT_RECORDS)
    assert text == EXPECTED_LAYOUT.replace("1.0.0", __version__)


def test_sorted_ipv4_numerically_then_ipv6() -> None:
    addresses = ["2001:db8::10", "::1", "10.0.0.1", "9.0.0.1", "255.255.255.255",
                 "2001:db8::9", "0.0.0.0", "10.0.0.10", "10.0.0.9", "ffff::"]
    records = {a: Record() for a in addresses}
    got = [a for a, _ in sorted_records(records)]
    assert got == ["0.0.0.0", "9.0.0.1", "10.0.0.1", "10.0.0.9", "10.0.0.10",
                   "255.255.255.255", "::1", "2001:db8::9", "2001:db8::10", "ffff::"]


def test_sort_rejects_text_that_is_not_an_address() -> None:
    with pytest.raises(ValueError):
        sorted_records({"10.0.0.1": Record(), "not-an-ip": Record()})


def test_empty_table_layout() -> None:
    assert render(["ncs version x"], {}) == "\n# ncs version x\n{\n  my $dump = {\n  };\n}\n"


# ---------------------------------------------------------------------------
# Atomic replace


OLD_TEXT = "\n# old file\n{\n  my $dump = {\n  };\n}\n"


def test_write_atomic_replaces_and_leaves_no_tmp(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    path.write_text(OLD_TEXT)
    write_atomic(str(path), ["ncs version x"], sorted_records(LAYOUT_RECORDS))
    assert path.read_text(encoding="utf-8") == render(["ncs version x"], LAYOUT_RECORDS)
    assert sorted(os.listdir(tmp_path)) == ["stats"]


def test_write_atomic_failing_iterable_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    path.write_text(OLD_TEXT)

    def records_then_failure():
        yield from sorted_records(LAYOUT_RECORDS)[:3]
        raise RuntimeError("table changed during dump")

    with pytest.raises(RuntimeError, match="table changed"):
        write_atomic(str(path), ["ncs version x"], records_then_failure())
    assert path.read_text() == OLD_TEXT
    assert sorted(os.listdir(tmp_path)) == ["stats"]


def test_write_atomic_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomic(str(tmp_path / "no-such-dir" / "stats"), ["x"], [])
    assert os.listdir(tmp_path) == []


def test_write_atomic_disk_full_keeps_old_file(tmpfs: Callable[..., Path]) -> None:
    tiny_fs = tmpfs("64k")
    path = tiny_fs / "stats"
    path.write_text(OLD_TEXT)
    # About 150 bytes a record: far more than the 64 KiB the file system holds.
    big = {str(ipaddress.IPv4Address(0x0A000000 + i)): Record(B=i, C=1, E=2, S=3, R=4, W=5, T=6, N=["x" * 40])
           for i in range(2000)}
    with pytest.raises(OSError):
        write_atomic(str(path), ["ncs version x"], sorted_records(big))
    assert path.read_text() == OLD_TEXT
    assert sorted(os.listdir(tiny_fs)) == ["stats"]


# ---------------------------------------------------------------------------
# Perl reads what ncs writes

# Perl prints every value back; strings as hex of their bytes so that nothing
# (quotes, newlines, UTF-8) is lost on the way.
PERL_DUMP_BACK = r"""
use strict; use warnings;
my $d = do $ARGV[0];
die "do failed: $@" if $@;
die "do did not return a hash: " . (defined $d ? $d : 'undef') . "\n" unless ref $d eq 'HASH';
print "COUNT\t", scalar(keys %$d), "\n";
for my $addr (sort keys %$d) {
    my $r = $d->{$addr};
    my $a = unpack('H*', $addr);
    print "KEYS\t$a\t", join(',', sort keys %$r), "\n";
    print "NUM\t$a\t$_\t$r->{$_}\n" for qw(B C E L R S T W);
    die "N is not a list\n" unless ref $r->{N} eq 'ARRAY';
    print "NAME\t$a\t", unpack('H*', $_), "\n" for @{$r->{N}};
}
"""


def perl_read_back(path: Path) -> dict[str, dict]:
    """Return what `perl do FILE` sees: {address: {key: value, 'N': [names]}}."""
    proc = subprocess.run([PERL, "-e", PERL_DUMP_BACK, str(path)], capture_output=True,
                          timeout=60, cwd=path.parent)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out: dict[str, dict] = {}
    count = None
    for line in proc.stdout.decode("ascii").splitlines():
        kind, *rest = line.split("\t")
        if kind == "COUNT":
            count = int(rest[0])
            continue
        address = bytes.fromhex(rest[0]).decode("utf-8")
        rec = out.setdefault(address, {"N": []})
        if kind == "KEYS":
            rec["keys"] = rest[1]
        elif kind == "NUM":
            rec[rest[1]] = rest[2]
        elif kind == "NAME":
            rec["N"].append(bytes.fromhex(rest[1]).decode("utf-8"))
    assert count == len(out)
    return out


# (name as the agent holds it, the string Perl must read back).  A name is
# spelled with \x{..} for control characters before quoting, so that a newline
# or an escape sequence never reaches the file or a terminal raw.
HOSTILE_NAMES = [
    ("it's.example", "it's.example"),
    ("back\\slash", "back\\slash"),
    ("trailing\\", "trailing\\"),
    ("\\'", "\\'"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("'; system(\"touch PWNED\"); '", "'; system(\"touch PWNED\"); '"),
    ("$HOME @ARGV %ENV", "$HOME @ARGV %ENV"),
    ("münchen.example", "münchen.example"),
    ("例え.jp", "例え.jp"),
    ("line\nbreak", "line\\x{a}break"),
    ("esc\x1b[31mred", "esc\\x{1b}[31mred"),
    ("[bold]rich[/bold]", "[bold]rich[/bold]"),
    (":soa.example.net", ":soa.example.net"),
]


@needs_perl
def test_perl_reads_hostile_names_exactly(tmp_path: Path) -> None:
    names = [name for name, _ in HOSTILE_NAMES]
    records = {
        "198.51.100.7": Record(B=240, C=4, E=1145760699, S=1145757331, R=722.5, W=43359.5, T=1145790478, N=names),
        "2001:db8::1": Record(B=1, C=2, E=3, S=4, R=5, W=6, T=7, N=names[::-1]),
        "10.0.0.1": Record(),
    }
    path = tmp_path / "stats"
    write_atomic(str(path), ["ncs version x", "bpf:\t\thost 198.51.100.1"], sorted_records(records))

    seen = perl_read_back(path)
    want_names = [perl_sees for _, perl_sees in HOSTILE_NAMES]
    assert seen == {
        "198.51.100.7": {"keys": "B,C,E,L,N,R,S,T,W", "B": "240", "C": "4", "E": "1145760699",
                         "L": "1145760699", "R": "722", "S": "1145757331", "T": "1145790478", "W": "43360",
                         "N": want_names},
        "2001:db8::1": {"keys": "B,C,E,L,N,R,S,T,W", "B": "1", "C": "2", "E": "3", "L": "3", "R": "5",
                        "S": "4", "T": "7", "W": "6", "N": want_names[::-1]},
        "10.0.0.1": {"keys": "B,C,E,L,N,R,S,T,W", "B": "0", "C": "0", "E": "0", "L": "0", "R": "0",
                     "S": "0", "T": "0", "W": "0", "N": []},
    }
    assert not (tmp_path / "PWNED").exists()

    # ncs reads back the same values as Perl does.
    parsed = parse_stats(path.read_text(encoding="utf-8"))
    assert parsed.records["198.51.100.7"].N == want_names
    assert parsed.records["2001:db8::1"].N == want_names[::-1]


@needs_perl
def test_perl_reads_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    write_atomic(str(path), ["ncs version x"], [])
    assert perl_read_back(path) == {}


ADDRESSES = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
# Printable text only: control characters are deliberately spelled \x{..} by
# the writer (tested above), so they do not round-trip unchanged.
NAMES = st.text(
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
                  include_characters=" '\\"),
    max_size=30,
)
COUNTS = st.integers(min_value=0, max_value=2**53)
RECORDS = st.builds(Record, B=COUNTS, C=COUNTS, E=COUNTS, L=COUNTS, S=COUNTS, R=COUNTS, W=COUNTS, T=COUNTS,
                    N=st.lists(NAMES, max_size=4))
TABLES = st.dictionaries(ADDRESSES, RECORDS, max_size=12)


@needs_perl
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=TABLES)
def test_perl_reads_generated_tables(tmp_path: Path, table: dict[str, Record]) -> None:
    path = tmp_path / "stats"
    write_atomic(str(path), ["ncs version x"], sorted_records(table))
    seen = perl_read_back(path)
    assert set(seen) == set(table)
    for address, rec in table.items():
        got = seen[address]
        for key in "BCELRSTW":
            assert int(got[key]) == getattr(rec, key), (address, key)
        assert got["N"] == rec.N


@settings(max_examples=200, deadline=None)
@given(table=TABLES, header=st.lists(NAMES.filter(lambda s: "\n" not in s), max_size=3))
def test_round_trip(table: dict[str, Record], header: list[str]) -> None:
    text = render(header, table)
    expected_order = sorted(table, key=lambda a: (ipaddress.ip_address(a).version,
                                                  int(ipaddress.ip_address(a))))
    parsed = parse_stats(text, "gen")
    assert parsed == StatsFile(header, {a: table[a] for a in expected_order}, "gen")
    assert list(parsed.records) == expected_order
    # A trailing comment is still valid Perl but sends the text through the
    # general parser instead of the fast path: both must agree.
    assert parse_stats(text + "# end\n", "gen") == parsed


FLOATS = st.floats(min_value=0, max_value=2.0**60, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(FLOATS | st.sampled_from([0.5, 1.5, 2.5, 722.5, 43359.5]),
                       min_size=7, max_size=7))
def test_numbers_are_rounded_like_printf(values: list[float]) -> None:
    b, c, e, r, s, t, w = values
    text = render([], {"10.0.0.1": Record(B=b, C=c, E=e, S=s, R=r, W=w, T=t, N=[])})
    rec = parse_stats(text).records["10.0.0.1"]
    got = (rec.B, rec.C, rec.E, rec.R, rec.S, rec.T, rec.W)
    assert got == tuple(int(f"{v:.0f}") for v in (b, c, e, r, s, t, w))  # C printf rounding


@pytest.mark.parametrize(("value", "reason"), [
    (float("inf"), "not a finite number"),
    (float("nan"), "not a finite number"),
    (-1, "negative number"),
    (-0.5, "negative number"),
    (MAX_VALUE + 1, "number too large (more than 20 digits)"),
    (1e20, "number too large (more than 20 digits)"),
])
def test_values_no_reader_accepts_are_not_written(value, reason: str) -> None:
    """A value the readers refuse is an error at writing time, never a file that cannot be read back."""
    bad = {"10.0.0.1": Record(W=value)}
    message = rf"^10\.0\.0\.1: W: {re.escape(reason)}: "
    with pytest.raises(ValueError, match=message):
        render([], bad)
    with pytest.raises(ValueError, match=message):  # the column writer too
        b"".join(column_blocks(StatsColumns.from_records([], bad.items())))
    # the largest value is written, and read back exactly by both paths
    text = render([], {"10.0.0.1": Record(W=MAX_VALUE, R=float(MAX_VALUE) - 2**14)})
    assert "\t\tW\t=> 99999999999999999999,\n" in text
    for variant in (text, text + "# end\n"):
        rec = parse_stats(variant).records["10.0.0.1"]
        assert (rec.W, rec.R) == (MAX_VALUE, 99999999999999983616)


def test_a_chunk_of_the_widest_rows_is_written_in_little_memory() -> None:
    """The numpy writer's working memory for one chunk stays far below glibc's
    32 MiB bound for reusing freed memory, so chunks do not map fresh pages.

    Rows as wide as the layout makes them: IPv6 addresses with no zero group,
    18-digit numbers, one name of the longest laid-out length.
    """
    rng = random.Random(7)
    records = {}
    while len(records) < writer.CHUNK_ROWS:
        address = str(ipaddress.IPv6Address(0x20010DB8 << 96 | rng.getrandbits(96) | 0x1000100010001))
        big = rng.randrange(10**17, 10**18)
        records[address] = Record(B=big, C=big, E=big, S=big, R=big, W=big, T=big, N=["n" * 61])
    table = StatsColumns.from_records([], sorted_records(records))
    tracemalloc.start()
    try:
        text = writer.chunk_blocks(table)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(text) > 300 * writer.CHUNK_ROWS  # the widest rows indeed
    assert peak < 16 << 20, f"{peak / 2**20:.1f} MiB to write {writer.CHUNK_ROWS} rows"
