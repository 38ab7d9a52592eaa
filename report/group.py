"""Grouping of stats records by network prefix or by registrable domain, ordering and totals.

A report is a list of groups (DESIGN section 7): each group holds its
addresses in ascending order, the sums of their R and W and their latest E.
Groups are ordered by bytes per second, `int(W/3600)`, descending; ties go to
the group whose first address is lower.  Every record lands in exactly one
group, so the groups always add up to the totals.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from agent.statsfile import Record, StatsFile

#: Default prefix lengths of a group (DESIGN section 7).
DEFAULT_V4_PREFIX = 24
DEFAULT_V6_PREFIX = 64

# Reverse-mapping names say nothing about who owns an address; an address
# that only has one of these is grouped as if it had no name.
_REVERSE_SUFFIXES = (".in-addr.arpa", ".ip6.arpa")

# What a host name may hold; a "name" with anything else (it came from the
# network) is not trusted to say which domain an address belongs to.
_HOSTNAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")


@dataclass(slots=True)
class Member:
    """One address of a group: its text, numeric sort key and record."""

    address: str
    key: int
    record: Record


@dataclass(slots=True)
class Group:
    """A report group: its label, its members (ascending) and their sums.

    `label` is the network ("198.51.100.0/24") or the registrable domain
    ("example.co.uk").  `kind` is "prefix" or "domain".  R and W are the sums
    of the members' R and W, E the latest of their E.
    """

    label: str
    kind: str
    members: list[Member] = field(default_factory=list)
    R: float = 0.0
    W: float = 0.0
    E: int = 0

    @property
    def first_key(self) -> int:
        """Return the sort key of the group's lowest address."""
        return self.members[0].key

    @property
    def bytes_per_second(self) -> int:
        """Return `int(W/3600)`, the figure groups are ordered by."""
        return int(self.W / 3600)


@dataclass(frozen=True, slots=True)
class Totals:
    """Report totals: hits per minute, bytes per second, number of addresses and groups."""

    hits_per_minute: float
    bytes_per_second: float
    addresses: int
    groups: int
    R: float
    W: float


@dataclass(slots=True)
class Report:
    """The grouped, ordered report of one stats file, ready for any renderer."""

    stats: StatsFile
    by: str
    v4_prefix: int
    v6_prefix: int
    groups: list[Group]
    totals: Totals


class GroupingError(ValueError):
    """Raised for an impossible grouping request (a prefix length out of range)."""


# IPv6 keys are offset past every IPv4 key, so one integer orders both
# families (IPv4 first) and compares faster than a tuple.
_V6_OFFSET = 1 << 32


def address_key(address: str) -> int:
    """Return the ascending sort key of address text: IPv4 numerically, then IPv6.

    IPv4 keys are the address value, IPv6 keys 2**32 plus the value.  Faster
    than `ipaddress` for a million records.  Raises ValueError for text that
    is not an IPv4 or IPv6 address.
    """
    try:
        if ":" in address:
            return _V6_OFFSET + int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
        return int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
    except OSError:
        raise ValueError(f"not an IP address: {address!r}") from None


def split_key(key: int) -> tuple[int, int]:
    """Return (IP version, integer address value) of an `address_key`."""
    return (6, key - _V6_OFFSET) if key >= _V6_OFFSET else (4, key)


def check_prefixes(v4_prefix: int, v6_prefix: int) -> None:
    """Raise GroupingError unless 0 <= v4_prefix <= 32 and 0 <= v6_prefix <= 128."""
    if not 0 <= v4_prefix <= 32:
        raise GroupingError(f"IPv4 prefix length {v4_prefix} is not between 0 and 32")
    if not 0 <= v6_prefix <= 128:
        raise GroupingError(f"IPv6 prefix length {v6_prefix} is not between 0 and 128")


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


