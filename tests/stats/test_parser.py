"""The stats file reader: ncs files, the original agent's files, Data::Dumper, and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncs.stats.errors import StatsFormatError
from ncs.stats.record import Record
from tests.support.stats import StatsFile, parse_stats, read_stats

PERL = shutil.which("perl")
needs_perl = pytest.mark.skipif(PERL is None, reason="perl is not installed")

# A file as the original Perl agent (Net::Connection::Sniffer 0.31) writes it,
# following its documented dump format: the same layout as ncs, but names are
# printed between quotes without escaping (a backslash stays literal).
ORIGINAL_AGENT_FILE = """
# Net::Connection::Sniffer version 0.31
# start:\t1145923212,\tMon Apr 24 17:00:12 2006
# current:\t1145923334,\tMon Apr 24 17:02:14 2006
# hits:\t\t3832 per minute
# bytes:\t5927 per second
# users:\t3
# device:\teth1\tnon-promiscuous
# bpf:\t\tdst host my.host.com
# fragment:\t54 - 90
# contains:\t\\x{a}somedomain\\x{3}com
{
  my $dump = {
\t'69.3.95.131'\t=> {
\t\tB\t=> 240,
\t\tC\t=> 4,
\t\tE\t=> 1145760699,
\t\tN\t=> ['hostname1','hostname2',],
\t\tR\t=> 723,
\t\tS\t=> 1145757331,
\t\tT\t=> 1145790478,
\t\tW\t=> 43359,
\t},
\t'192.168.100.200' => {
\t\tB\t=> 60,
\t\tC\t=> 1,
\t\tE\t=> 1145923300,
\t\tN\t=> ['odd\\name.example',],
\t\tR\t=> 0,
\t\tS\t=> 1145757331,
\t\tT\t=> 1145990000,
\t\tW\t=> 0,
\t},
\t'10.1.2.3'\t=> {
\t\tB\t=> 1500,
\t\tC\t=> 1,
\t\tE\t=> 1145923301,
\t\tN\t=> [],
\t\tR\t=> 0,
\t\tS\t=> 1145757331,
\t\tT\t=> 0,
\t\tW\t=> 0,
\t},
  };
}
"""

ORIGINAL_AGENT_RECORDS = {
    "69.3.95.131": Record(B=240, C=4, E=1145760699, S=1145757331, R=723, W=43359, T=1145790478, N=["hostname1", "hostname2"]),
    "192.168.100.200": Record(B=60, C=1, E=1145923300, S=1145757331, R=0, W=0, T=1145990000, N=["odd\\name.example"]),
    "10.1.2.3": Record(B=1500, C=1, E=1145923301, S=1145757331, R=0, W=0, T=0, N=[]),
}


def test_original_agent_file() -> None:
    parsed = parse_stats(ORIGINAL_AGENT_FILE, "orig")
    assert parsed.records == ORIGINAL_AGENT_RECORDS
    assert list(parsed.records) == ["69.3.95.131", "192.168.100.200", "10.1.2.3"]
    assert parsed.header[0] == "Net::Connection::Sniffer version 0.31"
    assert parsed.header[-1] == "contains:\t\\x{a}somedomain\\x{3}com"
    assert len(parsed.header) == 10
    assert parsed.header_number("start") == 1145923212
    assert parsed.header_value("bpf") == "dst host my.host.com"
    assert parsed.source == "orig"


def test_original_agent_file_with_crlf_and_no_leading_newline() -> None:
    text = ORIGINAL_AGENT_FILE.lstrip("\n").replace("\n", "\r\n")
    parsed = parse_stats(text, "crlf")
    assert parsed.records == ORIGINAL_AGENT_RECORDS
    assert parsed.header[0] == "Net::Connection::Sniffer version 0.31"


def test_empty_file_is_the_original_agents_empty_table() -> None:
    # The original agent writes nothing at all when its table is empty.
    assert parse_stats("", "e") == StatsFile([], {}, "e")
    assert parse_stats("\n \n", "e") == StatsFile([], {}, "e")


def test_empty_file_is_an_error_when_a_header_is_expected() -> None:
    with pytest.raises(StatsFormatError) as info:
        parse_stats("", "e.txt", allow_empty=False)
    assert str(info.value) == "e.txt:1: empty file, expected a stats file header and table"


def test_header_with_empty_table() -> None:
    text = "\n# ncs version 1.0.0\n# users:\t0\n{\n  my $dump = {\n  };\n}\n"
    assert parse_stats(text, "h") == StatsFile(["ncs version 1.0.0", "users:\t0"], {}, "h")


def test_header_without_table_is_truncated() -> None:
    text = "\n# Net::Connection::Sniffer version 0.31\n# start:\t1,\tx\n"
    with pytest.raises(StatsFormatError) as info:
        parse_stats(text, "t")
    assert info.value.line == 3
    assert "truncated" in str(info.value)


# ---------------------------------------------------------------------------
# Data::Dumper, produced by real perl

DUMPER_RECORDS = {
    "69.3.95.131": {"B": 240, "C": 4, "E": 1145760699, "N": ["hostname1", "hostname2"],
                    "R": 723.5, "S": 1145757331, "T": 1145790478, "W": 43359.25},
    "2001:db8::5": {"B": 1, "C": 1, "E": 7, "N": [], "R": 0, "S": 7, "T": 0, "W": 0},
    "198.51.100.9": {"B": 60, "C": 2, "E": 100, "R": 1.5, "S": 50, "T": 9, "W": 0.75,
                     "N": ["it's", "back\\slash", "trailing\\", "münchen.example", "例え.jp",
                           "two\nlines", "$HOME", "\"dq\""]},
}

# Perl builds the hash from JSON, then dumps it with the settings given in
# @ARGV: Indent, numbers as strings (as a coalescer that did arithmetic on
# text would hold them), names as bytes or as characters, Useqq.
PERL_DUMPER = r"""
use strict; use warnings;
use JSON::PP; use Data::Dumper;
my ($indent, $stringify, $bytes, $useqq, $json) = @ARGV;
my $d = JSON::PP->new->utf8->decode($json);
for my $r (values %$d) {
    for my $k (keys %$r) {
        if ($k eq 'N') { if ($bytes) { utf8::encode($_) for @{$r->{N}} } }
        elsif ($stringify) { $r->{$k} = "$r->{$k}" }
        else { $r->{$k} += 0 }
    }
}
$Data::Dumper::Indent = $indent;
$Data::Dumper::Sortkeys = 1;
$Data::Dumper::Useqq = $useqq;
binmode STDOUT;
print Dumper($d);
"""


def perl_dumper(indent: int, stringify: bool, as_bytes: bool, useqq: bool = False) -> str:
    """Return Data::Dumper's text of DUMPER_RECORDS, decoded from UTF-8 like read_stats does."""
    args = [str(indent), str(int(stringify)), str(int(as_bytes)), str(int(useqq)),
            json.dumps(DUMPER_RECORDS)]
    proc = subprocess.run([PERL, "-e", PERL_DUMPER, *args], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode("utf-8")


def expected_dumper_records() -> dict[str, Record]:
    return {a: Record(**fields) for a, fields in DUMPER_RECORDS.items()}


@needs_perl
@pytest.mark.parametrize("indent", [1, 2])
@pytest.mark.parametrize("stringify", [False, True], ids=["numbers", "strings"])
@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "chars"])
def test_data_dumper(indent: int, stringify: bool, as_bytes: bool) -> None:
    text = perl_dumper(indent, stringify, as_bytes)
    assert text.startswith("$VAR1 = {")
    if stringify:
        assert "'B' => '240'" in text and "'R' => '723.5'" in text
    parsed = parse_stats(text, "dumper")
    assert parsed.records == expected_dumper_records()
    assert parsed.header == []
    # Numbers keep their kind: integral text is int, 723.5 a float.
    assert type(parsed.records["69.3.95.131"].B) is int
    assert parsed.records["69.3.95.131"].R == 723.5


