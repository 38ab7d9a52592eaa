"""Capture devices: which one carries the monitored addresses (netifaces), and whether it is up."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

import netifaces

from ncs.agent.errors import ConfigError


def _networks(ifname: str) -> list[tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface]]:
    nets = []
    addrs = netifaces.ifaddresses(ifname)
    for family in (netifaces.AF_INET, netifaces.AF_INET6):
        for entry in addrs.get(family, []):
            addr = entry.get("addr", "").split("%")[0]
            mask = entry.get("netmask") or entry.get("mask") or ""
            if not addr:
                continue
            # netifaces gives IPv6 masks as "ffff:ffff::/64"; keep the prefix length.
            prefix = mask.split("/")[-1] if "/" in mask else mask
            try:
                nets.append(ipaddress.ip_interface(f"{addr}/{prefix}" if prefix else addr))
            except ValueError:
                continue
    return nets


def find_device(addresses: list[str]) -> tuple[str, bool]:
    """Return (device, promiscuous) for capturing ADDRESSES' traffic.

    The interface that holds one of the addresses wins (non-promiscuous);
    otherwise the first interface, by name, whose subnet contains one
    (promiscuous, since the traffic is not addressed to this host).
    Raises ConfigError naming the first address when no interface fits.
    """
    wanted = [ipaddress.ip_address(a) for a in addresses]
    on_subnet: list[str] = []
    for ifname in sorted(netifaces.interfaces()):
        for net in _networks(ifname):
            if net.ip in wanted:
                return ifname.split(":")[0], False
            if any(w.version == net.version and w in net.network for w in wanted):
                on_subnet.append(ifname.split(":")[0])
    if on_subnet:
        return on_subnet[0], True
    raise ConfigError(f"config: could not find interface for '{addresses[0]}' in bpf string")


_SIOCGIFFLAGS = 0x8913
_IFF_UP = 0x1


def interface_is_up(name: str) -> bool:
    """Return whether the interface NAME exists in this network namespace and is up (IFF_UP)."""
    if name == "any":
        return True
    request = struct.pack("16sH14x", name.encode()[:15], 0)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            answer = fcntl.ioctl(probe.fileno(), _SIOCGIFFLAGS, request)
    except OSError:
        return False  # gone (a deleted veth, a VPN's tun between connections)
    return bool(struct.unpack_from("H", answer, 16)[0] & _IFF_UP)
