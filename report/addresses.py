"""Address keys and the address-ordered table of a report's records, with numpy key columns.

A million records are ordered and split into prefixes with a handful of
vectorised numpy operations on three columns (IPv6 flag, high and low 64
bits of the address) instead of a Python object per address.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass

import numpy as np

from ncs.agent.statscols import StatsColumns, address_keys

# IPv6 keys are offset past every IPv4 key, so one integer orders both
# families (IPv4 first) and compares faster than a tuple.
V6_OFFSET = 1 << 32

_PTON4 = functools.partial(socket.inet_pton, socket.AF_INET)
_PTON6 = functools.partial(socket.inet_pton, socket.AF_INET6)


def address_key(address: str) -> int:
    """Return the ascending sort key of address text: IPv4 numerically, then IPv6.

    IPv4 keys are the address value, IPv6 keys 2**32 plus the value.
    Raises ValueError for text that is not an IPv4 or IPv6 address.
    """
    try:
        if ":" in address:
            return V6_OFFSET + int.from_bytes(_PTON6(address), "big")
        return int.from_bytes(_PTON4(address), "big")
    except (OSError, ValueError):
        raise ValueError(f"not an IP address: {address!r}") from None


def split_key(key: int) -> tuple[int, int]:
    """Return (IP version, integer address value) of an `address_key`."""
    return (6, key - V6_OFFSET) if key >= V6_OFFSET else (4, key)


def network_label(key: int, v4_prefix: int, v6_prefix: int) -> str:
    """Return the network text ("198.51.100.0/24", "2001:db8::/64") containing address KEY."""
    version, value = split_key(key)
    width, prefix = (32, v4_prefix) if version == 4 else (128, v6_prefix)
    shift = width - prefix
    network = (value >> shift) << shift
    # inet_ntop is the C formatter; ipaddress's str() costs tens of
    # microseconds per IPv6 network, which adds up over 100k groups.
    if version == 4:
        return f"{socket.inet_ntop(socket.AF_INET, network.to_bytes(4, 'big'))}/{prefix}"
    return f"{socket.inet_ntop(socket.AF_INET6, network.to_bytes(16, 'big'))}/{prefix}"


@dataclass(slots=True, eq=False, repr=False)
class AddressTable:
    """A stats file's columns with numeric key columns of its addresses, row by row.

    `is6[i]` is True for an IPv6 address; an IPv4 address is `lo[i]` (and
    `hi[i]` is 0), an IPv6 address is `hi[i] * 2**64 + lo[i]`.  Rows are in
    ascending address order after `from_columns`; `take` reorders them.
    """

    columns: StatsColumns
    is6: np.ndarray
    hi: np.ndarray
    lo: np.ndarray

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def addresses(self) -> list[str]:
        """Return the address texts, row by row."""
        return self.columns.addresses

    def key(self, row: int) -> int:
        """Return the `address_key` of ROW."""
        if self.is6[row]:
            return V6_OFFSET + (int(self.hi[row]) << 64 | int(self.lo[row]))
        return int(self.lo[row])

    def take(self, order: np.ndarray) -> AddressTable:
        """Return a new table with the rows at the positions ORDER, in that order."""
        return AddressTable(self.columns.take(order), self.is6[order], self.hi[order], self.lo[order])

    @classmethod
    def from_columns(cls, columns: StatsColumns) -> AddressTable:
        """Return the table of COLUMNS in ascending address order (IPv4, then IPv6).

        Equal addresses spelled differently keep their order in COLUMNS.
        Raises ValueError naming the first address that is not an IP address.
        """
        keys = columns.keys if columns.keys is not None else address_keys(columns.addresses)
        table = cls(columns, *keys)
        if keys.ascending():
            return table  # stats files are written in address order
        return table.take(np.lexsort((table.lo, table.hi, table.is6)))

    def prefix_runs(self, v4_prefix: int, v6_prefix: int) -> np.ndarray:
        """Return, per row of an ascending table, the number of its prefix (0, 1, 2...).

        Rows of one IPv4 /V4_PREFIX or IPv6 /V6_PREFIX network are adjacent in
        an ascending table; each new network gets the next number.
        """
        n = len(self)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        net_hi, net_lo = self.networks(v4_prefix, v6_prefix)
        changed = np.empty(n, dtype=bool)
        changed[0] = False
        changed[1:] = (
            (self.is6[1:] != self.is6[:-1]) | (net_hi[1:] != net_hi[:-1]) | (net_lo[1:] != net_lo[:-1])
        )
        return np.cumsum(changed, dtype=np.int64)

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