@lru_cache(maxsize=1)
def _suffix_list():  # -> publicsuffixlist.PublicSuffixList
    # Imported and parsed once, only when grouping by domain: the bundled list
    # works offline and loading it takes a noticeable fraction of a second.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def registrable_domain(name: str) -> str | None:
    """Return the registrable domain of NAME by the Public Suffix List, lower-cased.

    A name starting with ':' (an NXDOMAIN answer's SOA host) is judged by the
    SOA host.  Reverse-mapping names (in-addr.arpa, ip6.arpa) and empty names
    return None (the caller groups such addresses by prefix).  A name that is
    itself a public suffix or has a single label is its own domain.  A name
    that is not a host name (characters other than letters, digits, '-', '_'
    and '.') returns None as well.
    """
    host = name[1:] if name.startswith(":") else name
    host = host.rstrip(".").lower()
    if not _HOSTNAME.fullmatch(host) or host.endswith(_REVERSE_SUFFIXES):
        return None
    if host in ("in-addr.arpa", "ip6.arpa"):
        return None
    domain = _suffix_list().privatesuffix(host)
    return domain if domain else host


def _prefix_group_key(key: int, v4_prefix: int, v6_prefix: int) -> tuple[int, int]:
    if key >= _V6_OFFSET:
        return (6, (key - _V6_OFFSET) >> (128 - v6_prefix))
    return (4, key >> (32 - v4_prefix))


def _member_key(m: Member) -> int:
    return m.key


def sorted_members(records: dict[str, Record]) -> list[Member]:
    """Return every record as a Member, in ascending address order.

    Raises ValueError naming the first key that is not an IP address.
    """
    members = [Member(address, address_key(address), rec) for address, rec in records.items()]
    # Stats files are written in address order, so this is usually one linear pass.
    members.sort(key=_member_key)
    return members


def build_groups(
    members: Iterable[Member], by: str, v4_prefix: int, v6_prefix: int
) -> list[Group]:
    """Return the groups of MEMBERS (ascending) for grouping BY ("prefix" or "domain").

    Each group's members keep the ascending order; the groups are not yet ordered.
    """
    groups: dict[object, Group] = {}
    domains: dict[str, str | None] = {}
    for m in members:
        gkey: object = None
        kind = "prefix"
        if by == "domain" and m.record.N:
            first = m.record.N[0]
            domain = domains.get(first, "")
            if domain == "":
                domain = domains[first] = registrable_domain(first)
            if domain is not None:
                gkey, kind = domain, "domain"
        if gkey is None:
            gkey = _prefix_group_key(m.key, v4_prefix, v6_prefix)
        group = groups.get(gkey)
        if group is None:
            label = gkey if kind == "domain" else network_label(m.key, v4_prefix, v6_prefix)
            group = groups[gkey] = Group(label=str(label), kind=kind)
        group.members.append(m)
        rec = m.record
        group.R += rec.R
        group.W += rec.W
        if rec.E > group.E:
            group.E = rec.E
    return list(groups.values())


def order_groups(groups: list[Group]) -> list[Group]:
    """Return GROUPS by `int(W/3600)` descending, ties by their first address ascending."""
    return sorted(groups, key=lambda g: (-g.bytes_per_second, g.first_key))


def compute_totals(groups: list[Group]) -> Totals:
    """Return the totals over all GROUPS: sum(R)/60, sum(W)/3600, address and group counts."""
    r_sum = sum(g.R for g in groups)
    w_sum = sum(g.W for g in groups)
    count = sum(len(g.members) for g in groups)
    return Totals(r_sum / 60, w_sum / 3600, count, len(groups), r_sum, w_sum)


def make_report(
    stats: StatsFile,
    by: str = "prefix",
    v4_prefix: int = DEFAULT_V4_PREFIX,
    v6_prefix: int = DEFAULT_V6_PREFIX,
) -> Report:
    """Return the grouped and ordered Report of STATS.

    Raises GroupingError for a bad prefix length or grouping, ValueError for a
    record key that is not an IP address.
    """
    if by not in ("prefix", "domain"):
        raise GroupingError(f"unknown grouping {by!r} (prefix or domain)")
    check_prefixes(v4_prefix, v6_prefix)
    groups = order_groups(build_groups(sorted_members(stats.records), by, v4_prefix, v6_prefix))
    return Report(stats, by, v4_prefix, v6_prefix, groups, compute_totals(groups))
