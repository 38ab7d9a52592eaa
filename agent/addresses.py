"""Addresses of the dump port: where it binds, which senders it allows, and their canonical text."""

from __future__ import annotations

import ipaddress
import os
import socket

from ncs.agent.errors import ConfigError


def resolve_bind_host(host: str, port: int, error: ConfigError) -> tuple[int, tuple]:
    """Return (family, sockaddr) to bind the dump port on HOST.

    'INADDR_ANY' is every address (IPv6 dual-stack "::" when the host has IPv6,
    else 0.0.0.0), 'INADDR_LOOPBACK' is 127.0.0.1; anything else is an address
    or a name (its first address).  Raises ERROR when HOST does not resolve.
    """
    if host == "INADDR_ANY":
        if socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"):
            return socket.AF_INET6, ("::", port, 0, 0)
        return socket.AF_INET, ("0.0.0.0", port)
    if host == "INADDR_LOOPBACK":
        return socket.AF_INET, ("127.0.0.1", port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise error from None
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return family, sockaddr
    raise error


def resolve_addresses(entry: str, error: ConfigError) -> list[str]:
    """Return the normalised address texts of ENTRY (an address or a name: all A and AAAA).

    Raises ERROR when ENTRY is neither an address nor a resolvable name.
    """
    try:
        return [normalize_address(entry)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(entry, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise error from None
    found: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            text = normalize_address(sockaddr[0])
            if text not in found:
                found.append(text)
    if not found:
        raise error
    return found


def normalize_address(text: str) -> str:
    """Return the canonical text of an IP address: no zone id, IPv4-mapped IPv6 as IPv4.

    Raises ValueError if TEXT is not an IP address.
    """
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)
