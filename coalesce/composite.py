"""The composite: every source's table merged as it arrives, under a header that names the sources.

Tables are merged by `ncs.stats.streammerge` as each host delivers one and
then dropped, so memory follows the composite, not the sum of the hosts.
The result is the plain merge (`ncs.stats.merge`) of the sources in
inventory order (B, C, R, W summed; E and T the latest; S the earliest;
names united in first-seen order, at most `max_names`), whatever order they
arrived in.  The header starts like any stats file's (start, current, hits,
bytes, users), so that a composite is itself a source for a coalescer above
this one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ncs import gcpause
from ncs.files import replace_file
from ncs.stats.columns import StatsColumns
from ncs.stats.header import header_number, rate_lines, time_line, version_line
from ncs.stats.nameunion import MAX_NAMES
from ncs.stats.quoting import safe_line, safe_text
from ncs.stats.streammerge import StreamingMerge
from ncs.stats.writer import chunk_blocks, file_chunks, table_blocks


@dataclass(frozen=True)
class Source:
    """One stats file that was fetched and merged: its host's name, header and size."""

    name: str
    header: Sequence[str]
    records: int
    seconds: float = 0.0

    @classmethod
    def of(cls, name: str, table: StatsColumns, seconds: float = 0.0) -> Source:
        """Return the Source of TABLE, fetched from host NAME."""
        return cls(name, tuple(table.header), len(table), seconds)


@dataclass(frozen=True)
class Failure:
    """A host whose stats could not be used, and why (one line)."""

    name: str
    reason: str
    seconds: float = 0.0


class Composite:
    """The composite being built: `add` each source's table as it arrives, `write` it once all are in.

    Each source has a rank, its position in the inventory (the local agent
    first): the merge, the `source:` lines and the prefixed headers follow
    the ranks, not the order of arrival.  `add` and `fail` may be called
    from several threads.
    """

    #: Hosts between garbage collections that also look at what earlier ones froze.
    TIDY_FULL_EVERY = 64

    def __init__(self, max_names: int = MAX_NAMES) -> None:
        self.merge: StreamingMerge | None = StreamingMerge(max_names)
        self._max_names = max_names
        self._released = (0, 0)  # (addresses, capped) of a released merge
        self._sources: dict[int, Source] = {}
        self._failures: dict[int, Failure] = {}
        self._lock = threading.Lock()
        self._hosts = 0

    @property
    def sources(self) -> list[Source]:
        """Return the sources merged so far, in rank order."""
        return [self._sources[r] for r in sorted(self._sources)]

    @property
    def failures(self) -> list[Failure]:
        """Return the hosts that failed, in rank order."""
        return [self._failures[r] for r in sorted(self._failures)]

    def add(self, rank: int, name: str, table: StatsColumns, seconds: float = 0.0) -> None:
        """Merge TABLE, from host NAME at position RANK; the table is not kept.

        Then collects the garbage made since the last host (see `_tidy`).
        """
        with self._lock:
            assert self.merge is not None, "the composite was released"
            self.merge.add(table, rank)
            self._sources[rank] = Source.of(name, table, seconds)
        self._tidy()

    def fail(self, rank: int, name: str, reason: str, seconds: float = 0.0) -> None:
        """Record that host NAME at position RANK delivered nothing, for REASON (one inert line)."""
        with self._lock:
            self._failures[rank] = Failure(name, reason, seconds)
        self._tidy()

    def _tidy(self) -> None:
        """Collect the cyclic garbage of the hosts done since the last call (ncs.gcpause.tidy).

        Run with the collector paused, the coalescer then never walks the
        composite's millions of names each time a host's garbage is due;
        measured, that walk cost 0.4-0.7 us per source record.
        """
        with self._lock:
            self._hosts += 1
            full = self._hosts % self.TIDY_FULL_EVERY == 0
        gcpause.tidy(full)

    @property
    def addresses(self) -> int:
        """Return how many addresses the composite holds (also once released)."""
        return self._released[0] if self.merge is None else len(self.merge)

    def header(self, now: int | None = None) -> list[str]:
        """Return the composite's header lines (see `composite_header`)."""
        capped = self._released[1] if self.merge is None else self.merge.capped
        users = self.addresses
        return composite_header(self.sources, self.failures, users, now, capped=capped,
                                max_names=self._max_names)

    def write(self, path: str, now: int | None = None) -> None:
        """Replace the stats file at PATH with the composite, atomically, chunk by chunk.

        Raises OSError; the previous file then stays as it was.  The merge
        takes no more tables afterwards (`StreamingMerge.seal`).
        """
        merge = self.merge
        assert merge is not None, "the composite was released"
        merge.seal()
        order = merge.order()
        v6_rows = int(np.count_nonzero(merge.keys().is6))

        def blocks_of(start: int, stop: int) -> bytes | bytearray:
            return chunk_blocks(*merge.chunk(order[start:stop]))

        # One core: the forked second core (ncs.twocore) would cut the wall
        # time of writing 3 million addresses by about 1 s, but cost 0.35-0.45
        # us of CPU an address (copy-on-write faults of the merge's memory and
        # the spool file's round trip); a coalescer's run is mostly waiting
        # for hosts, and its CPU is what a fleet pays for.
        blocks = table_blocks(blocks_of, len(order), v6_rows, two_cores=False)
        replace_file(path, file_chunks(self.header(now), blocks))

    def release(self) -> None:
        """Drop the merged rows, once written: the file holds them, and `header` still works.

        ncs-coalesce appends the composite to its history store after this,
        reading the file back a run at a time (`ncs.stats.streamread.read_runs`):
        the store's memory then comes instead of the merge's, not on top of it.
        """
        if self.merge is not None:
            self._released = (len(self.merge), self.merge.capped)
            self.merge = None


def composite_header(sources: Sequence[Source], failures: Sequence[Failure], users: int,
                     now: int | None = None, capped: int = 0,
                     max_names: int = MAX_NAMES) -> list[str]:
    """Return the composite's header lines (without '# ').

    Its own lines come first, so that a reader (and a coalescer stacked above
    this one) finds start/current/hits/bytes/users as in any stats file; a
    `names-capped:` line when CAPPED addresses had more than MAX_NAMES names;
    then one `source:` line per host, ok or failed; then each source's own
    header, every line prefixed with `[NAME] ` so it cannot be taken for ours.
    """
    now = int(time.time()) if now is None else now
    starts = [header_number(list(s.header), "start") for s in sources]
    starts = [s for s in starts if type(s) is int and s]
    start = min(starts) if starts else now
    hits = sum(header_number(list(s.header), "hits") or 0.0 for s in sources)
    rate = sum(header_number(list(s.header), "bytes") or 0.0 for s in sources)
    lines = [
        version_line(),
        f"composite:\t{len(sources)} sources ok, {len(failures)} failed",
        time_line("start", start),
        time_line("current", now),
        *rate_lines(hits, rate),
        f"users:\t{users}",
    ]
    if capped:
        lines.append(f"names-capped:\t{capped} addresses had more than {max_names} names; "
                     f"the first {max_names} kept")
    for s in sources:
        lines.append(f"source:\t{safe_text(s.name)}\tok\t{s.records} records")
    for f in failures:
        lines.append(f"source:\t{safe_text(f.name)}\tfailed\t{safe_text(f.reason)}")
    for s in sources:
        prefix = f"[{safe_text(s.name)}] "
        lines.extend(prefix + safe_line(line) for line in s.header if line.strip())
    return lines

