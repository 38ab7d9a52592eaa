"""The HTML reports: a fragment for SSI `<!--#exec cmd=... -->` pages and a whole CGI page.

The fragment is self-contained: one `<style>` and one `<script>` element,
both constant (no report data in them), so a Content-Security-Policy can
allow them by hash (`CSP`, used by the CGI page; see docs/report.md for
pages of one's own), a bar chart of SVG rectangles, and the tables.  It is
readable from 390 px to wide screens (the least needed columns hide on
narrow ones, wide tables scroll inside their box, never the page), follows
the reader's light or dark preference, and sorts on a click on a column
heading (the script; without it the page is complete, only unsorted).
Every group opens to all its addresses (up to `ALL_ADDRESSES_LIMIT`).

Every piece of text from the stats file goes through `esc`, which spells
out control characters and escapes HTML including quotes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Callable

from ncs.report.display import (
    BYTES_PER_SECOND,
    LAST_SEEN,
    PACKETS_PER_MINUTE,
    WINDOW_BYTES,
    WINDOW_PACKETS,
    bytes_text,
    clock_time,
    count_text,
    full_time,
    generated_sentence,
    header_sentences,
    other_facts,
    rate_text,
    report_time,
    report_title,
    share,
    shown_groups,
    totals_sentence,
    zone_name,
)
from ncs.report.group import Group, Report
from ncs.stats.quoting import safe_text

#: How many groups the bar chart shows.
CHART_GROUPS = 10
#: The most addresses one group's expansion lists (a flood of one /64 must not make a huge page).
ALL_ADDRESSES_LIMIT = 10000

CSS = """\
.ncs-report{--fg:#1d2430;--bg:#fff;--muted:#5b6472;--line:#d8dee6;--head:#eef2f7;--alt:#f5f7fa;\
--bar:#3b6fb6;--err:#b00020;color-scheme:light dark;color:var(--fg);background:var(--bg);\
font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;padding:8px;max-width:100%;\
box-sizing:border-box}
@media (prefers-color-scheme:dark){.ncs-report{--fg:#e3e7ee;--bg:#14181f;--muted:#9aa4b2;\
--line:#2c3440;--head:#1f2631;--alt:#192029;--bar:#6ea2e8;--err:#ff7b88}}
.ncs-report h2{font-size:18px;margin:0 0 6px}
.ncs-report p{margin:4px 0}
.ncs-report .ncs-facts,.ncs-report .ncs-generated,.ncs-report .ncs-more{color:var(--muted);font-size:13px}
.ncs-report .ncs-error{color:var(--err);font-weight:bold}
.ncs-report .ncs-scroll{overflow-x:auto;max-width:100%}
.ncs-report table{border-collapse:collapse;width:100%}
.ncs-report th,.ncs-report td{padding:3px 6px;text-align:right;vertical-align:top;\
border-bottom:1px solid var(--line)}
.ncs-report th{background:var(--head);font-weight:600;white-space:nowrap}
.ncs-report th button{font:inherit;color:inherit;background:none;border:0;padding:0;cursor:pointer}
.ncs-report th[aria-sort=ascending] button::after{content:" \\25B2"}
.ncs-report th[aria-sort=descending] button::after{content:" \\25BC"}
.ncs-report .ncs-label{text-align:left}
.ncs-report .ncs-num{font-variant-numeric:tabular-nums;white-space:nowrap}
.ncs-report tbody.ncs-group:nth-child(even) tr.ncs-group-row{background:var(--alt)}
.ncs-report tr.ncs-group-row td{border-bottom:0}
.ncs-report td.ncs-open{padding-top:0}
.ncs-report summary{cursor:pointer;color:var(--muted)}
.ncs-report .ncs-addrs{margin:4px 0 8px;font-size:13px}
.ncs-report .ncs-addr{white-space:nowrap;font-family:ui-monospace,monospace}
.ncs-report .ncs-name{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;\
max-width:42ch;color:var(--muted)}
.ncs-report .ncs-chart{display:grid;grid-template-columns:minmax(0,14em) 1fr auto;gap:2px 8px;\
align-items:center;margin:8px 0 12px;max-width:60em}
.ncs-report .ncs-chart span{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.ncs-report .ncs-chart svg{width:100%;height:14px}
.ncs-report .ncs-chart rect{fill:var(--bar)}
@media (max-width:700px){.ncs-report .ncs-opt{display:none}.ncs-report{font-size:13px;padding:4px}\
.ncs-report th{white-space:normal}.ncs-report th,.ncs-report td{padding:3px 4px}\
.ncs-report .ncs-chart{grid-template-columns:minmax(0,9em) 1fr auto}\
.ncs-report .ncs-name{max-width:26ch}}
"""

# Sorts a table when a heading's button is clicked: the groups (one tbody
# each) of the group table, the rows of an address table.  Cells sort by
# their data-v number when they have one, else by their text.  Set up once
# per page, however many reports it holds.
SCRIPT = """\
(function () {
  if (window.ncsReportSort) { return; }
  window.ncsReportSort = true;
  function value(unit, col) {
    var row = unit.rows ? unit.rows[0] : unit;
    var cell = row.cells[col];
    var v = cell.getAttribute("data-v");
    return v === null ? cell.textContent.toLowerCase() : parseFloat(v);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.ncs-sort") : null;
    if (!button) { return; }
    var th = button.parentNode, table = th.closest("table");
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var groups = table.tBodies.length > 1;
    var units = Array.prototype.slice.call(groups ? table.tBodies : table.tBodies[0].rows);
    var descending = th.getAttribute("aria-sort") !== "descending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    units.sort(function (a, b) {
      var x = value(a, col), y = value(b, col);
      return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
    });
    var parent = groups ? table : table.tBodies[0];
    units.forEach(function (unit) { parent.appendChild(unit); });
  });
})();
"""


def csp_hash(text: str) -> str:
    """Return the CSP source that allows an inline element whose content is TEXT ("'sha256-...'")."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


