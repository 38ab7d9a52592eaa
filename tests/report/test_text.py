"""The classic text report, byte for byte against expected files derived by hand.

Arithmetic behind tests/report/expected/groups.txt (TZ=UTC, NOW = apr 25 00:02:14):

* 198.18.0.0/24: W 360000 -> 100 B/s, first.
* 2001:db8:1::/64: R 6000 -> 100/min, W 36000 -> 10 B/s; ::a has no name.
* Ties on int(W/3600) == 2, ordered by first address (IPv4 before IPv6):
  192.0.2.0/24 (W 9000 -> 2.5, printed "2" like C's %.0f; R 90 -> 1.5 -> "2"),
  198.51.100.0/24 (W 3599 + 7200 = 10799 -> int 2 but printed "3"; R 1260 -> 21;
  .7 has two names, .9 none), 203.0.113.0/24 (W 7300; R 30 -> 0.5 -> "0"),
  2001:db8:2::/64 (W 7200).
* 192.0.2.44 has an NXDOMAIN name ":ns1.soa-example.org", E = NOW - 23334
  (apr 24 17:33:20); 203.0.113.1 has E = NOW - 86400.
* Totals: R 7500 -> 125/min; W 430299 -> 119.53 -> 120 B/s; 8 users.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ncs.stats.record import Record

from .helpers import NOW, run_report, write_stats

EXPECTED = Path(__file__).parent / "expected"


def groups_records() -> dict[str, Record]:
    return {
        "198.18.0.1": Record(R=0, W=360000, E=NOW, S=NOW - 122, N=["big.example.com"]),
        "2001:db8:1::5": Record(R=6000, W=36000, E=NOW, S=NOW - 122, N=["v6.example.org"]),
        "2001:db8:1::a": Record(R=0, W=0, E=NOW - 34, S=NOW - 122, N=[]),
        "192.0.2.44": Record(R=90, W=9000, E=NOW - 23334, S=NOW - 122, N=[":ns1.soa-example.org"]),
        "198.51.100.7": Record(R=1200, W=7200, E=NOW, S=NOW - 122,
                               N=["a.example.com", "b.example.com"]),
        "198.51.100.9": Record(R=60, W=3599, E=NOW - 334, S=NOW - 122, N=[]),
        "203.0.113.1": Record(R=30, W=7300, E=NOW - 86400, S=NOW - 122, N=["host.example.net"]),
        "2001:db8:2::1": Record(R=120, W=7200, E=NOW, S=NOW - 122, N=["six.example.org"]),
    }


def domain_records() -> dict[str, Record]:
    return {
        "198.51.100.1": Record(R=600, W=36000, E=NOW, N=["x.example.co.uk"]),
        "203.0.113.9": Record(R=60, W=3600, E=NOW, N=["Y.Example.CO.UK."]),
        "198.51.100.2": Record(R=120, W=72000, E=NOW, N=["other.co.uk"]),
        "192.0.2.7": Record(R=0, W=18000, E=NOW, N=["shop.example.com.au"]),
        "192.0.2.8": Record(R=0, W=3600, E=NOW, N=[":ns1.soa-example.org"]),
        "192.0.2.9": Record(R=0, W=7200, E=NOW, N=[]),
    }


CASES = {
    "groups": (
        ["ncs version 1.0.0", "start:\t1145923212,\tTue Apr 25 00:00:12 2006", "drops:\t0"],
        groups_records(),
        [],
    ),
    "single": (
        ["ncs version 1.0.0"],
        {"198.51.100.1": Record(R=3630, W=5400, E=NOW, N=["only.example.com"])},
        [],
    ),
    "empty": (["ncs version 1.0.0", "users:\t0"], {}, []),
    "domain": (["ncs version 1.0.0"], domain_records(), ["--by", "domain"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_classic_text_matches_expected_file(tmp_path: Path, case: str) -> None:
    header, records, extra = CASES[case]
    stats = write_stats(tmp_path / f"{case}.stats", header, records)
    result = run_report("--format", "text", *extra, str(stats))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == (EXPECTED / f"{case}.txt").read_text()


def test_text_is_the_default_when_not_a_terminal(tmp_path: Path) -> None:
    header, records, _ = CASES["single"]
    stats = write_stats(tmp_path / "s.stats", header, records)
    result = run_report(str(stats))
    assert result.stdout == (EXPECTED / "single.txt").read_text()


def test_stdin_and_v4_prefix_option(tmp_path: Path) -> None:
    header, records, _ = CASES["groups"]
    stats = write_stats(tmp_path / "g.stats", header, records)
    result = run_report("--format", "text", "--v4-prefix", "8", "-", stdin=stats.read_text())
    assert result.returncode == 0, result.stderr
    assert "Composite report, CIDR/8 ordered by BANDWIDTH\n" in result.stdout
    # 192/8 now holds 192.0.2.44; 198/8 holds 198.18.0.1 and both 198.51.100 hosts.
    assert "198.18.0.1\tbig.example.com\n198.51.100.7\ta.example.com\n" in result.stdout
    assert "    21\t -- 103\t -- 3\tapr 25 00:02:14\n" in result.stdout
    assert result.stdout.endswith("users\t\t= 8\n")


def test_malformed_stats_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.stats"
    bad.write_text("\n# ncs version 1.0.0\n{\n  my $dump = {\n\t'198.51.100.1'\t=> {\n\t\tB\t=> x,\n")
    for fmt in ("text", "json", "table"):
        result = run_report("--format", fmt, str(bad))
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith(f"ncs-report: {bad}:")
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    missing = run_report("--format", "text", str(tmp_path / "nope.stats"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("ncs-report: ") and "nope.stats" in missing.stderr
    assert missing.stderr.count("\n") == 1


def test_malformed_stats_file_in_html_page_is_escaped(tmp_path: Path) -> None:
    bad = tmp_path / "<b>&bad.stats"
    bad.write_text("\n# x\n{\n  my $dump = {\n\t'198.51.100.1'\t=> {\n")
    result = run_report("--format", "html", str(bad))
    assert result.returncode == 2
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith('<p class="ncs-error">ncs-report: ')
    assert "&lt;b&gt;&amp;bad.stats" in result.stdout and "<b>" not in result.stdout
    cgi = run_report("--format", "cgi", str(bad))
    assert cgi.returncode == 2
    assert cgi.stdout.startswith("Content-Type: text/html; charset=utf-8\n\n<!DOCTYPE html>")
    assert "&lt;b&gt;&amp;bad.stats" in cgi.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--v4-prefix", "33"], "argument --v4-prefix: must be between 0 and 32, not 33"),
    (["--v6-prefix", "-1"], "argument --v6-prefix: must be between 0 and 128, not -1"),
    (["--top", "-3"], "argument --top: must be 0 or more, not -3"),
    (["--addresses", "x"], "argument --addresses: not a whole number: 'x'"),
    (["--width", "10"], "argument --width: must be 40 or more, not 10"),
    (["--refresh", "-1"], "argument --refresh: must be 0 or more, not -1"),
    (["--updto", "nan"], "argument --updto: must be 0.1 or more, not nan"),
    (["--interval", "0"], "argument --interval: must be 0.2 or more, not 0"),
    (["--watch", "--format", "json"], "--watch shows the table; it takes neither --cache nor another --format"),
])
def test_bad_values_are_refused_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    header, records, _ = CASES["single"]
    stats = write_stats(tmp_path / "s.stats", header, records)
    result = run_report("--format", "text", *args, str(stats)) if "--format" not in args else \
        run_report(*args, str(stats))
    assert result.returncode == 2
    assert result.stderr == f"ncs-report: {message}\n"
    assert result.stdout == ""


def test_every_option_of_every_program_says_its_default() -> None:
    """--help of the three programs: each option with a value names its default."""
    import argparse

    from ncs.agent.cli import build_parser as agent_parser
    from ncs.coalesce.cli import build_parser as coalesce_parser
    from ncs.report.cli import build_parser as report_parser

    def parsers(p: argparse.ArgumentParser):
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    for build in (agent_parser, coalesce_parser, report_parser):
        for parser in parsers(build()):
            for action in parser._actions:
                if not action.option_strings or action.help in (None, argparse.SUPPRESS):
                    continue
                if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                    continue
                assert "default" in action.help, (parser.prog, action.option_strings)


def test_agent_options_before_the_verb_get_a_hint() -> None:
    import subprocess

    from .helpers import VENV_BIN

    r = subprocess.run([str(VENV_BIN / "ncs-agent"), "--bpf", "host 192.0.2.1", "run"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr == "ncs-agent: --bpf is an option of the verb; put it after the verb: ncs-agent run --bpf ...\n"
