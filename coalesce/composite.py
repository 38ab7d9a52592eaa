"""The composite: every source's table merged into one, under a header that names the sources.

The records are merged by `ncs.stats.merge` (B, C, R, W summed; E and T the
latest; S the earliest; names united in first-seen order).  The header
starts like any stats file's (start, current, hits, bytes, users), so that
a composite is itself a source for a coalescer above this one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ncs.stats.columns import StatsColumns
from ncs.stats.header import header_number, rate_lines, time_line, version_line
from ncs.stats.merge import merge_tables
from ncs.stats.quoting import safe_line, safe_text


@dataclass(frozen=True)
class Source:
    """One stats file that was fetched and read, under the inventory name of its host."""

    name: str
    stats: StatsColumns
    seconds: float = 0.0


@dataclass(frozen=True)
class Failure:
    """A host whose stats could not be used, and why (one line)."""

    name: str
    reason: str
    seconds: float = 0.0


def composite(sources: list[Source], failures: list[Failure], now: int | None = None) -> StatsColumns:
    """Return the merge of SOURCES' tables under the composite header (see `composite_header`)."""
    merged = merge_tables([s.stats for s in sources])
    merged.header = composite_header(sources, failures, len(merged), now)
    return merged


def composite_header(sources: list[Source], failures: list[Failure], users: int,
                     now: int | None = None) -> list[str]:
    """Return the composite's header lines (without '# ').

    Its own lines come first, so that a reader (and a coalescer stacked above
    this one) finds start/current/hits/bytes/users as in any stats file; then
    one `source:` line per host, ok or failed; then each source's own header,
    every line prefixed with `[NAME] ` so it cannot be taken for ours.
    """
    now = int(time.time()) if now is None else now
    starts = [header_number(s.stats.header, "start") for s in sources]
    starts = [s for s in starts if type(s) is int and s]
    start = min(starts) if starts else now
    hits = sum(header_number(s.stats.header, "hits") or 0.0 for s in sources)
    rate = sum(header_number(s.stats.header, "bytes") or 0.0 for s in sources)
    lines = [
        version_line(),
        f"composite:\t{len(sources)} sources ok, {len(failures)} failed",
        time_line("start", start),
        time_line("current", now),
        *rate_lines(hits, rate),
        f"users:\t{users}",
    ]
    for s in sources:
        lines.append(f"source:\t{safe_text(s.name)}\tok\t{len(s.stats)} records")
    for f in failures:
        lines.append(f"source:\t{safe_text(f.name)}\tfailed\t{safe_text(f.reason)}")
    for s in sources:
        prefix = f"[{safe_text(s.name)}] "
        lines.extend(prefix + safe_line(line) for line in s.stats.header if line.strip())
    return lines
