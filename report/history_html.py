"""The history report as HTML: a fragment (SSI) or CGI page with an inline SVG time chart.

The chart and each row's small chart are SVG elements drawn with
presentation attributes only (no style attribute, no script of their own),
so the page stands under the same Content-Security-Policy as the report of
one stats file (`render_html.CSP`): its one `<style>` and `<script>` are
that report's.  Every text from the store goes through `esc`.
"""

from __future__ import annotations

import numpy as np

from ncs.report.display import bytes_text, count_text, full_time, names_text, shown_groups
from ncs.report.group import Group
from ncs.report.history_build import HistoryReport, history_title
from ncs.report.render_html import CSS, SCRIPT, cgi_response, esc

#: The bar colour of the charts (a presentation attribute: the CSP allows no style attribute).
BAR = "#3b6fb6"


def svg_bars(values: np.ndarray, width: int, height: int, label: str) -> str:
    """Return an inline SVG bar chart of VALUES (one bar per bucket, scaled to the largest)."""
    top = float(values.max()) if len(values) else 0.0
    step = width / max(1, len(values))
    bars = []
    for k, v in enumerate(values.tolist()):
        h = 0.0 if top <= 0 else height * v / top
        if h > 0:
            bars.append(f'<rect x="{k * step:.1f}" y="{height - h:.1f}" width="{max(step - 1, 1):.1f}" '
                        f'height="{h:.1f}" fill="{BAR}"><title>{esc(bytes_text(v))}</title></rect>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{esc(label)}">{"".join(bars)}</svg>')


def _cell(text: str, value: float | None = None) -> str:
    """Return a numeric cell, sortable by VALUE."""
    v = "" if value is None else f' data-v="{value}"'
    return f'<td class="ncs-num"{v}>{esc(text)}</td>'


def _view_cell(h: HistoryReport, change: int, first: int) -> str:
    """Return the view's own cell: the change (movers) or the first-seen time."""
    if h.view == "movers":
        return _cell(("+" if change >= 0 else "-") + bytes_text(abs(change)), change)
    return _cell(full_time(first), first)


def _group_body(h: HistoryReport, rank: int, group: Group, addresses: int) -> str:
    """Return the tbody of GROUP: its row, then its addresses in a details element."""
    series, _ = h.group_series(group)
    parts = [f'<tbody class="ncs-group"><tr class="ncs-group-row"><td class="ncs-num">{rank}</td>'
             f'<td class="ncs-label">{esc(group.label)}</td>',
             _cell(bytes_text(h.group_bytes(group)), h.group_bytes(group)),
             _cell(count_text(h.group_packets(group)), h.group_packets(group)),
             _view_cell(h, h.group_change(group), h.group_first(group)),
             _cell(full_time(group.L), group.L),
             f"<td>{svg_bars(series, 120, 20, 'bytes over time of ' + group.label)}</td></tr>"]
    rows = h.rows(group).tolist()
    b, c = group.column("B").tolist(), group.column("C").tolist()
    count = group.count if addresses <= 0 else min(addresses, group.count)
    items = []
    for i in range(count):
        names = names_text(list(group.names[i]))
        items.append(f'<tr><td class="ncs-label"><span class="ncs-addr">{esc(group.addresses[i])}</span>'
                     f'<span class="ncs-name">{esc(names)}</span></td>{_cell(bytes_text(b[i]), b[i])}'
                     f'{_cell(count_text(c[i]), c[i])}'
                     f'<td>{svg_bars(h.series_bytes[rows[i]], 120, 16, "bytes over time")}</td></tr>')
    parts.append(f'<tr><td></td><td class="ncs-open" colspan="6"><details><summary>{group.count} '
                 f'addresses</summary><table class="ncs-addrs"><tbody>{"".join(items)}</tbody></table>'
                 "</details></td></tr></tbody>\n")
    return "".join(parts)


def render_history_fragment(h: HistoryReport, top: int = 100, addresses: int = 20) -> str:
    """Return the HTML fragment of H: heading, time chart of all traffic, the group table."""
    groups, left_out = shown_groups(h.report, top)
    total = sum(h.group_bytes(g) for g in h.report.groups)
    view_heading = "change" if h.view == "movers" else "first seen"
    headings = "".join(f'<th><button class="ncs-sort" type="button">{esc(t)}</button></th>'
                       for t in ("#", "network / domain", "bytes", "packets", view_heading, "last seen"))
    parts = [f'<div class="ncs-report ncs-history"><style>{CSS}</style>\n',
             f"<h2>{esc(history_title(h))}</h2>\n",
             f'<p class="ncs-facts">{esc(bytes_text(total))} over the window, from '
             f"{esc(full_time(h.window.since))}; one bar per {esc(_bucket_text(h))}.</p>\n",
             f"<div>{svg_bars(h.total_series(), 720, 120, 'bytes over time, all addresses')}</div>\n",
             f'<div class="ncs-scroll"><table>\n<thead><tr>{headings}<th>over time</th></tr></thead>\n']
    parts.extend(_group_body(h, rank, g, addresses) for rank, g in enumerate(groups, 1))
    parts.append("</table></div>\n")
    if left_out:
        parts.append(f'<p class="ncs-more">{count_text(left_out)} more groups not shown</p>\n')
    parts.append(f"<script>{SCRIPT}</script>\n</div>\n")
    return "".join(parts)


def _bucket_text(h: HistoryReport) -> str:
    """Return the length of one bucket in words ("1 h", "7 h")."""
    seconds = h.window.span / h.window.buckets
    return f"{seconds / 3600:.3g} h" if seconds >= 3600 else f"{seconds / 60:.3g} min"


def history_cgi(h: HistoryReport, top: int, addresses: int) -> str:
    """Return the CGI response of H: header, blank line, the page under the report's CSP."""
    return cgi_response(render_history_fragment(h, top, addresses))
