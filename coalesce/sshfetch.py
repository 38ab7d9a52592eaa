"""Fetching one host's stats over SSH with paramiko, and many hosts concurrently with a bound."""

from __future__ import annotations

import errno
import fcntl
import getpass
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import paramiko
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    NoValidConnectionsError,
    SSHException,
)

from ncs.coalesce.inventory import HostSpec
from ncs.stats.columns import StatsColumns
from ncs.stats.quoting import decode_stats_bytes
from ncs.stats.reader import StatsFormatError, parse_stats

#: How often the output loop wakes up to drain stderr and look at the clock.
_POLL_SECONDS = 0.2
_READ_CHUNK = 1 << 20

#: Ciphers tried first.  AES-GCM is one AEAD pass (AES-NI and carry-less
#: multiply in OpenSSL) where AES-CTR needs a separate HMAC-SHA2 pass over
#: every packet, on both ends; sshd's share of a transfer is what the remote
#: host (or, in tests, this machine) pays.  Every cipher paramiko has stays
#: allowed after these, for servers that lack GCM.
_PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")

# One lock for every thread that appends to a known_hosts file (accept-new).
_known_hosts_lock = threading.Lock()


class FetchError(Exception):
    """Fetching a host failed; str() is the one-line reason shown in the summary."""


class StageTimes(NamedTuple):
    """Where the seconds of one successful fetch went (shown by bench/bench_coalesce.py)."""

    #: TCP connect, SSH handshake, host key check and authentication.
    connect: float
    #: The remote command (or exec + SFTP read), until its last byte arrived.
    transfer: float
    #: Decoding and parsing what arrived.
    parse: float


@dataclass(frozen=True)
class FetchResult:
    """The outcome for one host: the parsed stats, or the reason it failed."""

    name: str
    stats: StatsColumns | None
    reason: str | None
    seconds: float
    stages: StageTimes | None = None

    @property
    def ok(self) -> bool:
        """True when the host's stats were fetched and parsed."""
        return self.stats is not None


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect, after ~/.ssh/config and defaults are applied."""

    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    known_hosts: str


def resolve_endpoint(spec: HostSpec) -> Endpoint:
    """Return the endpoint for SPEC: inventory values first, then ~/.ssh/config, then defaults.

    The ssh_config file is looked up by the host's address, as `ssh ADDRESS`
    would; HostName, Port, User, IdentityFile and UserKnownHostsFile are used.
    Raises FetchError if the ssh_config file exists but cannot be parsed.
    """
    conf: dict = {}
    if spec.ssh_config:
        path = os.path.expanduser(spec.ssh_config)
        if os.path.exists(path):
            try:
                conf = paramiko.SSHConfig.from_path(path).lookup(spec.address)
            except Exception as err:  # paramiko raises several kinds for a bad file
                raise FetchError(f"cannot use ssh config {path}: {err}") from None
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
    return Endpoint(hostname, port, user, key_files, known_hosts)


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
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _known_hosts_lock:
            os.makedirs(os.path.dirname(self.known_hosts) or ".", exist_ok=True)
            with open(self.known_hosts, "a", encoding="ascii") as f:
                # the thread lock does not cover another ncs-coalesce run adding to the same file
                fcntl.flock(f, fcntl.LOCK_EX)
                f.write(line)


class _AcceptAny(paramiko.MissingHostKeyPolicy):
    """host_key_check: off -- accept whatever key the server shows."""

    def missing_host_key(self, client, hostname, key) -> None:
        return None


def _make_client(spec: HostSpec, ep: Endpoint) -> paramiko.SSHClient:
    """Return an SSHClient with known_hosts loaded and the policy SPEC asks for."""
    client = paramiko.SSHClient()
    if spec.host_key_check == "off":
        client.set_missing_host_key_policy(_AcceptAny())
        return client
    if os.path.exists(ep.known_hosts):
        try:
            client.load_host_keys(ep.known_hosts)
        except (OSError, SSHException) as err:
            raise FetchError(f"cannot read known_hosts {ep.known_hosts}: {err}") from None
    if spec.host_key_check == "accept-new":
        client.set_missing_host_key_policy(_AcceptNew(ep.known_hosts))
    else:
        client.set_missing_host_key_policy(_RejectUnknown(ep.known_hosts))
    return client


class _Watchdog:
    """Closes the SSH client when the host's overall time is up.

    Closing the transport from another thread makes every blocking paramiko
    call in the fetching thread fail at once, so no stage can hang past the
    deadline whatever the server does.
    """

    def __init__(self, client: paramiko.SSHClient, seconds: float) -> None:
        self.client = client
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        self.client.close()

    def remaining(self) -> float:
        """Return the seconds left before the deadline (at least a small positive number)."""
        return max(0.01, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raise FetchError if the deadline has passed."""
        if self.fired or time.monotonic() >= self.deadline:
            self.fired = True
            raise FetchError(f"timed out after {self.seconds:g} s")

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


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


