"""The terminal report: header sentences, a rich table of groups with their top addresses, totals.

Numbers are in human units and times in local time (the zone in the column
heading).  Narrow terminals lose the least needed columns first (`COLUMNS`),
never an address: the label column is as wide as the longest label shown.
Every name is shown through `rich.text.Text` after its control characters
were spelled out, so neither escape sequences nor rich markup in a name can
change what the terminal shows.  `ncs-report --watch` shows the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from rich import box
from rich.console import Console, RenderableType
from rich.console import Group as RichGroup
from rich.table import Table
from rich.text import Text

from ncs.report import display
from ncs.report.display import (
    bytes_text,
    clock_time,
    count_text,
    header_sentences,
    names_text,
    rate_text,
    report_time,
    report_title,
    share,
    shown_groups,
    totals_sentence,
    zone_name,
)
from ncs.report.group import Group, Report


@dataclass(frozen=True)
class Row:
    """What one table row shows: the numbers of a group or of one address."""

    count: int | None
    R: float
    W: float
    B: float
    C: float
    L: float


@dataclass(frozen=True)
class Column:
    """A numeric column: heading, cell text of a row, and its rank (higher goes first when narrow)."""

    heading: str
    cell: Callable[[Row, float, float], str]
    keep: int


#: The numeric columns in display order; `keep` decides which stay on a narrow terminal.
COLUMNS = (
    Column("IPs", lambda r, total, now: "" if r.count is None else count_text(r.count), 1),
    Column(display.PACKETS_PER_MINUTE.replace("/", "\n/"), lambda r, total, now: count_text(r.R / 60), 3),
    Column(display.BYTES_PER_SECOND, lambda r, total, now: rate_text(r.W), 7),
    Column("share", lambda r, total, now: f"{share(r.W, total):.1f}%", 2),
    Column("window\n" + display.WINDOW_PACKETS, lambda r, total, now: count_text(r.C), 4),
    Column("window\n" + display.WINDOW_BYTES, lambda r, total, now: bytes_text(r.B), 6),
    Column(display.LAST_SEEN.replace(" ", "\n"), lambda r, total, now: clock_time(r.L, now), 5),  # LAST_SEEN_KEEP
)
LAST_SEEN_KEEP = 5
#: Width a numeric column takes at most (cell text and padding).
_NUMBER_WIDTH = 12
#: What the rank column and the table's own lines take.
_FIXED_WIDTH = 8


def columns_for(width: int, label_width: int) -> list[Column]:
    """Return the numeric columns that fit beside a label of LABEL_WIDTH in WIDTH characters."""
    room = max(0, (width - label_width - _FIXED_WIDTH) // _NUMBER_WIDTH)
    kept = sorted(COLUMNS, key=lambda c: -c.keep)[:max(2, room)]
    return [c for c in COLUMNS if c in kept]


def group_row(group: Group) -> Row:
    """Return the numbers of GROUP."""
    return Row(group.count, group.R, group.W, group.B, group.C, group.L)


def member_rows(group: Group, limit: int) -> list[tuple[str, str, Row]]:
    """Return (address, names, numbers) of GROUP's first LIMIT members (all if LIMIT <= 0)."""
    members = group.members if limit <= 0 else group.members[:limit]
    return [(m.address, names_text(m.record.N), Row(None, m.record.R, m.record.W, m.record.B,
                                                    m.record.C, m.record.L)) for m in members]


def _label_width(groups: list[Group], expand: bool, addresses: int) -> int:
    """Return the width of the longest label or address the table will show."""
    width = max((len(g.label) for g in groups), default=8)
    if expand:
        for g in groups:
            shown = g.addresses if addresses <= 0 else g.addresses[:addresses]
            width = max(width, max((len(a) + 2 for a in shown), default=0))
    return width


def build_table(report: Report, top: int, expand: bool, addresses: int, width: int = 120) -> Table:
    """Return the rich Table of the first TOP groups (all if TOP <= 0) for a WIDTH-column terminal.

    With EXPAND, each group row is followed by up to ADDRESSES address rows
    (all if ADDRESSES <= 0) with their names.
    """
    total_w = report.totals.W
    now = report_time(report)
    groups, left_out = shown_groups(report, top)
    label_width = _label_width(groups, expand, addresses)
    columns = columns_for(width, label_width)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False,
                  caption=(f"{left_out} more groups not shown (--top 0 shows all)" if left_out else None),
                  caption_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    heading = "domain" if report.by == "domain" else "network"
    table.add_column(heading + (" / address, names" if expand else ""), min_width=label_width,
                     overflow="fold")
    for column in columns:
        heading = column.heading
        if column.keep == LAST_SEEN_KEEP:
            heading += f" {zone_name(now)}"
        table.add_column(heading, justify="right", no_wrap=True)
    for rank, group in enumerate(groups, 1):
        cells = [Text(c.cell(group_row(group), total_w, now)) for c in columns]
        table.add_row(Text(str(rank)), Text(group.label, style="bold"), *cells,
                      style="on grey15" if rank % 2 == 0 else None)
        if not expand:
            continue
        for address, names, row in member_rows(group, addresses):
            label = Text("  " + address)
            if names:
                label.append("  " + names, style="dim")
            table.add_row(Text(""), label, *[Text(c.cell(row, total_w, now)) for c in columns])
        if 0 < addresses < group.count:
            table.add_row(Text(""), Text(f"  ... {group.count - addresses} more addresses",
                                         style="italic"))
    return table


def heading_text(report: Report) -> Text:
    """Return the title, the stats file's name and the header facts as sentences."""
    text = Text(report_title(report), style="bold")
    text.append("\n" + (report.stats.source or "stats"), style="dim")
    for sentence in header_sentences(report):
        text.append("\n" + sentence.text)
    return text


def totals_text(report: Report) -> Text:
    """Return the totals sentence."""
    return Text(totals_sentence(report), style="bold")


def report_view(report: Report, top: int, expand: bool, addresses: int, width: int,
                footer: str | None = None) -> RenderableType:
    """Return everything the terminal report shows, for a WIDTH-column terminal, and FOOTER."""
    parts: list[RenderableType] = [heading_text(report), Text(""),
                                   build_table(report, top, expand, addresses, width),
                                   totals_text(report)]
    if footer:
        parts.append(Text(footer, style="dim"))
    return RichGroup(*parts)


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
    console.print(report_view(report, top, expand, addresses, console.width))
