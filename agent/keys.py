"""Remote keys: one uint64 per remote address, so numpy can sort and group them.

An IPv4 address is its own key (below 2**32).  An IPv6 address gets a
surrogate key from 2**32 up, handed out on first sight and returned with
`release` when its record is deleted, so a flood of spoofed IPv6 sources
cannot grow this map beyond the table's bound.
"""

from __future__ import annotations

import ipaddress

import numpy as np

V6_BASE = 1 << 32
_LOW64 = (1 << 64) - 1


class RemoteKeys:
    """Maps remote addresses to uint64 keys and back."""

    def __init__(self) -> None:
        self._v6_key: dict[int, int] = {}
        self._key_v6: dict[int, int] = {}
        self._next = V6_BASE
        self._free: list[int] = []

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
        return key

    def v6_keys(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Return the keys of the IPv6 addresses given as high and low 64-bit halves."""
        pairs = np.stack([hi, lo], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        ukeys = np.array([self._v6((int(h) << 64) | int(low)) for h, low in uniq.tolist()],
                         dtype=np.uint64)
        return ukeys[inverse.ravel()]

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
        return str(ipaddress.IPv6Address(self._key_v6[key]))

    def sort_value(self, key: int) -> tuple[int, int]:
        """Return a sort key putting IPv4 first (numerically), then IPv6 numerically."""
        if key < V6_BASE:
            return (4, key)
        return (6, self._key_v6[key])

    def release(self, keys: np.ndarray) -> None:
        """Forget the IPv6 surrogates among KEYS (their records are gone)."""
        for key in keys[keys >= V6_BASE].tolist():
            value = self._key_v6.pop(key, None)
            if value is not None:
                del self._v6_key[value]
                self._free.append(key)

    def __len__(self) -> int:
        return len(self._v6_key)
