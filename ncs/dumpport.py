"""Client of the agent's UDP dump port: send `dump`, get the epoch of the agent's `OK <epoch>`."""

from __future__ import annotations

import select
import socket
import time

from ncs.hostport import format_hostport

REQUEST = b"dump"
MAX_ANSWER = 512  # the agent answers one short line


class DumpPortError(Exception):
    """A dump request that got no `OK <epoch>`; str() is a one-line reason naming HOST:PORT.

    The subclass tells what went wrong; `reason` says it without the address,
    for callers that name the address themselves.  `detail` is the variable part
    (the system's error text, the wait, the answer).
    """

    sentence = "the dump request to the agent at {where} failed: {detail}"
    short = "{detail}"

    def __init__(self, host: str, port: int, detail: str = "") -> None:
        self.host = host
        self.port = port
        self.detail = detail
        super().__init__(self._fill(self.sentence))

    @property
    def where(self) -> str:
        """The agent's address as HOST:PORT ([IPv6]:PORT)."""
        return format_hostport(self.host, self.port)

    @property
    def reason(self) -> str:
        """What went wrong, without the address."""
        return self._fill(self.short)

    def _fill(self, template: str) -> str:
        """Return TEMPLATE with {host}, {where} and {detail} filled in."""
        return template.format(host=self.host, where=self.where, detail=self.detail)


class Unresolved(DumpPortError):
    """The agent's host name does not resolve."""

    sentence = "cannot resolve agent host {host!r}: {detail}"
    short = "cannot resolve {host!r}: {detail}"


class Unreachable(DumpPortError):
    """The request could not be sent, or the network reported an error for it."""

    sentence = "cannot reach the agent at {where}: {detail}"


class Refused(Unreachable):
    """Nothing listens on the port (ICMP port unreachable)."""

    sentence = "the agent at {where} refused the dump request (port closed)"
    short = "refused (port closed)"


class NoAnswer(DumpPortError):
    """Nothing came back in time (the agent is busy, gone, or does not allow this sender)."""

    sentence = "no answer from the agent at {where} within {detail}"
    short = "no answer within {detail}"


class BadAnswer(DumpPortError):
    """Something other than `OK <epoch>` came back (`??` for a request the agent did not understand)."""

    sentence = "the agent at {where} answered {detail!r} to 'dump'"
    short = "answered {detail!r}"


def request_dump(host: str, port: int, timeout: float, tries: int = 1) -> int:
    """Send `dump` to the agent at HOST:PORT and return the epoch of its `OK <epoch>` answer.

    Waits TIMEOUT seconds in all; with TRIES > 1 the request is sent again
    after each TIMEOUT/TRIES seconds without an answer (a datagram may be lost).
    Raises a DumpPortError subclass: Unresolved, Refused, Unreachable, NoAnswer
    or BadAnswer.
    """
    family, address = _resolve(host, port)
    started = time.monotonic()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            # Connected, so that a closed port comes back as ECONNREFUSED at once
            # and only the agent's own address can answer.
            sock.connect(address)
            answer = None
            for attempt in range(1, tries + 1):
                sock.send(REQUEST)
                answer = _receive(sock, started + timeout * attempt / tries)
                if answer is not None:
                    break
        except ConnectionRefusedError:
            raise Refused(host, port, "Connection refused") from None
        except OSError as err:
            raise Unreachable(host, port, err.strerror or str(err)) from None
    if answer is None:
        raise NoAnswer(host, port, f"{timeout:g} s")
    return _epoch(host, port, answer)


def _resolve(host: str, port: int) -> tuple[int, tuple]:
    """Return (family, socket address) of HOST:PORT's first IPv4 or IPv6 address; raises Unresolved."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as err:
        raise Unresolved(host, port, getattr(err, "strerror", None) or str(err)) from None
    for family, _type, _proto, _name, address in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return family, address
    raise Unresolved(host, port, "no IPv4 or IPv6 address")


def _receive(sock: socket.socket, deadline: float) -> bytes | None:
    """Return the next datagram on SOCK, or None if none came by DEADLINE (monotonic)."""
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([sock], [], [], left)[0]:
        return None
    return sock.recv(MAX_ANSWER)


def _epoch(host: str, port: int, answer: bytes) -> int:
    """Return the epoch in ANSWER (`OK <epoch>`); raises BadAnswer for anything else."""
    text = answer.decode("ascii", "replace").strip()
    words = text.split()
    if len(words) != 2 or words[0] != "OK" or not (words[1].isascii() and words[1].isdigit()):
        raise BadAnswer(host, port, text[:40])
    return int(words[1])