@needs_perl
def test_data_dumper_useqq_and_header_comments() -> None:
    text = perl_dumper(2, False, True, useqq=True)
    assert '"it\'s"' in text  # double quotes really are in play
    parsed = parse_stats("# composite of 2 hosts\n# start:\t5\n" + text, "qq")
    assert parsed.records == expected_dumper_records()
    assert parsed.header == ["composite of 2 hosts", "start:\t5"]


def test_data_dumper_written_by_hand_edge_cases() -> None:
    text = (
        "$VAR1 = {\n"
        "  '10.0.0.1' => { 'B' => '1e3', C => +2, 'E' => ' 12 ', N => [ 'a' , ], },\n"
        "  \"10.0.0.2\" => {},  # a comment between records\n"
        "};\n"
    )
    parsed = parse_stats(text, "h")
    assert parsed.records == {
        "10.0.0.1": Record(B=1000.0, C=2, E=12, N=["a"]),
        "10.0.0.2": Record(),
    }
    assert parse_stats("$VAR1 = {};", "h") == StatsFile([], {}, "h")


# ---------------------------------------------------------------------------
# Malformed input: the error names the file and the line

VALID = ORIGINAL_AGENT_FILE


def replace_line(text: str, number: int, new: str) -> str:
    lines = text.split("\n")
    lines[number - 1] = new
    return "\n".join(lines)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


