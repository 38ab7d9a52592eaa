"""The agent's configuration: one set of names for the YAML file and the command line.

Two steps, each raising ConfigError with a one-line message naming the key
and the value (and the file and line when the value came from the file):

- `load_config(path)` reads the YAML file into a dict (`ConfigSource`);
- `resolve_config(raw, overrides)` checks names, types and ranges and returns
  the effective `AgentConfig` (command-line overrides win over file values).

What depends on this host (names, devices, directories, the user) is checked
by `ncs.agent.environment.check_environment`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from ncs.agent.errors import ConfigError, config_error
from ncs.agent.nameserver import parse_nameserver

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
    """Effective agent settings; keys match the YAML config file.

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

    def error(self, key: str, message: str) -> ConfigError:
        """Return ConfigError "config: [FILE:LINE: ]MESSAGE", placed when KEY came from the file."""
        return config_error(message, self.origins.get(key, ""))

    def relocate(self, err: ConfigError, key: str) -> ConfigError:
        """Return ERR with the file place of KEY inserted after "config: " (if it has one)."""
        text = str(err)
        if not self.origins.get(key) or not text.startswith("config: "):
            return err
        return self.error(key, text[len("config: "):])


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
    # PyYAML takes ~10 ms to import; the verbs run without a config file skip it.
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
        raise cfg.error(key, f"invalid {key} '{value}': expected a non-empty string")
    setattr(cfg, key, value.strip())


def _set_int(cfg: AgentConfig, key: str, value: Any, low: int, high: int, hint: str) -> None:
    """Store an integer setting in LOW..HIGH; raises ConfigError naming key, value and HINT."""
    number = _int_value(value)
    if number is None or not low <= number <= high:
        raise cfg.error(key, f"invalid {key} '{value}': {hint}")
    setattr(cfg, key, number)


def _apply(cfg: AgentConfig, key: str, value: Any) -> None:
    """Check one raw setting and store it in CFG; raises ConfigError for a bad value."""
    if key == "name":
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise cfg.error(key, f"invalid name '{value}': use up to 64 letters, digits, "
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
                raise cfg.relocate(err, key) from None
        else:
            raise cfg.error(key, f"invalid {key} '{value}': expected a string")
    elif key == "payload":
        if value is None:
            cfg.payload = None
        else:
            _set_int(cfg, key, value, 0, SNAPLEN_MAX, "expected a byte offset")
    elif key == "port":
        number = _int_value(value)
        if value is not None and (number is None or not 0 < number < 65536):
            raise cfg.error(key, f"invalid port number '{value}'")
        cfg.port = number
    elif key == "host":
        if not isinstance(value, str) or not value.strip():
            raise cfg.error(key, f"bad dump host '{value}'")
        cfg.host = value.strip()
    elif key == "allowed":
        _apply_allowed(cfg, value)
    elif key == "nameserver":
        _apply_nameserver(cfg, value)
    elif key == "dns":
        if not isinstance(value, bool):
            raise cfg.error(key, f"invalid dns '{value}': use true or false")
        cfg.dns = value
    elif key == "max_hosts":
        _set_int(cfg, key, value, 1, 2**31 - 1, "must be at least 1")
    elif key == "buffer_size":
        _set_int(cfg, key, value, BUFFER_MIN, BUFFER_MAX,
                 f"must be {BUFFER_MIN}..{BUFFER_MAX} bytes")
    else:
        raise cfg.error(key, f"unknown key '{key}'")


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
        raise cfg.error("allowed", f"invalid 'allowed' host or IP '{value}': expected a list")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise cfg.error("allowed", f"invalid 'allowed' host or IP '{item}'")
    cfg.allowed = [item.strip() for item in items] or ["127.0.0.1"]


def _apply_nameserver(cfg: AgentConfig, value: Any) -> None:
    """Store `nameserver` (ADDRESS, ADDRESS:PORT or [IPv6]:PORT); None means resolv.conf."""
    if value is None:
        cfg.nameserver = None
        return
    try:
        parse_nameserver(str(value))
    except ValueError:
        raise cfg.error("nameserver", f"invalid nameserver '{value}': use ADDRESS, "
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
            raise cfg.error(key, f"unknown key '{key}'")
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
        raise cfg.error("payload", "invalid payload length: match/nomatch need `payload`, "
                                    f"an offset below snaplen ({cfg.snaplen})")
    if not 0 < cfg.payload < cfg.snaplen:
        raise cfg.error("payload", f"invalid payload length '{cfg.payload}': match/nomatch "
                                    f"need 0 < payload < snaplen ({cfg.snaplen})")


def config_as_yaml(cfg: AgentConfig, comments: list[str] | None = None) -> str:
    """Return CFG as a YAML config file (file keys only) that load_config reads back.

    Match strings are written in the \\x{hex} form.  COMMENTS become leading
    "# " lines (they do not change what the file means).
    """
    # PyYAML takes ~10 ms to import; only the `config` verb writes YAML.
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
