"""The stats-file fuzzer: real files, mutated at random, fed to every reader; a correct read or one line.

The seeds are real: a file the agent wrote from a generated capture, a
composite the coalescer's code wrote (with hostile names), the original
agent's dialect, and Data::Dumper output from real perl.  Each case mutates
one seed (hostile numbers, flipped and inserted bytes, cut, duplicated and
swapped pieces, a cut end) and requires, from every reader, either exactly
one line naming the file and a line of it, or a correct read: the fast path
and the general parser agree, every value is one a stats file may hold, and
the table goes through the coalescer's merge, the writer and every report
format and reads back.  A sample goes through the programs' command lines.
"""

from __future__ import annotations

import io
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncs.coalesce.composite import Composite
from ncs.report.group import make_report
from ncs.report.render_html import render_fragment
from ncs.report.render_json import render_json
from ncs.report.render_table import render_table
from ncs.report.render_text import render_text
from ncs.stats import reader
from ncs.stats.columns import StatsColumns
from ncs.stats.errors import StatsFormatError
from ncs.stats.numbers import check_value
from ncs.stats.quoting import decode_stats_bytes
from ncs.stats.record import NUMBER_KEYS, Record
from tests.stats.test_parser import ORIGINAL_AGENT_FILE, PERL, perl_dumper
from tests.stats.test_reader import assert_same
from tests.support.pcapgen import LINKTYPE_EN10MB, Pkt, build, write_pcap
from tests.support.stats import StatsFile

ME4, ME6 = "198.51.100.10", "2001:db8:100::10"
T0 = 1_700_000_000

#: Numbers no stats file may hold, numbers at the edge of the bound, and odd spellings.
HOSTILE_NUMBERS = [
    "nan", "NaN", "-inf", "inf", "Infinity", "'nan'", "'-inf'", "-1", "-0", "-0.5", "'-5'",
    "1e400", "-1e400", "9" * 5000, "'" + "9" * 5000 + "'", "1" + "0" * 20, "9" * 20,
    "1e19", "1e20", "99999999999999999999.5", "0.000001", "1e-400", "' 12 '", "010", "0x10",
    "1_000", "+5", ".5", "5.", "'" + "0" * 60 + "1'",
]
#: Bytes a flip writes: the format's own punctuation, and what breaks lines, UTF-8 or Perl.
FLIP_BYTES = b"0123456789-+.eE'\"\\\t\n\r ,{}[]=>$@#x\x00\x1b\x85\xff\xc3"
#: Whole lines an insertion adds.
LINES = [
    b"# a comment", b"$x = 1;", b"\t'198.51.100.1' => {},", b"\t\tB\t=> nan,", b"\t\tX\t=> 1,",
    b"  };", b"}", b"\t'2001:db8::1'\t=> { B => -1 },", b"\t\tN\t=> ['a\\'b', \"\\x{263a}\", 5],",
    b"\t'::ffff:1.2.3.4' => { 'W' => '1e3' },", b"\t'0::1' => {}, '::1' => {},",
]
NUMBER = re.compile(rb"(?<![\w.])[0-9]+(?:\.[0-9]+)?(?![\w.])")


# --------------------------------------------------------------------------
# The seeds


