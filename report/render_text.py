"""The classic text report, in the original Report module's layout (docs/report.md).

The printf-style formats below are kept on purpose: they are the documented
sprintf formats of the original, and Python's %.0f rounds exactly like C's.
The layout and its words stay the original's ("qrys/mn", "connections per
minute": scripts read them); the last contact time is the last-seen time L,
which is E for files without L, as the original printed.
"""

# ruff: noqa: UP031

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import IO

from ncs import twocore
from ncs.report.display import contact_time, grouping_title
from ncs.report.group import CHUNK_ADDRESSES, Group, Report, chunk_groups
from ncs.stats.quoting import safe_line, safe_text

#: The column title printed before the groups and again before the totals.
TITLE = "\n   IP addr\t    host name\n qrys/mn -- bytes/sec -- #IP's\tlast contact time\n\n"


def address_line(address: str, names: Sequence[str]) -> str:
    """Return "ADDR<TAB>name1<NL><TAB><TAB>name2...<NL>"; an unnamed address is "ADDR<TAB><NL>"."""
    return address + "\t" + "\n\t\t".join(safe_text(n) for n in names) + "\n"


def summary_line(group: Group) -> str:
    """Return a group's summary: packets/min, bytes/s, number of addresses, last seen."""
    return " %6.0f\t -- %.0f\t -- %d\t%s\n" % (
        group.R / 60,
        group.W / 3600,
        group.count,
        contact_time(group.L),
    )


#: Between the names of one address.
_NAME_SEPARATOR = "\n\t\t"


def group_lines(group: Group) -> str:
    """Return the address lines of GROUP followed by its summary line."""
    addresses = group.addresses
    names = group.names
    if "".join([n for ns in names for n in ns]).isprintable():
        # Common case: no name needs cleaning; one comprehension for the group.
        join = _NAME_SEPARATOR.join
        lines = [a + "\t" + join(ns) + "\n" for a, ns in zip(addresses, names, strict=True)]
    else:
        lines = [address_line(a, ns) for a, ns in zip(addresses, names, strict=True)]
    lines.append(summary_line(group))
    return "".join(lines)


def _chunk_text(groups: list[Group]) -> str:
    return "".join(map(group_lines, groups))


def iter_text(report: Report) -> Iterator[str]:
    """Yield the classic report in chunks of many groups.

    Like the original's, it starts with the stats file's opening: an empty
    line, then the header lines.
    """
    head = "\n" + "".join(f"# {safe_line(line)}\n" for line in report.stats.header)
    yield head + "\n" + f"Composite report, {grouping_title(report)} ordered by BANDWIDTH\n" + TITLE
    chunks = list(chunk_groups(report.groups, CHUNK_ADDRESSES))
    yield from twocore.map_in_halves(_chunk_text, chunks, report.totals.addresses)
    t = report.totals
    yield (
        TITLE
        + "rate\t\t= %.0f connections per minute\n" % t.packets_per_minute
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
