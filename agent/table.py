"""The agent's stats table: per-remote records and the global rates, updated by the rules of docs/formats.md.

Records live in numpy columns (one row per remote) found through a
vectorised hash of their keys, so a million records cost under 200 bytes each
and a batch of packets is folded with a handful of array operations.

Time is the packet timestamp's second.  The caller feeds packets one second
at a time (`update_second`), in capture order; within one second the update
rule collapses to closed forms (see `update_second`), except for records in
their first five hits (`E == S and C < 5`), which are replayed packet by
packet.  Runs of a few packets take the literal per-packet rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ncs.agent.keyindex import KeyIndex, distinct
from ncs.agent.keys import V6_BASE, RemoteKeys
from ncs.stats import writer
from ncs.stats.addresses import AddressKeys
from ncs.stats.columns import NO_NAMES, StatsColumns

FOLD_AFTER = 300  # seconds a record accumulates before its rates fold
MIN_HITS = 5  # a record born at the start keeps accumulating below this many hits
IDLE_PURGE = 86400  # a record idle longer than this is deleted
PURGE_EVERY = 60  # seconds (packet time) between purge scans
DNS_RETRY = 86400  # a sent query that is not answered is retried after this
LOW_WATER = 0.9  # eviction brings the table down to this share of max_hosts
SMALL_RUN = 8  # runs shorter than this use the per-packet path


@dataclass
class GlobalRate:
    """The header's hits-per-minute and bytes-per-second estimates (docs/formats.md, "Header rates")."""

    start: int
    rate: float = 0.0  # hits per hour
    bw: float = 0.0  # bytes per hour
    ra: int = 0  # hits since the last fold
    ba: int = 0  # bytes since the last fold
    next: int = 0  # earliest time of the next fold
    last_fold: int = 0

    def __post_init__(self) -> None:
        if not self.next:
            self.next = self.start + FOLD_AFTER

    def _fold(self, now: int, length: int) -> None:
        d = max(1, now - self.start) if self.rate < 1 else 3600 + now - self.last_fold
        m = 3600 / d
        self.rate = (self.rate + self.ra) * m
        self.bw = (self.bw + self.ba) * m
        self.ra, self.ba = 1, int(length)
        self.next = now + 60
        self.last_fold = now

    def update_second(self, now: int, lengths: np.ndarray) -> None:
        """Account packets all stamped NOW, in order, exactly as the per-packet rule would.

        Per packet: accumulate while now < next or (rate < 1 and ra < 5), else fold.
        """
        n = len(lengths)
        i = 0
        while i < n:
            if now < self.next:
                self.ra += n - i
                self.ba += int(lengths[i:].sum())
                return
            if self.rate < 1 and self.ra < MIN_HITS:
                k = min(MIN_HITS - self.ra, n - i)
                self.ra += k
                self.ba += int(lengths[i:i + k].sum())
                i += k
                continue
            self._fold(now, int(lengths[i]))
            i += 1

    @property
    def hits_per_minute(self) -> float:
        return self.rate / 60

    @property
    def bytes_per_second(self) -> float:
        return self.bw / 3600


