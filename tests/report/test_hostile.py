"""Hostile names (from the network) reach no output unescaped: HTML, terminal, text, JSON."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from ncs.report.group import make_report
from ncs.report.render_html import SCRIPT, cgi_response, render_fragment
from ncs.report.render_json import render_json
from ncs.report.render_table import render_table
from ncs.report.render_text import render_text
from ncs.stats.record import Record
from tests.support.stats import StatsFile

from .helpers import NOW, run_report, write_stats

HOSTILE = [
    "<script>alert('x')</script>.evil.example",
    'q"uote\'s&amp;co.example',
    "\x1b[31mred\x1b]0;pwned\x07.example",
    "[bold]markup[/bold].example",
    "csi\x9b2J\r\nnext.example",
]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def hostile_report(by: str = "prefix"):
    records = {
        f"198.51.100.{i + 1}": Record(R=60 * (i + 1), W=3600 * (i + 1), E=NOW, N=[name, "ok.example"])
        for i, name in enumerate(HOSTILE)
    }
    records["2001:db8::1"] = Record(W=1, E=NOW, N=HOSTILE[::-1])
    return make_report(StatsFile(["ncs version 1.0.0", "bpf:\t\thost \x1b[2J"], records, "m").columns(), by=by)


def test_html_escapes_every_name() -> None:
    for by in ("prefix", "domain"):
        for out in (render_fragment(hostile_report(by)), cgi_response(render_fragment(hostile_report(by)))):
            # the page's one script is the constant sorter, which the CSP allows by hash
            assert out.count("<script") == 1 and f"<script>{SCRIPT}</script>" in out
            assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;.evil.example" in out
            assert "q&quot;uote&#x27;s&amp;amp;co.example" in out
            assert "\\x{1b}[31mred\\x{1b}]0;pwned\\x{7}.example" in out
            assert "[bold]markup[/bold].example" in out
            assert not CONTROL.search(out)
            assert 'uote\'s' not in out and 'q"uote' not in out


def test_terminal_table_shows_names_literally() -> None:
    buf = io.StringIO()
    render_table(hostile_report(), buf, force_terminal=True, width=250, addresses=0)
    out = buf.getvalue()
    # rich's own styling is SGR only; nothing from a name gets to the terminal raw.
    assert not re.sub(r"\x1b\[[0-9;]*m", "", out).count("\x1b")
    assert "\x07" not in out and "\x9b" not in out and "\r" not in out
    assert "\\x{1b}[31mred\\x{1b}]0;pwned\\x{7}.example" in out
    assert "[bold]markup[/bold].example" in out  # markup not interpreted
    assert "<script>alert('x')</script>.evil.example" in out


def test_text_report_has_no_control_characters() -> None:
    out = render_text(hostile_report())
    assert not CONTROL.search(out)
    assert "\\x{1b}[31mred\\x{1b}]0;pwned\\x{7}.example" in out
    assert "csi\\x{9b}2J\\x{d}\\x{a}next.example" in out
    assert "# bpf:\t\thost \\x{1b}[2J\n" in out


def test_json_is_ascii_and_round_trips_names() -> None:
    out = render_json(hostile_report())
    assert out.isascii()
    assert not CONTROL.search(out)
    assert "<" not in out and ">" not in out and "&" not in out
    doc = json.loads(out)
    names = [n for g in doc["groups"] for a in g["addresses"] for n in a["names"]]
    for name in HOSTILE:
        assert name in names


def test_hostile_names_through_a_stats_file(tmp_path: Path) -> None:
    stats = write_stats(tmp_path / "h.stats", ["ncs version 1.0.0"], {
        "198.51.100.1": Record(W=3600, E=NOW, N=list(HOSTILE)),
    })
    html_out = run_report("--format", "html", str(stats)).stdout
    assert html_out.count("<script") == 1 and "&lt;script&gt;" in html_out
    table = run_report("--format", "table", str(stats), env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert not re.sub(r"\x1b\[[0-9;]*m", "", table.stdout).count("\x1b")
    assert "[bold]markup[/bold].example" in table.stdout
    text = run_report("--format", "text", str(stats)).stdout
    assert not CONTROL.search(text)


HOSTILE_NUMBERS = [
    ("9" * 5000, "number too long (5000 characters, at most 40)"),
    ("nan", "not a finite number"),
    ("-inf", "not a finite number"),
    ("-5", "negative number"),
    ("1" + "0" * 20, "number too large (more than 20 digits)"),
]


def test_hostile_numbers_are_one_line_naming_file_line_and_key(tmp_path: Path) -> None:
    """A 5000-digit number gave a 33-line traceback; NaN, infinities and negatives were reported."""
    good = write_stats(tmp_path / "good.stats", ["ncs version 1.0.0"], {
        "198.51.100.1": Record(B=7, W=3600, E=NOW, N=["a.example"]),
        "198.51.100.2": Record(B=8, W=60, E=NOW),
    }).read_text()
    at = good.index("\t\tW\t=> 60,")
    line = good.count("\n", 0, at) + 1
    for number, reason in HOSTILE_NUMBERS:
        path = tmp_path / "hostile.stats"
        path.write_text(good[:at] + f"\t\tW\t=> {number}," + good[at + len("\t\tW\t=> 60,"):])
        for fmt in ("text", "table", "json", "html"):
            run = run_report("--format", fmt, str(path))
            assert run.returncode == 2, (fmt, run.stderr)
            shown = number if len(number) <= 40 else number[:37] + "..."
            assert run.stderr == f"ncs-report: {path}:{line}: W: {reason}: '{shown}'\n"


def test_times_beyond_the_platform_show_as_out_of_range(tmp_path: Path) -> None:
    """A last contact of 20 digits is a value a file may hold, but no date localtime() can make."""
    stats = write_stats(tmp_path / "far.stats", ["ncs version 1.0.0", "start:\t99999999999999999999,\tx"], {
        "198.51.100.1": Record(W=3600, E=99999999999999999999, N=["far.example"]),
        "198.51.100.2": Record(W=60, E=10**17),
    })
    for fmt in ("text", "table", "html"):
        run = run_report("--format", fmt, str(stats))
        assert run.returncode == 0, run.stderr
        assert "(out of range)" in run.stdout
    assert run_report("--format", "json", str(stats)).returncode == 0
