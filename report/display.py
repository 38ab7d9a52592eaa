"""What the renderers share: clean text, human units, local times with their zone, header sentences.

The table, the HTML page and the live view show numbers in human units
(`bytes_text`, `rate_text`, `count_text`) and times in local time with the
zone (`clock_time`, `full_time`); JSON and the classic text keep raw numbers.
One word for one thing: C and R count *packets* everywhere.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rich.filesize import decimal

from ncs.report.group import Group, Report
from ncs.stats.header import header_number, header_value
from ncs.stats.quoting import safe_line, safe_text
from ncs.stats.times import local_time_text

#: Column headings and units, one place for the words the table, the HTML page and the live view use.
PACKETS_PER_MINUTE = "packets/min"
BYTES_PER_SECOND = "bytes/s"
WINDOW_PACKETS = "packets"
WINDOW_BYTES = "bytes"
LAST_SEEN = "last seen"


def contact_time(epoch: int) -> str:
    """Return the classic last-contact text, lower-case "mon dd hh:mm:ss" in local time.

    The day is zero-padded ("apr 04 09:05:01"): strftime's %d, lower-cased.
    """
    return local_time_text(epoch, "%b %d %H:%M:%S").lower()


def full_time(epoch: float) -> str:
    """Return EPOCH as local "YYYY-MM-DD HH:MM:SS ZONE" (e.g. "2025-11-24 17:00:04 CET")."""
    return local_time_text(epoch, "%Y-%m-%d %H:%M:%S %Z")


def clock_time(epoch: float, now: float) -> str:
    """Return EPOCH in local time, short: "HH:MM:SS" on NOW's day, else "Mon DD HH:MM"; "-" for 0.

    The zone is said once, by `zone_name`, in the column heading.
    """
    if not epoch or not math.isfinite(epoch):
        return "-"
    if local_time_text(epoch, "%Y%m%d") == local_time_text(now, "%Y%m%d"):
        return local_time_text(epoch, "%H:%M:%S")
    return local_time_text(epoch, "%b %d %H:%M")


def zone_name(epoch: float) -> str:
    """Return the local time zone's abbreviation at EPOCH ("UTC", "CET")."""
    return local_time_text(epoch, "%Z")


def bytes_text(value: float) -> str:
    """Return a byte count in decimal units ("882.9 kB", "572 B"); "-" when not finite."""
    if not math.isfinite(value):
        return "-"
    whole = max(0, round(value))
    return f"{whole} B" if whole < 1000 else decimal(whole)


def rate_text(bytes_per_hour: float) -> str:
    """Return an hourly byte estimate as bytes per second ("245.3 kB/s")."""
    return bytes_text(bytes_per_hour / 3600) + "/s"


def count_text(value: float) -> str:
    """Return a count rounded to an integer with thousands separators ("12,345"); "-" when not finite."""
    if not math.isfinite(value):
        return "-"
    return f"{value:,.0f}"


def duration_text(seconds: float) -> str:
    """Return a duration in words ("2 h 05 min", "4 min 10 s", "12 s")."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{hours // 24} d {hours % 24} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def share(w: float, total_w: float) -> float:
    """Return W as a percentage of TOTAL_W (0 when the total is 0)."""
    return 100.0 * w / total_w if total_w > 0 else 0.0


def grouping_title(report: Report) -> str:
    """Return the classic heading, "CIDR/24" or "SUB DOMAIN"."""
    return "SUB DOMAIN" if report.by == "domain" else f"CIDR/{report.v4_prefix}"


def report_title(report: Report) -> str:
    """Return the title of the table, the page and the live view."""
    by = "registrable domain" if report.by == "domain" else (
        f"network (IPv4 /{report.v4_prefix}, IPv6 /{report.v6_prefix})")
    return f"Who this host talks to, by {by}, top talkers first"


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


def report_time(report: Report) -> float:
    """Return the time the report speaks of: the file's `current:` line, else the latest L, else now."""
    current = report.stats.header_number("current")
    if current:
        return float(current)
    return float(report.totals.L) or time.time()


@dataclass(frozen=True)
class Sentence:
    """One header fact in words: KEY names the header line it comes from ("" for the report's own)."""

    key: str
    text: str


def _count(lines: list[str], key: str) -> int | None:
    """Return the integer leading header line KEY, or None."""
    value = header_number(lines, key)
    return None if value is None else int(value)