MALFORMED = [
    # (name, text, line, words in the message)
    ("unknown key", VALID.replace("\t\tC\t=> 4,", "\t\tX\t=> 4,"),
     line_of(VALID, "\t\tC\t=> 4,"), "unknown record key 'X'"),
    ("non-numeric", VALID.replace("=> 1500,", "=> 'lots',"),
     line_of(VALID, "=> 1500,"), "B: not a number: 'lots'"),
    ("bare word value", VALID.replace("=> 1500,", "=> lots,"),
     line_of(VALID, "=> 1500,"), "B: expected a number, found 'lots'"),
    ("octal-looking number", VALID.replace("=> 1500,", "=> 010,"),
     line_of(VALID, "=> 1500,"), "B: expected a number, found '010'"),
    ("not an address", VALID.replace("'10.1.2.3'", "'10.1.2.300'"),
     line_of(VALID, "'10.1.2.3'"), "not an IP address: '10.1.2.300'"),
    ("hostname as address", VALID.replace("'10.1.2.3'", "'www.example.com'"),
     line_of(VALID, "'10.1.2.3'"), "not an IP address"),
    ("duplicate address", VALID.replace("'10.1.2.3'", "'69.3.95.131'"),
     line_of(VALID, "'10.1.2.3'"), f"duplicate address '69.3.95.131' (first on line {line_of(VALID, '69.3.95.131')})"),
    ("duplicate key", VALID.replace("\t\tC\t=> 4,", "\t\tB\t=> 4,"),
     line_of(VALID, "\t\tC\t=> 4,"), "duplicate record key 'B'"),
    ("garbage line", replace_line(VALID, 20, "this is not perl"),
     20, "unknown record key 'this'"),
    ("missing closing braces", VALID[: VALID.rindex("  };")],
     VALID.count("\n") - 2, "truncated"),
    ("missing final brace", VALID[: VALID.rindex("}")],
     VALID.count("\n") - 1, "expected '}' closing the outer block, found end of file"),
    ("unterminated string", "$VAR1 = {\n  '10.0.0.1 => {},\n};\n", 2, "unterminated string"),
    ("unbalanced quote", VALID.replace("['hostname1'", "['hostname1"),
     line_of(VALID, "['hostname1'"), "expected ']' closing the list of names (N), found 'hostname2'"),
    ("names not a list", VALID.replace("['hostname1','hostname2',]", "'hostname1'"),
     line_of(VALID, "['hostname1'"), "expected '[' opening the list of names"),
    ("stray character", VALID.replace("\t\tT\t=> 0,", "\t\tT\t=> 0,\n  >"),
     line_of(VALID, "\t\tT\t=> 0,") + 1, "unexpected character '>'"),
    ("text after the table", VALID + "1;\n",
     VALID.count("\n") + 1, "unexpected '1' after the end of the table"),
    ("dumper reference", "$VAR1 = {\n  '10.0.0.1' => $VAR1->{'x'}\n};\n",
     2, "expected '{' opening a record, found '$VAR1'"),
    ("interpolation", "$VAR1 = {\n  \"10.0.0.$x\" => {}\n};\n",
     2, "interpolation"),
    ("no table at all", "# just a comment\nprint 'hello';\n", 2, "found 'print'"),
]


@pytest.mark.parametrize("text, line, words", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed(text: str, line: int, words: str) -> None:
    with pytest.raises(StatsFormatError) as info:
        parse_stats(text, "bad.stats")
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.source, err.line) == ("bad.stats", line), str(err)
    assert str(err).startswith(f"bad.stats:{line}: ")
    assert words in str(err)
    assert "\n" not in str(err)


def test_error_message_stays_on_one_line() -> None:
    text = "$VAR1 = {\n  'not\nan address' => {}\n};\n"
    with pytest.raises(StatsFormatError) as info:
        parse_stats(text, "x")
    assert str(info.value) == "x:2: not an IP address: 'not\\nan address'"


def cuts_of(text: str, allow_empty: bool) -> None:
    """Parse every prefix of TEXT: each is an error or, if complete, equal to the whole."""
    whole = parse_stats(text, "cut")
    for cut in range(len(text)):
        part = text[:cut]
        try:
            parsed = parse_stats(part, "cut", allow_empty=allow_empty)
        except StatsFormatError as err:
            assert 1 <= err.line <= part.count("\n") + 1, (cut, str(err))
            continue
        if not part.strip():
            assert allow_empty and parsed.records == {}, cut
        else:
            assert parsed.records == whole.records, (cut, part[-40:])


