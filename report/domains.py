"""Registrable domains of host names by the ICANN section of the Public Suffix List, memoised per parent.

Only the ICANN section: its private section lists the zones where cloud
providers and CDNs hand out names (compute-1.amazonaws.com, cloudfront.net,
...), which would make every reverse name there a "domain" of its own;
without it they group under the provider (amazonaws.com, cloudfront.net).

`registrable_domain` answers for one name.  `DomainFinder` answers for a
million: most host names sit under a parent (`h1.example.com` under
`example.com`) whose answer they share, so the finder asks the list only
once per parent, and only names that a list rule could treat differently
from their parent are looked up on their own.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Reverse-mapping names say nothing about who owns an address; an address
# that only has one of these is grouped as if it had no name.
_REVERSE_SUFFIXES = (".in-addr.arpa", ".ip6.arpa")

# What a host name may hold; a "name" with anything else (it came from the
# network) is not trusted to say which domain an address belongs to.
_HOSTNAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")

# Names with more labels than this are looked up directly (no recursion).
_MAX_SHORTCUT_LABELS = 24

_MISSING = object()


@lru_cache(maxsize=1)
def suffix_list():  # -> publicsuffixlist.PublicSuffixList
    """Return the ICANN section of the Public Suffix List (the package's bundled copy), loaded once."""
    # Imported and parsed only when grouping by domain: the bundled list
    # works offline and loading it takes a noticeable fraction of a second.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True)


def host_of(name: str) -> str | None:
    """Return the host a NAME is judged by, lower-cased, or None when it names no domain.

    A name starting with ':' (an NXDOMAIN answer's SOA host) is judged by the
    SOA host.  Reverse-mapping names (in-addr.arpa, ip6.arpa), empty names and
    names with characters other than letters, digits, '-', '_' and '.' give None.
    """
    host = name[1:] if name.startswith(":") else name
    host = host.rstrip(".").lower()
    if not _HOSTNAME.fullmatch(host) or host.endswith(_REVERSE_SUFFIXES):
        return None
    if host in ("in-addr.arpa", "ip6.arpa"):
        return None
    return host


# In a "\n"-joined list of hosts: a character no host name has, or a line
# that starts or ends with '.' or '-'.  None found: every line is a host name.
_BAD_HOST_CHAR = re.compile(r"[^a-z0-9_.\n-]")
_BAD_HOST_EDGES = ("\n.", "\n-", ".\n", "-\n")
_TRAILING_DOTS = re.compile(r"\.+$", re.M)


def hosts_of(names: list[str]) -> list[str | None]:
    """Return `host_of` of each of NAMES, in order.

    The names are lower-cased, stripped and checked as one text: a million
    regular-expression calls cost more than the rest of the domain lookup.
    """
    text = "\n" + "\n".join([n[1:] if n.startswith(":") else n for n in names]) + "\n"
    if text.count("\n") != len(names) + 1:
        return [host_of(n) for n in names]  # a name holds a newline
    text = text.lower()
    if ".\n" in text:
        text = _TRAILING_DOTS.sub("", text)
    hosts: list[str | None] = text[1:-1].split("\n")  # type: ignore[assignment]
    if _BAD_HOST_CHAR.search(text) or any(edge in text for edge in _BAD_HOST_EDGES):
        hosts = [h if _HOSTNAME.fullmatch(h) else None for h in hosts]  # type: ignore[arg-type]
    if "arpa\n" not in text:
        return [h or None for h in hosts]
    reverse = _REVERSE_SUFFIXES
    return [
        None if not h or h.endswith(reverse) or h in ("in-addr.arpa", "ip6.arpa") else h
        for h in hosts
    ]


def registrable_domain(name: str) -> str | None:
    """Return the registrable domain of NAME by the list's ICANN section, lower-cased.

    None when `host_of(NAME)` is None (the caller groups such addresses by
    prefix).  A name that is itself a public suffix or has a single label is
    its own domain.
    """
    host = host_of(name)
    if host is None:
        return None
    domain = suffix_list().privatesuffix(host)
    return domain if domain else host


@lru_cache(maxsize=1)
def _rule_parents(psl: object) -> frozenset[str] | None:
    """Return the names under which a list rule could decide differently from the parent.

    For every rule ("a.b", "*.a.b", "!a.b") both the rule's own domain ("a.b")
    and its parent ("b").  A name whose parent is not in this set has the
    same public suffix as its parent.  None when the package keeps its rules
    elsewhere than this version does (then every name is looked up).
    """
    rules = getattr(psl, "_publicsuffix", None)
    if not isinstance(rules, frozenset):
        return None
    parents: set[str] = set()
    for rule in rules:
        bare = rule.lstrip("!")
        if bare.startswith("*."):
            bare = bare[2:]
        parents.add(bare)
        parents.add(bare.partition(".")[2])
    return frozenset(parents)


class DomainFinder:
    """Registrable domains of many names, each parent domain asked of the list once."""

    def __init__(self) -> None:
        self._psl = suffix_list()
        self._rule_parents = _rule_parents(self._psl)
        # host -> privatesuffix(host) (None: host is a public suffix), for parents.
        self._private: dict[str, str | None] = {}

    def domain(self, name: str) -> str | None:
        """Return `registrable_domain(NAME)`, the same answer, faster for many names."""
        host = host_of(name)
        if host is None:
            return None
        domain = self._private_suffix(host)
        return domain if domain else host

    def domains(self, names: list[str]) -> list[str | None]:
        """Return `registrable_domain` of each of NAMES, in order."""
        hosts = hosts_of(names)
        private = self._private_suffix
        psl = self._psl
        rule_parents = self._rule_parents
        cache = self._private
        if rule_parents is None:
            return [None if h is None else psl.privatesuffix(h) or h for h in hosts]
        result: list[str | None] = []
        append = result.append
        # The loop of _private_suffix, unrolled for the common case of a
        # host whose parent is known and was not itself a public suffix.
        for host in hosts:
            if host is None:
                append(None)
                continue
            parent = host.partition(".")[2]
            known = cache.get(parent) if parent not in rule_parents else None
            if known is None or ".." in host:
                known = private(host)
            append(known or host)
        return result

    def _private_suffix(self, host: str) -> str | None:
        """Return the list's privatesuffix(HOST) (None for a public suffix or a bad name)."""
        parent = host.partition(".")[2]
        rule_parents = self._rule_parents
        if (
            not parent
            or rule_parents is None
            or parent in rule_parents
            or ".." in host
            or host.count(".") >= _MAX_SHORTCUT_LABELS
        ):
            return self._psl.privatesuffix(host)
        # No rule names HOST or "*.parent": HOST's public suffix is its
        # parent's, so its registrable domain is the parent's unless the
        # parent itself is a public suffix (then HOST is the domain).
        known = self._private.get(parent, _MISSING)
        if known is _MISSING:
            known = self._private[parent] = self._private_suffix(parent)
        if known is None:
            return self._psl.privatesuffix(host)
        return known  # type: ignore[return-value]