def _capture_sentences(lines: list[str]) -> list[Sentence]:
    """Return the sentences on when and where the capture ran."""
    out = []
    start, current = header_number(lines, "start"), header_number(lines, "current")
    if start:
        text = f"Capture started {full_time(start)}"
        if current:
            text += f"; this data was written {full_time(current)}, {duration_text(current - start)} later"
        out.append(Sentence("start", text + "."))
    device = header_value(lines, "device")
    if device:
        words = device.split()
        promiscuous = words[-1] == "promiscuous"
        if words[-1] in ("promiscuous", "non-promiscuous"):
            words = words[:-1]
        mode = " (promiscuous)" if promiscuous else ""
        out.append(Sentence("device", f"Captured from {safe_line(' '.join(words))}{mode}."))
    bpf = header_value(lines, "bpf")
    if bpf:
        out.append(Sentence("bpf", f"Filter: {safe_line(bpf)}."))
    return out


def _loss_sentences(lines: list[str]) -> list[Sentence]:
    """Return the sentences on what was lost: drops, evictions, purges."""
    out = []
    received, drops, ifdrops = (_count(lines, k) for k in ("received", "drops", "ifdrops"))
    if drops is not None:
        text = f"The capture dropped {count_text(drops)} packets"
        if received is not None:
            text += f" of {count_text(received)} received"
        if ifdrops:
            text += f"; the interface dropped {count_text(ifdrops)} more"
        out.append(Sentence("drops", text + "."))
    evicted, purged = _count(lines, "evicted"), _count(lines, "purged")
    if evicted is not None:
        out.append(Sentence("evicted", f"{count_text(evicted)} addresses were evicted to keep the "
                                       "table within its bound."))
    if purged:
        out.append(Sentence("purged", f"{count_text(purged)} addresses idle for a day were purged."))
    return out


def _rate_sentence(lines: list[str]) -> list[Sentence]:
    """Return the agent's own whole-filter estimate, named as such (it folds once a minute)."""
    per_minute, per_second = header_number(lines, "hits"), header_number(lines, "bytes")
    if per_minute is None or per_second is None:
        return []
    return [Sentence("hits", f"The agent's whole-filter estimate: {count_text(per_minute)} "
                             f"{PACKETS_PER_MINUTE}, {bytes_text(per_second)}/s.")]


#: Header keys that `header_sentences` says in words; the others are listed as they are.
SAID_IN_WORDS = ("start", "current", "device", "bpf", "received", "drops", "ifdrops", "evicted",
                 "purged", "hits", "bytes", "users")


def header_sentences(report: Report) -> list[Sentence]:
    """Return the header facts worth a glance as sentences: capture, filter, losses, estimates."""
    lines = report.stats.header
    return _capture_sentences(lines) + _loss_sentences(lines) + _rate_sentence(lines)


def other_facts(report: Report) -> list[tuple[str, str]]:
    """Return the header facts `header_sentences` does not say (composite sources, DNS, ...)."""
    return [(k, v) for k, v in header_facts(report) if k not in SAID_IN_WORDS]


def totals_sentence(report: Report) -> str:
    """Return the totals as one sentence, in human units."""
    t = report.totals
    kind = "domains and networks" if report.by == "domain" else "networks"
    return (f"{count_text(t.addresses)} addresses in {count_text(t.groups)} {kind}: "
            f"{count_text(t.packets_per_minute)} {PACKETS_PER_MINUTE} and "
            f"{rate_text(t.W)} by the hourly estimates; {count_text(t.C)} packets and "
            f"{bytes_text(t.B)} in the current windows, last seen {clock_time(t.L, report_time(report))}.")


def generated_sentence(now: float | None = None) -> str:
    """Return the generated-at line: "Report generated 2025-11-24 17:00:04 CET."."""
    return f"Report generated {full_time(time.time() if now is None else now)}."


def names_text(names: list[str] | tuple[str, ...]) -> str:
    """Return an address's names for display, cleaned, comma-separated ("" for none)."""
    return ", ".join(safe_text(n) for n in names)


def shown_groups(report: Report, top: int) -> tuple[list[Group], int]:
    """Return the first TOP groups (all when TOP <= 0) and how many are left out."""
    if top <= 0 or top >= len(report.groups):
        return report.groups, 0
    return report.groups[:top], len(report.groups) - top
