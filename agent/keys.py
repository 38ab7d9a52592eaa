"""Remote keys: one uint64 per remote address, so numpy can sort and group them.

An IPv4 address is its own key (below 2**32).  An IPv6 address gets a
surrogate key from 2**32 up, handed out on first sight and returned with
`release` when its record is deleted, so a flood of spoofed IPv6 sources
cannot grow this map beyond the table's bound.
"""

from __future__ import annotations

import ipaddress
import socket

import numpy as np

V6_BASE = 1 << 32
_LOW64 = (1 << 64) - 1


_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xC2B2AE3D27D4EB4F)


def _digest(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """A 62-bit digest of an IPv6 address (below the hash table's sentinel values)."""
    return ((hi * _MIX1) ^ (lo * _MIX2) ^ (hi >> np.uint64(29))) >> np.uint64(2)


class RemoteKeys:
    """Maps remote addresses to uint64 keys and back.

    The dicts are the truth for IPv6; a numpy hash keyed by a digest of the
    address lets a batch find the surrogates of known addresses without a
    Python loop, every hit being checked against the stored halves.
    """

    def __init__(self) -> None:
        from agent.table import KeyIndex  # the same vectorised hash the table uses

        self._v6_key: dict[int, int] = {}
        self._key_v6: dict[int, int] = {}
        self._next = V6_BASE
        self._free: list[int] = []
        self._digests = KeyIndex()
        self._hi = np.zeros(1024, np.uint64)
        self._lo = np.zeros(1024, np.uint64)

    def _v6(self, value: int) -> int:
        key = self._v6_key.get(value)
        if key is None:
            if self._free:
                key = self._free.pop()
            else:
                key = self._next
                self._next += 1
            self._v6_key[value] = key
            self._key_v6[key] = value
            at = key - V6_BASE
            if at >= len(self._hi):
                self._hi = np.concatenate([self._hi, np.zeros(len(self._hi), np.uint64)])
                self._lo = np.concatenate([self._lo, np.zeros(len(self._lo), np.uint64)])
            self._hi[at], self._lo[at] = value >> 64, value & _LOW64
        return key

    def v6_keys(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Return the keys of the IPv6 addresses given as high and low 64-bit halves."""
        digest = _digest(hi, lo)
        at = self._digests.lookup(digest)
        known = at >= 0
        known[known] = (self._hi[at[known]] == hi[known]) & (self._lo[at[known]] == lo[known])
        keys = np.empty(len(hi), np.uint64)
        keys[known] = at[known].astype(np.uint64) + np.uint64(V6_BASE)
        if not known.all():
            miss = np.nonzero(~known)[0]
            fresh: dict[int, int] = {}
            for i, h, low, d in zip(miss.tolist(), hi[miss].tolist(), lo[miss].tolist(),
                                    digest[miss].tolist()):
                key = self._v6((h << 64) | low)
                keys[i] = key
                fresh.setdefault(d, key - V6_BASE)
            if fresh:
                ds = np.fromiter(fresh, np.uint64, len(fresh))
                offs = np.fromiter(fresh.values(), np.int64, len(fresh))
                absent = self._digests.lookup(ds) < 0  # a digest collision keeps the dict path
                self._digests.insert(ds[absent], offs[absent])
        return keys

    def key_of_packed(self, packed: bytes) -> int:
        """Return the key of a 4- or 16-byte packed address."""
        value = int.from_bytes(packed, "big")
        return value if len(packed) == 4 else self._v6(value)

    def key_of_text(self, address: str) -> int | None:
        """Return the key of ADDRESS if it has one (IPv6 only once seen), else None."""
        ip = ipaddress.ip_address(address)
        if ip.version == 4:
            return int(ip)
        return self._v6_key.get(int(ip))

    def address(self, key: int) -> str:
        """Return the address text of KEY."""
        if key < V6_BASE:
            return f"{key >> 24}.{(key >> 16) & 255}.{(key >> 8) & 255}.{key & 255}"
        return socket.inet_ntop(socket.AF_INET6, self._key_v6[key].to_bytes(16, "big"))

    def v6_order(self, keys: np.ndarray) -> np.ndarray:
        """Return the permutation that sorts IPv6 KEYS by address."""
        at = (keys - np.uint64(V6_BASE)).astype(np.int64)
        return np.lexsort((self._lo[at], self._hi[at]))

    def release(self, keys: np.ndarray) -> None:
        """Forget the IPv6 surrogates among KEYS (their records are gone)."""
        gone = []
        for key in keys[keys >= V6_BASE].tolist():
            value = self._key_v6.pop(key, None)
            if value is not None:
                del self._v6_key[value]
                self._free.append(key)
                gone.append(key - V6_BASE)
        if gone:
            at = np.array(gone, np.int64)
            digest = _digest(self._hi[at], self._lo[at])
            mine = self._digests.lookup(digest) == at  # the digest may belong to another address
            self._digests.remove(digest[mine])

    def __len__(self) -> int:
        return len(self._v6_key)
