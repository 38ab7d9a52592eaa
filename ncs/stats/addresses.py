"""Addresses as numbers: the one key scheme that orders, groups and merges records.

A column of addresses is three numpy columns (`AddressKeys`): `is6`, and the
address value split into `hi` and `lo` 64-bit halves (an IPv4 address is
`lo`, with `hi` 0).  Ascending keys are the file's order: IPv4 numerically,
then IPv6 numerically.  One address alone has the same order as a Python
int, `address_key`: the IPv4 value, or 2**32 plus the IPv6 value.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from itertools import compress

import numpy as np

#: Added to an IPv6 value in `address_key`, so that every IPv4 key sorts first.
V6_OFFSET = 1 << 32

_PTON4 = functools.partial(socket.inet_pton, socket.AF_INET)
_PTON6 = functools.partial(socket.inet_pton, socket.AF_INET6)
_NTOP6 = functools.partial(socket.inet_ntop, socket.AF_INET6)


def address_key(address: str) -> int:
    """Return the sort key of address text: the IPv4 value, or 2**32 + the IPv6 value.

    Accepts what the stats file reader accepts: a dotted quad without leading
    zeros, or an IPv6 address without a zone.  Raises ValueError otherwise.
    """
    try:
        if ":" in address:
            return V6_OFFSET + int.from_bytes(_PTON6(address), "big")
        return int.from_bytes(_PTON4(address), "big")
    except (OSError, ValueError):
        raise ValueError(f"not an IP address: {address!r}") from None


def is_address(text: str) -> bool:
    """Return whether TEXT is an address `address_key` accepts."""
    try:
        address_key(text)
    except ValueError:
        return False
    return True


def split_key(key: int) -> tuple[int, int]:
    """Return (IP version, address value) of an `address_key`."""
    return (6, key - V6_OFFSET) if key >= V6_OFFSET else (4, key)


def key_text(key: int) -> str:
    """Return the canonical text (inet_ntop's) of the address of an `address_key`."""
    version, value = split_key(key)
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def network_label(key: int, v4_prefix: int, v6_prefix: int) -> str:
    """Return the network ("198.51.100.0/24", "2001:db8::/64") holding the address of KEY."""
    version, value = split_key(key)
    width, prefix = (32, v4_prefix) if version == 4 else (128, v6_prefix)
    shift = width - prefix
    network = (value >> shift) << shift
    # inet_ntop is the C formatter; ipaddress's str() costs tens of
    # microseconds per IPv6 network, which adds up over 100k groups.
    return f"{key_text(network + (V6_OFFSET if version == 6 else 0))}/{prefix}"


def pack_addresses(addresses: list[str]) -> tuple[list[bool], bytes, bytes]:
    """Return (IPv6 flag of each address, inet_pton bytes of the IPv4 ones, of the IPv6 ones).

    Raises OSError (or ValueError for an embedded NUL) when one is not an address.
    """
    v6 = [":" in a for a in addresses]
    packed4 = b"".join(map(_PTON4, compress(addresses, [not f for f in v6])))
    packed6 = b"".join(map(_PTON6, compress(addresses, v6)))
    return v6, packed4, packed6


def ntop6_texts(packed6: bytes) -> list[str]:
    """Return inet_ntop's texts of IPv6 addresses given as inet_pton bytes, 16 each (`pack_addresses`)."""
    view = memoryview(packed6)
    return list(map(_NTOP6, [view[i:i + 16] for i in range(0, len(view), 16)]))


@dataclass(frozen=True, slots=True)
class AddressKeys:
    """A column of addresses as numbers: row i is IPv6 if `is6[i]`, value `hi[i] * 2**64 + lo[i]`."""

    is6: np.ndarray
    hi: np.ndarray
    lo: np.ndarray

    @classmethod
    def empty(cls) -> AddressKeys:
        """Return keys of no address."""
        return cls(np.zeros(0, bool), np.zeros(0, np.uint64), np.zeros(0, np.uint64))

    @classmethod
    def of(cls, addresses: list[str]) -> AddressKeys:
        """Return the keys of address texts; raises ValueError naming the first that is not one."""
        try:
            return cls.from_packed(*pack_addresses(addresses))
        except (OSError, ValueError):
            for a in addresses:
                address_key(a)  # raises for the first bad one
            raise

    @classmethod
    def from_packed(cls, v6: list[bool], packed4: bytes, packed6: bytes) -> AddressKeys:
        """Return the keys of addresses given their IPv6 flags and inet_pton bytes (`pack_addresses`)."""
        n = len(v6)
        is6 = np.array(v6, dtype=bool) if n else np.zeros(0, dtype=bool)
        hi = np.zeros(n, dtype=np.uint64)
        lo = np.zeros(n, dtype=np.uint64)
        lo[~is6] = np.frombuffer(packed4, dtype=">u4")
        words = np.frombuffer(packed6, dtype=">u8").reshape(-1, 2)
        hi[is6] = words[:, 0]
        lo[is6] = words[:, 1]
        return cls(is6, hi, lo)

    @classmethod
    def concat(cls, parts: list[AddressKeys]) -> AddressKeys:
        """Return the keys of PARTS one after the other."""
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.is6 for p in parts]), np.concatenate([p.hi for p in parts]),
                   np.concatenate([p.lo for p in parts]))

    def __len__(self) -> int:
        return len(self.is6)

    def take(self, rows: np.ndarray | slice) -> AddressKeys:
        """Return the keys at ROWS (positions or a slice)."""
        return AddressKeys(self.is6[rows], self.hi[rows], self.lo[rows])

    def key(self, row: int) -> int:
        """Return the `address_key` of ROW."""
        if self.is6[row]:
            return V6_OFFSET + (int(self.hi[row]) << 64 | int(self.lo[row]))
        return int(self.lo[row])

    def text(self, row: int) -> str:
        """Return the canonical text of the address of ROW."""
        return key_text(self.key(row))

    def texts(self) -> list[str]:
        """Return the canonical texts of every address, in order."""
        return [key_text(k) for k in self.int_keys()]

    def int_keys(self) -> list[int]:
        """Return the `address_key` of every row, as Python ints."""
        lo = self.lo.tolist()
        if not self.is6.any():
            return lo
        hi, is6 = self.hi.tolist(), self.is6.tolist()
        return [V6_OFFSET + (h << 64 | v) if s else v for s, h, v in zip(is6, hi, lo, strict=True)]

    def order(self) -> np.ndarray:
        """Return the stable permutation that sorts the rows ascending (equal keys keep their order)."""
        return np.lexsort((self.lo, self.hi, self.is6))

    def ascending(self, strictly: bool = False) -> bool:
        """Return whether the rows are in ascending order (STRICTLY: without a repeated address)."""
        if len(self.is6) < 2:
            return True
        f0, f1 = self.is6[:-1], self.is6[1:]
        h0, h1 = self.hi[:-1], self.hi[1:]
        low = self.lo[1:] > self.lo[:-1] if strictly else self.lo[1:] >= self.lo[:-1]
        return bool(((f1 > f0) | ((f1 == f0) & ((h1 > h0) | ((h1 == h0) & low)))).all())

    def run_starts(self) -> np.ndarray:
        """Return, for ascending rows, where each run of one address begins (a boolean column)."""
        head = np.ones(len(self.is6), bool)
        head[1:] = ((self.is6[1:] != self.is6[:-1]) | (self.hi[1:] != self.hi[:-1])
                    | (self.lo[1:] != self.lo[:-1]))
        return head

    def networks(self, v4_prefix: int, v6_prefix: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the (high, low) columns of each row's network number (address >> host bits)."""
        v6 = self.is6
        v4_net = self.lo >> np.uint64(32 - v4_prefix)
        if v6_prefix == 0:
            v6_hi = np.zeros_like(self.hi)
            v6_lo = np.zeros_like(self.lo)
        elif v6_prefix <= 64:
            v6_hi = self.hi >> np.uint64(64 - v6_prefix)
            v6_lo = np.zeros_like(self.lo)
        else:
            v6_hi = self.hi
            v6_lo = self.lo >> np.uint64(128 - v6_prefix)
        return np.where(v6, v6_hi, 0).astype(np.uint64), np.where(v6, v6_lo, v4_net).astype(np.uint64)

    def network_runs(self, v4_prefix: int, v6_prefix: int) -> np.ndarray:
        """Return, per row of ascending keys, the number of its network (0, 1, 2...).

        Rows of one IPv4 /V4_PREFIX or IPv6 /V6_PREFIX network are adjacent
        when the keys ascend; each new network gets the next number.
        """
        n = len(self.is6)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        net_hi, net_lo = self.networks(v4_prefix, v6_prefix)
        changed = np.empty(n, dtype=bool)
        changed[0] = False
        changed[1:] = (
            (self.is6[1:] != self.is6[:-1]) | (net_hi[1:] != net_hi[:-1]) | (net_lo[1:] != net_lo[:-1])
        )
        return np.cumsum(changed, dtype=np.int64)
