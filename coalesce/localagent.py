"""The optional agent on the central box: ask it for a dump over UDP and read its stats file."""

from __future__ import annotations

import os
import socket
import time

from ncs.coalesce.inventory import LocalAgent
from ncs.coalesce.sshfetch import FetchResult
from ncs.stats.reader import StatsFormatError, read_stats

_POLL_SECONDS = 0.05


def request_dump(address: tuple[str, int], timeout: float) -> None:
    """Send 'dump' to the agent's UDP port and wait up to TIMEOUT for its 'OK <epoch>'.

    Raises OSError (TimeoutError when nothing answers, ConnectionRefusedError
    when nothing listens) and ValueError when the answer is not OK.
    """
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(max(0.1, timeout))
        sock.connect(address)
        sock.send(b"dump")
        answer = sock.recv(512).decode("ascii", "replace").strip()
    if not answer.startswith("OK"):
        raise ValueError(f"agent answered {answer[:40]!r} instead of OK")


def wait_newer(path: str, than: float, timeout: float) -> bool:
    """Wait up to TIMEOUT seconds until PATH's mtime is later than THAN; returns whether it is."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.stat(path).st_mtime > than:
                return True
        except FileNotFoundError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


def fetch_local(local: LocalAgent) -> FetchResult:
    """Refresh (when an update address is set) and read the local agent's stats file.

    Never raises: a failure comes back as a FetchResult with the reason.
    """
    started = time.monotonic()

    def failed(reason: str) -> FetchResult:
        return FetchResult(local.name, None, reason, time.monotonic() - started)

    if local.update is not None:
        try:
            before = os.stat(local.stats).st_mtime
        except FileNotFoundError:
            before = 0.0
        host, port = local.update
        try:
            request_dump(local.update, local.updto)
        except (OSError, ValueError) as err:
            return failed(f"dump request to {host}:{port} failed: {err or type(err).__name__}")
        if not wait_newer(local.stats, before, local.updto):
            return failed(f"{local.stats} was not rewritten within {local.updto:g} s of the dump request")
    try:
        stats = read_stats(local.stats, allow_empty=False)
    except StatsFormatError as err:
        return failed(f"not a complete stats file: {err}")
    return FetchResult(local.name, stats, None, time.monotonic() - started)
