"""`ncs-agent dump` over the UDP port (used when the agent may not be signalled): its messages."""

from __future__ import annotations

import socket

import pytest

from ncs.agent.config import AgentConfig
from ncs.agent.errors import ConfigError
from ncs.agent.verbs import udp_dump_request
from tests.support.controlport import EPOCH


def test_answer_gives_the_epoch(served_port, capsys) -> None:
    agent = served_port()
    assert udp_dump_request(AgentConfig(port=agent.number, host="INADDR_LOOPBACK")) == EPOCH
    assert capsys.readouterr().err == ""


def test_no_answer_after_the_tries(served_port, capsys) -> None:
    agent = served_port(allowed=["127.0.0.2"])
    assert udp_dump_request(AgentConfig(port=agent.number), tries=2, wait=0.2) is None
    assert capsys.readouterr().err == (
        f"ncs-agent: no answer from 127.0.0.1:{agent.number} (is this address in `allowed`?)\n")
    assert agent.port.refused == 2


def test_closed_port(capsys) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert udp_dump_request(AgentConfig(port=port)) is None
    assert capsys.readouterr().err == (
        f"ncs-agent: dump request to 127.0.0.1:{port} failed: refused (port closed)\n")


def test_no_port_and_bad_host(capsys) -> None:
    assert udp_dump_request(AgentConfig(name="x")) is None
    assert capsys.readouterr().err == "ncs-agent: x has no dump port (`port` is not set)\n"
    with pytest.raises(ConfigError, match=r"^config: bad dump host 'no-such-host.invalid'$"):
        udp_dump_request(AgentConfig(port=9, host="no-such-host.invalid"))
