"""The agent's real UDP dump port (ncs.agent.control.ControlPort), answered from a thread."""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Iterator

import pytest

from ncs.agent.control import ControlPort

EPOCH = 1_700_000_123  # the time the port's answers carry: `OK 1700000123`


class ServedPort:
    """A ControlPort on HOST whose requests a thread answers, as the agent's loop does.

    DELAY: seconds the thread lets requests wait before it first reads the socket.
    """

    def __init__(self, host: str, allowed: list[str], delay: float = 0.0) -> None:
        self.port = ControlPort(host, 0, allowed)
        self.delay = delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def number(self) -> int:
        """The port number the kernel chose."""
        return self.port.address[1]

    def _loop(self) -> None:
        if self._stop.wait(self.delay):
            return
        while not self._stop.is_set():
            if select.select([self.port], [], [], 0.02)[0]:
                self.port.handle(EPOCH)

    def close(self) -> None:
        """Stop the thread and close the port."""
        self._stop.set()
        self._thread.join(5)
        self.port.close()


@pytest.fixture
def served_port() -> Iterator[Callable[..., ServedPort]]:
    """Return a function that opens a ServedPort(host="127.0.0.1", allowed=["127.0.0.1"], delay=0)."""
    opened: list[ServedPort] = []

    def start(host: str = "127.0.0.1", allowed: list[str] | None = None,
              delay: float = 0.0) -> ServedPort:
        served = ServedPort(host, allowed or ["127.0.0.1"], delay)
        opened.append(served)
        return served

    yield start
    for served in opened:
        served.close()
