"""The classic text report, in the original Report module's layout (DESIGN section 7).

The printf-style formats below are kept on purpose: they are the documented
sprintf formats of the original, and Python's %.0f rounds exactly like C's.
"""

# ruff: noqa: UP031

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from report.display import clean_line, clean_name, contact_time, grouping_title
from report.group import Group, Report

#: The column title printed before the groups and again before the totals.
TITLE = "\n   IP addr\t    host name\n qrys/mn -- bytes/sec -- #IP's\tlast contact time\n\n"


def address_line(address: str, names: list[str]) -> str:
    """Return "ADDR<TAB>name1<NL><TAB><TAB>name2...<NL>"; an unnamed address is "ADDR<TAB><NL>"."""
    return address + "\t" + "\n\t\t".join(clean_name(n) for n in names) + "\n"


def summary_line(group: Group) -> str:
    """Return a group's summary: hits/min, bytes/s, number of addresses, last contact."""
    return " %6.0f\t -- %.0f\t -- %d\t%s\n" % (
        group.R / 60,
        group.W / 3600,
        len(group.members),
        contact_time(group.E),
    )


def iter_text(report: Report) -> Iterator[str]:
    """Yield the classic report in chunks (every group and every address)."""
    head = "".join(f"# {clean_line(line)}\n" for line in report.stats.header)
    yield head + "\n" + f"Composite report, {grouping_title(report)} ordered by BANDWIDTH\n" + TITLE
    chunk: list[str] = []
    for group in report.groups:
        for m in group.members:
            names = m.record.N
            # Fast paths for the common cases; address_line does the cleaning.
            if not names:
                chunk.append(m.address + "\t\n")
            elif len(names) == 1 and names[0].isprintable():
                chunk.append(m.address + "\t" + names[0] + "\n")
            else:
                chunk.append(address_line(m.address, names))
        chunk.append(summary_line(group))
        if len(chunk) >= 4096:
            yield "".join(chunk)
            chunk.clear()
    yield "".join(chunk)
    t = report.totals
    yield (
        TITLE
        + "rate\t\t= %.0f connections per minute\n" % t.hits_per_minute
        + "bandwidth\t= %.0f bytes per second\n" % t.bytes_per_second
        + "users\t\t= %d\n" % t.addresses
    )


def render_text(report: Report) -> str:
    """Return the whole classic report as one string."""
    return "".join(iter_text(report))


def write_text(report: Report, out: IO[str]) -> None:
    """Write the classic report to OUT."""
    for chunk in iter_text(report):
        out.write(chunk)