def _connect(client: paramiko.SSHClient, spec: HostSpec, ep: Endpoint) -> None:
    """Open the SSH connection and authenticate; raises FetchError with the reason."""
    where = f"{ep.hostname} port {ep.port}"
    t = spec.connect_timeout
    try:
        client.connect(
            ep.hostname, port=ep.port, username=ep.user,
            key_filename=list(ep.key_files) or None,
            look_for_keys=not ep.key_files, allow_agent=spec.ssh_agent,
            timeout=t, banner_timeout=t, auth_timeout=t, channel_timeout=t,
            transport_factory=_make_transport,
        )
    except NoValidConnectionsError as err:
        reasons = {os.strerror(e.errno) if getattr(e, "errno", None) else str(e)
                   for e in err.errors.values()}
        raise FetchError(f"cannot connect to {where}: {'; '.join(sorted(reasons))}") from None
    except TimeoutError:
        raise FetchError(f"connect to {where} timed out after {t:g} s") from None
    except BadHostKeyException as err:
        raise FetchError(
            f"host key changed for {where}: server shows {key_fingerprint(err.key)}, "
            f"{ep.known_hosts} has {key_fingerprint(err.expected_key)} (rejected)") from None
    except UnknownHostKey as err:
        raise FetchError(str(err) + " (rejected)") from None
    except AuthenticationException as err:
        raise FetchError(f"authentication as {ep.user} refused by {where}: {err}") from None
    except SSHException as err:
        text = str(err)
        if "banner" in text or "No existing session" in text:
            raise FetchError(f"no SSH handshake from {where} within {t:g} s (server hung?)") from None
        raise FetchError(f"ssh to {where}: {text}") from None
    except OSError as err:
        reason = err.strerror or str(err)
        if err.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            reason = os.strerror(err.errno)
        raise FetchError(f"cannot connect to {where}: {reason}") from None
    except EOFError:
        raise FetchError(f"{where} closed the connection during the handshake") from None


def run_command(client: paramiko.SSHClient, command: str, dog: _Watchdog,
                max_size: int) -> bytes:
    """Run COMMAND on the connected host and return its standard output.

    Standard error is drained alongside (so a chatty command cannot stall the
    channel) and its first line goes into the error.  Raises FetchError when
    the command exits non-zero, prints more than MAX_SIZE bytes, or the
    deadline passes.
    """
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise FetchError("connection lost before the command could run")
    chan = transport.open_session(timeout=dog.remaining())
    chan.settimeout(_POLL_SECONDS)
    chan.exec_command(command)
    out: list[bytes] = []
    size = 0
    err = bytearray()
    while True:
        dog.check()
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(_READ_CHUNK)[: max(0, 4096 - len(err))]
        try:
            data = chan.recv(_READ_CHUNK)
        except TimeoutError:
            continue
        if not data:
            break
        size += len(data)
        if size > max_size:
            raise FetchError(f"command output larger than max_size ({max_size} bytes)")
        out.append(data)
    while not chan.exit_status_ready():
        dog.check()
        time.sleep(0.01)
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(_READ_CHUNK)[: max(0, 4096 - len(err))]
    status = chan.recv_exit_status()
    chan.close()
    if status != 0:
        first = err.decode("utf-8", "replace").strip().splitlines()
        detail = f": {first[0][:200]}" if first else ""
        what = f"status {status}" if status >= 0 else "no exit status (killed?)"
        raise FetchError(f"command {command!r} failed with {what}{detail}")
    return b"".join(out)


