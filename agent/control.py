"""The UDP dump port: `dump` from an allowed address asks for a stats dump and gets `OK <epoch>`."""

from __future__ import annotations

import socket

from ncs.agent.addresses import normalize_address, resolve_addresses, resolve_bind_host
from ncs.agent.errors import ConfigError

# Read at most this many datagrams per handle() call, so a flood at the port
# cannot keep the capture loop from running; the rest waits for the next call.
MAX_DATAGRAMS_PER_CALL = 256
# Requests are one word; anything longer is read (and answered "??") but not kept.
MAX_DATAGRAM = 512


class ControlPort:
    """A non-blocking UDP socket that answers dump requests from allowed senders.

    Counters: `requests` (dumps asked for), `answered` (replies sent, dumps
    included), `refused` (datagrams from addresses not allowed: no answer, no dump).
    """

    def __init__(self, host: str, port: int, allowed: list[str]) -> None:
        """Bind HOST:PORT ('INADDR_ANY', 'INADDR_LOOPBACK', a name or an address).

        ALLOWED holds names or addresses; names are resolved here, once.
        Raises ConfigError for a host or allowed entry that does not resolve, or
        when the port cannot be bound.
        """
        family, sockaddr = resolve_bind_host(
            host, port, error=ConfigError(f"config: bad dump host '{host}'"))
        self.allowed: set[str] = set()
        for entry in allowed or ["127.0.0.1"]:
            self.allowed.update(resolve_addresses(
                entry, error=ConfigError(f"config: invalid 'allowed' host or IP '{entry}'")))
        self.requests = 0
        self.answered = 0
        self.refused = 0
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6 and sockaddr[0] == "::":
                # INADDR_ANY: take IPv4 too; IPv4 senders show up as ::ffff:a.b.c.d
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.sock.bind(sockaddr)
        except OSError as err:
            self.sock.close()
            raise ConfigError(f"config: cannot bind dump port {host}:{port}: "
                              f"{err.strerror or err}") from None
        self.sock.setblocking(False)

    def fileno(self) -> int:
        """Return the socket's descriptor, for select()."""
        return self.sock.fileno()

    @property
    def address(self) -> tuple:
        """Return the bound socket address (host, port, ...)."""
        return self.sock.getsockname()

    def handle(self, now: int) -> bool:
        """Read the waiting datagrams and answer them; returns True if one asked for a dump.

        `dump` (trailing whitespace allowed) from an allowed address is answered
        `OK <now>`, other text from an allowed address `??`; datagrams from
        other addresses are counted in `refused` and get no answer.  Never
        raises on what the network sends.
        """
        wanted = False
        for _ in range(MAX_DATAGRAMS_PER_CALL):
            try:
                data, sender = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # e.g. ECONNREFUSED queued by an ICMP error for an earlier reply
                continue
            if not self._allowed(sender[0]):
                self.refused += 1
                continue
            if data.rstrip() == b"dump":
                self.requests += 1
                wanted = True
                reply = f"OK {now}".encode("ascii")
            else:
                reply = b"??"
            try:
                self.sock.sendto(reply, sender)
                self.answered += 1
            except OSError:
                pass  # the sender's problem; the dump (if asked) still happens
        return wanted

    def _allowed(self, address: str) -> bool:
        """Return True if the sender ADDRESS is in the allowed set."""
        try:
            return normalize_address(address) in self.allowed
        except ValueError:
            return False

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.sock.close()
