"""ncs-report --history: every format, hostile names, the command line's one-line errors, the page in Chromium."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from ncs.history.store import add_snapshot
from ncs.report.history_table import sparkline
from ncs.report.render_html import CSP
from tests.history.helpers import record, snapshot
from tests.support.web import Apache, DevTools, report_command

REPORT = [sys.executable, "-m", "ncs.report.cli"]
T0 = 1_764_028_800
HOSTILE = ["<script>alert(1)</script>.example", "\x1b[31mred\x1b[0m.example", "quote\"'&.example",
           "[bold]markup[/bold].example"]


def make_store(path: Path) -> None:
    """Write six hourly snapshots, hostile names on one address, a new remote in the last."""
    for hour in range(6):
        t = T0 + hour * 3600
        records = {"198.51.100.7": record(1000 * (hour + 1), 10, t, t, HOSTILE),
                   "203.0.113.5": record(500, 5, t, t, ["mail.example.org"])}
        if hour == 5:
            records["2001:db8::99"] = record(70000, 70, t, t)
        add_snapshot(str(path), snapshot(t, t, records), "web")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*REPORT, *args], capture_output=True, text=True, timeout=120)


def test_sparkline_scales_to_the_largest_bucket():
    assert sparkline(np.array([0, 1, 2, 4])) == " ▂▄█"
    assert sparkline(np.array([0, 0])) == "  "


def test_html_keeps_the_policy_and_escapes_every_name(tmp_path: Path):
    store = tmp_path / "h.duckdb"
    make_store(store)
    res = run("--history", str(store), "--since", "6h", "--format", "cgi")
    assert res.returncode == 0, res.stderr
    page = res.stdout
    assert f'content="{CSP}"' in page
    assert "<svg" in page and "<rect" in page
    assert " style=" not in page and "<script>alert" not in page and "\x1b" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example" in page
    assert re.findall(r"(?:src|href)=", page) == []  # nothing loaded from anywhere


def test_the_terminal_table_shows_sparklines_and_no_escape_sequences(tmp_path: Path):
    store = tmp_path / "h.duckdb"
    make_store(store)
    res = run("--history", str(store), "--since", "6h", "--format", "table", "--width", "200")
    assert res.returncode == 0, res.stderr
    assert "\x1b" not in res.stdout and "[bold]markup[/bold]" in res.stdout
    row = next(line for line in res.stdout.splitlines() if "198.51.100.7" in line)
    assert row.replace(" ", "").endswith("▂▃▄▆▇█")  # 1000 to 6000 bytes, hour by hour


def test_new_remotes_in_json(tmp_path: Path):
    store = tmp_path / "h.duckdb"
    make_store(store)
    res = run("--history", str(store), "--since", "30m", "--view", "new", "--format", "json")
    doc = json.loads(res.stdout)
    assert [a["address"] for g in doc["groups"] for a in g["addresses"]] == ["2001:db8::99"]
    assert doc["groups"][0]["addresses"][0]["first_seen"] == T0 + 5 * 3600


@pytest.mark.parametrize("args, message", [
    (["--history", "{tmp}/none.duckdb"], "{tmp}/none.duckdb: no such history store"),
    (["--export", "{tmp}/x"], "--export needs --history STORE"),
    (["--history", "{tmp}/h.duckdb", "some.stats"], "give either a STATSFILE or --history STORE, not both"),
    (["--history", "{tmp}/h.duckdb", "--since", "yesterday"],
     "--since 'yesterday' is neither a span (24h, 7d) nor a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)"),
    ([], "a STATSFILE or --history STORE is needed"),
])
def test_bad_history_arguments_say_one_line(tmp_path: Path, args, message):
    make_store(tmp_path / "h.duckdb")
    res = run("--format", "text", *[a.format(tmp=tmp_path) for a in args])
    assert res.returncode == 2
    assert res.stderr == f"ncs-report: {message.format(tmp=tmp_path)}\n"
    assert res.stdout == ""


def test_the_history_page_renders_under_the_policy_in_chromium(web_base: Path, apache: Apache,
                                                               devtools: DevTools) -> None:
    data = web_base / "data"
    data.mkdir(mode=0o755)
    store = data / "history.duckdb"
    make_store(store)
    os.chmod(store, 0o644)
    os.chmod(str(store) + ".lock", 0o644)
    cmd = report_command(web_base)
    cgi = apache.cgi_bin / "history.cgi"
    cgi.write_text(f"#!/bin/sh\nexec {cmd} --history {store} --since 6h --format cgi\n")
    cgi.chmod(0o755)
    apache.start()
    with urllib.request.urlopen(apache.url("/cgi-bin/history.cgi"), timeout=30) as resp:
        assert resp.status == 200
        assert "Top talkers" in resp.read().decode()
    assert pwd.getpwnam("www-data")  # the page was made by the web server's user
    devtools.open(apache.url("/cgi-bin/history.cgi"), 1200)
    assert devtools.evaluate("window.ncsReportSort === true")  # the shared script ran under the CSP
    assert devtools.evaluate("document.querySelectorAll('svg rect').length") > 6
    height = devtools.evaluate("document.querySelector('.ncs-history > div svg').getBoundingClientRect().height")
    assert height == 120
    assert devtools.evaluate("document.querySelector('h2').textContent").startswith("Top talkers")
    assert not [p for p in devtools.console_problems() if "Content Security Policy" in p]
