"""The coalescer's inventory: load, validate and resolve inventory.yaml into host specs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ncs.kinds import Choice, FilePath, HostPort, Integer, Number, Text, Typed
from ncs.settings import NULL, Key, SettingsError, Table, load_settings, where
from ncs.stats.nameunion import MAX_NAMES

DEFAULT_COMMAND = "ncs-agent dump --wait --max-age 300 --print"
HOST_KEY_POLICIES = ("strict", "accept-new", "off")
#: The most bytes a host may send by default.  Its table is read as the
#: bytes arrive (ncs.stats.streamread) and held until it is merged: about
#: 0.8 bytes of memory per byte of output.  An agent at its default bound of
#: 1,000,000 addresses writes about 130-160 MB.
DEFAULT_MAX_SIZE = 256 << 20


class InventoryError(ValueError):
    """An invalid inventory; str() is one line naming the file (and line), the host and the key."""


def _describe(key: Key, value: Any, hint: str) -> str:
    """Return the inventory's wording: "key 'KEY': HINT, not VALUE" (VALUE once, if HINT quotes it)."""
    shown = repr(value)
    return f"key '{key.name}': {hint}" if shown in hint else f"key '{key.name}': {hint}, not {shown}"


#: Keys allowed under `defaults:` and under each host (per-host overrides).
CONNECTION = Table([
    Key("address", Text(), None, "host name or address to connect to (default: the host's name)"),
    Key("port", Integer(1, 65535), None, "SSH port (default: ~/.ssh/config, then 22)", NULL),
    Key("user", Text(), None, "remote login (default: ~/.ssh/config, then the local user)"),
    Key("identity", FilePath(), None, "private key file", NULL),
    Key("known_hosts", FilePath(), None, "file the host keys are checked against", NULL),
    Key("host_key_check", Choice(HOST_KEY_POLICIES), "strict",
        "strict: refuse unknown keys; accept-new: remember them; off: accept any"),
    Key("ssh_agent", Typed(bool, "must be true or false"), True, "also offer the keys held by ssh-agent"),
    Key("ssh_config", FilePath(off=True), "~/.ssh/config", "ssh client config (false: none)"),
    Key("connect_timeout", Number(0.001), 10.0, "seconds for connect, handshake and login", NULL),
    Key("timeout", Number(0.001), 60.0, "seconds for the whole host", NULL),
    Key("command", Text(), DEFAULT_COMMAND, "remote command that prints the stats file"),
    Key("exec", Text(), None, "legacy host: command run before `fetch`"),
    Key("fetch", Text(), None, "legacy host: path of the stats file, read over SFTP"),
    Key("max_size", Integer(1), DEFAULT_MAX_SIZE, "most bytes accepted from the host", NULL),
    Key("proxy_jump", Text(), None, "jump hosts [user@]host[:port],... (default: ssh_config ProxyJump)"),
    Key("proxy_command", Text(), None,
        "command whose stdin/stdout is the connection, %h %p %r expanded (default: ssh_config)"),
    Key("compression", Typed(bool, "must be true or false"), False,
        "compress the SSH connection (pays only on slow links: docs/coalesce.md)"),
], _describe)

#: The top level of the inventory.
TOP = Table([
    Key("defaults", Typed(dict, "must be a mapping"), {}, "connection keys every host starts from", NULL),
    Key("hosts", Typed(dict, "must be a mapping of host name to settings"), {},
        "host name -> connection keys that differ from the defaults", NULL),
    Key("local", Typed(dict, "must be a mapping with 'stats'"), None,
        "the agent on this box, read from its stats file", NULL),
    Key("cache", FilePath(), None, "the composite stats file (--output wins)", NULL),
    Key("refresh", Number(0), 0.0, "seconds a composite is served without fetching (0: never)",
        NULL),
    Key("updto", Number(0), 15.0, "default wait for the local agent's dump, seconds", NULL),
    Key("jobs", Integer(1), 8, "hosts fetched at the same time", NULL),
    Key("lock", FilePath(), None, "run lock file (default: <composite>.lock)", NULL),
    Key("lock_wait", Number(0), 0.0, "seconds to wait for another running coalescer", NULL),
    Key("max_names", Integer(1), MAX_NAMES, "names an address keeps in the composite", NULL),
], _describe)

#: Keys of the `local:` section.
LOCAL = Table([
    Key("name", Text(), "localhost", "name of the local agent in the composite"),
    Key("stats", FilePath(), None, "the local agent's stats file (required)", NULL),
    Key("update", HostPort(default_host="127.0.0.1"), None,
        "the agent's UDP dump port, HOST:PORT or PORT (on 127.0.0.1)", NULL),
    Key("updto", Number(0), None, "seconds to wait for the dump (default: the top-level updto)",
        NULL),
], _describe)


