"""The agent's configuration: one table of keys for the YAML file and the command line.

Two steps, each raising ConfigError with a one-line message naming the key
and the value (and the file and line when the value came from the file):

- `load_config(path)` reads the YAML file (a Section: a dict with every key's line);
- `resolve_config(raw, overrides)` checks names, types and ranges against
  `KEYS` and returns the effective `AgentConfig` (command-line overrides win
  over file values).

What depends on this host (names, devices, directories, the user) is checked
by `ncs.agent.environment.check_environment`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ncs.agent.errors import ConfigError, config_error
from ncs.agent.nameserver import parse_nameserver
from ncs.history.keep import parse_keep
from ncs.kinds import Integer, Invalid, Text, TextList, Typed
from ncs.settings import NULL, Key, SettingsError, Table, Unreadable, load_settings, where

# Limits that the checks enforce.  The snap length must cover the largest
# headers the decoder reads: Linux cooked v2 (20) or Ethernet with two VLAN
# tags (22) plus a full IPv6 header (40); libpcap itself caps it at 262144.
SNAPLEN_MIN = 64
SNAPLEN_MAX = 262144
BUFFER_MIN = 64 * 1024
BUFFER_MAX = 2**31 - 1
# A name becomes part of file names (<name>.pid, <name>.stats) and of systemd
# instance names, so it is limited to characters that are safe in both.
NAME_RE = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,63}")


def parse_match(text: str, key: str = "match") -> bytes:
    """Return the bytes of a match string, with the original's \\x{hex} escapes decoded.

    Raises ValueError ("invalid escape in KEY '...'") for a malformed escape or
    a character outside Latin-1.
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
                raise ValueError(f"invalid escape in {key} '{text}'") from None
            if not 0 <= value <= 0xFF:
                raise ValueError(f"escape out of range in {key} '{text}'")
            out.append(value)
            i = end + 1
            continue
        code = ord(text[i])
        if code > 0xFF:
            raise ValueError(f"non-Latin-1 character in {key} '{text}'")
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


@dataclass(frozen=True)
class MatchString:
    """A match/nomatch value: text (a number counts as its text) with \\x{hex} escapes, as bytes."""

    key: str

    def __call__(self, value: Any) -> bytes:
        """Return the bytes; raises Invalid (a malformed escape is a whole message)."""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise Invalid("expected a string")
        try:
            return parse_match(str(value), self.key)
        except ValueError as err:
            raise Invalid(str(err), whole=True) from None


NAMESERVER_HINT = "use ADDRESS, ADDRESS:PORT or [IPv6]:PORT"


def nameserver_text(value: Any) -> str:
    """Return a `nameserver` value (ADDRESS, ADDRESS:PORT, [IPv6]:PORT) as stripped text; raises Invalid."""
    try:
        parse_nameserver(str(value))
    except ValueError:
        raise Invalid(NAMESERVER_HINT) from None
    return str(value).strip()


def keep_text(value: Any) -> str:
    """Return a retention policy ("raw=2d,hour=30d,day=400d") as stripped text; raises Invalid."""
    try:
        parse_keep(str(value))
    except ValueError as err:
        raise Invalid(str(err)) from None
    return str(value).strip()


def _describe(key: Key, value: Any, hint: str) -> str:
    """Return the agent's wording: "invalid KEY 'VALUE': HINT" (or the key's own label)."""
    label = (key.label or "invalid {key} '{value}'").format(key=key.name, value=value)
    return f"{label}: {hint}" if hint else label


TEXT = Text(hint="expected a non-empty string")