class StatsTable:
    """Per-remote records plus global rates for one data set (agent start or HUP to now)."""

    def __init__(self, start: int, keys: RemoteKeys, max_hosts: int = 1_000_000,
                 want_names: bool = True) -> None:
        self.start = start
        self.keys = keys
        self.max_hosts = max(1, max_hosts)
        self.want_names = want_names
        self.rate = GlobalRate(start)
        self.index = KeyIndex()
        self.evicted = 0
        self.purged = 0
        self.next_purge = start + PURGE_EVERY
        self._cap = 0
        self._free: list[int] = []
        self._top = 0  # rows [0, _top) have been handed out
        self.names: dict[int, list[str]] = {}  # row -> names, only for named rows
        self._grow(1024)

    # -- storage -----------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = max(self._cap * 2, need, 1024)
        def grown(arr, dtype):
            new = np.zeros(cap, dtype)
            if arr is not None:
                new[:len(arr)] = arr
            return new
        old = self._cap > 0
        self.B = grown(self.B if old else None, np.int64)
        self.C = grown(self.C if old else None, np.int64)
        self.E = grown(self.E if old else None, np.int64)
        self.L = grown(self.L if old else None, np.int64)
        self.T = grown(self.T if old else None, np.int64)
        self.R = grown(self.R if old else None, np.float64)
        self.W = grown(self.W if old else None, np.float64)
        self.K = grown(self.K if old else None, np.uint64)
        self.alive = grown(self.alive if old else None, bool)
        self._owner = np.zeros(cap, np.int32)  # scratch for _update_existing
        self._cap = cap

    def _allocate(self, n: int) -> np.ndarray:
        """Return N free rows: released ones first, then fresh ones (growing the columns)."""
        reuse = min(n, len(self._free))
        reused = np.array(self._free[len(self._free) - reuse:], dtype=np.int64)
        del self._free[len(self._free) - reuse:]
        fresh = n - reuse
        if self._top + fresh > self._cap:
            self._grow(self._top + fresh)
        rows = np.concatenate([reused, np.arange(self._top, self._top + fresh, dtype=np.int64)])
        self._top += fresh
        return rows

    def __len__(self) -> int:
        return len(self.index)

    # -- updates -----------------------------------------------------------

    def update_second(self, now: int, keys: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Account packets all stamped second NOW, in capture order.

        Returns the keys of touched records whose name is due for a lookup
        (T < now), when names are wanted; an empty array otherwise.
        """
        if now >= self.next_purge:
            self.purge(now)
        self.rate.update_second(now, lengths)
        if len(keys) < SMALL_RUN:
            for key, length in zip(keys.tolist(), lengths.tolist(), strict=True):
                self._record_packet(now, key, length)
            touched = self.index.lookup(distinct(keys)[0])
            touched = touched[touched >= 0]
        else:
            touched = self._record_batch(now, keys, lengths)
        if not self.want_names:
            return np.empty(0, np.uint64)
        touched = touched[touched >= 0]
        return self.K[touched[self.T[touched] < now]]

    def _record_packet(self, now: int, key: int, length: int) -> None:
        row = int(self.index.lookup(np.array([key], np.uint64))[0])
        if row < 0:
            self._insert(now, np.array([key], np.uint64), np.array([1]), np.array([length]))
            return
        self._existing_packet(now, row, length)

    def _existing_packet(self, now: int, row: int, length: int) -> None:
        self.L[row] = now
        E, C = int(self.E[row]), int(self.C[row])
        if now < E + FOLD_AFTER or (E == self.start and C < MIN_HITS):
            self.B[row] += length
            self.C[row] += 1
            return
        m = 3600 / (now - self.start) if E == self.start else 3600 / (3600 + now - E)
        self.R[row] = (float(self.R[row]) + C) * m
        self.W[row] = (float(self.W[row]) + int(self.B[row])) * m
        self.E[row] = now
        self.B[row] = length
        self.C[row] = 1

    def _record_batch(self, now: int, keys: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Account a second's packets with array operations; return the rows touched."""
        slots, ends = self.index.probe(keys)
        rows = self.index.rows_of(slots)
        missing = rows < 0
        old = ~missing
        touched = [np.empty(0, np.int64)]
        if old.any():
            touched.append(self._update_existing(now, rows[old], lengths[old]))
        if missing.any():
            miss = np.flatnonzero(missing)
            new_keys, one, inverse = distinct(keys[miss])
            counts = np.bincount(inverse, minlength=len(new_keys)).astype(np.int64)
            sums = np.bincount(inverse, weights=lengths[miss],
                               minlength=len(new_keys)).astype(np.int64)
            touched.append(self._insert(now, new_keys, counts, sums, ends[miss[one]]))
        return np.concatenate(touched)

    def _update_existing(self, now: int, rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Fold a second's packets into existing ROWS (one entry per packet, in order)."""
        n = len(rows)
        # One representative packet per distinct row, found without sorting: every
        # packet writes its index into its row's slot, the last write wins.
        position = np.arange(n, dtype=np.int32)
        self._owner[rows] = position
        group = self._owner[rows]
        first_rep = group == position
        r = rows[first_rep]
        counts = np.bincount(group, minlength=n)[first_rep].astype(np.int64)
        sums = np.bincount(group, weights=lengths, minlength=n)[first_rep].astype(np.int64)
        E, C = self.E[r], self.C[r]
        self.L[r] = now
        accumulate = now < E + FOLD_AFTER
        young = ~accumulate & (E == self.start) & (C < MIN_HITS)
        fold = ~accumulate & ~young
        ra = r[accumulate]
        self.B[ra] += sums[accumulate]
        self.C[ra] += counts[accumulate]
        if fold.any():
            rf = r[fold]
            Ef = E[fold]
            # m = 3600/(now - S) for a record never folded, else 3600/(3600 + now - E)
            d = np.where(Ef == self.start, now - self.start, 3600 + now - Ef).astype(np.float64)
            m = 3600.0 / d
            self.R[rf] = (self.R[rf] + C[fold]) * m
            self.W[rf] = (self.W[rf] + self.B[rf]) * m
            self.E[rf] = now
            self.B[rf] = sums[fold]
            self.C[rf] = counts[fold]
        if young.any():
            # Records in their first five hits: the fold may fall mid-second, so
            # replay their packets one by one, in order.
            replay = np.isin(rows, r[young])
            for row, length in zip(rows[replay].tolist(), lengths[replay].tolist(), strict=True):
                self._existing_packet(now, row, length)
        return r

    def _insert(self, now: int, keys: np.ndarray, counts: np.ndarray, sums: np.ndarray,
                starts: np.ndarray | None = None) -> np.ndarray:
        """Create records for new KEYS (sorted); returns their rows (-1 for keys refused).

        STARTS are the index's probe ends for KEYS (see KeyIndex.insert), if known.
        """
        result = np.full(len(keys), -1, np.int64)
        keep = np.ones(len(keys), bool)
        if len(self) + len(keys) > self.max_hosts:
            keep = self._evict_for(now, keys)
            keys, counts, sums = keys[keep], counts[keep], sums[keep]
            starts = None if starts is None else starts[keep]
        fresh = not self._free
        rows = self._allocate(len(keys))
        # Fresh rows are one run past every row handed out so far, and still
        # zero from _grow: slices instead of scattered writes, and T, R, W as they are.
        at = slice(int(rows[0]), int(rows[-1]) + 1) if fresh and len(rows) else rows
        self.B[at] = sums
        self.C[at] = counts
        self.E[at] = now
        self.L[at] = now
        if not fresh:
            self.T[at] = 0
            self.R[at] = 0.0
            self.W[at] = 0.0
        self.K[at] = keys
        self.alive[at] = True
        self.index.insert(keys, rows, starts)
        result[keep] = rows
        return result

    def _evict_for(self, now: int, incoming: np.ndarray) -> np.ndarray:
        """Make room for INCOMING keys: evict down to the low-water mark.

        Candidates are the existing records and the incoming ones (which count
        as W = 0, E = now); the lowest W go first, then the oldest E, then the
        lowest key.  Returns the mask of incoming keys that stay.
        """
        low = max(0, int(self.max_hosts * LOW_WATER))
        excess = len(self) + len(incoming) - low
        rows = np.nonzero(self.alive[:self._top])[0]
        W = np.concatenate([self.W[rows], np.zeros(len(incoming))])
        E = np.concatenate([self.E[rows], np.full(len(incoming), now, np.int64)])
        K = np.concatenate([self.K[rows], incoming])
        order = np.lexsort((K, E, W))[:excess]
        is_old = order < len(rows)
        self._remove_rows(rows[order[is_old]])
        self.evicted += int(excess)
        keep = np.ones(len(incoming), bool)
        keep[order[~is_old] - len(rows)] = False
        self.keys.release(incoming[~keep])
        return keep

    def _remove_rows(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        keys = np.sort(self.K[rows])
        self.index.remove(keys)
        self.keys.release(keys)
        self.alive[rows] = False
        for row in rows.tolist():
            self.names.pop(row, None)
        self._free.extend(rows.tolist())

    def purge(self, now: int) -> int:
        """Delete records idle for more than a day; return how many."""
        top = self._top
        stale = np.nonzero(self.alive[:top] & (self.E[:top] + IDLE_PURGE < now))[0]
        self._remove_rows(stale)
        self.purged += len(stale)
        self.next_purge = now + PURGE_EVERY
        return len(stale)

    # -- names -------------------------------------------------------------

    def row_of(self, address: str) -> int:
        """Return the row of ADDRESS, or -1."""
        key = self.keys.key_of_text(address)
        if key is None:
            return -1
        return int(self.index.lookup(np.array([key], np.uint64))[0])

    def lookup_sent(self, address: str, now: int) -> None:
        """Record that a PTR query for ADDRESS went out at NOW: retry in a day."""
        row = self.row_of(address)
        if row >= 0:
            self.T[row] = now + DNS_RETRY

    def set_names(self, address: str, names: list[str], expires: int) -> None:
        """Store the answer of a reverse lookup (ignored if the record is gone)."""
        row = self.row_of(address)
        if row >= 0:
            self.names[row] = list(names)
            self.T[row] = expires

    # -- output ------------------------------------------------------------

    def ordered_rows(self) -> np.ndarray:
        """Return the rows of every record in file order: IPv4 numerically first, then IPv6."""
        rows = np.nonzero(self.alive[:self._top])[0]
        keys = self.K[rows]
        v4 = keys < (1 << 32)
        # An IPv4 key and a row (both below 2**32) packed in one uint64 sort by
        # key, and sorting values is three times faster than argsort.
        low32 = np.uint64(0xFFFFFFFF)
        packed = np.sort((keys[v4] << np.uint64(32)) | rows[v4].astype(np.uint64))
        order4 = (packed & low32).astype(np.int64)
        rows6 = rows[~v4]
        return np.concatenate([order4, rows6[self.keys.v6_order(keys[~v4])]])

    def columns(self, rows: np.ndarray) -> StatsColumns:
        """Return ROWS (from `ordered_rows`) as a table of columns, without a header."""
        keys = self.K[rows]
        is6 = keys >= np.uint64(V6_BASE)
        hi = np.zeros(len(rows), np.uint64)
        lo = keys.copy()
        if is6.any():
            hi[is6], lo[is6] = self.keys.v6_halves(keys[is6])
        numbers = {"B": self.B[rows], "C": self.C[rows], "E": self.E[rows], "L": self.L[rows],
                   "R": self.R[rows], "S": np.full(len(rows), self.start, np.int64),
                   "T": self.T[rows], "W": self.W[rows]}
        get = self.names.get
        names = [get(row, NO_NAMES) for row in rows.tolist()] if self.names else [NO_NAMES] * len(rows)
        return StatsColumns([], AddressKeys(is6, hi, lo), numbers, names)

    def record_blocks(self, spool_dir: str | None = None) -> Iterator[bytes | bytearray]:
        """Yield the record blocks of a dump, in file order.

        A big table is written on two cores; the second half waits in an
        unlinked file in SPOOL_DIR (in memory if None) until it is its turn.
        """
        order = self.ordered_rows()
        v6_rows = int(np.count_nonzero(self.K[order] >= np.uint64(V6_BASE)))
        return writer.table_blocks(lambda a, b: writer.chunk_blocks(self.columns(order[a:b])), len(order),
                                   v6_rows, spool_dir)
