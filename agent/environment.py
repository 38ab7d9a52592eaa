"""The checks of a configuration against this host: BPF host names, capture device, directories, user.

`check_environment` returns what it found (the monitored addresses and the
capture device) as an `Environment`, which the capture then uses as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import netifaces

from ncs.agent.addresses import resolve_addresses, resolve_bind_host
from ncs.agent.bpfhosts import monitored_addresses
from ncs.agent.config import AgentConfig
from ncs.agent.errors import ConfigError
from ncs.agent.iface import find_device
from ncs.agent.privileges import lookup_user


@dataclass(frozen=True)
class Environment:
    """What check_environment found out: the monitored addresses and the capture device.

    `device` is None when a capture file is replayed; `promiscuous` says
    whether the device must capture traffic not addressed to this host.
    """

    addresses: list[str]
    device: str | None
    promiscuous: bool


def check_environment(cfg: AgentConfig, *, need_piddir: bool, to_stderr: bool) -> Environment:
    """Check the settings against this host; returns the addresses and device it found.

    need_piddir: the verb writes a pid file (start, restart).  to_stderr: dumps
    go to stderr, so the stats directory is not needed.
    Raises ConfigError for the first problem, in the order the original checked.
    """
    addresses = _check_bpf(cfg)
    device, promiscuous = _check_device(cfg, addresses)
    if need_piddir:
        _check_directory(cfg, "piddir", cfg.piddir, "pid")
    if not to_stderr:
        _check_stats_target(cfg)
    if cfg.port is not None:
        resolve_bind_host(cfg.host, cfg.port, error=cfg.error("host", f"bad dump host '{cfg.host}'"))
        for entry in cfg.allowed:
            resolve_addresses(entry, error=cfg.error("allowed", f"invalid 'allowed' host or IP '{entry}'"))
    if cfg.user is not None:
        try:
            entry = lookup_user(cfg.user)
        except ConfigError as err:
            raise cfg.relocate(err, "user") from None
        # the port is bound after the switch, and only root binds below 1024
        if cfg.port is not None and cfg.port < 1024 and entry.pw_uid != 0:
            raise cfg.error("port", f"invalid port number '{cfg.port}': user '{cfg.user}' "
                                    "cannot bind a port below 1024")
    return Environment(addresses, device, promiscuous)


def _check_bpf(cfg: AgentConfig) -> list[str]:
    """Return the monitored addresses; raises ConfigError for a missing/bad host or bad syntax."""
    try:
        addresses = monitored_addresses(cfg.bpf)
    except ConfigError as err:
        raise cfg.relocate(err, "bpf") from None
    # Loads libpcap; imported here so that the verbs that capture nothing
    # (status, stop, dump) do not load it.
    import pcapy

    try:
        pcapy.compile(pcapy.DLT_EN10MB, cfg.snaplen, cfg.bpf, 1, 0)
    except pcapy.PcapError as err:
        raise cfg.error("bpf", f"bad bpf filter string '{cfg.bpf}': {err}") from None
    return addresses


def _check_device(cfg: AgentConfig, addresses: list[str]) -> tuple[str | None, bool]:
    """Return (device, promiscuous) for live capture, (None, False) when replaying a file.

    Raises ConfigError when the capture file is unreadable, the configured device
    does not exist, or no interface carries the monitored addresses.
    """
    if cfg.read is not None:
        if cfg.read != "-" and not os.access(cfg.read, os.R_OK):
            raise cfg.error("read", f"cannot read capture file '{cfg.read}'")
        return None, False
    if cfg.device is not None:
        # "any" is libpcap's pseudo-device for all interfaces; netifaces does not list it.
        if cfg.device != "any" and cfg.device not in netifaces.interfaces():
            raise cfg.error("device", f"no such device '{cfg.device}'")
        return cfg.device, False
    try:
        return find_device(addresses)
    except ConfigError as err:
        raise cfg.relocate(err, "bpf") from None


def _check_directory(cfg: AgentConfig, key: str, path: str, what: str) -> None:
    """Raise ConfigError unless PATH is a directory this process can create files in."""
    if not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
        raise cfg.error(key, f"{what} directory '{path}' missing or not writable")


def _check_stats_target(cfg: AgentConfig) -> None:
    """Raise ConfigError unless the stats file (and its directory, for the atomic rename) is writable."""
    if cfg.stats == "-":
        return
    if cfg.stats:
        directory = os.path.dirname(os.path.abspath(cfg.stats))
        _check_directory(cfg, "stats", directory, "stats")
    else:
        _check_directory(cfg, "sniffer", cfg.sniffer, "sniffer")
    path = cfg.stats_path
    if os.path.exists(path) and (os.path.isdir(path) or not os.access(path, os.W_OK)):
        raise cfg.error("stats" if cfg.stats else "sniffer", f"'{path}' not writable")