#: Every setting, in the order `config` prints them; `read` and `stats` only
#: come from the command line.
KEYS = Table([
    Key("name", Text(hint="use up to 64 letters, digits, '_', '@', '.', '-' (it names the pid "
                          "and stats files)", pattern=NAME_RE),
        "ncs-agent", "instance name (pid, stats and log file names)"),
    Key("piddir", TEXT, "/run/ncs", "directory of the pid file <name>.pid"),
    Key("sniffer", TEXT, "/var/lib/ncs", "directory of the stats file <name>.stats"),
    Key("bpf", TEXT, "", "BPF expression naming the monitored host(s)"),
    Key("device", TEXT, None, "capture device (default: the one carrying the host)", NULL),
    Key("snaplen", Integer(SNAPLEN_MIN, SNAPLEN_MAX, f"must be {SNAPLEN_MIN}..{SNAPLEN_MAX} bytes"),
        96, "bytes captured per packet"),
    Key("match", MatchString("match"), None, "keep only packets whose payload contains this",
        (None, "")),
    Key("nomatch", MatchString("nomatch"), None, "drop packets whose payload contains this",
        (None, "")),
    Key("payload", Integer(0, SNAPLEN_MAX, "expected a byte offset"), None,
        "payload offset for match/nomatch", NULL),
    Key("port", Integer(1, 65535, ""), None, "UDP dump port", NULL,
        label="invalid port number '{value}'"),
    Key("host", Text(hint=""), "127.0.0.1", "address of the UDP dump port",
        label="bad dump host '{value}'"),
    Key("allowed", TextList(), ["127.0.0.1"],
        "address or name allowed to use the dump port (repeat for more)", (None, []),
        label="invalid 'allowed' host or IP '{value}'"),
    Key("nameserver", nameserver_text, None, "reverse-DNS server, ADDRESS or ADDRESS:PORT", NULL),
    Key("dns", Typed(bool, "use true or false"), True, "reverse-DNS lookups"),
    Key("max_hosts", Integer(1, 2**31 - 1, "must be at least 1"), 1_000_000,
        "most remote addresses kept"),
    Key("user", TEXT, None, "user to switch to once the capture is open", NULL),
    Key("buffer_size", Integer(BUFFER_MIN, BUFFER_MAX, f"must be {BUFFER_MIN}..{BUFFER_MAX} bytes"),
        32 * 1024 * 1024, "kernel capture buffer, bytes"),
    Key("history", TEXT, None, "history store (DuckDB file) every dump is appended to", NULL),
    Key("history_keep", keep_text, None, "the store's retention, e.g. raw=2d,hour=30d,day=400d", NULL),
    Key("read", TEXT, None, "replay a pcap/pcapng file instead of capturing", NULL),
    Key("stats", TEXT, None, "stats file instead of <sniffer>/<name>.stats ('-': stdout)", NULL),
], _describe)

#: Keys that only the command line sets.
COMMAND_LINE_KEYS = ("read", "stats")
#: Keys a config file may hold, in the order `config` prints them.
FILE_KEYS = tuple(key.name for key in KEYS if key.name not in COMMAND_LINE_KEYS)


@dataclass
@KEYS.defaults_for
class AgentConfig:
    """Effective agent settings; keys match the YAML config file, defaults come from KEYS.

    `read` and `stats` exist only on the command line: `read` replays a capture
    file instead of capturing live, `stats` overrides `<sniffer>/<name>.stats`
    ('-' is stdout).  `origins` holds the keys set explicitly: "FILE:LINE" when
    the value came from the config file (for error messages), "" when it came
    from the command line; it is not a setting.
    """

    name: str
    piddir: str
    sniffer: str
    bpf: str
    snaplen: int
    match: bytes | None
    nomatch: bytes | None
    payload: int | None
    port: int | None
    host: str
    allowed: list[str]
    device: str | None
    nameserver: str | None
    dns: bool
    max_hosts: int
    user: str | None
    buffer_size: int
    history: str | None
    history_keep: str | None
    # command line only
    read: str | None
    stats: str | None
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


def load_config(path: str) -> Mapping:
    """Read the YAML config file PATH; returns its mapping with the line of every key.

    An empty file is an empty mapping.  Raises ConfigError naming the file (and
    line) when it cannot be read, is not YAML, is not a mapping or repeats a key.
    """
    try:
        return load_settings(path)
    except Unreadable as err:
        raise config_error(f"cannot read '{err.path}': {err.reason}") from None
    except SettingsError as err:
        raise config_error(err.message, err.where) from None


def resolve_config(raw: Mapping, overrides: dict) -> AgentConfig:
    """Return the effective config: defaults, then RAW (the file), then OVERRIDES (command line).

    Overrides use the same key names; a None override means "not given".  RAW
    may be what load_config returned, whose line numbers then place error messages.
    Raises ConfigError for an unknown key, a wrong type or a value out of range,
    and for payload/match combinations the capture cannot honour.
    """
    cfg = AgentConfig()
    merged: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key)
        cfg.origins[name] = where(raw, key)
        if name not in FILE_KEYS:
            raise cfg.error(name, f"unknown key '{name}'")
        merged[name] = value
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in KEYS:
            raise config_error(f"unknown key '{name}'")
        cfg.origins[name] = ""  # set explicitly, but no file line to point at
        merged[name] = value
    for name, value in merged.items():
        try:
            setattr(cfg, name, KEYS.convert(name, value))
        except SettingsError as err:
            raise cfg.error(name, err.message) from None
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
    for name in FILE_KEYS:
        value = getattr(cfg, name)
        data[name] = format_match(value) if isinstance(value, bytes) else value
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=False)
    header = "".join(f"# {line}\n" for line in comments or [])
    return header + text
