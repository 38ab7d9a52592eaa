"""The monitored addresses: every `host` named in the BPF expression, resolved."""

from __future__ import annotations

import ipaddress
import re
import socket

from ncs.agent.errors import ConfigError

# "host X", "src host X", "dst host X", "ip6 host X": X is a name or an address.
_HOST_RE = re.compile(r"\bhost\s+([\w.:%-]+)", re.IGNORECASE)


def host_words(bpf: str) -> list[str]:
    """Return the words that follow `host` in BPF, in order, without duplicates."""
    seen: list[str] = []
    for word in _HOST_RE.findall(bpf or ""):
        if word not in seen:
            seen.append(word)
    return seen


def resolve_host(word: str) -> list[str]:
    """Return the address texts of WORD: itself if it is an address, else all A and AAAA.

    Raises ConfigError naming WORD when it resolves to nothing.
    """
    try:
        return [str(ipaddress.ip_address(word))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(word, None, proto=socket.IPPROTO_UDP)
    except (socket.gaierror, UnicodeError):
        raise ConfigError(f"config: bad hostname '{word}' in bpf filter string") from None
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            text = str(ipaddress.ip_address(sockaddr[0].split("%")[0]))
            if text not in addresses:
                addresses.append(text)
    if not addresses:
        raise ConfigError(f"config: bad hostname '{word}' in bpf filter string")
    return addresses


def monitored_addresses(bpf: str) -> list[str]:
    """Return every address the BPF expression names with `host` (a name counts with all its addresses).

    Raises ConfigError when BPF names no host or a name does not resolve.
    """
    words = host_words(bpf)
    if not words:
        raise ConfigError("config: missing hostname in bpf string")
    addresses: list[str] = []
    for word in words:
        for address in resolve_host(word):
            if address not in addresses:
                addresses.append(address)
    return addresses
