"""A TCP relay that delays (and can rate-limit) what it forwards: remote latency without netem.

The kernel here has no `netem` qdisc, so a link's latency is made in user
space: `DelayRelay` listens on a loopback address, and every connection to
it is joined to the target; each chunk read from one side is written to the
other DELAY seconds after it arrived, and with RATE set no faster than
RATE bytes per second (a serialised link: chunks queue behind each other).
Both directions are delayed, so a round trip costs 2 x DELAY.  Everything
stays on loopback.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.support.sshd import free_port, random_loopback

_SLICE = 16384  # bytes sent at once on a rate-limited link
_EOF = b""


@dataclass
class DelayRelay:
    """Forwards ADDRESS:PORT to TARGET with DELAY seconds each way, at most RATE bytes/s (None: no limit)."""

    target: tuple[str, int]
    delay: float
    rate: float | None = None
    address: str = field(default_factory=random_loopback)
    port: int = 0
    _listener: socket.socket | None = field(default=None, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)
    _sockets: list[socket.socket] = field(default_factory=list, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self) -> DelayRelay:
        """Listen and start relaying; returns self."""
        self.port = self.port or free_port(self.address)
        self._listener = socket.create_server((self.address, self.port))
        self._spawn(self._accept)
        return self

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                pipe: queue.Queue[tuple[float, bytes]] = queue.Queue()
                self._spawn(self._read, src, pipe)
                self._spawn(self._write, dst, pipe)

    def _read(self, src: socket.socket, pipe: queue.Queue) -> None:
        """Queue what SRC sends, stamped with its arrival time; then the end."""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = _EOF
            pipe.put((time.monotonic(), data))
            if not data:
                return

    def _write(self, dst: socket.socket, pipe: queue.Queue) -> None:
        """Send each queued chunk to DST once it is due: DELAY after arrival, behind earlier ones at RATE."""
        link_free = 0.0
        while True:
            arrived, data = pipe.get()
            due = arrived + self.delay
            if not data:
                self._sleep_until(due)
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            for at in range(0, len(data), _SLICE if self.rate else len(data)):
                piece = data[at:at + _SLICE] if self.rate else data
                if self.rate:
                    link_free = max(link_free, due) + len(piece) / self.rate
                    due = link_free
                self._sleep_until(due)
                try:
                    dst.sendall(piece)
                except OSError:
                    return

    def _sleep_until(self, when: float) -> None:
        pause = when - time.monotonic()
        if pause > 0:
            self._closed.wait(pause)

    def stop(self) -> None:
        """Close the listener and every relayed connection; idempotent."""
        self._closed.set()
        # shutdown, not close alone: it wakes the threads blocked in accept and recv
        for sock in [self._listener, *self._sockets]:
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=2)


class RelayFactory:
    """Starts relays for one test and stops them all at teardown."""

    def __init__(self) -> None:
        self.relays: list[DelayRelay] = []

    def start(self, target: tuple[str, int], delay: float, rate: float | None = None) -> DelayRelay:
        """Start a relay to TARGET (see DelayRelay); returns it, listening."""
        relay = DelayRelay(target, delay, rate).start()
        self.relays.append(relay)
        return relay

    def teardown(self) -> None:
        for relay in self.relays:
            relay.stop()


@pytest.fixture
def relay_factory() -> Iterator[RelayFactory]:
    """Yield a RelayFactory; every relay it started is stopped after the test."""
    factory = RelayFactory()
    try:
        yield factory
    finally:
        factory.teardown()
