"""Fetching one host's stats over SSH as a stream, and many hosts concurrently with a bound.

A host's output is read into its table as the bytes arrive
(`ncs.stats.streamread.StatsStream`) and never held whole; `max_size`
bounds what one host may send, and the reason of a host that sends more
says the bound.  Everything a host says (its command's standard error,
error texts) is made inert before it becomes a reason (`hosttext`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import paramiko
from paramiko.ssh_exception import SSHException

from ncs.coalesce.hosttext import STDERR_KEEP, inert, stderr_text
from ncs.coalesce.inventory import HostSpec
from ncs.coalesce.sshconnect import FetchError, Watchdog, connect, resolve_endpoint
from ncs.stats.columns import StatsColumns
from ncs.stats.errors import StatsFormatError
from ncs.stats.streamread import StatsStream

__all__ = ["READING", "FetchError", "FetchResult", "StageTimes", "fetch_all", "fetch_host", "fetch_stats"]

#: How often the output loop wakes up to drain stderr and look at the clock.
_POLL_SECONDS = 0.2
_READ_CHUNK = 1 << 20
#: SFTP reads (32 KiB each) in flight at once: 2 MiB, the window of a command's channel.
_SFTP_REQUESTS = 64
#: Held by a fetching thread while it reads what arrived into its table and
#: while it hands the table on (fetch_all's ON_DONE: the merge).  Those are
#: runs of numpy steps that each let go of the GIL and take it back; eight
#: threads doing them at once spent 0.8-1.1 us more CPU a record than one
#: at a time (the fleet benchmark's 300 hosts read and merged in process:
#: 2.35-2.78 us against 1.55-1.79).  Waiting for the network still overlaps.
READING = threading.Lock()


class StageTimes(NamedTuple):
    """Where the seconds of one successful fetch went (shown by the benchmarks)."""

    #: TCP connect, SSH handshake, host key check and authentication.
    connect: float
    #: The remote command (or exec + SFTP read) and reading its output, until the last byte.
    transfer: float
    #: Reading the rest of the table once the last byte is in.
    parse: float


@dataclass(frozen=True)
class FetchResult:
    """The outcome for one host: its table (until merged) and what it held, or why it failed."""

    name: str
    stats: StatsColumns | None
    reason: str | None
    seconds: float
    stages: StageTimes | None = None
    #: records and header lines of the table fetched (kept when the table is dropped)
    records: int = 0
    header: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the host's stats were fetched and read."""
        return self.reason is None

    @classmethod
    def fetched(cls, name: str, stats: StatsColumns, seconds: float,
                stages: StageTimes | None = None) -> FetchResult:
        """Return the result of a host that delivered STATS."""
        return cls(name, stats, None, seconds, stages, len(stats), tuple(stats.header))

    @classmethod
    def failed(cls, name: str, reason: str, seconds: float) -> FetchResult:
        """Return the result of a host that failed for REASON (made inert here)."""
        return cls(name, None, inert(reason) or "failed", seconds)

    def without_stats(self) -> FetchResult:
        """Return this result without its table (once merged, the table is not kept)."""
        return dataclasses.replace(self, stats=None)


def _size_text(size: int) -> str:
    """Return a byte count as "256 MiB (268435456 bytes)" (or just the bytes when not whole MiB)."""
    if size % (1 << 20) == 0:
        return f"{size >> 20} MiB ({size} bytes)"
    return f"{size} bytes"


class HostOutput:
    """A command's standard output as it arrives: into a StatsStream, within max_size bytes."""

    def __init__(self, stream: StatsStream | None, max_size: int) -> None:
        self.stream = stream
        self.max_size = max_size
        self.size = 0
        #: a problem the stream found early; reported after the command's exit status
        self.error: StatsFormatError | None = None

    def take(self, data: bytes) -> None:
        """Feed DATA to the stream; raises FetchError past max_size."""
        self.size += len(data)
        if self.size > self.max_size:
            raise FetchError(f"output larger than max_size {_size_text(self.max_size)}: "
                             "stopped reading (raise max_size for this host if it is right)")
        if self.stream is not None and self.error is None:
            try:
                with READING:
                    self.stream.feed(data)
            except StatsFormatError as err:
                self.error = err


def run_command(client: paramiko.SSHClient, command: str, dog: Watchdog, output: HostOutput) -> None:
    """Run COMMAND on the connected host, its standard output going to OUTPUT as it arrives.

    Standard error is drained alongside (so a chatty command cannot stall the
    channel) and kept, up to STDERR_KEEP bytes, for the reason.  Raises
    FetchError when the command exits non-zero (with all of its standard
    error, inert, on one line), prints more than max_size bytes, or the
    deadline passes.
    """
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise FetchError("connection lost before the command could run")
    chan = transport.open_session(timeout=dog.remaining())
    chan.settimeout(_POLL_SECONDS)
    chan.exec_command(command)
    err = bytearray()
    err_total = 0

    def drain_stderr() -> None:
        nonlocal err_total
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(_READ_CHUNK)
            err_total += len(data)
            err.extend(data[: max(0, STDERR_KEEP - len(err))])

    try:
        while True:
            dog.check()
            drain_stderr()
            try:
                data = chan.recv(_READ_CHUNK)
            except TimeoutError:
                continue
            if not data:
                break
            output.take(data)
        while not chan.exit_status_ready():
            dog.check()
            time.sleep(0.01)
        drain_stderr()
        status = chan.recv_exit_status()
    finally:
        chan.close()
    if status != 0:
        what = f"status {status}" if status >= 0 else "no exit status (killed?)"
        detail = stderr_text(bytes(err), err_total)
        raise FetchError(f"command {command!r} failed with {what}" + (f": {detail}" if detail else ""))