#: The CGI page's Content-Security-Policy: nothing but this fragment's own style and script.
CSP = f"default-src 'none'; style-src {csp_hash(CSS)}; script-src {csp_hash(SCRIPT)}"


def esc(text: object) -> str:
    """Return TEXT safe for HTML element content and quoted attributes."""
    return html.escape(safe_text(str(text)), quote=True)


def error_html(message: str) -> str:
    """Return one HTML line carrying MESSAGE, escaped."""
    return f'<p class="ncs-error">{esc(message)}</p>\n'


def chart_html(report: Report, groups: list[Group]) -> str:
    """Return a bar chart of the first CHART_GROUPS of GROUPS by bytes per second (one SVG bar each)."""
    top = groups[:CHART_GROUPS]
    peak = max((g.W for g in top), default=0.0)
    parts = [f'<div class="ncs-chart" role="img" aria-label="top {len(top)} of '
             f'{report.totals.groups} groups by {BYTES_PER_SECOND}">']
    for g in top:
        width = 0.0 if peak <= 0 else max(0.5, 100.0 * g.W / peak)
        parts.append(
            f'<span title="{esc(g.label)}">{esc(g.label)}</span>'
            f'<svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
            f'<rect x="0" y="0" width="{width:.1f}" height="10"/></svg>'
            f'<span class="ncs-num">{esc(rate_text(g.W))}</span>'
        )
    parts.append("</div>\n")
    return "".join(parts)


def _time_cell(epoch: float, now: float, extra: str = "") -> str:
    """Return a last-seen cell: short local time, the full time as its title, the epoch to sort by."""
    if not epoch:
        return f'<td class="ncs-num{extra}" data-v="0">-</td>'
    return (f'<td class="ncs-num{extra}" data-v="{epoch}"><time title="{esc(full_time(epoch))}">'
            f"{esc(clock_time(epoch, now))}</time></td>")


def _num_cell(value: float, text: str, optional: bool = False) -> str:
    """Return a right-aligned number cell showing TEXT, sorting by VALUE."""
    extra = " ncs-opt" if optional else ""
    shown = value if value == value and abs(value) != float("inf") else 0
    return f'<td class="ncs-num{extra}" data-v="{shown:.6g}">{esc(text)}</td>'


def _number_cells(R: float, W: float, B: float, C: float, L: float, total_w: float, now: float) -> str:
    """Return the cells every row has: packets/min, bytes/s, share, window packets and bytes, last seen."""
    return (_num_cell(R, count_text(R / 60), True) + _num_cell(W, rate_text(W))
            + _num_cell(W, f"{share(W, total_w):.1f}%", True) + _num_cell(C, count_text(C), True)
            + _num_cell(B, bytes_text(B)) + _time_cell(L, now))


def _headings(first: list[tuple[str, str]], now: float) -> str:
    """Return a heading row: FIRST (text, class) columns, then the number columns, all sortable."""
    columns = [*first, (PACKETS_PER_MINUTE, " ncs-opt"), (BYTES_PER_SECOND, ""),
               ("share", " ncs-opt"), ("window " + WINDOW_PACKETS, " ncs-opt"),
               ("window " + WINDOW_BYTES, ""), (f"{LAST_SEEN} ({zone_name(now)})", "")]
    cells = "".join(f'<th class="{("ncs-label" if cls == "label" else "ncs-num" + cls)}">'
                    f'<button type="button" class="ncs-sort">{esc(text)}</button></th>'
                    for text, cls in columns)
    return f"<thead><tr>{cells}</tr></thead>"


def _address_rows(group: Group, start: int, stop: int, total_w: float, now: float) -> str:
    """Return the address rows of GROUP's members START to STOP."""
    rows = []
    for m in group.members[start:stop]:
        rec = m.record
        names = "".join(f'<span class="ncs-name" title="{esc(n)}">{esc(n)}</span>' for n in rec.N)
        rows.append(f'<tr><td class="ncs-label"><span class="ncs-addr">{esc(m.address)}</span>{names}'
                    f"</td>{_number_cells(rec.R, rec.W, rec.B, rec.C, rec.L, total_w, now)}</tr>")
    return "".join(rows)


