"""Display helpers shared by the renderers: clean text, times, rates and shares."""

from __future__ import annotations

from ncs.report.group import Group, Report
from ncs.stats.quoting import safe_line, safe_text
from ncs.stats.times import local_time_text


def contact_time(epoch: int) -> str:
    """Return the classic last-contact text, lower-case "mon dd hh:mm:ss" in local time.

    The day is zero-padded ("apr 04 09:05:01"): strftime's %d, lower-cased.
    """
    return local_time_text(epoch, "%b %d %H:%M:%S").lower()


def iso_time(epoch: int) -> str:
    """Return EPOCH as local "YYYY-MM-DD HH:MM:SS" for the rich and HTML reports."""
    return local_time_text(epoch, "%Y-%m-%d %H:%M:%S")


def share(w: float, total_w: float) -> float:
    """Return W as a percentage of TOTAL_W (0 when the total is 0)."""
    return 100.0 * w / total_w if total_w > 0 else 0.0


def grouping_title(report: Report) -> str:
    """Return the classic heading, "CIDR/24" or "SUB DOMAIN"."""
    return "SUB DOMAIN" if report.by == "domain" else f"CIDR/{report.v4_prefix}"


def header_facts(report: Report) -> list[tuple[str, str]]:
    """Return (key, value) pairs of the stats file's header lines, cleaned, in file order.

    Lines without "key:" come back with an empty key.  Values keep their text
    (e.g. "1145923212,\\tMon Apr 24 17:00:12 2006") with runs of tabs made one space.
    """
    facts = []
    for line in report.stats.header:
        key, sep, value = line.partition(":")
        if not sep or " " in key.strip():
            facts.append(("", " ".join(safe_line(line).split())))
        else:
            facts.append((safe_text(key.strip()), " ".join(safe_line(value).split())))
    return facts


def shown_groups(report: Report, top: int) -> tuple[list[Group], int]:
    """Return the first TOP groups (all when TOP <= 0) and how many are left out."""
    if top <= 0 or top >= len(report.groups):
        return report.groups, 0
    return report.groups[:top], len(report.groups) - top
