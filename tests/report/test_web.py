"""A real Apache serves an SSI page that execs `ncs-report --format html` and a CGI running
`--format cgi`; headless Chromium renders both, as a reader would see them.

The CGI page is opened at 1200 and 390 px, light and dark, under its
Content-Security-Policy: the sorting script must run (allowed by hash), a
click on a heading must sort, nothing may overflow the page, the theme must
follow the reader's preference.  Screenshots are kept under artifacts/.
"""

from __future__ import annotations

import os
import pwd
import re
import struct
import urllib.request
from pathlib import Path

from ncs.stats.record import Record
from tests.support.web import REPO, Apache, Chromium, DevTools, report_command

from .helpers import NOW, write_stats

HOSTILE = "<script>alert(1)</script>&\"x\".example"
GROUP_LABELS = "Array.from(document.querySelectorAll('table.ncs-groups tr.ncs-group-row > td:nth-child(2)'))" \
    ".map(e => e.textContent)"


def make_stats(path: Path) -> tuple[list[str], str]:
    """Write the stats file; return the expected group labels in report order and the totals' start."""
    records = {}
    # 12 /24 groups with bandwidth 12000..1000 B/s: ordering and the chart's top 10.
    for i in range(12):
        w = (12 - i) * 1000 * 3600
        records[f"198.{51 + i}.100.1"] = Record(R=600 * (i + 1), W=w / 2, E=NOW, B=4000, C=9,
                                                N=[f"a{i}.example.org"])
        records[f"198.{51 + i}.100.2"] = Record(R=60, W=w / 2 + 1, E=NOW - i, N=[])
    records["2001:db8::1"] = Record(R=6000, W=500 * 3600, E=NOW, N=[HOSTILE])
    write_stats(path, ["ncs version 1.0.0", "start:\t1145923212,\tTue Apr 25 00:00:12 2006"],
                records)
    path.chmod(0o644)
    return [f"198.{51 + i}.100.0/24" for i in range(12)] + ["2001:db8::/64"], "25 addresses in 13 networks"


def check_dom(dom: str, labels: list[str], totals: str) -> None:
    assert "#exec" not in dom  # the SSI directive was executed, not passed through
    assert '<table class="ncs-groups">' in dom
    rows = re.findall(r'<tr class="ncs-group-row"><td class="ncs-num" data-v="\d+">(\d+)</td>'
                      r'<td class="ncs-label">([^<]*)</td>', dom)
    assert [label for _, label in rows] == labels
    chart = re.search(r'<div class="ncs-chart".*?</div>', dom, re.S)
    assert chart is not None
    assert chart.group(0).count("<rect") == 10
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;\"x\".example" in dom
    assert "<script>alert" not in dom
    assert totals in dom and "Report generated " in dom
    # every group opens to all its addresses, the top talker first
    assert dom.count("all 2 addresses") == 12
    assert re.search(r'<span class="ncs-addr">198\.51\.100\.2</span></td>.*?'
                     r'<span class="ncs-addr">198\.51\.100\.1</span>', dom)


def png_size(path: Path) -> tuple[int, int]:
    """Return (width, height) from a PNG's header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def check_page_as_a_reader(devtools: DevTools, url: str, labels: list[str], artifacts: Path) -> None:
    """Open the CGI page at two widths in both themes; sort by clicking; keep the screenshots."""
    backgrounds = {}
    for width in (1200, 390):
        for dark in (False, True):
            devtools.open(url, width, dark=dark)
            assert devtools.evaluate("window.ncsReportSort === true")  # the CSP let the script run
            assert devtools.evaluate("document.documentElement.scrollWidth") <= width  # no overflow
            optional = devtools.evaluate("getComputedStyle(document.querySelector('th.ncs-opt')).display")
            assert (optional == "none") == (width < 700)
            backgrounds[(width, dark)] = devtools.evaluate(
                "getComputedStyle(document.querySelector('.ncs-report')).backgroundColor")
            shot = devtools.screenshot(artifacts / f"report-{width}-{'dark' if dark else 'light'}.png")
            assert png_size(shot)[0] == width
    assert backgrounds[(1200, False)] == backgrounds[(390, False)] == "rgb(255, 255, 255)"
    assert backgrounds[(1200, True)] == backgrounds[(390, True)] == "rgb(20, 24, 31)"

    devtools.open(url, 1200)
    assert devtools.evaluate(GROUP_LABELS) == labels
    devtools.click("table.ncs-groups th:nth-child(2) button")  # the network heading: descending
    assert devtools.evaluate(GROUP_LABELS) == sorted(labels, reverse=True)
    devtools.click("table.ncs-groups th:nth-child(2) button")  # again: ascending
    assert devtools.evaluate(GROUP_LABELS) == sorted(labels)
    devtools.click("table.ncs-groups th:nth-child(5) button")  # bytes/s: top talkers first again
    assert devtools.evaluate(GROUP_LABELS) == labels
    assert not [p for p in devtools.console_problems() if "Content Security Policy" in p]


def test_apache_ssi_and_cgi_render_in_chromium(web_base: Path, apache: Apache,
                                               chromium: Chromium, devtools: DevTools) -> None:
    data = web_base / "data"
    data.mkdir(mode=0o755)
    stats = data / "agent.stats"
    labels, totals = make_stats(stats)
    cache_dir = web_base / "cache"
    cache_dir.mkdir()
    www = pwd.getpwnam("www-data")
    os.chown(cache_dir, www.pw_uid, www.pw_gid)
    cmd = report_command(web_base)

    (apache.htdocs / "index.shtml").write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ncs via SSI</title></head>\n"
        "<body><h1>Who talks to this host</h1>\n"
        f'<!--#exec cmd="{cmd} --format html --top 50 --addresses 1 {stats}" -->\n'
        "</body></html>\n"
    )
    cgi = apache.cgi_bin / "report.cgi"
    cgi.write_text(
        "#!/bin/sh\n"
        f"exec {cmd} --format cgi --addresses 1 --cache {cache_dir}/report.cache --refresh 300 {stats}\n"
    )
    cgi.chmod(0o755)
    apache.start()

    with urllib.request.urlopen(apache.url("/cgi-bin/report.cgi"), timeout=30) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        body = resp.read().decode()
    assert body.startswith("<!DOCTYPE html>")
    assert (cache_dir / "report.cache").stat().st_uid == www.pw_uid  # written by the CGI

    artifacts = REPO / "artifacts"
    for path, name in (("/index.shtml", "report-ssi"), ("/cgi-bin/report.cgi", "report-cgi")):
        dom = chromium.dump_dom(apache.url(path))
        check_dom(dom, labels, totals)
        if name == "report-ssi":
            assert "Who talks to this host" in dom  # the page around the SSI output
        shot = chromium.screenshot(apache.url(path), artifacts / f"{name}.png")
        assert png_size(shot)[0] > 0
    check_page_as_a_reader(devtools, apache.url("/cgi-bin/report.cgi"), labels, artifacts)
    assert "AH01215" not in apache.error_log()  # no CGI/SSI stderr output logged