def _address_table(group: Group, start: int, stop: int, total_w: float, now: float) -> str:
    """Return a sortable table of GROUP's members START to STOP."""
    return (f'<div class="ncs-scroll"><table class="ncs-addrs">'
            f'{_headings([("address, names", "label")], now)}'
            f"<tbody>{_address_rows(group, start, stop, total_w, now)}</tbody></table></div>")


def _expansion(group: Group, addresses: int, total_w: float, now: float) -> str:
    """Return what opening a group shows: its first ADDRESSES members, then all the others."""
    count = group.count
    listed = min(count, ALL_ADDRESSES_LIMIT)
    first = listed if addresses <= 0 else min(addresses, listed)
    plural = "address" if count == 1 else "addresses"
    parts = [f"<details><summary>{count_text(count)} {plural}</summary>",
             _address_table(group, 0, first, total_w, now)]
    if first < listed:
        parts.append(f"<details class=\"ncs-all\"><summary>all {count_text(listed)} addresses"
                     f"</summary>{_address_table(group, 0, listed, total_w, now)}</details>")
    if listed < count:
        parts.append(f'<p class="ncs-more">{count_text(count - listed)} more addresses are not '
                     "listed here; the text and JSON reports have them all.</p>")
    parts.append("</details>")
    return "".join(parts)


def _group_body(rank: int, group: Group, total_w: float, now: float, addresses: int,
                columns: int) -> str:
    """Return one group as a tbody: its row of numbers and a row that opens to its addresses."""
    return (
        f'<tbody class="ncs-group"><tr class="ncs-group-row"><td class="ncs-num" data-v="{rank}">{rank}'
        f'</td><td class="ncs-label">{esc(group.label)}</td>'
        f'{_num_cell(group.count, count_text(group.count), True)}'
        f"{_number_cells(group.R, group.W, group.B, group.C, group.L, total_w, now)}</tr>"
        f'<tr class="ncs-open-row"><td></td><td class="ncs-open ncs-label" colspan="{columns - 1}">'
        f"{_expansion(group, addresses, total_w, now)}</td></tr></tbody>\n"
    )


def facts_html(report: Report) -> str:
    """Return the header facts as sentences, and the other header lines behind a summary."""
    sentences = [esc(s.text) for s in header_sentences(report)]
    parts = ['<p class="ncs-facts">' + "<br>\n".join(sentences) + "</p>\n"] if sentences else []
    others = other_facts(report)
    if others:
        lines = "<br>\n".join(esc(f"{k}: {v}" if k else v) for k, v in others)
        parts.append(f'<details class="ncs-facts"><summary>{len(others)} more header lines</summary>'
                     f"{lines}</details>\n")
    return "".join(parts)


def render_fragment(report: Report, top: int = 100, addresses: int = 20,
                    clock: Callable[[], float] = time.time) -> str:
    """Return the HTML fragment: title, facts, chart, group table (first TOP groups), totals.

    Each group opens to its first ADDRESSES members (all if ADDRESSES <= 0)
    and from there to all of them.  CLOCK gives the generated-at time.
    """
    groups, left_out = shown_groups(report, top)
    total_w, now = report.totals.W, report_time(report)
    heading = "domain" if report.by == "domain" else "network"
    first = [("#", ""), (heading, "label"), ("IPs", " ncs-opt")]
    parts = [
        '<div class="ncs-report">\n',
        f"<style>{CSS}</style>\n",
        f'<h2 class="ncs-title">{esc(report_title(report))}</h2>\n',
        facts_html(report),
        chart_html(report, groups),
        f'<div class="ncs-scroll"><table class="ncs-groups">\n{_headings(first, now)}\n',
    ]
    parts.extend(_group_body(i, g, total_w, now, addresses, len(first) + 6)
                 for i, g in enumerate(groups, 1))
    parts.append("</table></div>\n")
    if left_out:
        parts.append(f'<p class="ncs-more">{count_text(left_out)} more groups not shown</p>\n')
    parts.append(f'<p class="ncs-totals">{esc(totals_sentence(report))}</p>\n')
    parts.append(f'<p class="ncs-generated">{esc(generated_sentence(clock()))}</p>\n')
    parts.append(f"<script>{SCRIPT}</script>\n</div>\n")
    return "".join(parts)


def page(body: str, title: str = "ncs report") -> str:
    """Return a complete standalone HTML page around the fragment BODY, under `CSP`."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"color-scheme\" content=\"light dark\">\n"
        f"<title>{esc(title)}</title>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def cgi_response(body: str) -> str:
    """Return the CGI response: Content-Type header, blank line, the page around BODY."""
    return "Content-Type: text/html; charset=utf-8\n\n" + page(body)
