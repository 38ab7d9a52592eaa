"""A vectorised hash index: uint64 keys to rows, for whole arrays of keys at a time.

The agent's table finds the record of every packet of a batch through it,
and `agent.keys` finds IPv6 surrogates through it.
"""

from __future__ import annotations

import numpy as np


def distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (the distinct VALUES sorted, the index of one occurrence of each, the
    position of each value in the first array).

    Like np.unique with return_index and return_inverse, by sorting: numpy 2's
    np.unique without indices hashes, which is several times slower on keys.
    """
    order = np.argsort(values)
    ordered = values[order]
    head = np.ones(len(values), bool)
    np.not_equal(ordered[1:], ordered[:-1], out=head[1:])
    inverse = np.empty(len(values), np.intp)
    inverse[order] = np.cumsum(head) - 1
    return ordered[head], order[head], inverse


EMPTY = np.uint64(2**64 - 1)  # never a key: keys are below 2**32 + 2**64 - 2 in practice
TOMB = np.uint64(2**64 - 2)  # a deleted slot: lookups probe past it, inserts reuse it
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class KeyIndex:
    """uint64 key -> row: an open-addressing hash table probed with vectorised numpy.

    Linear probing at a load of at most one half; every operation handles a
    whole array of keys per probing round, so a batch of thousands of packets
    costs a few array passes, not thousands of Python calls.  Rows are int32
    (the table holds at most 2**31 - 1 records), which keeps the index at 12
    bytes a slot.
    """

    def __init__(self, capacity: int = 1 << 12) -> None:
        self._alloc(capacity)
        self.used = 0
        self.tombs = 0

    def _alloc(self, capacity: int) -> None:
        self.bits = max(4, int(capacity - 1).bit_length())
        self.mask = np.uint64((1 << self.bits) - 1)
        self.skeys = np.full(1 << self.bits, EMPTY, np.uint64)
        # Filled although only read where skeys holds a key: touching the pages
        # in order now costs less than faulting them in one by one on random writes.
        self.srows = np.full(1 << self.bits, -1, np.int32)

    def __len__(self) -> int:
        return self.used

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        # Fibonacci hashing: the high bits of key * 2**64/phi spread nearby addresses.
        return (keys * _GOLDEN) >> np.uint64(64 - self.bits)

    def probe(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (slot holding each key of QUERY or -1, slot where each absent key's probe ended).

        The second array is meaningful only where the first is -1: the empty
        slot an insert of that key can start from (see `insert`).
        """
        slot = self._hash(query)
        sk = self.skeys[slot]
        hit = sk == query
        empty = sk == EMPTY
        # most probes end at the home slot: settle them without index arrays
        home = slot.astype(np.int64)
        found = np.where(hit, home, -1)
        ends = np.where(empty, home, -1)
        pending = np.flatnonzero(~(hit | empty))
        q = query[pending]
        slot = (slot[pending] + np.uint64(1)) & self.mask
        while len(pending):
            sk = self.skeys[slot]
            hit = sk == q
            empty = sk == EMPTY
            found[pending[hit]] = slot[hit]
            ends[pending[empty]] = slot[empty]
            go = np.flatnonzero(~(hit | empty))
            pending, q, slot = pending[go], q[go], (slot[go] + np.uint64(1)) & self.mask
        return found, ends

    def slots(self, query: np.ndarray) -> np.ndarray:
        """Return the slot holding each key of QUERY, -1 where absent."""
        return self.probe(query)[0]

    def rows_of(self, slots: np.ndarray) -> np.ndarray:
        """Return the rows stored at SLOTS (from `probe`), -1 where a slot is -1."""
        found = slots >= 0
        rows = np.full(len(slots), -1, np.int64)
        rows[found] = self.srows[slots[found]]
        return rows

    def lookup(self, query: np.ndarray) -> np.ndarray:
        """Return the row of each key in QUERY, -1 where absent."""
        return self.rows_of(self.slots(query))

    def insert(self, keys: np.ndarray, rows: np.ndarray, starts: np.ndarray | None = None) -> None:
        """Add KEYS (unique, absent) with their ROWS.

        STARTS, if given, are the probe ends `probe` returned for KEYS; probing
        resumes there instead of at each key's home slot.  They stay valid
        across inserts and removals (which never empty a slot) and are ignored
        when this insert has to grow the index.
        """
        if 2 * (self.used + self.tombs + len(keys)) > len(self.skeys):
            self._rehash(self.used + len(keys))
            starts = None
        self._place(keys, rows, self._hash(keys) if starts is None else starts.astype(np.uint64))
        self.used += len(keys)

    def _place(self, keys: np.ndarray, rows: np.ndarray, slot: np.ndarray) -> None:
        """Store KEYS and ROWS, probing forward from SLOT."""
        while len(keys):
            sk = self.skeys[slot]
            free = (sk == EMPTY) | (sk == TOMB) if self.tombs else sk == EMPTY
            fs = slot[free]
            fk = keys[free]
            self.skeys[fs] = fk  # several keys may race for one slot: one wins
            won = np.zeros(len(keys), bool)
            won[free] = self.skeys[fs] == fk
            self.srows[slot[won]] = rows[won]
            if self.tombs:
                self.tombs -= int(np.count_nonzero(sk[won] == TOMB))
            lost = np.flatnonzero(~won)
            keys, rows, slot = keys[lost], rows[lost], (slot[lost] + np.uint64(1)) & self.mask

    def _rehash(self, live: int) -> None:
        keep = self.skeys < TOMB
        keys, rows = self.skeys[keep], self.srows[keep]
        self._alloc(4 * max(live, 1024))
        self.tombs = 0
        self._place(keys, rows, self._hash(keys))

    def remove(self, keys: np.ndarray) -> None:
        """Drop KEYS (present ones) from the index."""
        slots = self.slots(keys)
        slots = slots[slots >= 0]
        self.skeys[slots] = TOMB
        self.used -= len(slots)
        self.tombs += len(slots)