def sftp_fetch(client: paramiko.SSHClient, path: str, dog: Watchdog, output: HostOutput) -> None:
    """Read the file PATH on the host over SFTP into OUTPUT, piece by piece.

    Raises FetchError when the file is missing, unreadable or too large.
    """
    sftp = client.open_sftp()
    try:
        sftp.get_channel().settimeout(dog.remaining())
        with sftp.open(path, "rb") as f:
            size = f.stat().st_size or 0
            if size > output.max_size:
                raise FetchError(f"{path} is larger than max_size {_size_text(output.max_size)}")
            # Reads go out ahead (a request per 32 KiB would wait a round
            # trip each), a bounded number at a time; what arrives faster than
            # it is read waits in paramiko's buffers, within the size checked.
            f.prefetch(size, max_concurrent_requests=_SFTP_REQUESTS)
            while data := f.read(_READ_CHUNK):
                output.take(data)
    except OSError as err:
        raise FetchError(f"sftp {path}: {err.strerror or err}") from None
    finally:
        sftp.close()


def fetch_stats(spec: HostSpec, on_connected: Callable[[], None] | None = None,
                on_transferred: Callable[[], None] | None = None) -> StatsColumns:
    """Connect to SPEC's host and return the table of the stats file it delivers.

    Dump hosts run `command` and deliver its stdout; legacy hosts run `exec`
    (if set) and deliver the file `fetch` read over SFTP.  One connection
    (plus one per jump host), closed before returning.  ON_CONNECTED is
    called once logged in, ON_TRANSFERRED when the last byte is in.
    Raises FetchError with a one-line reason.
    """
    ep = resolve_endpoint(spec)
    what = spec.fetch or "stdout"
    output = HostOutput(StatsStream.for_merge(f"{spec.name}:{what}"), spec.max_size)
    stage = "connecting"
    with Watchdog(spec.timeout) as dog:
        try:
            client = connect(spec, ep, dog)
            if on_connected:
                on_connected()
            if spec.legacy:
                if spec.exec:
                    stage = f"running {spec.exec!r}"
                    run_command(client, spec.exec, dog, HostOutput(None, spec.max_size))
                stage = f"fetching {spec.fetch}"
                sftp_fetch(client, spec.fetch or "", dog, output)
            else:
                stage = f"running {spec.command!r}"
                run_command(client, spec.command, dog, output)
        except FetchError as err:
            if dog.fired:
                raise FetchError(f"timed out after {spec.timeout:g} s while {stage}") from None
            raise err from None
        except (SSHException, OSError, EOFError) as err:
            if dog.fired:
                raise FetchError(f"timed out after {spec.timeout:g} s while {stage}") from None
            raise FetchError(f"connection failed while {stage}: {err or type(err).__name__}") from None
    if on_transferred:
        on_transferred()
    try:
        if output.error is not None:
            raise output.error
        assert output.stream is not None
        with READING:
            return output.stream.finish(allow_empty=False)
    except StatsFormatError as err:
        raise FetchError(f"not a complete stats file: {err}") from None


def fetch_host(spec: HostSpec) -> FetchResult:
    """Fetch and read one host's stats; never raises, failures come back with a reason."""
    started = connected = transferred = time.monotonic()

    def mark_connected() -> None:
        nonlocal connected
        connected = time.monotonic()

    def mark_transferred() -> None:
        nonlocal transferred
        transferred = time.monotonic()

    try:
        stats = fetch_stats(spec, mark_connected, mark_transferred)
    except FetchError as err:
        return FetchResult.failed(spec.name, str(err), time.monotonic() - started)
    except Exception as err:  # a bug or an unforeseen library error must not sink the run
        return FetchResult.failed(spec.name, f"unexpected error: {type(err).__name__}: {err}",
                                  time.monotonic() - started)
    done = time.monotonic()
    return FetchResult.fetched(spec.name, stats, done - started,
                               StageTimes(connected - started, transferred - connected,
                                          done - transferred))


def fetch_all(specs: Sequence[HostSpec], jobs: int,
              on_start: Callable[[HostSpec], None] | None = None,
              on_done: Callable[[FetchResult], None] | None = None) -> list[FetchResult]:
    """Fetch every host with at most JOBS connections at a time.

    ON_START and ON_DONE are called from the worker threads as each host
    starts and ends.  With ON_DONE, each table goes to it and is then
    dropped: the results come back without their tables, so memory does
    not grow with the number of hosts.  Returns the results in SPECS'
    order, whatever order they finished in.  Waiting (connect, remote dump,
    transfer) overlaps fully; reading and ON_DONE hold READING, one thread
    at a time.
    """
    def work(spec: HostSpec) -> FetchResult:
        if on_start:
            on_start(spec)
        result = fetch_host(spec)
        if on_done is None:
            return result
        with READING:
            on_done(result)
        return result.without_stats()

    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(specs))),
                            thread_name_prefix="ncs-fetch") as pool:
        return list(pool.map(work, specs))