def _agent_file(base: Path) -> bytes:
    """Return the stats file the real agent writes replaying a generated capture."""
    remotes = ["198.51.100.7", "203.0.113.9", "203.0.113.200", "2001:db8::7", "2001:db8:ff::1"]
    pkts = []
    for i in range(60):
        remote = remotes[i % len(remotes)]
        me = ME6 if ":" in remote else ME4
        # minutes apart, so that rates fold and R, W, E move
        src, dst = (remote, me) if i % 2 else (me, remote)
        pkts.append(Pkt(src, dst, T0 + 97 * i, payload=b"x" * (i * 7 % 300)))
    capture, out = base / "seed.pcap", base / "agent.stats"
    write_pcap(str(capture), LINKTYPE_EN10MB, build(LINKTYPE_EN10MB, pkts))
    run = subprocess.run([sys.executable, "-m", "ncs.agent.cli", "run", "--read", str(capture),
                          "--bpf", f"host {ME4} or host {ME6}", "--no-dns", "--stats", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return out.read_bytes()


def _composite_file(base: Path, agent: bytes) -> bytes:
    """Return a composite the coalescer's code writes: the agent's table and one with hostile names."""
    named = {
        "198.51.100.7": Record(B=5, C=1, E=T0, S=T0, R=1.5, W=2.25, T=T0 + 9, N=["it's", "back\\slash"]),
        "203.0.113.77": Record(B=9, C=2, E=T0, S=T0, N=["\x1b[2Jx.example", "münchen.example", ":soa.x"]),
        "2001:db8::7": Record(B=1, C=1, E=T0, S=T0, N=["$HOME", "'; system(\"id\"); '"]),
    }
    sources = [("agent", reader.parse_stats(agent.decode(), "agent")),
               ("named", StatsFile(["ncs version 1.0.0", f"start:\t{T0},\tx"], named).columns())]
    path = base / "composite.stats"
    _write_composite(path, sources, failed=["down"], now=T0 + 9999)
    return path.read_bytes()


def _write_composite(path: Path, sources: list[tuple[str, StatsColumns]], failed: list[str] = (),
                     now: int = T0) -> StatsColumns:
    """Write the composite ncs-coalesce builds of SOURCES (and FAILED hosts) to PATH; return its table."""
    built = Composite()
    for rank, (name, table) in enumerate(sources):
        built.add(rank, name, table)
    for rank, name in enumerate(failed, start=len(sources)):
        built.fail(rank, name, "Connection refused")
    built.write(str(path), now=now)
    return built.merge.table()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    """The real files every case starts from, by name."""
    base = tmp_path_factory.mktemp("seeds")
    agent = _agent_file(base)
    found = Seeds({"agent": agent, "composite": _composite_file(base, agent),
                   "original": ORIGINAL_AGENT_FILE.encode()})
    if PERL is not None:  # without perl the other dialects are still fuzzed
        found["dumper"] = perl_dumper(2, stringify=True, as_bytes=True).encode()
        found["dumper-indent1-qq"] = perl_dumper(1, stringify=False, as_bytes=False, useqq=True).encode()
    for name, data in found.items():  # every seed is itself a correct read
        assert isinstance(reader.parse_stats(decode_stats_bytes(data), name), StatsColumns)
    return found


# --------------------------------------------------------------------------
# Mutations


def _hostile_number(data: bytes, rnd: random.Random) -> bytes:
    found = list(NUMBER.finditer(data))
    if not found:
        return data
    m = rnd.choice(found)
    return data[:m.start()] + rnd.choice(HOSTILE_NUMBERS).encode() + data[m.end():]


def _flip(data: bytes, rnd: random.Random) -> bytes:
    at = rnd.randrange(len(data))
    return data[:at] + bytes([rnd.choice(FLIP_BYTES)]) + data[at + 1:]


def _cut(data: bytes, rnd: random.Random) -> bytes:
    at = rnd.randrange(len(data))
    return data[:at] + data[at + rnd.randint(1, 20):]


def _duplicate(data: bytes, rnd: random.Random) -> bytes:
    start = rnd.randrange(len(data))
    piece = data[start:start + rnd.randint(1, 300)]
    at = rnd.randrange(len(data) + 1)
    return data[:at] + piece + data[at:]


def _truncate(data: bytes, rnd: random.Random) -> bytes:
    return data[:rnd.randrange(len(data))]


def _swap_lines(data: bytes, rnd: random.Random) -> bytes:
    lines = data.split(b"\n")
    i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _insert_line(data: bytes, rnd: random.Random) -> bytes:
    lines = data.split(b"\n")
    lines.insert(rnd.randrange(len(lines) + 1), rnd.choice(LINES))
    return b"\n".join(lines)


MUTATIONS = [_hostile_number, _hostile_number, _flip, _cut, _duplicate, _truncate, _swap_lines,
             _insert_line]


def mutate(data: bytes, rnd: random.Random) -> bytes:
    """Return DATA changed by one to three random mutations."""
    for _ in range(rnd.randint(1, 3)):
        if not data:
            break
        data = rnd.choice(MUTATIONS)(data, rnd)
    return data


# --------------------------------------------------------------------------
# What every reader must do


def assert_one_line(message: str, source: str, data: bytes) -> None:
    """MESSAGE must be one line, "SOURCE:LINE: reason", LINE a line of DATA."""
    m = re.fullmatch(rf"{re.escape(source)}:([0-9]+): [^\r\n]+", message)
    assert m, message
    assert 1 <= int(m.group(1)) <= data.count(b"\n") + 1, message


def assert_correct_read(table: StatsColumns, out: Path) -> None:
    """TABLE holds only values a stats file may hold, and goes through merge, writer and reports."""
    for key in NUMBER_KEYS:
        for value in table.column(key).tolist():
            check_value(value)
    # What ncs-coalesce does with it: merge and write.  The file reads back
    # and is then a fixed point (the writer rounds floats and spells control
    # characters once); a coalescer stacked above merges it again.
    merged = _write_composite(out, [("fuzz", table)])
    back = reader.read_stats(str(out))
    assert len(back) == len(merged)
    assert [_rounded(merged, row) for row in range(len(merged))] == \
        [_rounded(back, row) for row in range(len(back))]
    records = _records_text(out)
    _write_composite(out, [("fuzz", back)])
    assert _records_text(out) == records
    _write_composite(out, [("one", back), ("two", back)])
    assert len(reader.read_stats(str(out))) == len(merged)
    # What ncs-report does with it: every format.
    for by in ("prefix", "domain"):
        report = make_report(table, by)
        render_text(report)
        render_json(report)
        render_fragment(report)
        render_table(report, io.StringIO(), force_terminal=True, width=160)


def _records_text(path: Path) -> bytes:
    """Return the table part of the stats file at PATH (a composite's header grows with each level)."""
    return path.read_bytes().split(b"\n{\n", 1)[1]


def _rounded(table: StatsColumns, row: int) -> list[int]:
    """Return ROW's numbers as the writer prints them (half to even, like %.0f)."""
    return [round(table.value(key, row)) for key in NUMBER_KEYS]


class Seeds(dict):
    """The seed files by name (a short repr: hypothesis prints the arguments of a failing case)."""

    def __repr__(self) -> str:
        return f"<seeds {', '.join(self)}>"


def check_every_reader(data: bytes, path: Path) -> StatsColumns | None:
    """Feed DATA to the reader's both paths and read_stats; returns the table, or None after one line."""
    assert_same(decode_stats_bytes(data))  # fast path and general parser: same table, or same error
    path.write_bytes(data)
    try:
        table = reader.read_stats(str(path))
    except StatsFormatError as err:
        assert_one_line(str(err), str(path), data)
        return None
    return table


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["agent", "composite", "original", "dumper", "dumper-indent1-qq"]),
       rnd=st.randoms(use_true_random=False))
