"""Remote keys: the agent's index handle of a remote address, one uint64 that its hash index can take.

An IPv4 address is its own key (below 2**32).  An IPv6 address gets a
surrogate key from 2**32 up, handed out on first sight and returned with
`release` when its record is deleted, so a flood of spoofed IPv6 sources
cannot grow this map beyond the table's bound.  Surrogates say nothing about
order: the table turns its rows into the shared address keys
(`ncs.stats.addresses.AddressKeys`) when it writes them.
"""

from __future__ import annotations

import ipaddress
import socket

import numpy as np

from ncs.agent.keyindex import KeyIndex, distinct

V6_BASE = 1 << 32
_LOW64 = (1 << 64) - 1


_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xC2B2AE3D27D4EB4F)


def _digest(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """A 62-bit digest of an IPv6 address (below the hash table's sentinel values)."""
    return ((hi * _MIX1) ^ (lo * _MIX2) ^ (hi >> np.uint64(29))) >> np.uint64(2)


class RemoteKeys:
    """Maps remote addresses to uint64 keys and back.

    IPv6 surrogates index the arrays `_hi`/`_lo` (the address halves).  A
    numpy hash from a digest of the address to its slot finds the surrogates
    of a whole batch at once; every hit is checked against the stored halves.
    The rare address whose digest is taken by another one lives in
    `_overflow`, so a digest collision never merges two addresses.
    """

    def __init__(self) -> None:
        self._digests = KeyIndex()
        self._overflow: dict[int, int] = {}  # address value -> slot, for digest collisions
        self._hi = np.zeros(1024, np.uint64)
        self._lo = np.zeros(1024, np.uint64)
        self._used = np.zeros(1024, bool)
        self._next = 0  # slots [0, _next) have been handed out
        self._free: list[int] = []

    def _allocate(self, n: int) -> np.ndarray:
        reuse = min(n, len(self._free))
        reused = np.array(self._free[len(self._free) - reuse:], np.int64)[::-1]
        del self._free[len(self._free) - reuse:]
        fresh = n - reuse
        if self._next + fresh > len(self._hi):
            size = max(2 * len(self._hi), self._next + fresh)
            self._hi = np.concatenate([self._hi, np.zeros(size - len(self._hi), np.uint64)])
            self._lo = np.concatenate([self._lo, np.zeros(size - len(self._lo), np.uint64)])
            self._used = np.concatenate([self._used, np.zeros(size - len(self._used), bool)])
        slots = np.concatenate([reused, np.arange(self._next, self._next + fresh, dtype=np.int64)])
        self._next += fresh
        return slots

    def _verified(self, at: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Return AT (slots the digest index gave) with -1 where the slot holds another
        address, and slots from the overflow map for the addresses it holds."""
        hit = at >= 0
        hit[hit] = (self._hi[at[hit]] == hi[hit]) & (self._lo[at[hit]] == lo[hit])
        at[~hit] = -1
        if self._overflow and not hit.all():
            for i in np.flatnonzero(~hit).tolist():
                at[i] = self._overflow.get((int(hi[i]) << 64) | int(lo[i]), -1)
        return at

    def _find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Slots of known addresses, -1 for unknown ones."""
        return self._verified(self._digests.lookup(_digest(hi, lo)), hi, lo)

    def v6_keys(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Return the keys of the IPv6 addresses given as high and low 64-bit halves."""
        digest = _digest(hi, lo)
        found, ends = self._digests.probe(digest)
        at = self._verified(self._digests.rows_of(found), hi, lo)
        miss = np.flatnonzero(at < 0)
        if len(miss):
            at[miss] = self._add_all(hi[miss], lo[miss], digest[miss], found[miss] >= 0, ends[miss])
        return at.astype(np.uint64) + np.uint64(V6_BASE)

    def _add_all(self, hi: np.ndarray, lo: np.ndarray, digest: np.ndarray, taken: np.ndarray,
                 ends: np.ndarray) -> np.ndarray:
        """Give unknown addresses (repeats allowed) slots; return the slot of each.

        TAKEN tells which digests the index holds (for other addresses), ENDS
        are the index's probe ends for the others (see KeyIndex.insert).
        """
        # Group the repeats by digest (a sort of uint64, much cheaper than
        # grouping 16-byte addresses), unless two addresses share a digest.
        _, one, inverse = distinct(digest)
        if not ((hi[one][inverse] == hi) & (lo[one][inverse] == lo)).all():
            pairs = np.ascontiguousarray(np.stack([hi, lo], axis=1)).view(np.dtype((np.void, 16)))
            _, one, inverse = np.unique(pairs.ravel(), return_index=True, return_inverse=True)
        # Slots are handed out in the order of the addresses' bytes in memory,
        # as np.unique of the 16-byte pairs used to order them.
        order = np.lexsort((lo[one].byteswap(), hi[one].byteswap()))
        one = one[order]
        rank = np.empty(len(order), np.intp)
        rank[order] = np.arange(len(order))
        slots = self._add(hi[one], lo[one], digest[one], taken[one], ends[one])
        return slots[rank[inverse.ravel()]]

    def _add(self, hi: np.ndarray, lo: np.ndarray, digest: np.ndarray, taken: np.ndarray,
             ends: np.ndarray) -> np.ndarray:
        """Give new, distinct addresses slots; return the slots."""
        slots = self._allocate(len(hi))
        self._hi[slots], self._lo[slots], self._used[slots] = hi, lo, True
        first = np.zeros(len(hi), bool)
        first[distinct(digest)[1]] = True
        indexed = first & ~taken
        self._digests.insert(digest[indexed], slots[indexed], ends[indexed])
        for j in np.flatnonzero(~indexed).tolist():
            self._overflow[(int(hi[j]) << 64) | int(lo[j])] = int(slots[j])
        return slots

    def _halves(self, value: int) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([value >> 64], np.uint64), np.array([value & _LOW64], np.uint64))

    def key_of_packed(self, packed: bytes) -> int:
        """Return the key of a 4- or 16-byte packed address."""
        value = int.from_bytes(packed, "big")
        return value if len(packed) == 4 else int(self.v6_keys(*self._halves(value))[0])

    def key_of_text(self, address: str) -> int | None:
        """Return the key of ADDRESS if it has one (IPv6 only once seen), else None."""
        ip = ipaddress.ip_address(address)
        if ip.version == 4:
            return int(ip)
        at = int(self._find(*self._halves(int(ip)))[0])
        return None if at < 0 else V6_BASE + at

    def address(self, key: int) -> str:
        """Return the address text of KEY."""
        if key < V6_BASE:
            return f"{key >> 24}.{(key >> 16) & 255}.{(key >> 8) & 255}.{key & 255}"
        at = key - V6_BASE
        value = (int(self._hi[at]) << 64) | int(self._lo[at])
        return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))

    def v6_halves(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the high and low 64-bit halves of the addresses of IPv6 KEYS."""
        at = (keys - np.uint64(V6_BASE)).astype(np.int64)
        return self._hi[at], self._lo[at]

    def v6_order(self, keys: np.ndarray) -> np.ndarray:
        """Return the permutation that sorts IPv6 KEYS by address."""
        at = (keys - np.uint64(V6_BASE)).astype(np.int64)
        return np.lexsort((self._lo[at], self._hi[at]))

    def release(self, keys: np.ndarray) -> None:
        """Forget the IPv6 surrogates among KEYS (their records are gone)."""
        at = (keys[keys >= V6_BASE] - np.uint64(V6_BASE)).astype(np.int64)
        at = distinct(at[self._used[at]])[0]
        if len(at) == 0:
            return
        digest = _digest(self._hi[at], self._lo[at])
        mine = self._digests.lookup(digest) == at  # the digest may index another address
        self._digests.remove(digest[mine])
        if self._overflow:
            gone = set(at.tolist())
            self._overflow = {v: s for v, s in self._overflow.items() if s not in gone}
        self._used[at] = False
        self._free.extend(at.tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(self._used[: self._next]))