def test_every_truncation_of_an_ncs_file() -> None:
    cuts_of(ORIGINAL_AGENT_FILE.replace("Net::Connection::Sniffer version 0.31",
                                        "ncs version 1.0.0"), allow_empty=False)
    cuts_of(ORIGINAL_AGENT_FILE, allow_empty=True)


@needs_perl
def test_every_truncation_of_a_dumper_file() -> None:
    cuts_of(perl_dumper(1, True, True), allow_empty=False)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_files_never_escape_another_exception(data: st.DataObject) -> None:
    text = ORIGINAL_AGENT_FILE
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        junk = data.draw(st.text(st.sampled_from("{}[],;=>'\"\\#$ \n\t0123456789.:aBN-e"),
                                 max_size=4))
        drop = data.draw(st.integers(0, 3))
        text = text[:pos] + junk + text[pos + drop:]
    try:
        parsed = parse_stats(text, "fuzz")
    except StatsFormatError as err:
        assert err.source == "fuzz" and err.line >= 1
        return
    assert isinstance(parsed, StatsFile)
    for address, rec in parsed.records.items():
        assert isinstance(address, str) and isinstance(rec, Record)


# ---------------------------------------------------------------------------
# read_stats: files, stdin, bytes


def test_read_stats_file(tmp_path: Path) -> None:
    path = tmp_path / "stats"
    path.write_text(ORIGINAL_AGENT_FILE, encoding="utf-8")
    parsed = read_stats(str(path))
    assert parsed.records == ORIGINAL_AGENT_RECORDS
    assert parsed.source == str(path)


def test_read_stats_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(StatsFormatError) as info:
        read_stats(str(path))
    assert str(info.value) == f"{path}: cannot read: No such file or directory"


def test_read_stats_directory(tmp_path: Path) -> None:
    with pytest.raises(StatsFormatError) as info:
        read_stats(str(tmp_path))
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory"


def test_read_stats_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken"
    path.write_text(VALID.replace("=> 1500,", "=> 'lots',"))
    with pytest.raises(StatsFormatError) as info:
        read_stats(str(path))
    assert str(info.value).startswith(f"{path}:{line_of(VALID, '=> 1500,')}: B: not a number")


def test_read_stats_raw_bytes_in_names(tmp_path: Path) -> None:
    # The original agent writes PTR names as raw bytes: not always UTF-8.
    path = tmp_path / "latin1"
    data = ORIGINAL_AGENT_FILE.encode().replace(b"'hostname2'", b"'caf\xe9.example'")
    path.write_bytes(data)
    parsed = read_stats(str(path))
    assert parsed.records["69.3.95.131"].N == ["hostname1", "caf\\x{e9}.example"]


def test_read_stats_stdin(tmp_path: Path) -> None:
    code = ("from ncs.stats.reader import read_stats; f = read_stats('-'); "
            "print(f.source, sorted(f.addresses))")
    proc = subprocess.run([sys.executable, "-c", code], input=ORIGINAL_AGENT_FILE.encode(),
                          capture_output=True, timeout=60, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip() == \
        "<stdin> ['10.1.2.3', '192.168.100.200', '69.3.95.131']"


def test_errors_survive_pickling(tmp_path: Path) -> None:
    # coalesce parses big files in worker processes and sends errors back.
    import pickle

    with pytest.raises(StatsFormatError) as parse_info:
        parse_stats("$VAR1 = {\n 'x' => {} };", "host-a:stats")
    with pytest.raises(StatsFormatError) as read_info:
        read_stats(str(tmp_path / "nope"))
    for err in (parse_info.value, read_info.value):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err)
        assert (str(copy), copy.source, copy.line) == (str(err), err.source, err.line)


@needs_perl
def test_perl_agrees_on_the_original_agent_sample(tmp_path: Path) -> None:
    # The hand-written sample is real Perl, and Perl reads the same values from it.
    from tests.stats.test_writer import perl_read_back

    path = tmp_path / "orig"
    path.write_text(ORIGINAL_AGENT_FILE, encoding="utf-8")
    seen = perl_read_back(path)
    assert set(seen) == set(ORIGINAL_AGENT_RECORDS)
    for address, rec in ORIGINAL_AGENT_RECORDS.items():
        assert {k: int(seen[address][k]) for k in "BCERSTW"} == \
            {k: getattr(rec, k) for k in "BCERSTW"}
        assert seen[address]["N"] == rec.N
