"""The history report on a terminal: a rich table of groups and addresses with a sparkline per row.

Bytes and packets over the window in human units, the change against the
window before (movers) or the first-seen time (new remotes), the last-seen
time, and the bytes per bucket as a sparkline.  Names reach the terminal
only as `rich.text.Text` after their control characters were spelled out.
"""

from __future__ import annotations

from typing import IO

import numpy as np
from rich import box
from rich.console import Console
from rich.console import Group as RichGroup
from rich.table import Table
from rich.text import Text

from ncs.report.display import (
    bytes_text,
    clock_time,
    count_text,
    names_text,
    shown_groups,
    zone_name,
)
from ncs.report.group import Group
from ncs.report.history_build import HistoryReport, history_title

#: The sparkline's levels, lowest first; a bucket without traffic shows as a space.
BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: np.ndarray) -> str:
    """Return VALUES as one character each, scaled to the largest (a space for 0)."""
    top = float(values.max()) if len(values) else 0.0
    if top <= 0:
        return " " * len(values)
    levels = np.ceil(values.astype(np.float64) / top * len(BARS)).astype(int)
    return "".join(BARS[n - 1] if n > 0 else " " for n in levels.tolist())


def _signed_bytes(value: int) -> str:
    """Return a change of bytes with its sign ("+1.2 MB", "-300 B")."""
    return ("+" if value >= 0 else "-") + bytes_text(abs(value))


def _extra(h: HistoryReport, change: int, first: int, now: float) -> str:
    """Return the view's own cell: the change (movers) or the first-seen time (other views)."""
    return _signed_bytes(change) if h.view == "movers" else clock_time(first, now)


def _group_rows(h: HistoryReport, group: Group, limit: int, now: float) -> list[tuple[Text, ...]]:
    """Return the table rows of GROUP's first LIMIT addresses (all if LIMIT <= 0)."""
    rows = h.rows(group).tolist()
    b, c, last = group.column("B").tolist(), group.column("C").tolist(), group.column("L").tolist()
    count = group.count if limit <= 0 else min(limit, group.count)
    out = []
    for i in range(count):
        row = rows[i]
        label = Text("  " + group.addresses[i])
        names = names_text(list(group.names[i]))
        if names:
            label.append("  " + names, style="dim")
        out.append((Text(""), label, Text(bytes_text(b[i])), Text(count_text(c[i])),
                    Text(_extra(h, int(h.change[row]), int(h.first[row]), now)),
                    Text(clock_time(last[i], now)), Text(sparkline(h.series_bytes[row]))))
    if count < group.count:
        out.append((Text(""), Text(f"  ... {group.count - count} more addresses", style="italic")))
    return out


def build_history_table(h: HistoryReport, top: int, addresses: int) -> Table:
    """Return the rich Table of the first TOP groups (all if TOP <= 0), ADDRESSES rows under each."""
    now = h.window.until
    groups, left_out = shown_groups(h.report, top)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False,
                  caption=(f"{left_out} more groups not shown (--top 0 shows all)" if left_out else None),
                  caption_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column(("domain" if h.report.by == "domain" else "network") + " / address, names",
                     overflow="fold")
    for heading in ("bytes", "packets", "change" if h.view == "movers" else f"first seen {zone_name(now)}",
                    f"last seen {zone_name(now)}"):
        table.add_column(heading, justify="right", no_wrap=True)
    table.add_column("bytes over time", no_wrap=True)
    for rank, group in enumerate(groups, 1):
        series, _ = h.group_series(group)
        table.add_row(Text(str(rank)), Text(group.label, style="bold"), Text(bytes_text(h.group_bytes(group))),
                      Text(count_text(h.group_packets(group))),
                      Text(_extra(h, h.group_change(group), h.group_first(group), now)),
                      Text(clock_time(group.L, now)), Text(sparkline(series)),
                      style="on grey15" if rank % 2 == 0 else None)
        for cells in _group_rows(h, group, addresses, now):
            table.add_row(*cells)
    return table


def render_history_table(h: HistoryReport, out: IO[str], top: int = 100, addresses: int = 20,
                         width: int | None = None) -> None:
    """Print the terminal history report of H to OUT (colours only on a terminal)."""
    console = Console(file=out, width=width, highlight=False)
    total = sum(h.group_bytes(g) for g in h.report.groups)
    console.print(RichGroup(
        Text(history_title(h), style="bold"),
        Text(f"all: {bytes_text(total)}  " + sparkline(h.total_series()), style="dim"), Text(""),
        build_history_table(h, top, addresses),
        Text(f"{count_text(h.report.totals.addresses)} addresses in {count_text(len(h.report.groups))} "
             f"groups, {bytes_text(total)} over the window.", style="bold")))
