"""The UDP dump port on real sockets: allowed senders get `OK <epoch>` or `??`, others nothing."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

import pytest

from ncs.agent.control import ControlPort
from ncs.agent.errors import ConfigError

NOW = 1_700_000_123
NO_ANSWER_WAIT = 0.3  # seconds a refused sender waits to be sure nothing comes back


@pytest.fixture
def ports() -> Iterator[list[ControlPort]]:
    """Collects the ports a test opens and closes them afterwards."""
    opened: list[ControlPort] = []
    yield opened
    for port in opened:
        port.close()


def open_port(ports: list[ControlPort], host: str, allowed: list[str]) -> ControlPort:
    """Bind a ControlPort on HOST at a kernel-chosen port."""
    port = ControlPort(host, 0, allowed)
    ports.append(port)
    return port


def ask(port: ControlPort, text: bytes, source: str = "127.0.0.1", to: str | None = None,
        now: int = NOW) -> tuple[bytes | None, bool]:
    """Send TEXT from SOURCE to the port, let it handle; returns (answer or None, handle's result)."""
    target = to or port.address[0]
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sender:
        sender.bind((source, 0))
        sender.sendto(text, (target, port.address[1]))
        readable, _, _ = select.select([port.fileno()], [], [], 2.0)
        assert readable, "the datagram never arrived"
        wanted = port.handle(now)
        sender.settimeout(NO_ANSWER_WAIT)
        try:
            answer, sender_address = sender.recvfrom(512)
        except TimeoutError:
            return None, wanted
        assert sender_address[1] == port.address[1]
        return answer, wanted


def test_dump_from_allowed_address(ports) -> None:
    port = open_port(ports, "127.0.0.1", ["127.0.0.1"])
    assert ask(port, b"dump") == (f"OK {NOW}".encode(), True)
    assert ask(port, b"dump\n", now=NOW + 7) == (f"OK {NOW + 7}".encode(), True)
    assert ask(port, b"dump \r\n") == (f"OK {NOW}".encode(), True)
    assert (port.requests, port.answered, port.refused) == (3, 3, 0)


@pytest.mark.parametrize("text", [b"hello", b"DUMP", b"dumpster", b"", b"\xff\x00dump", b"x" * 4000])
def test_other_text_gets_question_marks(ports, text: bytes) -> None:
    port = open_port(ports, "127.0.0.1", ["127.0.0.1"])
    assert ask(port, text) == (b"??", False)
    assert port.requests == 0


def test_sender_not_allowed_gets_nothing(ports) -> None:
    port = open_port(ports, "127.0.0.1", ["127.0.0.1"])
    # all of 127/8 is on lo: 127.0.0.2 is a different host as far as the port can tell
    assert ask(port, b"dump", source="127.0.0.2") == (None, False)
    assert ask(port, b"hello", source="127.0.0.2") == (None, False)
    assert (port.refused, port.requests, port.answered) == (2, 0, 0)
    assert ask(port, b"dump") == (f"OK {NOW}".encode(), True)  # the allowed one still works


def test_allowed_other_address_and_names(ports) -> None:
    port = open_port(ports, "INADDR_LOOPBACK", ["127.0.0.2", "localhost"])
    assert port.address[0] == "127.0.0.1"
    assert ask(port, b"dump", source="127.0.0.2") == (f"OK {NOW}".encode(), True)
    assert ask(port, b"dump", source="127.0.0.1") == (f"OK {NOW}".encode(), True)  # via the name
    assert ask(port, b"dump", source="127.0.0.3") == (None, False)


def test_ipv6_loopback(ports) -> None:
    port = open_port(ports, "::1", ["::1"])
    assert ask(port, b"dump", source="::1") == (f"OK {NOW}".encode(), True)
    assert ask(port, b"what", source="::1") == (b"??", False)


def test_inaddr_any_takes_ipv4_and_ipv6(ports) -> None:
    port = open_port(ports, "INADDR_ANY", ["127.0.0.1"])
    # the IPv4 sender reaches the dual-stack socket as ::ffff:127.0.0.1 and is recognised
    assert ask(port, b"dump", source="127.0.0.1", to="127.0.0.1") == (f"OK {NOW}".encode(), True)
    assert ask(port, b"dump", source="127.0.0.2", to="127.0.0.1") == (None, False)
    assert ask(port, b"dump", source="::1", to="::1") == (None, False)
    assert port.refused == 2


def test_handle_with_nothing_waiting(ports) -> None:
    port = open_port(ports, "127.0.0.1", ["127.0.0.1"])
    assert port.handle(NOW) is False


def test_several_waiting_datagrams_in_one_call(ports) -> None:
    port = open_port(ports, "127.0.0.1", ["127.0.0.1"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind(("127.0.0.1", 0))
        for text in (b"x", b"dump", b"y"):
            sender.sendto(text, port.address)
        select.select([port.fileno()], [], [], 2.0)
        assert port.handle(NOW) is True
        sender.settimeout(2.0)
        answers = sorted(sender.recv(64) for _ in range(3))
    assert answers == [b"??", b"??", f"OK {NOW}".encode()]


def test_bad_host_and_allowed_entries() -> None:
    with pytest.raises(ConfigError, match=r"^config: bad dump host 'no-such-host.invalid'$"):
        ControlPort("no-such-host.invalid", 0, ["127.0.0.1"])
    with pytest.raises(ConfigError, match=r"^config: invalid 'allowed' host or IP 'nope.invalid'$"):
        ControlPort("127.0.0.1", 0, ["nope.invalid"])


def test_port_in_use(ports) -> None:
    first = open_port(ports, "127.0.0.1", ["127.0.0.1"])
    with pytest.raises(ConfigError, match=r"^config: cannot bind dump port 127.0.0.1:\d+: "):
        ControlPort("127.0.0.1", first.address[1], ["127.0.0.1"])
