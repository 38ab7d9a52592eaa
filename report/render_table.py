"""The terminal report: a rich table, one row per group, optionally with its address rows.

Every name is shown through `rich.text.Text` after its control characters
were spelled out, so neither escape sequences nor rich markup in a name can
change what the terminal shows.
"""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.console import Group as RichGroup
from rich.table import Table
from rich.text import Text

from ncs.report.display import (
    grouping_title,
    header_facts,
    iso_time,
    share,
    shown_groups,
)
from ncs.report.group import Group, Report
from ncs.stats.quoting import safe_text

#: Header keys shown above the table, when the stats file has them.
FACT_KEYS = ("start", "current", "device", "bpf")


def facts_text(report: Report) -> Text:
    """Return the stats file's header facts worth a glance: capture start, drops, evictions."""
    lines = Text()
    lines.append(safe_text(report.stats.source or "stats"), style="bold")
    for key, value in header_facts(report):
        wanted = key in FACT_KEYS or "drop" in key.lower() or "evict" in key.lower()
        if wanted:
            lines.append("\n")
            lines.append(f"{key}: ", style="cyan")
            lines.append(value)
    return lines


def _group_row(table: Table, rank: int, group: Group, total_w: float) -> None:
    table.add_row(
        Text(str(rank)),
        Text(group.label, style="bold"),
        Text(str(len(group.members))),
        Text(f"{group.R / 60:.0f}"),
        Text(f"{group.W / 3600:.0f}"),
        Text(f"{share(group.W, total_w):.1f}%"),
        Text(iso_time(group.E)),
        style="on grey15" if rank % 2 == 0 else None,
    )


def _address_rows(table: Table, group: Group, total_w: float, limit: int) -> None:
    members = group.members if limit <= 0 else group.members[:limit]
    for m in members:
        rec = m.record
        names = Text(", ".join(safe_text(n) for n in rec.N) or "-", style="dim")
        table.add_row(
            Text(""),
            Text("  " + m.address) + Text("  ") + names,
            Text(""),
            Text(f"{rec.R / 60:.0f}"),
            Text(f"{rec.W / 3600:.0f}"),
            Text(f"{share(rec.W, total_w):.1f}%"),
            Text(iso_time(rec.E)),
        )
    if limit > 0 and len(group.members) > limit:
        more = len(group.members) - limit
        table.add_row(Text(""), Text(f"  ... {more} more addresses", style="italic"))


def build_table(report: Report, top: int, expand: bool, addresses: int) -> Table:
    """Return the rich Table of the first TOP groups (all if TOP <= 0).

    With EXPAND, each group row is followed by up to ADDRESSES address rows
    (all if ADDRESSES <= 0) with names, rates, share of the total and last contact.
    """
    total_w = report.totals.W
    groups, left_out = shown_groups(report, top)
    heading = "Domain" if report.by == "domain" else "Network"
    table = Table(
        title=f"ncs report by {grouping_title(report)}, ordered by bandwidth",
        caption=(f"{left_out} more groups not shown (--top 0 shows all)" if left_out else None),
    )
    table.add_column("#", justify="right")
    table.add_column(heading + (" / address  names" if expand else ""))
    table.add_column("IPs", justify="right")
    table.add_column("hits/min", justify="right")
    table.add_column("bytes/s", justify="right")
    table.add_column("share", justify="right")
    table.add_column("last contact")
    for rank, group in enumerate(groups, 1):
        _group_row(table, rank, group, total_w)
        if expand:
            _address_rows(table, group, total_w, addresses)
    return table


def totals_text(report: Report) -> Text:
    """Return the totals line: hits per minute, bytes per second, addresses, groups."""
    t = report.totals
    return Text(
        f"total: {t.hits_per_minute:.0f} hits/min, {t.bytes_per_second:.0f} bytes/s,"
        f" {t.addresses} addresses in {t.groups} groups",
        style="bold",
    )


def render_table(
    report: Report,
    out: IO[str],
    top: int = 100,
    expand: bool = True,
    addresses: int = 20,
    force_terminal: bool | None = None,
    width: int | None = None,
) -> None:
    """Print the terminal report to OUT (colours only when OUT is a terminal)."""
    console = Console(file=out, force_terminal=force_terminal, width=width, highlight=False)
    console.print(
        RichGroup(facts_text(report), build_table(report, top, expand, addresses), totals_text(report))
    )
