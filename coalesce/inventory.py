"""The coalescer's inventory: load, validate and resolve inventory.yaml into host specs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from ncs.hostport import parse_hostport

DEFAULT_COMMAND = "ncs-agent dump --wait --max-age 300 --print"
HOST_KEY_POLICIES = ("strict", "accept-new", "off")

#: Keys allowed under `defaults:` and under each host (per-host overrides).
CONNECTION_KEYS = {
    "address", "port", "user", "identity", "known_hosts", "host_key_check", "ssh_agent",
    "ssh_config", "connect_timeout", "timeout", "command", "exec", "fetch", "max_size",
}
TOP_KEYS = {"defaults", "hosts", "local", "cache", "refresh", "updto", "jobs", "lock", "lock_wait"}
LOCAL_KEYS = {"name", "stats", "update", "updto"}


class InventoryError(ValueError):
    """An invalid inventory; str() is one line naming the file, the host and the key."""


@dataclass(frozen=True)
class HostSpec:
    """Everything needed to fetch one host's stats (defaults already applied).

    `fetch` set means a legacy host: run `exec` (if any), then read `fetch`
    over SFTP.  Otherwise `command` prints the stats file on stdout.  port,
    user, identity and known_hosts stay None when the inventory does not set
    them, so that ~/.ssh/config (then the built-in defaults) can fill them in.
    """

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    identity: str | None = None
    known_hosts: str | None = None
    host_key_check: str = "strict"
    ssh_agent: bool = True
    ssh_config: str | None = "~/.ssh/config"
    connect_timeout: float = 10.0
    timeout: float = 60.0
    command: str = DEFAULT_COMMAND
    exec: str | None = None
    fetch: str | None = None
    max_size: int = 1 << 30

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
    updto: float = 15.0


@dataclass
class Inventory:
    """A validated inventory: hosts in file order plus the coalescer's own settings."""

    path: str
    hosts: list[HostSpec] = field(default_factory=list)
    local: LocalAgent | None = None
    cache: str | None = None
    refresh: float = 0.0
    updto: float = 15.0
    jobs: int = 8
    lock: str | None = None
    lock_wait: float = 0.0


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys (a host listed twice)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise InventoryError(
                f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_inventory(path: str) -> Inventory:
    """Read and validate the inventory at PATH.

    Returns the Inventory.  Raises InventoryError with a one-line message
    ("PATH: host NAME: key 'port': ...") for anything invalid or unreadable.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except OSError as err:
        raise InventoryError(f"{path}: cannot read: {err.strerror}") from None
    except InventoryError as err:
        raise InventoryError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InventoryError(f"{path}: {where}invalid YAML: {problem}") from None
    try:
        return parse_inventory(data, path)
    except InventoryError as err:
        raise InventoryError(f"{path}: {err}") from None


def parse_inventory(data: Any, path: str = "inventory") -> Inventory:
    """Validate DATA (the loaded YAML) and return the Inventory.

    Raises InventoryError naming the host (or section) and the key.
    """
    if not isinstance(data, dict):
        raise InventoryError("top level must be a mapping with a 'hosts' key")
    _no_unknown(data, TOP_KEYS, "top level")
    inv = Inventory(path=path)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InventoryError("key 'defaults': must be a mapping")
    _no_unknown(defaults, CONNECTION_KEYS - {"address"}, "defaults")
    base = _connection_settings(defaults, "defaults")
    hosts = data.get("hosts")
    if hosts is None:
        hosts = {}
    if not isinstance(hosts, dict):
        raise InventoryError("key 'hosts': must be a mapping of host name to settings")
    for name, overrides in hosts.items():
        inv.hosts.append(_host_spec(name, overrides, base))
    inv.jobs = _int(data, "jobs", "top level", 8, minimum=1)
    inv.refresh = _number(data, "refresh", "top level", 0.0, minimum=0)
    inv.updto = _number(data, "updto", "top level", 15.0, minimum=0)
    inv.lock_wait = _number(data, "lock_wait", "top level", 0.0, minimum=0)
    inv.cache = _path(data, "cache", "top level")
    inv.lock = _path(data, "lock", "top level")
    if "local" in data and data["local"] is not None:
        inv.local = _local_agent(data["local"], inv.updto)
    if not inv.hosts and inv.local is None:
        raise InventoryError("key 'hosts': no hosts and no local agent: nothing to coalesce")
    names = [h.name for h in inv.hosts] + ([inv.local.name] if inv.local else [])
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InventoryError(f"host {dup}: key 'name': used twice")
    return inv


def _host_spec(name: Any, overrides: Any, base: dict[str, Any]) -> HostSpec:
    """Return the HostSpec for one `hosts:` entry; raises InventoryError naming the host."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise InventoryError(f"host {name!r}: a host name must be a non-empty word")
    where = f"host {name}"
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise InventoryError(f"{where}: settings must be a mapping (or empty)")
    _no_unknown(overrides, CONNECTION_KEYS, where)
    settings = dict(base)
    settings.update(_connection_settings(overrides, where))
    settings.setdefault("address", name)
    if "exec" in settings and "fetch" not in settings:
        raise InventoryError(f"{where}: key 'exec': needs 'fetch' (the path to read over SFTP)")
    return HostSpec(name=name, **settings)


def _connection_settings(d: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate the connection keys present in D; returns only those present."""
    out: dict[str, Any] = {}
    if "address" in d:
        out["address"] = _text(d, "address", where)
    if "port" in d:
        out["port"] = _int(d, "port", where, 22, minimum=1, maximum=65535)
    if "user" in d:
        out["user"] = _text(d, "user", where)
    for key in ("identity", "known_hosts"):
        if key in d:
            out[key] = _path(d, key, where)
    if "ssh_config" in d:
        # false/null turns reading ~/.ssh/config off
        out["ssh_config"] = None if d["ssh_config"] in (None, False) else _path(d, "ssh_config", where)
    if "host_key_check" in d:
        value = d["host_key_check"]
        if value not in HOST_KEY_POLICIES:
            raise InventoryError(
                f"{where}: key 'host_key_check': {value!r} is not one of {', '.join(HOST_KEY_POLICIES)}")
        out["host_key_check"] = value
    if "ssh_agent" in d:
        out["ssh_agent"] = _bool(d, "ssh_agent", where)
    for key in ("connect_timeout", "timeout"):
        if key in d:
            out[key] = _number(d, key, where, 0.0, minimum=0.001)
    for key in ("command", "exec", "fetch"):
        if key in d:
            out[key] = _text(d, key, where)
    if "max_size" in d:
        out["max_size"] = _int(d, "max_size", where, 1 << 30, minimum=1)
    return out


def _local_agent(d: Any, default_updto: float) -> LocalAgent:
    """Validate the `local:` section; returns the LocalAgent."""
    where = "local"
    if not isinstance(d, dict):
        raise InventoryError("key 'local': must be a mapping with 'stats'")
    _no_unknown(d, LOCAL_KEYS, where)
    if "stats" not in d:
        raise InventoryError("local: key 'stats': missing (the local agent's stats file)")
    stats = _path(d, "stats", where)
    name = _text(d, "name", where) if "name" in d else "localhost"
    update = None
    if d.get("update") is not None:
        update = parse_host_port(d["update"], "local: key 'update'")
    updto = _number(d, "updto", where, default_updto, minimum=0)
    return LocalAgent(name=name, stats=stats or "", update=update, updto=updto)


def parse_host_port(value: Any, what: str) -> tuple[str, int]:
    """Return (host, port) from 'HOST:PORT', '[V6]:PORT' or a bare port number (host 127.0.0.1).

    Raises InventoryError mentioning WHAT when the value is malformed.
    """
    try:
        return parse_hostport(str(value), default_host="127.0.0.1")
    except ValueError as err:
        raise InventoryError(f"{what}: {err}") from None


def _no_unknown(d: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in d:
        if key not in allowed:
            raise InventoryError(f"{where}: unknown key {key!r}")


def _text(d: dict[str, Any], key: str, where: str) -> str:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise InventoryError(f"{where}: key '{key}': must be a non-empty string, not {value!r}")
    return str(value)


def _path(d: dict[str, Any], key: str, where: str) -> str | None:
    if d.get(key) is None:
        return None
    return os.path.expanduser(_text(d, key, where))


def _bool(d: dict[str, Any], key: str, where: str) -> bool:
    value = d[key]
    if not isinstance(value, bool):
        raise InventoryError(f"{where}: key '{key}': must be true or false, not {value!r}")
    return value


def _number(d: dict[str, Any], key: str, where: str, default: float, minimum: float) -> float:
    if key not in d or d[key] is None:
        return default
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise InventoryError(f"{where}: key '{key}': must be a number >= {minimum:g}, not {value!r}")
    return float(value)


def _int(d: dict[str, Any], key: str, where: str, default: int, minimum: int,
         maximum: int | None = None) -> int:
    if key not in d or d[key] is None:
        return default
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
        raise InventoryError(f"{where}: key '{key}': must be an integer {bound}, not {value!r}")
    return value