def test_mutated_real_files_read_correctly_or_fail_in_one_line(seeds, tmp_path_factory, name: str,
                                                               rnd: random.Random) -> None:
    if name not in seeds:
        name = "original"
    base = tmp_path_factory.getbasetemp()
    table = check_every_reader(mutate(seeds[name], rnd), base / "fuzzed.stats")
    if table is not None:
        assert_correct_read(table, base / "written.stats")


def test_hostile_numbers_in_every_seed_are_refused_in_one_line(seeds, tmp_path: Path) -> None:
    """Each refused number in each seed's first number field: one line naming the file, line and key."""
    for name, data in seeds.items():
        first = re.search(rb"(?m)^[\t ]*['\"]?([BCERSTW])['\"]?\s*=>\s*['\"]?([0-9.]+)", data)
        assert first, name
        line = data[:first.start(2)].count(b"\n") + 1
        for number in ("nan", "-inf", "-1", "9" * 5000, "1" + "0" * 20):
            bad = data[:first.start(2)] + number.encode() + data[first.end(2):]
            path = tmp_path / f"{name}.stats"
            assert check_every_reader(bad, path) is None, (name, number)
            with pytest.raises(StatsFormatError) as info:
                reader.read_stats(str(path))
            assert info.value.line == line
            assert info.value.message.startswith(f"{first.group(1).decode()}: "), info.value


# --------------------------------------------------------------------------
# A sample through the programs' command lines

BIN = Path(sys.executable).parent


def _sample(seeds: dict[str, bytes], count: int) -> list[bytes]:
    """Return COUNT mutated files, half of them with a hostile number, from every seed in turn."""
    rnd = random.Random(10)
    names = sorted(seeds)
    out = []
    for i in range(count):
        data = seeds[names[i % len(names)]]
        out.append(_hostile_number(data, rnd) if i % 2 else mutate(data, rnd))
    return out


def test_ncs_report_prints_a_report_or_one_line(seeds, tmp_path: Path) -> None:
    formats = ["text", "json", "html", "table"]
    for i, data in enumerate(_sample(seeds, 10)):
        path = tmp_path / f"r{i}.stats"
        path.write_bytes(data)
        run = subprocess.run([str(BIN / "ncs-report"), "--format", formats[i % len(formats)], str(path)],
                             capture_output=True, text=True, timeout=60)
        if run.returncode == 0:
            assert run.stderr == "" and run.stdout
            reader.read_stats(str(path))  # the report's file reads
        else:
            assert run.returncode == 2, run.stderr
            lines = run.stderr.splitlines()
            assert len(lines) == 1, run.stderr
            assert_one_line(lines[0].removeprefix("ncs-report: "), str(path), data)


def test_ncs_coalesce_merges_or_names_the_line(seeds, tmp_path: Path) -> None:
    """The coalescer's local agent file: merged into a composite that reads back, or failed in one line."""
    for i, data in enumerate(_sample(seeds, 4)):
        path = tmp_path / f"c{i}.stats"
        path.write_bytes(data)
        cache = tmp_path / f"c{i}.composite"
        inventory = tmp_path / f"c{i}.yaml"
        inventory.write_text(yaml.safe_dump({"local": {"name": "fuzz", "stats": str(path)},
                                             "hosts": {}, "cache": str(cache),
                                             "lock": str(tmp_path / "lock")}))
        run = subprocess.run([str(BIN / "ncs-coalesce"), "-i", str(inventory)],
                             capture_output=True, text=True, timeout=60)
        assert "Traceback" not in run.stderr, run.stderr
        try:
            reader.read_stats(str(path), allow_empty=False)
        except StatsFormatError as err:
            assert run.returncode == 1, run.stderr
            assert f"not a complete stats file: {err}" in run.stderr
            assert_one_line(str(err), str(path), data)
            assert not cache.exists()
            continue
        assert run.returncode == 0, run.stderr
        assert reader.read_stats(str(cache)).header_value("composite") == "1 sources ok, 0 failed"
