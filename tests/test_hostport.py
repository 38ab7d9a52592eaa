"""HOST:PORT parsing shared by the agent's nameserver, ncs-report --update and the inventory's update."""

from __future__ import annotations

import pytest

from ncs.hostport import format_hostport, parse_hostport


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:10004", ("127.0.0.1", 10004)),
    ("agent.example:7", ("agent.example", 7)),
    (" [2001:db8::1]:65535 ", ("2001:db8::1", 65535)),
    ("localhost:1", ("localhost", 1)),
])
def test_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("nohost", "'nohost' is not HOST:PORT"),
    (":80", "':80' is not HOST:PORT"),
    ("[::1]", "'[::1]' is not HOST:PORT"),
    ("::1", "'::1' is not HOST:PORT"),
    ("h:0", "'h:0': port '0' is not a number from 1 to 65535"),
    ("h:65536", "'h:65536': port '65536' is not a number from 1 to 65535"),
    ("h:x", "'h:x': port 'x' is not a number from 1 to 65535"),
    ("h:", "'h:': port '' is not a number from 1 to 65535"),
    ("h:\u00b2", "'h:\u00b2': port '\u00b2' is not a number from 1 to 65535"),
    ("[::1]5300", "'[::1]5300' is not [IPv6]:PORT"),
    ("[::1:53", "'[::1:53' is not [IPv6]:PORT"),
    ("[127.0.0.1]:53", "'[127.0.0.1]:53': brackets must hold an IPv6 address"),
    ("a:b:c", "'a:b:c' is not HOST:PORT"),
])
def test_one_line_reasons(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_hostport(text)
    assert str(err.value) == reason


def test_default_port_and_ip_only() -> None:
    assert parse_hostport("198.51.100.53", default_port=53, ip_only=True) == ("198.51.100.53", 53)
    assert parse_hostport("2001:db8::53", default_port=53, ip_only=True) == ("2001:db8::53", 53)
    assert parse_hostport("[::1]", default_port=53) == ("::1", 53)
    assert parse_hostport("ns.example", default_port=53) == ("ns.example", 53)
    with pytest.raises(ValueError, match=r"^'ns.example': 'ns.example' is not an IP address$"):
        parse_hostport("ns.example", default_port=53, ip_only=True)
    with pytest.raises(ValueError, match=r"^'a:b:c': 'a:b:c' is not an IP address$"):
        parse_hostport("a:b:c", default_port=53)  # two colons: an IPv6 address or nothing


def test_bare_port_takes_the_default_host() -> None:
    assert parse_hostport("10004", default_host="127.0.0.1") == ("127.0.0.1", 10004)
    assert parse_hostport("agent:10004", default_host="127.0.0.1") == ("agent", 10004)
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_hostport("10004")  # without a default host a number is a host without a port
    with pytest.raises(ValueError, match="not a number from 1 to 65535"):
        parse_hostport("0", default_host="127.0.0.1")


@pytest.mark.parametrize(("host", "port"), [("127.0.0.1", 5), ("::1", 53), ("a.example", 80)])
def test_format_reads_back(host: str, port: int) -> None:
    assert parse_hostport(format_hostport(host, port)) == (host, port)