@dataclass(frozen=True)
@CONNECTION.defaults_for
class HostSpec:
    """Everything needed to fetch one host's stats (defaults already applied, from CONNECTION).

    `fetch` set means a legacy host: run `exec` (if any), then read `fetch`
    over SFTP.  Otherwise `command` prints the stats file on stdout.  port,
    user, identity and known_hosts stay None when the inventory does not set
    them, so that ~/.ssh/config (then the built-in defaults) can fill them in.
    """

    name: str
    address: str = field()  # required: the inventory fills in the name when it is not set
    port: int | None
    user: str | None
    identity: str | None
    known_hosts: str | None
    host_key_check: str
    ssh_agent: bool
    ssh_config: str | None
    connect_timeout: float
    timeout: float
    command: str
    exec: str | None
    fetch: str | None
    max_size: int
    proxy_jump: str | None
    proxy_command: str | None
    compression: bool

    @property
    def legacy(self) -> bool:
        """True for a host running the original Perl agent (exec + SFTP fetch)."""
        return self.fetch is not None


@dataclass(frozen=True)
class LocalAgent:
    """The agent on the central box itself: its stats file and optional UDP dump address."""

    name: str
    stats: str
    update: tuple[str, int] | None = None
    updto: float = TOP.default("updto")


@dataclass
@TOP.defaults_for
class Inventory:
    """A validated inventory: hosts in file order plus the coalescer's own settings (defaults from TOP)."""

    path: str
    hosts: list[HostSpec] = field(default_factory=list)
    local: LocalAgent | None = None
    cache: str | None
    refresh: float
    updto: float
    jobs: int
    lock: str | None
    lock_wait: float
    max_names: int


def load_inventory(path: str) -> Inventory:
    """Read and validate the inventory at PATH.

    Returns the Inventory.  Raises InventoryError with a one-line message
    ("PATH:LINE: host NAME: key 'port': ...") for anything invalid or unreadable.
    """
    try:
        data = load_settings(path)
    except SettingsError as err:
        raise InventoryError(str(err)) from None
    return parse_inventory(data, path)


def parse_inventory(data: Any, path: str = "inventory") -> Inventory:
    """Validate DATA (the loaded YAML) and return the Inventory.

    Raises InventoryError naming the file and line (as far as DATA knows
    them), the host (or section) and the key.
    """
    try:
        return _inventory(data, path)
    except SettingsError as err:
        raise InventoryError(f"{err.where or path}: {err.message}") from None


def _inventory(data: Any, path: str) -> Inventory:
    """parse_inventory's work; raises SettingsError."""
    if not isinstance(data, dict):
        raise SettingsError("top level must be a mapping with a 'hosts' key", path)
    top = TOP.read(data, "top level", path)
    inv = Inventory(path=path, **{k: v for k, v in top.items() if k not in ("defaults", "hosts", "local")})
    defaults = top.get("defaults", {})
    CONNECTION.check_names(defaults, "defaults", path)
    if "address" in defaults:
        raise SettingsError("defaults: unknown key 'address'", where(defaults, "address", path))
    base = CONNECTION.read(defaults, "defaults", path)
    hosts = top.get("hosts", {})
    for name, overrides in hosts.items():
        inv.hosts.append(_host_spec(hosts, name, overrides, base, defaults, path))
    if top.get("local") is not None:
        inv.local = _local_agent(top["local"], inv.updto, path)
    if not inv.hosts and inv.local is None:
        raise SettingsError("key 'hosts': no hosts and no local agent: nothing to coalesce",
                            where(data, "hosts", path))
    names = [h.name for h in inv.hosts] + ([inv.local.name] if inv.local else [])
    if len(set(names)) != len(names):
        # host names are mapping keys, unique already: the local agent's name is the second
        dup = next(n for n in names if names.count(n) > 1)
        raise SettingsError(f"host {dup}: key 'name': used twice", where(top["local"], "name", path))
    return inv


def _host_spec(hosts: Mapping, name: Any, overrides: Any, base: dict[str, Any],
               defaults: Mapping, path: str) -> HostSpec:
    """Return the HostSpec for one `hosts:` entry; raises SettingsError naming the host."""
    place = where(hosts, name, path)
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise SettingsError(f"host {name!r}: a host name must be a non-empty word", place)
    context = f"host {name}"
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise SettingsError(f"{context}: settings must be a mapping (or empty)", place)
    settings = {**base, **CONNECTION.read(overrides, context, path)}
    settings.setdefault("address", name)
    if "exec" in settings and "fetch" not in settings:
        source = overrides if "exec" in overrides else defaults
        raise SettingsError(f"{context}: key 'exec': needs 'fetch' (the path to read over SFTP)",
                            where(source, "exec", path))
    return HostSpec(name=name, **settings)


def _local_agent(section: Mapping, default_updto: float, path: str) -> LocalAgent:
    """Validate the `local:` section; returns the LocalAgent."""
    values = LOCAL.read(section, "local", path)
    if values.get("stats") is None:
        raise SettingsError("local: key 'stats': missing (the local agent's stats file)",
                            where(section, None, path))
    updto = values.get("updto")
    return LocalAgent(name=values.get("name", LOCAL.default("name")), stats=values["stats"],
                      update=values.get("update"),
                      updto=default_updto if updto is None else updto)
