"""The HTML reports: a fragment for SSI `<!--#exec cmd=... -->` pages and a whole CGI page.

The fragment is self-contained (inline CSS and an inline SVG bar chart, no
external resources).  Every piece of text from the stats file goes through
`esc`, which spells out control characters and escapes HTML including quotes.
"""

from __future__ import annotations

import html

from ncs.report.display import (
    grouping_title,
    header_facts,
    iso_time,
    share,
    shown_groups,
)
from ncs.report.group import Group, Report
from ncs.stats.quoting import safe_text

#: How many groups the bar chart shows.
CHART_GROUPS = 10

CSS = """\
.ncs-report{font-family:sans-serif;font-size:14px;color:#222}
.ncs-report table{border-collapse:collapse}
.ncs-report th,.ncs-report td{padding:2px 8px;text-align:right;vertical-align:top}
.ncs-report th{background:#dde6f0}
.ncs-report td.ncs-label,.ncs-report th.ncs-label{text-align:left}
.ncs-report tr.ncs-group:nth-child(even){background:#f3f6f9}
.ncs-report .ncs-addrs td{font-size:12px;text-align:left}
.ncs-report .ncs-error{color:#a00;font-weight:bold}
.ncs-report .ncs-facts{font-size:12px;color:#555}
.ncs-report svg text{font-size:12px;fill:#222}
.ncs-report svg rect{fill:#4a7ab5}
"""


def esc(text: object) -> str:
    """Return TEXT safe for HTML element content and quoted attributes."""
    return html.escape(safe_text(str(text)), quote=True)


def error_html(message: str) -> str:
    """Return one HTML line carrying MESSAGE, escaped."""
    return f'<p class="ncs-error">{esc(message)}</p>\n'


def chart_svg(report: Report, groups: list[Group]) -> str:
    """Return an inline SVG horizontal bar chart of the first CHART_GROUPS of GROUPS by bytes/s."""
    top = groups[:CHART_GROUPS]
    label_w, bar_w, row_h = 230, 520, 22
    height = row_h * len(top) + 28
    peak = max((g.W for g in top), default=0.0)
    parts = [
        f'<svg class="ncs-chart" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 120}"'
        f' height="{height}" role="img" aria-label="top groups by bytes per second">',
        f"<title>top {len(top)} groups by bytes per second</title>",
        f'<text x="0" y="14">top {len(top)} of {report.totals.groups} groups, bytes/s</text>',
    ]
    for i, g in enumerate(top):
        y = 24 + i * row_h
        width = 0.0 if peak <= 0 else max(1.0, bar_w * g.W / peak)
        label = g.label if len(g.label) <= 34 else g.label[:33] + "\u2026"
        parts.append(
            f'<g class="ncs-bar"><text x="0" y="{y + 14}">{esc(label)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{width:.1f}" height="{row_h - 6}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 14}">{g.W / 3600:.0f}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _address_table(group: Group, total_w: float, limit: int) -> str:
    members = group.members if limit <= 0 else group.members[:limit]
    rows = [
        '<table class="ncs-addrs"><tr><th>address</th><th>names</th><th>hits/min</th>'
        "<th>bytes/s</th><th>share</th><th>last contact</th></tr>"
    ]
    for m in members:
        rec = m.record
        names = "<br>".join(esc(n) for n in rec.N) or "-"
        rows.append(
            f'<tr class="ncs-addr"><td>{esc(m.address)}</td><td class="ncs-name">{names}</td>'
            f"<td>{rec.R / 60:.0f}</td><td>{rec.W / 3600:.0f}</td>"
            f"<td>{share(rec.W, total_w):.1f}%</td><td>{esc(iso_time(rec.E))}</td></tr>"
        )
    if len(members) < len(group.members):
        rows.append(
            f'<tr><td colspan="6">{len(group.members) - len(members)} more addresses</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _group_row(rank: int, group: Group, total_w: float, addresses: int) -> str:
    count = len(group.members)
    plural = "address" if count == 1 else "addresses"
    return (
        f'<tr class="ncs-group"><td>{rank}</td><td class="ncs-label">{esc(group.label)}</td>'
        f"<td>{count}</td><td>{group.R / 60:.0f}</td><td>{group.W / 3600:.0f}</td>"
        f"<td>{share(group.W, total_w):.1f}%</td><td>{esc(iso_time(group.E))}</td>"
        f'<td class="ncs-label"><details><summary>{count} {plural}</summary>'
        f"{_address_table(group, total_w, addresses)}</details></td></tr>\n"
    )


def facts_html(report: Report) -> str:
    """Return the stats file's header lines as a small escaped paragraph."""
    lines = [esc(f"{k}: {v}" if k else v) for k, v in header_facts(report)]
    return '<p class="ncs-facts">' + "<br>\n".join(lines) + "</p>\n"


def render_fragment(report: Report, top: int = 100, addresses: int = 50) -> str:
    """Return the HTML fragment: facts, bar chart, group table (first TOP groups), totals."""
    groups, left_out = shown_groups(report, top)
    t = report.totals
    heading = "domain" if report.by == "domain" else "network"
    parts = [
        '<div class="ncs-report">\n',
        f"<style>\n{CSS}</style>\n",
        f'<h2 class="ncs-title">ncs report by {esc(grouping_title(report))},'
        " ordered by bandwidth</h2>\n",
        facts_html(report),
        chart_svg(report, groups),
        '<table class="ncs-groups">\n<thead><tr><th>#</th>'
        f'<th class="ncs-label">{heading}</th><th>IPs</th><th>hits/min</th><th>bytes/s</th>'
        '<th>share</th><th>last contact</th><th class="ncs-label">addresses</th></tr></thead>\n'
        "<tbody>\n",
    ]
    parts.extend(_group_row(i, g, t.W, addresses) for i, g in enumerate(groups, 1))
    parts.append("</tbody>\n</table>\n")
    if left_out:
        parts.append(f'<p class="ncs-more">{left_out} more groups not shown</p>\n')
    parts.append(
        f'<p class="ncs-totals">rate = {t.hits_per_minute:.0f} connections per minute,'
        f" bandwidth = {t.bytes_per_second:.0f} bytes per second,"
        f" users = {t.addresses}</p>\n</div>\n"
    )
    return "".join(parts)


def page(body: str, title: str = "ncs report") -> str:
    """Return a complete standalone HTML page around the fragment BODY."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\""
        " content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        f"<title>{esc(title)}</title>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def cgi_response(body: str) -> str:
    """Return the CGI response: Content-Type header, blank line, the page around BODY."""
    return "Content-Type: text/html; charset=utf-8\n\n" + page(body)

