"""HOST:PORT text: one parser for every option and setting that names a UDP or TCP endpoint."""

from __future__ import annotations

import ipaddress


def parse_hostport(text: str, *, default_port: int | None = None,
                   default_host: str | None = None, ip_only: bool = False) -> tuple[str, int]:
    """Return (host, port) from "HOST:PORT", "[IPv6]:PORT", "[IPv6]", a bare IPv6 address, HOST or PORT.

    An unbracketed text with more than one colon is an IPv6 address without a
    port.  HOST alone takes DEFAULT_PORT (an error when it is None); a bare
    number alone is a port on DEFAULT_HOST when that is given.  With IP_ONLY
    the host must be an IP address, not a name.
    Raises ValueError with a one-line reason quoting TEXT.
    """
    value = text.strip()
    host, port_text = _split(value)
    if port_text is None and default_host is not None and host.isascii() and host.isdigit():
        host, port_text = default_host, host
    if not host:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if port_text is None:
        if default_port is None:
            raise ValueError(f"{text!r} is not HOST:PORT")
        port = default_port
    else:
        port = _port(text, port_text)
    if ip_only or ":" in host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    return host, port


def format_hostport(host: str, port: int) -> str:
    """Return HOST:PORT as text that parse_hostport reads back (IPv6 addresses in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split(value: str) -> tuple[str, str | None]:
    """Return (host, port text or None) of VALUE; raises ValueError for a malformed bracket form."""
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} is not [IPv6]:PORT")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{value!r}: brackets must hold an IPv6 address") from None
        return host, rest[1:] if rest else None
    if value.count(":") == 1:
        host, port_text = value.split(":")
        return host, port_text
    return value, None


def _port(text: str, port_text: str) -> int:
    """Return PORT_TEXT as a port number; raises ValueError quoting TEXT unless it is 1..65535."""
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: port {port_text!r} is not a number from 1 to 65535")
    return int(port_text)
