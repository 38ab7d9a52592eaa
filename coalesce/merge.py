"""Merging stats files into one composite (DESIGN section 8) and the composite's header."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ncs import __version__
from ncs.agent.statsfile import Record, StatsFile, localtime_text, safe_text


@dataclass(frozen=True)
class Source:
    """One stats file that was fetched and parsed, under the inventory name of its host."""

    name: str
    stats: StatsFile
    seconds: float = 0.0


@dataclass(frozen=True)
class Failure:
    """A host whose stats could not be used, and why (one line)."""

    name: str
    reason: str
    seconds: float = 0.0


def merge_into(acc: dict[str, Record], records: dict[str, Record]) -> None:
    """Add RECORDS into ACC in place: B, C, R, W summed; E and T latest; S earliest;
    N the union in first-seen order (names compared as plain strings).

    Records of ACC are owned by it: a record first seen here is copied, so the
    source's records are never modified.
    """
    get = acc.get
    for address, r in records.items():
        a = get(address)
        if a is None:
            acc[address] = Record(r.B, r.C, r.E, r.S, r.R, r.W, r.T, list(r.N))
            continue
        a.B += r.B
        a.C += r.C
        a.R += r.R
        a.W += r.W
        if r.E > a.E:
            a.E = r.E
        if r.S < a.S:
            a.S = r.S
        if r.T > a.T:
            a.T = r.T
        n = r.N
        if n and n != a.N:
            names = a.N
            for name in n:
                if name not in names:
                    names.append(name)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off inside the block.

    Merging creates millions of records that hold lists; each allocation
    burst would otherwise trigger full collections that walk all of them,
    which costs more than the merge itself.  Records form no cycles, so
    nothing is lost by collecting once afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def merge_records(sources: Iterable[dict[str, Record]]) -> dict[str, Record]:
    """Return a new table holding the merge of every table in SOURCES, in order."""
    acc: dict[str, Record] = {}
    with paused_gc():
        for records in sources:
            merge_into(acc, records)
    return acc


def header_total(stats: StatsFile, key: str) -> float:
    """Return the number leading header line KEY ('hits: 3832 per minute'), 0 if absent."""
    value = stats.header_value(key)
    if not value:
        return 0.0
    try:
        return float(value.split(",")[0].split()[0])
    except (ValueError, IndexError):
        return 0.0


def composite_header(sources: list[Source], failures: list[Failure],
                     records: dict[str, Record], now: int | None = None) -> list[str]:
    """Return the composite's header lines (without '# ').

    Its own lines come first so that a reader (and a coalescer stacked above
    this one) finds start/current/hits/bytes/users as in any stats file; then
    one `source:` line per host, ok or failed; then each source's own header,
    every line prefixed with `[NAME] ` so it cannot be taken for ours.
    """
    now = int(time.time()) if now is None else now
    starts = [s.stats.header_number("start") for s in sources]
    starts = [s for s in starts if s]
    start = min(starts) if starts else now
    hits = sum(header_total(s.stats, "hits") for s in sources)
    rate = sum(header_total(s.stats, "bytes") for s in sources)
    lines = [
        f"ncs version {__version__}",
        f"composite:\t{len(sources)} sources ok, {len(failures)} failed",
        f"start:\t{start},\t{localtime_text(start)}",
        f"current:\t{now},\t{localtime_text(now)}",
        f"hits:\t\t{hits:.0f} per minute",
        f"bytes:\t{rate:.0f} per second",
        f"users:\t{len(records)}",
    ]
    for s in sources:
        lines.append(f"source:\t{safe_text(s.name)}\tok\t{len(s.stats.records)} records")
    for f in failures:
        lines.append(f"source:\t{safe_text(f.name)}\tfailed\t{safe_text(f.reason)}")
    for s in sources:
        prefix = f"[{safe_text(s.name)}] "
        lines.extend(prefix + _header_text(line) for line in s.stats.header if line.strip())
    return lines


def _header_text(line: str) -> str:
    """Return a source's header line with control characters escaped, tabs kept."""
    return "\t".join(safe_text(part) for part in line.split("\t"))
