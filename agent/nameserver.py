"""Which DNS server the agent asks: the `nameserver` setting, or the first one in resolv.conf."""

from __future__ import annotations

import ipaddress

from ncs.hostport import parse_hostport

DNS_PORT = 53


def parse_nameserver(text: str) -> tuple[str, int]:
    """Parse a `nameserver` setting: an IP address with an optional port.

    Accepts "127.0.0.1", "127.0.0.1:5300", "::1" and "[::1]:5300".
    Returns (address text, port), port 53 when none is given.
    Raises ValueError("bad nameserver '...'") for anything else.
    """
    try:
        return parse_hostport(text, default_port=DNS_PORT, ip_only=True)
    except ValueError:
        raise ValueError(f"bad nameserver {text!r}") from None


def default_nameserver(resolv_conf: str = "/etc/resolv.conf") -> tuple[str, int] | None:
    """Return the first usable `nameserver` line of resolv.conf as (address, 53).

    Returns None if the file cannot be read or names no usable server; lines
    that do not parse as an IP address are skipped.
    """
    try:
        with open(resolv_conf, encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                ipaddress.ip_address(fields[1])
            except ValueError:
                continue
            return fields[1], DNS_PORT
    return None
