"""Logging in to one host with paramiko: endpoint from inventory and ~/.ssh/config, host keys, bastions.

`resolve_endpoint` decides where and as whom to connect (the inventory
first, then the ssh_config file, then defaults), including a ProxyJump
chain or a ProxyCommand.  `connect` opens the session: through each jump
host's `direct-tcpip` channel, or over the ProxyCommand's pipes, or a plain
TCP connection, and checks the host key and logs in.  Every failure is a
`FetchError` with one line that names the host and the hop.
"""

from __future__ import annotations

import errno
import getpass
import os
import socket
import threading
import time
from dataclasses import dataclass, replace

import paramiko
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    ChannelException,
    NoValidConnectionsError,
    ProxyCommandFailure,
    SSHException,
)

from ncs.coalesce import sshkeys
from ncs.coalesce.inventory import HostSpec

#: Ciphers tried first.  AES-GCM is one AEAD pass (AES-NI and carry-less
#: multiply in OpenSSL) where AES-CTR needs a separate HMAC-SHA2 pass over
#: every packet, on both ends; sshd's share of a transfer is what the remote
#: host (or, in tests, this machine) pays.  Every cipher paramiko has stays
#: allowed after these, for servers that lack GCM.
_PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: Jump hosts followed at most (a longer chain is taken for a loop).
MAX_JUMPS = 8

class FetchError(Exception):
    """Fetching a host failed; str() is the one-line reason shown in the summary."""


@dataclass(frozen=True)
class Jump:
    """One jump host of a ProxyJump chain, as written: [user@]host[:port]."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Jump:
        """Return the jump host of TEXT ("user@host:port", "host", "[2001:db8::1]:22"...).

        Raises FetchError for a text that is not one.
        """
        user, _, rest = text.rpartition("@")
        host, port = rest, None
        if rest.startswith("["):
            host, _, after = rest[1:].partition("]")
            if after.startswith(":"):
                port = after[1:]
        elif rest.count(":") == 1:
            host, port = rest.split(":")
        if not host or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
            raise FetchError(f"ProxyJump {text!r}: not [user@]host[:port]")
        return cls(host, user or None, int(port) if port else None)


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect, after ~/.ssh/config and defaults are applied."""

    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    known_hosts: str
    #: the jump hosts to go through, first to last (ProxyJump)
    jumps: tuple[Jump, ...] = ()
    #: the command whose standard input and output are the connection (ProxyCommand)
    proxy_command: str | None = None

    @property
    def where(self) -> str:
        """Return "HOST port PORT", as reasons name an endpoint."""
        return f"{self.hostname} port {self.port}"


def _ssh_config(spec: HostSpec, host: str) -> dict:
    """Return the ssh_config settings for HOST ({} without a file); raises FetchError for a bad file."""
    if not spec.ssh_config:
        return {}
    path = os.path.expanduser(spec.ssh_config)
    if not os.path.exists(path):
        return {}
    try:
        return paramiko.SSHConfig.from_path(path).lookup(host)
    except Exception as err:  # paramiko raises several kinds for a bad file
        raise FetchError(f"cannot use ssh config {path}: {err}") from None


def resolve_endpoint(spec: HostSpec) -> Endpoint:
    """Return the endpoint for SPEC: inventory values first, then ~/.ssh/config, then defaults.

    The ssh_config file is looked up by the host's address, as `ssh ADDRESS`
    would; HostName, Port, User, IdentityFile, UserKnownHostsFile,
    ProxyJump and ProxyCommand are used ("none" turns a proxy off).
    Raises FetchError if the ssh_config file exists but cannot be parsed, or
    a proxy setting is malformed.
    """
    conf = _ssh_config(spec, spec.address)
    hostname = conf.get("hostname", spec.address)
    port = spec.port or int(conf.get("port", 22))
    user = spec.user or conf.get("user") or getpass.getuser()
    if spec.identity:
        key_files: tuple[str, ...] = (spec.identity,)
    else:
        key_files = tuple(os.path.expanduser(p) for p in conf.get("identityfile", [])
                          if os.path.exists(os.path.expanduser(p)))
    known = spec.known_hosts
    if not known and conf.get("userknownhostsfile"):
        known = conf["userknownhostsfile"].split()[0]
    known_hosts = os.path.expanduser(known or "~/.ssh/known_hosts")
    jump_text = spec.proxy_jump or conf.get("proxyjump")
    command = spec.proxy_command or conf.get("proxycommand")
    jumps: tuple[Jump, ...] = ()
    if jump_text and jump_text.lower() != "none":
        jumps = tuple(Jump.parse(part.strip()) for part in jump_text.split(","))
    if len(jumps) > MAX_JUMPS:
        raise FetchError(f"ProxyJump {jump_text!r}: more than {MAX_JUMPS} jump hosts")
    if command and command.lower() == "none":
        command = None
    if command and spec.proxy_command:
        # ssh_config's tokens are expanded by paramiko; the inventory's here
        command = _expand(command, hostname, port, user)
    return Endpoint(hostname, port, user, key_files, known_hosts, jumps,
                    None if jumps else command)


