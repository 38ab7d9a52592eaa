"""The agent's configuration: one set of names for the YAML file and the command line.

Three steps, each raising ConfigError with a one-line message naming the key
and the value (and the file and line when the value came from the file):

- `load_config(path)` reads the YAML file into a dict (`ConfigSource`);
- `resolve_config(raw, overrides)` checks names, types and ranges and returns
  the effective `AgentConfig` (command-line overrides win over file values);
- `check_environment(cfg, ...)` checks what depends on this host: the BPF host
  names, the capture interface, the directories, the dump port's addresses,
  the user.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field, fields
from typing import Any

# Limits that the checks enforce.  The snap length must cover the largest
# headers the decoder reads: Linux cooked v2 (20) or Ethernet with two VLAN
# tags (22) plus a full IPv6 header (40); libpcap itself caps it at 262144.
SNAPLEN_MIN = 64
SNAPLEN_MAX = 262144
BUFFER_MIN = 64 * 1024
BUFFER_MAX = 2**31 - 1
# A name becomes part of file names (<name>.pid, <name>.stats) and of systemd
# instance names, so it is limited to characters that are safe in both.
NAME_RE = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,63}$")


@dataclass
class AgentConfig:
    """Effective agent settings (DESIGN section 5); keys match the YAML config file.

    `read` and `stats` exist only on the command line: `read` replays a capture
    file instead of capturing live, `stats` overrides `<sniffer>/<name>.stats`
    ('-' is stdout).  `origins` holds the keys set explicitly: "FILE:LINE" when
    the value came from the config file (for error messages), "" when it came
    from the command line; it is not a setting.
    """

    name: str = "ncs-agent"
    piddir: str = "/run/ncs"
    sniffer: str = "/var/lib/ncs"
    bpf: str = ""
    snaplen: int = 96
    match: bytes | None = None
    nomatch: bytes | None = None
    payload: int | None = None
    port: int | None = None
    host: str = "127.0.0.1"
    allowed: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    device: str | None = None
    nameserver: str | None = None
    dns: bool = True
    max_hosts: int = 1_000_000
    user: str | None = None
    buffer_size: int = 32 * 1024 * 1024
    # command line only
    read: str | None = None
    stats: str | None = None
    origins: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def stats_path(self) -> str:
        """Where dumps go: `stats` if given, else `<sniffer>/<name>.stats`."""
        if self.stats:
            return self.stats
        return f"{self.sniffer.rstrip('/')}/{self.name}.stats"

    @property
    def pid_path(self) -> str:
        """The pid file: `<piddir>/<name>.pid`."""
        return f"{self.piddir.rstrip('/')}/{self.name}.pid"


class ConfigError(ValueError):
    """An invalid setting; str() is the one-line message naming key and value."""


#: Keys a config file may hold, in the order `config` prints them.
FILE_KEYS = ("name", "piddir", "sniffer", "bpf", "device", "snaplen", "match", "nomatch",
             "payload", "port", "host", "allowed", "nameserver", "dns", "max_hosts", "user",
             "buffer_size")
#: Keys that only the command line sets.
COMMAND_LINE_KEYS = ("read", "stats")


class ConfigSource(dict):
    """The raw mapping read from a config file, with where each key was written.

    `path` is the file name, `lines` maps a key to its 1-based line number.
    """

    def __init__(self, data: dict, path: str = "", lines: dict[str, int] | None = None) -> None:
        super().__init__(data)
        self.path = path
        self.lines = lines or {}


def parse_match(text: str, key: str = "match") -> bytes:
    """Return the bytes of a match string, with the original's \\x{hex} escapes decoded.

    Raises ConfigError for a malformed escape or a character outside Latin-1.
    """
    out = bytearray()
    i = 0
    while i < len(text):
        if text.startswith("\\x{", i):
            end = text.find("}", i)
            digits = text[i + 3:end] if end > 0 else ""
            try:
                value = int(digits, 16)
            except ValueError:
                raise ConfigError(f"config: invalid escape in {key} '{text}'") from None
            if not 0 <= value <= 0xFF:
                raise ConfigError(f"config: escape out of range in {key} '{text}'")
            out.append(value)
            i = end + 1
            continue
        code = ord(text[i])
        if code > 0xFF:
            raise ConfigError(f"config: non-Latin-1 character in {key} '{text}'")
        out.append(code)
        i += 1
    return bytes(out)


def format_match(data: bytes) -> str:
    """Return DATA as a match string: printable ASCII as is, every other byte as \\x{hex}.

    The backslash is escaped too, so parse_match(format_match(b)) == b for any bytes.
    """
    parts = []
    for byte in data:
        if 0x20 <= byte < 0x7F and byte != 0x5C:
            parts.append(chr(byte))
        else:
            parts.append(f"\\x{{{byte:x}}}")
    return "".join(parts)


def load_config(path: str) -> ConfigSource:
    """Read the YAML config file PATH; returns its mapping with the line of every key.

    An empty file is an empty mapping.  Raises ConfigError naming the file (and
    line) when it cannot be read, is not YAML, is not a mapping or repeats a key.
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ConfigError(f"config: cannot read '{path}': {reason}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"config: {where}: invalid YAML: {problem}") from None
    if data is None:
        return ConfigSource({}, path)
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"config: {path}: expected a mapping of keys to values")
    lines: dict[str, int] = {}
    for key_node, _value_node in node.value:
        key = str(key_node.value)
        if key in lines:
            raise ConfigError(
                f"config: {path}:{key_node.start_mark.line + 1}: key '{key}' given twice")
        lines[key] = key_node.start_mark.line + 1
    return ConfigSource(data, path, lines)


