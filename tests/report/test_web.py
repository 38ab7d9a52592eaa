"""A real Apache serves an SSI page that execs `ncs-report --format html` and a CGI running
`--format cgi`; headless Chromium renders both and the test reads the rendered DOM.

Screenshots are kept under artifacts/ at the repository root.
"""

from __future__ import annotations

import os
import pwd
import re
import urllib.request
from pathlib import Path

from ncs.stats.record import Record
from tests.support.web import REPO, Apache, Chromium, report_command

from .helpers import NOW, write_stats

HOSTILE = "<script>alert(1)</script>&\"x\".example"


def make_stats(path: Path) -> tuple[list[str], str]:
    """Write the stats file; return the expected group labels in report order and totals line."""
    records = {}
    # 12 /24 groups with bandwidth 12000..1000 B/s: ordering and the chart's top 10.
    for i in range(12):
        w = (12 - i) * 1000 * 3600
        records[f"198.{51 + i}.100.1"] = Record(R=600 * (i + 1), W=w / 2, E=NOW, N=[f"a{i}.example.org"])
        records[f"198.{51 + i}.100.2"] = Record(R=60, W=w / 2, E=NOW - i, N=[])
    records["2001:db8::1"] = Record(R=6000, W=500 * 3600, E=NOW, N=[HOSTILE])
    write_stats(path, ["ncs version 1.0.0", "start:\t1145923212,\tTue Apr 25 00:00:12 2006"],
                records)
    path.chmod(0o644)
    totals = (f"rate = {sum(r.R for r in records.values()) / 60:.0f} connections per minute,"
              f" bandwidth = {sum(r.W for r in records.values()) / 3600:.0f} bytes per second,"
              f" users = {len(records)}")
    return [f"198.{51 + i}.100.0/24" for i in range(12)] + ["2001:db8::/64"], totals


def check_dom(dom: str, labels: list[str], totals: str) -> None:
    assert "#exec" not in dom  # the SSI directive was executed, not passed through
    assert '<table class="ncs-groups">' in dom
    rows = re.findall(r'<tr class="ncs-group"><td>(\d+)</td><td class="ncs-label">([^<]*)</td>', dom)
    assert [label for _, label in rows] == labels
    chart = re.search(r'<svg class="ncs-chart".*?</svg>', dom, re.S)
    assert chart is not None
    assert chart.group(0).count("<rect") == 10
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;\"x\".example" in dom
    assert "<script>" not in dom
    assert totals in dom


def test_apache_ssi_and_cgi_render_in_chromium(web_base: Path, apache: Apache,
                                               chromium: Chromium) -> None:
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
        f'<!--#exec cmd="{cmd} --format html --top 50 {stats}" -->\n'
        "</body></html>\n"
    )
    cgi = apache.cgi_bin / "report.cgi"
    cgi.write_text(
        "#!/bin/sh\n"
        f"exec {cmd} --format cgi --cache {cache_dir}/report.cache --refresh 300 {stats}\n"
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
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "AH01215" not in apache.error_log()  # no CGI/SSI stderr output logged