def _expand(command: str, host: str, port: int, user: str) -> str:
    """Return COMMAND with %h, %p, %r and %% replaced, as ssh does for ProxyCommand."""
    values = {"h": host, "p": str(port), "r": user, "%": "%"}
    out, i = [], 0
    while i < len(command):
        if command[i] == "%" and i + 1 < len(command) and command[i + 1] in values:
            out.append(values[command[i + 1]])
            i += 2
        else:
            out.append(command[i])
            i += 1
    return "".join(out)


def jump_endpoint(spec: HostSpec, jump: Jump) -> Endpoint:
    """Return the endpoint of a jump host: its own ssh_config entry, the target's key and known_hosts.

    The jump host's own ProxyJump and ProxyCommand are not followed (the
    chain of the target is the whole way).
    """
    hop = replace(spec, address=jump.host, port=jump.port, user=jump.user,
                  proxy_jump="none", proxy_command="none")
    return resolve_endpoint(hop)


def key_fingerprint(key: paramiko.PKey) -> str:
    """Return 'TYPE SHA256:...' for a host key, as ssh-keygen -l shows it."""
    return f"{key.get_name()} {key.fingerprint}"


class UnknownHostKey(SSHException):
    """The server's host key is not in known_hosts and the policy is strict."""


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse a host that known_hosts does not list, naming its key and the file."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key) -> None:
        raise UnknownHostKey(
            f"unknown host key {key_fingerprint(key)} for {hostname}: not in {self.known_hosts}")


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust a host seen for the first time and remember its key (ssh's accept-new)."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key) -> None:
        sshkeys.remember(self.known_hosts, hostname, key)


class _AcceptAny(paramiko.MissingHostKeyPolicy):
    """host_key_check: off -- accept whatever key the server shows."""

    def missing_host_key(self, client, hostname, key) -> None:
        return None


def host_key_name(ep: Endpoint) -> str:
    """Return how known_hosts names EP's host: "host", or "[host]:port" off port 22 (as paramiko asks)."""
    return ep.hostname if ep.port == 22 else f"[{ep.hostname}]:{ep.port}"


def make_client(spec: HostSpec, ep: Endpoint) -> paramiko.SSHClient:
    """Return an SSHClient that knows EP's host keys from known_hosts, with the policy SPEC asks for.

    Only the keys of EP's host are handed over, from known_hosts read once
    per run (`ncs.coalesce.sshkeys`); paramiko checks them as if it had
    read the file itself.  Raises FetchError when the file cannot be read.
    """
    client = paramiko.SSHClient()
    if spec.host_key_check == "off":
        client.set_missing_host_key_policy(_AcceptAny())
        return client
    name = host_key_name(ep)
    try:
        known = sshkeys.host_keys(ep.known_hosts, name)
    except (OSError, SSHException) as err:
        raise FetchError(f"cannot read known_hosts {ep.known_hosts}: {err}") from None
    for kind, key in known.items():
        client.get_host_keys().add(name, kind, key)
    if spec.host_key_check == "accept-new":
        client.set_missing_host_key_policy(_AcceptNew(ep.known_hosts))
    else:
        client.set_missing_host_key_policy(_RejectUnknown(ep.known_hosts))
    return client


class Watchdog:
    """Closes every SSH client of one host (target and jump hosts) when the host's time is up.

    Closing a transport from another thread makes every blocking paramiko
    call in the fetching thread fail at once, so no stage can hang past the
    deadline whatever the server does.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self.clients: list[paramiko.SSHClient] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        self.close()

    def close(self) -> None:
        """Close every client, the target's first (its channel runs through the jump hosts)."""
        for client in reversed(self.clients):
            client.close()

    def remaining(self) -> float:
        """Return the seconds left before the deadline (at least a small positive number)."""
        return max(0.01, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raise FetchError if the deadline has passed."""
        if self.fired or time.monotonic() >= self.deadline:
            self.fired = True
            raise FetchError(f"timed out after {self.seconds:g} s")

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self.close()


def _make_transport(sock, **kwargs) -> paramiko.Transport:
    """Return a paramiko Transport for SOCK with Nagle off and AES-GCM preferred.

    Passed to SSHClient.connect as its transport factory; KWARGS are the
    ones SSHClient gives (disabled_algorithms).  The channel window stays
    paramiko's 2 MiB: 4 and 16 MiB were measured to cost sshd 1.3-3 times
    the CPU per transfer (it buffers and shifts far more data when this
    side reads slowly), and 0.5-1 MiB saved nothing.
    """
    if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
        # paramiko leaves Nagle on: a small request (channel open, exec) sent
        # while an earlier segment is unacknowledged then waits for the
        # peer's delayed ACK, about 40 ms per round on Linux.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    available = options.ciphers
    options.ciphers = tuple(c for c in _PREFERRED_CIPHERS if c in available) + tuple(
        c for c in available if c not in _PREFERRED_CIPHERS)
    return transport


def connect(spec: HostSpec, ep: Endpoint, dog: Watchdog) -> paramiko.SSHClient:
    """Log in to SPEC's host at EP (through its jump hosts or proxy command); return the client.

    Every client opened is registered with DOG, which closes them.  Raises
    FetchError naming the hop that failed.
    """
    sock = None
    hops = [(jump_endpoint(spec, j), f"jump host {j.host}: ") for j in ep.jumps] + [(ep, "")]
    for i, (hop, label) in enumerate(hops):
        client = make_client(spec, hop)
        dog.clients.append(client)
        if sock is None and hop.proxy_command:
            sock = _proxy_command(hop.proxy_command)
        _login(client, spec, hop, sock, label)
        dog.check()
        if i + 1 < len(hops):
            sock = _channel_to(client, hops[i + 1][0], spec.connect_timeout, label)
    return client


def _proxy_command(command: str) -> paramiko.ProxyCommand:
    """Start COMMAND as the connection; raises FetchError if it cannot be started."""
    try:
        return paramiko.ProxyCommand(command)
    except (OSError, ValueError) as err:
        raise FetchError(f"ProxyCommand {command!r}: cannot start: {err}") from None


def _channel_to(client: paramiko.SSHClient, target: Endpoint, timeout: float,
                label: str) -> paramiko.Channel:
    """Return a direct-tcpip channel from CLIENT's host to TARGET; raises FetchError."""
    transport = client.get_transport()
    assert transport is not None
    try:
        return transport.open_channel("direct-tcpip", (target.hostname, target.port), ("", 0),
                                      timeout=timeout)
    except ChannelException as err:
        raise FetchError(f"{label}cannot reach {target.where}: {err.text}") from None
    except (SSHException, OSError, EOFError) as err:
        raise FetchError(f"{label}cannot reach {target.where}: {err or type(err).__name__}") from None


def _login(client: paramiko.SSHClient, spec: HostSpec, ep: Endpoint, sock, label: str) -> None:
    """Open the SSH connection (over SOCK if given) and authenticate; raises FetchError with the reason."""
    where = ep.where
    t = spec.connect_timeout
    key_files = list(ep.key_files)
    # the first identity, read once per run; paramiko reads the others (and
    # this one, when it needs a passphrase) itself, in the same order
    pkey = sshkeys.identity(key_files[0]) if key_files else None
    if pkey is not None:
        key_files = key_files[1:]
    try:
        client.connect(
            ep.hostname, port=ep.port, username=ep.user, sock=sock, pkey=pkey,
            key_filename=key_files or None,
            look_for_keys=not ep.key_files, allow_agent=spec.ssh_agent,
            timeout=t, banner_timeout=t, auth_timeout=t, channel_timeout=t,
            compress=spec.compression, transport_factory=_make_transport,
        )
    except NoValidConnectionsError as err:
        reasons = {os.strerror(e.errno) if getattr(e, "errno", None) else str(e)
                   for e in err.errors.values()}
        raise FetchError(f"{label}cannot connect to {where}: {'; '.join(sorted(reasons))}") from None
    except TimeoutError:
        raise FetchError(f"{label}connect to {where} timed out after {t:g} s") from None
    except BadHostKeyException as err:
        raise FetchError(
            f"{label}host key changed for {where}: server shows {key_fingerprint(err.key)}, "
            f"{ep.known_hosts} has {key_fingerprint(err.expected_key)} (rejected)") from None
    except UnknownHostKey as err:
        raise FetchError(f"{label}{err} (rejected)") from None
    except AuthenticationException as err:
        raise FetchError(f"{label}authentication as {ep.user} refused by {where}: {err}") from None
    except ProxyCommandFailure as err:
        raise FetchError(f"{label}ProxyCommand for {where} failed: {err}") from None
    except SSHException as err:
        text = str(err)
        if "banner" in text or "No existing session" in text:
            raise FetchError(f"{label}no SSH handshake from {where} within {t:g} s (server hung?)") from None
        raise FetchError(f"{label}ssh to {where}: {text}") from None
    except OSError as err:
        reason = err.strerror or str(err)
        if err.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            reason = os.strerror(err.errno)
        raise FetchError(f"{label}cannot connect to {where}: {reason}") from None
    except EOFError:
        raise FetchError(f"{label}{where} closed the connection during the handshake") from None