def sftp_fetch(client: paramiko.SSHClient, path: str, dog: _Watchdog, max_size: int) -> bytes:
    """Return the content of PATH on the host, read over SFTP.

    Raises FetchError when the file is missing, unreadable or too large.
    """
    sftp = client.open_sftp()
    try:
        sftp.get_channel().settimeout(dog.remaining())
        with sftp.open(path, "rb") as f:
            size = f.stat().st_size or 0
            if size > max_size:
                raise FetchError(f"{path} is larger than max_size ({max_size} bytes)")
            f.prefetch(size)
            data = f.read(max_size + 1)
    except OSError as err:
        raise FetchError(f"sftp {path}: {err.strerror or err}") from None
    finally:
        sftp.close()
    if len(data) > max_size:
        raise FetchError(f"{path} is larger than max_size ({max_size} bytes)")
    return data


def fetch_bytes(spec: HostSpec, on_connected: Callable[[], None] | None = None) -> bytes:
    """Connect to SPEC's host and return the raw stats file it delivers.

    Dump hosts run `command` and deliver its stdout; legacy hosts run `exec`
    (if set) and deliver the file `fetch` read over SFTP.  One connection,
    closed before returning.  ON_CONNECTED is called once logged in.
    Raises FetchError with a one-line reason.
    """
    ep = resolve_endpoint(spec)
    client = _make_client(spec, ep)
    stage = "connecting"
    with _Watchdog(client, spec.timeout) as dog:
        try:
            _connect(client, spec, ep)
            dog.check()
            if on_connected:
                on_connected()
            if spec.legacy:
                if spec.exec:
                    stage = f"running {spec.exec!r}"
                    run_command(client, spec.exec, dog, spec.max_size)
                stage = f"fetching {spec.fetch}"
                return sftp_fetch(client, spec.fetch or "", dog, spec.max_size)
            stage = f"running {spec.command!r}"
            return run_command(client, spec.command, dog, spec.max_size)
        except FetchError as err:
            if dog.fired:
                raise FetchError(f"timed out after {spec.timeout:g} s while {stage}") from None
            raise err from None
        except (SSHException, OSError, EOFError) as err:
            if dog.fired:
                raise FetchError(f"timed out after {spec.timeout:g} s while {stage}") from None
            raise FetchError(f"connection failed while {stage}: {err or type(err).__name__}") from None
        finally:
            client.close()


def parse_fetched(name: str, data: bytes, what: str) -> StatsColumns:
    """Parse DATA fetched from host NAME with the agent's reader.

    Returns the table.  Raises FetchError when DATA is empty, truncated or
    otherwise not a complete stats file.
    """
    try:
        return parse_stats(decode_stats_bytes(data), f"{name}:{what}", allow_empty=False)
    except StatsFormatError as err:
        raise FetchError(f"not a complete stats file: {err}") from None


def fetch_host(spec: HostSpec) -> FetchResult:
    """Fetch and parse one host's stats; never raises, failures come back with a reason."""
    started = connected = time.monotonic()

    def mark_connected() -> None:
        nonlocal connected
        connected = time.monotonic()

    try:
        data = fetch_bytes(spec, mark_connected)
        fetched = time.monotonic()
        stats = parse_fetched(spec.name, data, spec.fetch or "stdout")
    except FetchError as err:
        return FetchResult(spec.name, None, str(err), time.monotonic() - started)
    except Exception as err:  # a bug or an unforeseen library error must not sink the run
        return FetchResult(spec.name, None, f"unexpected error: {type(err).__name__}: {err}",
                           time.monotonic() - started)
    done = time.monotonic()
    return FetchResult(spec.name, stats, None, done - started,
                       StageTimes(connected - started, fetched - connected, done - fetched))


def fetch_all(specs: Sequence[HostSpec], jobs: int,
              on_start: Callable[[HostSpec], None] | None = None,
              on_done: Callable[[FetchResult], None] | None = None) -> list[FetchResult]:
    """Fetch every host with at most JOBS connections at a time.

    ON_START and ON_DONE are called from the worker threads (for a progress
    display).  Returns the results in SPECS' order, whatever order they
    finished in.  Waiting (connect, remote dump, transfer) overlaps fully;
    parsing is Python and shares the GIL, so very big tables parse one at a
    time (worker processes that parse on other cores were built and measured
    slower on two cores; see docs/coalesce.md).
    """
    def work(spec: HostSpec) -> FetchResult:
        if on_start:
            on_start(spec)
        result = fetch_host(spec)
        if on_done:
            on_done(result)
        return result

    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(specs))),
                            thread_name_prefix="ncs-fetch") as pool:
        return list(pool.map(work, specs))
