"""A hash index from addresses (`AddressKeys`) to the rows of a growing table that holds them.

The streaming merge (`ncs.stats.streammerge`) finds the composite row of
every address of an arriving table through it.  The index stores only row
numbers (int32, 4 bytes a slot): the keys themselves stay in the table's
own columns, and a probe compares the query with the keys at the rows it
meets.  So the whole 129-bit key (IPv4 or IPv6, and the value) decides,
with no digest that two addresses could share, and the index costs 8 to 20
bytes per address.  Every operation takes whole arrays of keys: a table of
50,000 addresses is a few numpy passes, not 50,000 Python steps.
"""

from __future__ import annotations

import numpy as np

from ncs.stats.addresses import AddressKeys

#: A slot that holds no row.
_FREE = np.int32(-1)
_MIX_HI = np.uint64(0xC2B2AE3D27D4EB4F)
_MIX_V6 = np.uint64(0x165667B19E3779F9)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
#: Slots per address after a rebuild, at least (rounded up to a power of two):
#: the index is rebuilt when more than half its slots are taken, so between
#: 20 % and 50 % of them are in use, 8-20 bytes per address.
_SPREAD = 2.5
#: Rows hashed and placed at once by a rebuild (bounds its temporaries to a few MiB).
_REBUILD_ROWS = 1 << 18


class AddressIndex:
    """Address -> row of a table whose key columns the caller passes to every call.

    Open addressing with linear probing, at most half full.  Rows are only
    added, never removed (a composite only grows).  The caller keeps the
    table's keys and hands them in as `stored` (the first `len(self)` rows
    must be the indexed ones).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._alloc(capacity)
        self.used = 0

    def _alloc(self, addresses: int) -> None:
        self.bits = max(4, int(_SPREAD * max(addresses, 1)).bit_length())
        self.mask = np.uint64((1 << self.bits) - 1)
        self.slots = np.full(1 << self.bits, _FREE, np.int32)

    def __len__(self) -> int:
        return self.used

    def _home(self, keys: AddressKeys) -> np.ndarray:
        """Return the first slot to probe for each key: the top bits of a mix of the whole key.

        The mix is splitmix64's finaliser: every bit of the key moves every
        bit of the result, so runs of consecutive addresses (a site's
        subnets) spread over the slots instead of forming long runs that a
        probe must walk.
        """
        x = keys.lo ^ (keys.hi * _MIX_HI) ^ (keys.is6.astype(np.uint64) * _MIX_V6)
        x ^= x >> np.uint64(30)
        x *= _MIX_1
        x ^= x >> np.uint64(27)
        x *= _MIX_2
        x ^= x >> np.uint64(31)
        return x >> np.uint64(64 - self.bits)

    def _step(self, slot: np.ndarray) -> np.ndarray:
        return (slot + np.uint64(1)) & self.mask

    def lookup(self, query: AddressKeys, stored: AddressKeys) -> tuple[np.ndarray, np.ndarray]:
        """Return (row of each QUERY key or -1, the free slot where each absent key's probe ended).

        STORED are the table's keys.  The second array is meaningful only
        where the first is -1: `insert` starts there for the same keys.
        """
        n = len(query)
        rows = np.full(n, -1, np.int64)
        ends = np.zeros(n, np.uint64)
        todo = np.arange(n)
        slot = self._home(query)
        while len(todo):
            held = self.slots[slot].astype(np.int64)
            free = held < 0
            ends[todo[free]] = slot[free]
            taken = np.flatnonzero(~free)
            at = held[taken]
            asked = todo[taken]
            same = ((stored.lo[at] == query.lo[asked]) & (stored.hi[at] == query.hi[asked])
                    & (stored.is6[at] == query.is6[asked]))
            rows[asked[same]] = at[same]
            go = taken[~same]
            todo, slot = todo[go], self._step(slot[go])
        return rows, ends

    def insert(self, keys: AddressKeys, rows: np.ndarray, ends: np.ndarray | None,
               stored: AddressKeys) -> None:
        """Index KEYS (distinct, absent) as ROWS of the table whose keys are STORED.

        ENDS are `lookup`'s probe ends for these keys (nothing inserted in
        between), or None.  STORED must already hold KEYS at ROWS: a grown
        index is rebuilt from it.
        """
        if 2 * (self.used + len(keys)) > len(self.slots):
            self.used += len(keys)
            self._rebuild(stored.take(slice(0, self.used)))
            return
        self._place(self._home(keys) if ends is None else ends, rows.astype(np.int32))
        self.used += len(keys)

    def _place(self, slot: np.ndarray, rows: np.ndarray) -> None:
        """Put ROWS in the first free slot at or after each of SLOT (every row a different key)."""
        while len(rows):
            free = self.slots[slot] < 0
            candidates, wanted = slot[free], rows[free]
            # Two rows may want one free slot: the last write wins it, the rest probe on.
            self.slots[candidates] = wanted
            won = np.zeros(len(rows), bool)
            won[free] = self.slots[candidates] == wanted
            rows, slot = rows[~won], self._step(slot[~won])

    def _rebuild(self, stored: AddressKeys) -> None:
        """Make the slot array `_SPREAD` times the addresses or more and index every row of STORED.

        The rows go in by `_REBUILD_ROWS` at a time: hashing and placing
        millions at once held a few 8-byte temporaries per row, the
        coalescer's peak memory.
        """
        self._alloc(len(stored))
        for start in range(0, len(stored), _REBUILD_ROWS):
            stop = min(start + _REBUILD_ROWS, len(stored))
            self._place(self._home(stored.take(slice(start, stop))),
                        np.arange(start, stop, dtype=np.int32))
