"""The dump-port client against the agent's real ControlPort on loopback sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ncs.dumpport import (
    BadAnswer,
    DumpPortError,
    NoAnswer,
    Refused,
    Unreachable,
    Unresolved,
    request_dump,
)
from tests.support.controlport import EPOCH


def closed_port() -> int:
    """Return a UDP port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ok_gives_the_agents_epoch(served_port) -> None:
    agent = served_port()
    assert request_dump("127.0.0.1", agent.number, 2.0) == EPOCH
    assert agent.port.requests == 1


def test_ipv6_loopback(served_port) -> None:
    agent = served_port("::1", ["::1"])
    assert request_dump("::1", agent.number, 2.0) == EPOCH


def test_lost_request_is_sent_again(served_port) -> None:
    # The port is read only after the first try's share of the timeout: the
    # client has sent its request twice by then, and takes the first answer.
    agent = served_port(delay=0.45)
    assert request_dump("127.0.0.1", agent.number, 0.9, tries=3) == EPOCH
    assert agent.port.requests == 2


def test_sender_not_allowed_gets_no_answer(served_port) -> None:
    agent = served_port(allowed=["127.0.0.2"])
    started = time.monotonic()
    with pytest.raises(NoAnswer) as err:
        request_dump("127.0.0.1", agent.number, 0.3, tries=2)
    assert time.monotonic() - started >= 0.3
    assert str(err.value) == f"no answer from the agent at 127.0.0.1:{agent.number} within 0.3 s"
    assert err.value.reason == "no answer within 0.3 s"
    assert agent.port.refused == 2


def test_closed_port_is_refused_at_once() -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(Refused) as err:
        request_dump("127.0.0.1", port, 5.0)
    assert time.monotonic() - started < 2.0
    assert str(err.value) == f"the agent at 127.0.0.1:{port} refused the dump request (port closed)"
    assert err.value.reason == "refused (port closed)"
    assert isinstance(err.value, Unreachable)


def test_an_answer_other_than_ok() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:  # a server that is no agent
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]

        def answer() -> None:
            _data, sender = other.recvfrom(64)
            other.sendto(b"??", sender)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(BadAnswer) as err:
            request_dump("127.0.0.1", port, 2.0)
        thread.join(2)
    assert str(err.value) == f"the agent at 127.0.0.1:{port} answered '??' to 'dump'"
    assert (err.value.reason, err.value.detail) == ("answered '??'", "??")


def test_unresolvable_host() -> None:
    with pytest.raises(Unresolved) as err:
        request_dump("no-such-host.invalid", 9, 1.0)
    assert str(err.value).startswith("cannot resolve agent host 'no-such-host.invalid': ")
    assert err.value.where == "no-such-host.invalid:9"


def test_every_failure_is_one_line_naming_the_address(served_port) -> None:
    failures: list[DumpPortError] = []
    for host, port in (("127.0.0.1", closed_port()), ("::1", served_port("::1", ["::2"]).number)):
        with pytest.raises(DumpPortError) as err:
            request_dump(host, port, 0.2)
        failures.append(err.value)
    for failure in failures:
        assert "\n" not in str(failure)
        assert failure.where in str(failure)
    assert failures[1].where.startswith("[::1]:")
