"""The delaying TCP relay delays each direction by its delay, and holds a rate limit."""

from __future__ import annotations

import socket
import threading
import time

from tests.support.relay import RelayFactory
from tests.support.sshd import free_port, random_loopback


def _echo_server() -> tuple[str, int]:
    """Start a TCP server on loopback that echoes what it gets; returns its address."""
    address = random_loopback()
    port = free_port(address)
    listener = socket.create_server((address, port))

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return address, port


def test_a_round_trip_takes_twice_the_delay(relay_factory: RelayFactory) -> None:
    relay = relay_factory.start(_echo_server(), delay=0.2)
    with socket.create_connection((relay.address, relay.port)) as conn:
        for _ in range(3):
            started = time.monotonic()
            conn.sendall(b"ping")
            assert conn.recv(16) == b"ping"
            assert 0.38 < time.monotonic() - started < 0.8


def test_the_rate_limit_paces_a_transfer(relay_factory: RelayFactory) -> None:
    relay = relay_factory.start(_echo_server(), delay=0.0, rate=1_000_000)
    data = b"x" * 500_000
    with socket.create_connection((relay.address, relay.port)) as conn:
        started = time.monotonic()
        threading.Thread(target=conn.sendall, args=(data,), daemon=True).start()
        got = 0
        while got < len(data):
            got += len(conn.recv(65536))
        # 0.5 MB each way through one limited link per direction: 0.5 s at least
        assert time.monotonic() - started > 0.45
