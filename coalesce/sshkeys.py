"""Key material read once per run and shared by every connection: identity keys and known_hosts files.

paramiko's SSHClient reads its key files and its known_hosts file again for
every connection.  For a fleet that is the same identity file parsed up to
three times (paramiko tries each key type in turn) and a known_hosts file
with a line per host parsed whole, once per host: quadratic in the fleet's
size (and paramiko's reading of one such file is itself quadratic: it
looks every line up among the lines before it).  Here each file is read
once per run (again only if it changes on disk) and every connection gets
what it needs from the parsed copy: the identity as a loaded key, and only
the known_hosts entries of its own host, found through a dict.
"""

from __future__ import annotations

import base64
import fcntl
import hmac
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey
from paramiko.pkey import UnknownKeyType
from paramiko.ssh_exception import SSHException

T = TypeVar("T")

# The files' parsed contents, by path, each with the stat() stamp it was read at.
_lock = threading.Lock()
_identities: dict[str, tuple[tuple, paramiko.PKey | None]] = {}
_known_hosts: dict[str, tuple[tuple, KnownHostsFile]] = {}


def _stamp(st: os.stat_result) -> tuple:
    """Return what tells a file's versions apart, from its stat()."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _cached(cache: dict[str, tuple[tuple, T]], path: str, load: Callable[[str], T]) -> T:
    """Return LOAD(PATH), loaded again only when the file at PATH changed since CACHE got it.

    Raises OSError when PATH cannot be stat()ed.
    """
    stamp = _stamp(os.stat(path))
    with _lock:
        cached = cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    value = load(path)
    with _lock:
        cache[path] = (stamp, value)
    return value


def _load_identity(path: str) -> paramiko.PKey | None:
    """Return the private key at PATH (and its PATH-cert.pub, if any) as paramiko loads it, or None.

    None for a key paramiko cannot load without help (protected by a
    passphrase, or of an unknown type): SSHClient then reads it itself,
    and says why it cannot.
    """
    try:
        return paramiko.PKey.from_path(path)
    except (SSHException, UnknownKeyType, OSError, ValueError, TypeError):
        return None


def identity(path: str) -> paramiko.PKey | None:
    """Return the loaded private key at PATH (read once per version of the file), or None.

    None means: let paramiko read PATH itself (see `_load_identity`).
    """
    try:
        return _cached(_identities, path, _load_identity)
    except OSError:
        return None


class KnownHostsFile:
    """A known_hosts file parsed once: each host's keys found without reading every line.

    Plain host names are a dict; hashed ones ("|1|salt|hash", as
    `HashKnownHosts yes` writes them) keep their salt and hash decoded, so a
    lookup costs one HMAC per hashed line (inherent in hashing).  Lines are
    read as paramiko reads them (`HostKeyEntry.from_line`); a line it cannot
    read is skipped, as ssh skips it.
    """

    def __init__(self) -> None:
        self._plain: dict[str, list[tuple[int, paramiko.PKey]]] = {}
        self._hashed: list[tuple[int, bytes, bytes, paramiko.PKey]] = []
        self._entries = 0  # entries added so far: their order is the file's

    @classmethod
    def read(cls, path: str) -> KnownHostsFile:
        """Return the file at PATH parsed (empty if there is no file); raises OSError."""
        known = cls()
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    known._add_line(line.strip())
        except FileNotFoundError:
            pass
        return known

    def _add_line(self, line: str) -> None:
        if not line or line.startswith("#"):
            return
        try:
            entry = HostKeyEntry.from_line(line)
        except (SSHException, InvalidHostKey, ValueError):
            return
        if entry is not None:
            self.add(entry.hostnames, entry.key)

    def add(self, names: list[str], key: paramiko.PKey) -> None:
        """Add KEY for the host NAMES (as written in a line of the file), after every line so far."""
        self._entries += 1
        line = self._entries
        for name in names:
            if not name.startswith("|1|"):
                self._plain.setdefault(name, []).append((line, key))
                continue
            parts = name.split("|")
            try:
                salt, digest = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
            except (IndexError, ValueError):
                continue
            self._hashed.append((line, salt, digest, key))

    def lookup(self, hostname: str) -> dict[str, paramiko.PKey]:
        """Return HOSTNAME's keys by key type, the first line of each type first (paramiko's order)."""
        found = list(self._plain.get(hostname, ()))
        if self._hashed and not hostname.startswith("|1|"):
            name = hostname.encode()
            found += [(line, key) for line, salt, digest, key in self._hashed
                      if hmac.compare_digest(hmac.digest(salt, name, "sha1"), digest)]
        keys: dict[str, paramiko.PKey] = {}
        for _, key in sorted(found, key=lambda pair: pair[0]):
            keys.setdefault(key.get_name(), key)
        return keys


def _parsed_known_hosts(path: str) -> KnownHostsFile:
    """Return the known_hosts file PATH parsed (read again only if it changed); raises OSError."""
    try:
        return _cached(_known_hosts, path, KnownHostsFile.read)
    except FileNotFoundError:
        return KnownHostsFile()


def host_keys(path: str, hostname: str) -> dict[str, paramiko.PKey]:
    """Return the keys the known_hosts file PATH lists for HOSTNAME, by key type (maybe none).

    HOSTNAME is spelled as in the file: "host", or "[host]:port" off port
    22; hashed entries are matched too.  Raises OSError when the file
    cannot be read.
    """
    return _parsed_known_hosts(path).lookup(hostname)


def remember(path: str, hostname: str, key: paramiko.PKey) -> None:
    """Append HOSTNAME's KEY to the known_hosts file PATH (creating it), and to its parsed copy.

    The copy is kept (not read again) when no one else wrote to the file
    since it was read: a first run over a new fleet then parses the file
    once, not once per host.  Raises OSError.
    """
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    with _lock:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "a", encoding="ascii") as f:
            # the thread lock does not cover another ncs-coalesce run adding to the same file
            fcntl.flock(f, fcntl.LOCK_EX)
            before = _stamp(os.fstat(f.fileno()))
            f.write(line)
            f.flush()
            after = _stamp(os.fstat(f.fileno()))
        cached = _known_hosts.get(path)
        if cached is not None and cached[0] == before:
            cached[1].add([hostname], key)
            _known_hosts[path] = (after, cached[1])