def _fail(cfg: AgentConfig, key: str, message: str) -> ConfigError:
    """Return a ConfigError "config: [FILE:LINE: ]MESSAGE", located when KEY came from the file."""
    where = cfg.origins.get(key)
    return ConfigError(f"config: {where}: {message}" if where else f"config: {message}")


def relocate(err: ConfigError, cfg: AgentConfig, key: str) -> ConfigError:
    """Return ERR with the file location of KEY inserted after "config: " (if it has one)."""
    text = str(err)
    where = cfg.origins.get(key)
    if not where or not text.startswith("config: "):
        return err
    return ConfigError(f"config: {where}: {text[len('config: '):]}")


def _int_value(value: Any) -> int | None:
    """Return VALUE as an int if it is an int (not a bool) or a string of digits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _set_text(cfg: AgentConfig, key: str, value: Any, optional: bool) -> None:
    """Store a non-empty string setting; None clears an optional one."""
    if value is None and optional:
        setattr(cfg, key, None)
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # a numeric user id or device name written without quotes
    if not isinstance(value, str) or not value.strip():
        raise _fail(cfg, key, f"invalid {key} '{value}': expected a non-empty string")
    setattr(cfg, key, value.strip())


def _set_int(cfg: AgentConfig, key: str, value: Any, low: int, high: int, hint: str) -> None:
    """Store an integer setting in LOW..HIGH; raises ConfigError naming key, value and HINT."""
    number = _int_value(value)
    if number is None or not low <= number <= high:
        raise _fail(cfg, key, f"invalid {key} '{value}': {hint}")
    setattr(cfg, key, number)


def _apply(cfg: AgentConfig, key: str, value: Any) -> None:
    """Check one raw setting and store it in CFG; raises ConfigError for a bad value."""
    if key == "name":
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise _fail(cfg, key, f"invalid name '{value}': use up to 64 letters, digits, "
                                  "'_', '@', '.', '-' (it names the pid and stats files)")
        cfg.name = value
    elif key in ("piddir", "sniffer", "bpf"):
        _set_text(cfg, key, value, optional=False)
    elif key in ("device", "user", "read", "stats"):
        _set_text(cfg, key, value, optional=True)
    elif key == "snaplen":
        _set_int(cfg, key, value, SNAPLEN_MIN, SNAPLEN_MAX,
                 f"must be {SNAPLEN_MIN}..{SNAPLEN_MAX} bytes")
    elif key in ("match", "nomatch"):
        if value is None or value == "":
            setattr(cfg, key, None)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                setattr(cfg, key, parse_match(str(value), key))
            except ConfigError as err:
                raise relocate(err, cfg, key) from None
        else:
            raise _fail(cfg, key, f"invalid {key} '{value}': expected a string")
    elif key == "payload":
        if value is None:
            cfg.payload = None
        else:
            _set_int(cfg, key, value, 0, SNAPLEN_MAX, "expected a byte offset")
    elif key == "port":
        number = _int_value(value)
        if value is not None and (number is None or not 0 < number < 65536):
            raise _fail(cfg, key, f"invalid port number '{value}'")
        cfg.port = number
    elif key == "host":
        if not isinstance(value, str) or not value.strip():
            raise _fail(cfg, key, f"bad dump host '{value}'")
        cfg.host = value.strip()
    elif key == "allowed":
        _apply_allowed(cfg, value)
    elif key == "nameserver":
        _apply_nameserver(cfg, value)
    elif key == "dns":
        if not isinstance(value, bool):
            raise _fail(cfg, key, f"invalid dns '{value}': use true or false")
        cfg.dns = value
    elif key == "max_hosts":
        _set_int(cfg, key, value, 1, 2**31 - 1, "must be at least 1")
    elif key == "buffer_size":
        _set_int(cfg, key, value, BUFFER_MIN, BUFFER_MAX,
                 f"must be {BUFFER_MIN}..{BUFFER_MAX} bytes")
    else:
        raise _fail(cfg, key, f"unknown key '{key}'")


def _apply_allowed(cfg: AgentConfig, value: Any) -> None:
    """Store `allowed`: a list of names/addresses (a single string is a list of one).

    An empty list means the default, 127.0.0.1, as in the original.
    """
    if value is None:
        items: list[Any] = []
    elif isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise _fail(cfg, "allowed", f"invalid 'allowed' host or IP '{value}': expected a list")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise _fail(cfg, "allowed", f"invalid 'allowed' host or IP '{item}'")
    cfg.allowed = [item.strip() for item in items] or ["127.0.0.1"]


def _apply_nameserver(cfg: AgentConfig, value: Any) -> None:
    """Store `nameserver` (ADDRESS, ADDRESS:PORT or [IPv6]:PORT); None means resolv.conf."""
    if value is None:
        cfg.nameserver = None
        return
    from ncs.agent.resolver import parse_nameserver

    try:
        parse_nameserver(str(value))
    except ValueError:
        raise _fail(cfg, "nameserver", f"invalid nameserver '{value}': use ADDRESS, "
                                       "ADDRESS:PORT or [IPv6]:PORT") from None
    cfg.nameserver = str(value).strip()


def resolve_config(raw: dict, overrides: dict) -> AgentConfig:
    """Return the effective config: defaults, then RAW (the file), then OVERRIDES (command line).

    Overrides use the same key names; a None override means "not given".  RAW may
    be a ConfigSource, whose line numbers then locate error messages.
    Raises ConfigError for an unknown key, a wrong type or a value out of range,
    and for payload/match combinations the capture cannot honour.
    """
    cfg = AgentConfig()
    path = getattr(raw, "path", "")
    lines = getattr(raw, "lines", {})
    merged: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        if path:
            cfg.origins[key] = f"{path}:{lines[key]}" if key in lines else path
        if key not in FILE_KEYS:
            raise _fail(cfg, key, f"unknown key '{key}'")
        merged[key] = value
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in FILE_KEYS and key not in COMMAND_LINE_KEYS:
            raise ConfigError(f"config: unknown key '{key}'")
        cfg.origins[key] = ""  # set explicitly, but no file line to point at
        merged[key] = value
    for key, value in merged.items():
        _apply(cfg, key, value)
    _check_payload(cfg)
    return cfg


def _check_payload(cfg: AgentConfig) -> None:
    """With match/nomatch the payload offset must lie inside the captured bytes (0 < payload < snaplen)."""
    if cfg.match is None and cfg.nomatch is None:
        return
    if cfg.payload is None:
        raise _fail(cfg, "payload", "invalid payload length: match/nomatch need `payload`, "
                                    f"an offset below snaplen ({cfg.snaplen})")
    if not 0 < cfg.payload < cfg.snaplen:
        raise _fail(cfg, "payload", f"invalid payload length '{cfg.payload}': match/nomatch "
                                    f"need 0 < payload < snaplen ({cfg.snaplen})")


@dataclass
class Environment:
    """What check_environment found out: the monitored addresses and the capture device."""

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
        resolve_bind_host(cfg.host, cfg.port, error=_fail(cfg, "host", f"bad dump host '{cfg.host}'"))
        for entry in cfg.allowed:
            resolve_addresses(entry, error=_fail(cfg, "allowed",
                                                 f"invalid 'allowed' host or IP '{entry}'"))
    if cfg.user is not None:
        from ncs.agent.privileges import lookup_user

        try:
            entry = lookup_user(cfg.user)
        except ConfigError as err:
            raise relocate(err, cfg, "user") from None
        # the port is bound after the switch, and only root binds below 1024
        if cfg.port is not None and cfg.port < 1024 and entry.pw_uid != 0:
            raise _fail(cfg, "port", f"invalid port number '{cfg.port}': user '{cfg.user}' "
                                     "cannot bind a port below 1024")
    return Environment(addresses, device, promiscuous)


def _check_bpf(cfg: AgentConfig) -> list[str]:
    """Return the monitored addresses; raises ConfigError for a missing/bad host or bad syntax."""
    from ncs.agent.bpfhosts import monitored_addresses

    try:
        addresses = monitored_addresses(cfg.bpf)
    except ConfigError as err:
        raise relocate(err, cfg, "bpf") from None
    import pcapy

    try:
        pcapy.compile(pcapy.DLT_EN10MB, cfg.snaplen, cfg.bpf, 1, 0)
    except pcapy.PcapError as err:
        raise _fail(cfg, "bpf", f"bad bpf filter string '{cfg.bpf}': {err}") from None
    return addresses


def _check_device(cfg: AgentConfig, addresses: list[str]) -> tuple[str | None, bool]:
    """Return (device, promiscuous) for live capture, (None, False) when replaying a file.

    Raises ConfigError when the capture file is unreadable, the configured device
    does not exist, or no interface carries the monitored addresses.
    """
    if cfg.read is not None:
        if cfg.read != "-" and not os.access(cfg.read, os.R_OK):
            raise _fail(cfg, "read", f"cannot read capture file '{cfg.read}'")
        return None, False
    if cfg.device is not None:
        import netifaces

        # "any" is libpcap's pseudo-device for all interfaces; netifaces does not list it.
        if cfg.device != "any" and cfg.device not in netifaces.interfaces():
            raise _fail(cfg, "device", f"no such device '{cfg.device}'")
        return cfg.device, False
    from ncs.agent.iface import find_device

    try:
        return find_device(addresses)
    except ConfigError as err:
        raise relocate(err, cfg, "bpf") from None


def _check_directory(cfg: AgentConfig, key: str, path: str, what: str) -> None:
    """Raise ConfigError unless PATH is a directory this process can create files in."""
    if not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
        raise _fail(cfg, key, f"{what} directory '{path}' missing or not writable")


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
        raise _fail(cfg, "stats" if cfg.stats else "sniffer", f"'{path}' not writable")


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


def config_as_yaml(cfg: AgentConfig, comments: list[str] | None = None) -> str:
    """Return CFG as a YAML config file (file keys only) that load_config reads back.

    Match strings are written in the \\x{hex} form.  COMMENTS become leading
    "# " lines (they do not change what the file means).
    """
    import yaml

    data: dict[str, Any] = {}
    for f in fields(cfg):
        if f.name not in FILE_KEYS:
            continue
        value = getattr(cfg, f.name)
        if isinstance(value, bytes):
            value = format_match(value)
        data[f.name] = value
    ordered = {key: data[key] for key in FILE_KEYS}
    text = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, allow_unicode=False)
    header = "".join(f"# {line}\n" for line in comments or [])
    return header + text
